// Listen-in: the listen WebSocket's frames (16-byte header + μ-law, both legs, see
// docs/monitor.md) decoded with the μ-law table and played through the player worklet, with a
// pass-through tap worklet before the speakers. Reports the listen latency: network (capture
// time on the server to arrival here; same-clock machines only), jitter buffer and the
// context's own output latency.
import { decodeUlaw } from './ulaw.js';

const HEADER = 16;

export class Listener {
  constructor({ url, onStats, onEnd }) {
    this.url = url;
    this.onStats = onStats;
    this.onEnd = onEnd;
    this.network = [];
    this.bufferedMs = 0;
    this.frames = 0;
    this.ended = false;
  }

  async start() {
    // 8 kHz: the call's own rate, so the worklets see the decoded samples unchanged.
    this.ctx = new AudioContext({ sampleRate: 8000, latencyHint: 'interactive' });
    await this.ctx.audioWorklet.addModule('/monitor/player-worklet.js');
    await this.ctx.audioWorklet.addModule('/monitor/tap-worklet.js');
    this.player = new AudioWorkletNode(this.ctx, 'callstream-player', {
      numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [2],
      processorOptions: { targetMs: 60 },
    });
    this.tap = new AudioWorkletNode(this.ctx, 'callstream-tap', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2],
      channelCount: 2, channelCountMode: 'explicit', channelInterpretation: 'discrete',
    });
    this.player.connect(this.tap).connect(this.ctx.destination);
    this.player.port.onmessage = (e) => { this.bufferedMs = e.data.bufferedMs; this.underruns = e.data.underruns; };
    await this.ctx.resume();
    this.ws = new WebSocket(this.url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = (e) => this.onMessage(e.data);
    this.ws.onclose = (e) => { this.ended = true; this.onEnd?.(e.code, e.reason); };
    this.statsTimer = setInterval(() => this.onStats?.(this.stats()), 250);
    await new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error('listen socket refused'));
    });
  }

  onMessage(data) {
    if (typeof data === 'string') { this.hello = JSON.parse(data); return; }
    const view = new DataView(data);
    const now = Date.now();
    for (let off = 0; off + HEADER <= data.byteLength;) {
      const leg = view.getUint8(off);
      const size = view.getUint16(off + 2, true);
      const captured = view.getFloat64(off + 8, true);
      const samples = decodeUlaw(new Uint8Array(data, off + HEADER, size));
      this.player.port.postMessage({ leg, samples }, [samples.buffer]);
      if (leg === 0) {
        this.network.push(now - captured);
        if (this.network.length > 50) this.network.shift();
      }
      this.frames++;
      off += HEADER + size;
    }
  }

  stats() {
    const sorted = [...this.network].sort((a, b) => a - b);
    const network = sorted.length ? sorted[Math.floor(sorted.length / 2)] : NaN;
    const output = ((this.ctx.baseLatency || 0) + (this.ctx.outputLatency || 0)) * 1000;
    return { network, buffer: this.bufferedMs, output, total: network + this.bufferedMs + output,
             frames: this.frames, underruns: this.underruns ?? 0 };
  }

  // The tap's recording (tests): {left, right, startTime, sampleRate} plus the wall-clock time
  // its first sample was played, from the context's output timestamp.
  record(seconds) { this.tap.port.postMessage({ record: seconds }); }
  dump() {
    return new Promise((resolve) => {
      this.tap.port.onmessage = (e) => {
        const r = e.data;
        if (r) {
          const ts = this.ctx.getOutputTimestamp();
          const wallAtContext = performance.timeOrigin + ts.performanceTime - ts.contextTime * 1000;
          r.startWallMs = wallAtContext + r.startTime * 1000;
        }
        resolve(r);
      };
      this.tap.port.postMessage({ dump: true });
    });
  }

  stop() {
    clearInterval(this.statsTimer);
    this.ws?.close();
    this.ctx?.close();
  }
}
