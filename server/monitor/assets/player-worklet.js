// AudioWorklet processor that plays a listened call: two legs (caller left, callstream's audio
// to the caller right), each a FIFO of decoded samples at the context's rate (8 kHz: the page
// makes its AudioContext at 8000 Hz and the browser resamples to the device). A small jitter
// buffer: output starts once `targetMs` is queued, an underrun plays silence and primes again,
// and more than `targetMs + 200 ms` queued is cut back, so latency stays bounded.
class Fifo {
  constructor(capacity) { this.buf = new Float32Array(capacity); this.read = 0; this.size = 0; }
  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      if (this.size === this.buf.length) { this.read = (this.read + 1) % this.buf.length; this.size--; }
      this.buf[(this.read + this.size) % this.buf.length] = samples[i];
      this.size++;
    }
  }
  drop(n) { n = Math.min(n, this.size); this.read = (this.read + n) % this.buf.length; this.size -= n; }
  pop(out) {
    const n = Math.min(out.length, this.size);
    for (let i = 0; i < n; i++) out[i] = this.buf[(this.read + i) % this.buf.length];
    out.fill(0, n);
    this.drop(n);
    return n;
  }
}

class Player extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const rate = sampleRate;
    this.target = Math.round(rate * (options.processorOptions?.targetMs ?? 60) / 1000);
    this.ceiling = this.target + Math.round(rate * 0.2);
    this.legs = [new Fifo(rate * 2), new Fifo(rate * 2)];
    this.primed = [false, false];
    this.underruns = 0;
    this.trimmed = 0;
    this.blocks = 0;
    this.port.onmessage = (e) => {
      const { leg, samples } = e.data;
      this.legs[leg].push(samples);
    };
  }

  process(inputs, outputs) {
    const out = outputs[0];
    for (let leg = 0; leg < 2; leg++) {
      const fifo = this.legs[leg];
      const channel = out[leg] ?? out[0];
      if (fifo.size > this.ceiling) { this.trimmed += fifo.size - this.target; fifo.drop(fifo.size - this.target); }
      if (!this.primed[leg]) {
        if (fifo.size >= this.target) this.primed[leg] = true; else { channel.fill(0); continue; }
      }
      if (fifo.pop(channel) < channel.length) { this.primed[leg] = false; this.underruns++; }
    }
    // A few times a second: how much is queued (the buffer's share of the listen latency).
    if (++this.blocks % 16 === 0) {
      this.port.postMessage({ bufferedMs: this.legs[0].size * 1000 / sampleRate,
                              underruns: this.underruns, trimmed: this.trimmed });
    }
    return true;
  }
}
registerProcessor('callstream-player', Player);
