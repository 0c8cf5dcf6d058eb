// A simulated caller on the Twilio side of callstream: it opens /media-stream as Twilio does,
// sends the caller's audio in real-time 20 ms μ-law frames, and plays what callstream sends back
// the way Twilio's media edge does: frames queue and play one per 20 ms from the first frame on;
// a mark is echoed when the audio queued before it has played; `clear` drops the queue and echoes
// the pending marks at once. So "what the caller heard" is exact and independent of callstream.
//
// The caller says nothing (μ-law silence) until `speakAfterHeardMs` of non-silent audio has
// played (or `speakAtMs` after start), then speaks: a loud 300 Hz tone.
import { createRequire } from 'node:module';

const WebSocket = createRequire(process.env.NODE_PATH + '/')('ws');
import { linearToUlaw, ulawToLinear } from './openai_realtime_standin.mjs';

const FRAME_MS = 20;
const sid = (prefix) => prefix + [...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');

// Zero crossings of a decoded frame tell the stand-ins' tones apart (440 Hz ~18 per 20 ms,
// 2 kHz ~80); quiet frames count as silence.
export function classify(frame) {
  let sum = 0;
  let crossings = 0;
  let prev = 0;
  for (const b of frame) {
    const s = ulawToLinear(b);
    sum += s * s;
    if ((s >= 0) !== (prev >= 0)) crossings++;
    prev = s;
  }
  const rms = Math.sqrt(sum / frame.length);
  if (rms < 300) return 'silence';
  return crossings > 50 ? 'late' : 'speech';
}

export function callerFrame(ms, loud) {
  const buf = Buffer.alloc((8000 * ms) / 1000, 0xff);
  if (loud) {
    for (let i = 0; i < buf.length; i++) buf[i] = linearToUlaw(Math.round(12000 * Math.sin((2 * Math.PI * 300 * i) / 8000)));
  }
  return buf;
}

export async function startCaller(port, { customParameters = {}, speakAfterHeardMs = null, speakAtMs = null,
  callSid = sid('CA'), streamSid = sid('MZ'), path = '/media-stream' } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const caller = {
    ws, callSid, streamSid,
    received: [],        // {at, kind, bytes, payload} per media message from callstream
    heard: [],           // {at, kind} per frame played
    heardMs: 0,          // all audio played
    heardSpeechMs: 0,    // non-silent audio played
    marksEchoed: [],     // names echoed back
    clears: [],          // {at, heardMs, heardSpeechMs, queuedMs, receivedMs}
    events: [],          // every non-media message from callstream
    speakingSince: null, // {at, heardSpeechMs}
    closed: null,        // {code, reason}
    sentFrames: 0,       // caller frames sent
  };
  const queue = [];      // {frame|mark}
  let seq = 1;
  let chunk = 1;
  const t0 = performance.now();
  const send = (obj) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ ...obj, sequenceNumber: String(seq++) }));
  send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  send({ event: 'start', start: { accountSid: 'AC' + 'a'.repeat(32), streamSid, callSid, tracks: ['inbound'],
    customParameters, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } }, streamSid });

  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const at = performance.now() - t0;
    if (msg.event === 'media') {
      const payload = Buffer.from(msg.media.payload, 'base64');
      // Twilio plays any length; the queue holds 20 ms units.
      for (let i = 0; i < payload.length; i += 160) {
        const frame = payload.subarray(i, i + 160);
        const entry = { frame, kind: classify(frame) };
        caller.received.push({ at, kind: entry.kind, bytes: frame.length, payload: frame });
        queue.push(entry);
      }
      return;
    }
    caller.events.push({ at, ...msg });
    if (msg.event === 'mark') queue.push({ mark: msg.mark.name });
    if (msg.event === 'clear') {
      const queuedMs = queue.filter((e) => e.frame).length * FRAME_MS;
      caller.clears.push({ at, heardMs: caller.heardMs, heardSpeechMs: caller.heardSpeechMs, queuedMs,
        receivedFrames: caller.received.length });
      for (const e of queue.splice(0)) if (e.mark) echoMark(e.mark);
    }
  });
  ws.on('close', (code, reason) => { caller.closed = { code, reason: reason.toString() }; });

  function echoMark(name) {
    caller.marksEchoed.push(name);
    send({ event: 'mark', streamSid, mark: { name } });
  }

  // One tick per 20 ms of the caller's clock, catching up if the timer ran late.
  let ticks = 0;
  let playing = false;
  const timer = setInterval(() => {
    const due = Math.floor((performance.now() - t0) / FRAME_MS);
    while (ticks < due) {
      ticks++;
      // Caller audio out.
      const now = ticks * FRAME_MS;
      const speak = (speakAtMs !== null && now >= speakAtMs) ||
        (speakAfterHeardMs !== null && caller.heardSpeechMs >= speakAfterHeardMs);
      if (speak && !caller.speakingSince) caller.speakingSince = { at: performance.now() - t0, heardSpeechMs: caller.heardSpeechMs };
      caller.sentFrames++;
      send({ event: 'media', streamSid, media: { track: 'inbound', chunk: String(chunk++), timestamp: String(now),
        payload: callerFrame(FRAME_MS, speak).toString('base64') } });
      // Playout: marks at the head are echoed, then one frame plays.
      while (queue.length && queue[0].mark) echoMark(queue.shift().mark);
      if (!playing && queue.length) playing = true;
      if (playing && queue.length) {
        const e = queue.shift();
        caller.heardMs += FRAME_MS;
        if (e.kind !== 'silence') caller.heardSpeechMs += FRAME_MS;
        caller.heard.push({ at: performance.now() - t0, kind: e.kind });
        while (queue.length && queue[0].mark) echoMark(queue.shift().mark);
      }
    }
  }, 5);

  caller.dtmf = (digit) => send({ event: 'dtmf', streamSid, dtmf: { track: 'inbound_track', digit } });
  caller.stop = async () => {
    clearInterval(timer);
    send({ event: 'stop', streamSid, stop: { accountSid: 'AC' + 'a'.repeat(32), callSid } });
    await new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      const t = setTimeout(() => { ws.terminate(); resolve(); }, 3000);
      ws.once('close', () => { clearTimeout(t); resolve(); });
    });
  };
  caller.waitFor = async (predicate, what, timeoutMs = 10000) => {
    const until = performance.now() + timeoutMs;
    while (!predicate()) {
      if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return caller;
}
