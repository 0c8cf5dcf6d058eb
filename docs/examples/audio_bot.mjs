// A callstream.audio.v1 bot: greets the caller with a beep, then echoes what the caller says.
//
// Keys: 1 plays a beep over the echo (clearing what is queued first), # hangs up.
// Needs Node 18+ and ws (npm install ws).
// Run:  node audio_bot.mjs [port]     (default 8765; point callstream at ws://HOST:PORT)
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 8765);

// `ms` of a sine as PCM16 little-endian at `rateHz`.
function beep(rateHz, ms = 300, hz = 880) {
  const out = Buffer.alloc((rateHz * ms / 1000) * 2);
  for (let i = 0; i < out.length / 2; i++) {
    out.writeInt16LE(Math.trunc(8000 * Math.sin(2 * Math.PI * hz * i / rateHz)), i * 2);
  }
  return out;
}

const wss = new WebSocketServer({
  port,
  handleProtocols: (protocols) => (protocols.has('callstream.audio.v1') ? 'callstream.audio.v1' : false),
});
wss.on('listening', () => console.log(`listening on ${port}`));
wss.on('connection', (ws) => {
  let start = null;
  let paused = false; // callstream says xoff when its playback queue is nearly full
  ws.on('message', (data, isBinary) => {
    if (isBinary) { // 20 ms of the caller's audio
      if (!paused) ws.send(data, { binary: true });
      return;
    }
    const event = JSON.parse(data);
    const pcm = start?.format.encoding === 'l16'; // else μ-law 8 kHz: echo only, no beep
    if (start === null) { // the first frame is always the call's metadata
      start = event;
      console.log(`call ${start.callSid} from '${start.from}' format ${JSON.stringify(start.format)}`);
      if (start.format.encoding === 'l16') {
        ws.send(beep(start.format.sampleRate));
        ws.send(JSON.stringify({ type: 'mark', name: 'greeting' }));
      }
    } else if (event.type === 'dtmf' && event.digit === '#') {
      ws.send(JSON.stringify({ type: 'hangup', reason: 'caller pressed #' }));
    } else if (event.type === 'dtmf' && event.digit === '1' && pcm) {
      ws.send(JSON.stringify({ type: 'clear' }));
      ws.send(beep(start.format.sampleRate));
    } else if (event.type === 'mark') {
      console.log(`mark ${event.name} played`);
    } else if (event.type === 'xoff' || event.type === 'xon') {
      paused = event.type === 'xoff';
    } else if (event.type === 'stop') {
      console.log(`call ${start.callSid} ended: ${event.reason}`);
    }
  });
});
