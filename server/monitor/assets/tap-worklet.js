// AudioWorklet pass-through between the player and the speakers: what it passes is what the
// operator hears. On {record: seconds} it keeps that much of both channels, with the audio
// clock time of its first sample, and sends it back on {dump: true} (the browser tests compare
// it with what the caller sent).
class Tap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.recording = null;
    this.port.onmessage = (e) => {
      if (e.data.record) {
        const n = Math.round(e.data.record * sampleRate);
        this.recording = { left: new Float32Array(n), right: new Float32Array(n), length: 0, startTime: -1 };
      } else if (e.data.dump) {
        const r = this.recording;
        this.port.postMessage(r ? { left: r.left.slice(0, r.length), right: r.right.slice(0, r.length),
                                    startTime: r.startTime, sampleRate } : null);
      }
    };
  }

  process(inputs, outputs) {
    const input = inputs[0];
    const output = outputs[0];
    for (let c = 0; c < output.length; c++) {
      if (input[c]) output[c].set(input[c]); else output[c].fill(0);
    }
    const r = this.recording;
    if (r && input.length && r.length < r.left.length) {
      if (r.startTime < 0) r.startTime = currentTime;
      const n = Math.min(input[0].length, r.left.length - r.length);
      r.left.set(input[0].subarray(0, n), r.length);
      r.right.set((input[1] ?? input[0]).subarray(0, n), r.length);
      r.length += n;
    }
    return true;
  }
}
registerProcessor('callstream-tap', Tap);
