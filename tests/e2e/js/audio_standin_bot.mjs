// A stand-in bot speaking callstream.audio.v1 (docs/bridge.md), for end-to-end tests. It accepts
// the subprotocol, records the start frame, every binary frame of caller audio and every control
// frame, and lets the test script what the bot sends back: binary audio of any length, control
// frames, raw frames (for hostile cases). It honours xoff/xon in `speak()` as a well-behaved bot.
import { createRequire } from 'node:module';

const { WebSocketServer } = createRequire(process.env.NODE_PATH + '/')('ws');

export const SUBPROTOCOL = 'callstream.audio.v1';

export async function startAudioBot({ acceptSubprotocol = true } = {}) {
  const bot = { connections: [], port: 0, onConnection: null };
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0,
    handleProtocols: (protocols) => (acceptSubprotocol && protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  bot.port = wss.address().port;
  bot.url = `ws://127.0.0.1:${bot.port}/bot`;

  wss.on('connection', (ws, request) => {
    const conn = {
      ws, url: request.url, headers: request.headers, protocol: ws.protocol,
      start: null, frames: [], text: [], controls: [], closed: null, paused: false, flow: [],
    };
    bot.connections.push(conn);
    ws.on('message', (data, isBinary) => {
      if (isBinary) { conn.frames.push(Buffer.from(data)); return; }
      const text = data.toString();
      conn.text.push(text);
      const msg = JSON.parse(text);
      if (conn.start === null && msg.type === 'start') conn.start = msg;
      else conn.controls.push(msg);
      if (msg.type === 'xoff') { conn.paused = true; conn.flow.push(msg); }
      if (msg.type === 'xon') { conn.paused = false; conn.flow.push(msg); }
    });
    ws.on('close', (code, reason) => { conn.closed = { code, reason: reason.toString() }; });
    conn.send = (obj) => ws.send(JSON.stringify(obj));
    conn.sendAudio = (buf) => ws.send(buf, { binary: true });
    conn.sendRaw = (data, binary) => ws.send(data, { binary });
    // Sends `audio` in `chunkBytes` pieces as fast as flow control allows.
    conn.speak = async (audio, chunkBytes = 4096) => {
      for (let i = 0; i < audio.length; i += chunkBytes) {
        while (conn.paused && ws.readyState === ws.OPEN) await new Promise((r) => setTimeout(r, 5));
        if (ws.readyState !== ws.OPEN) return;
        ws.send(audio.subarray(i, i + chunkBytes), { binary: true });
        await new Promise((r) => setImmediate(r));
      }
    };
    bot.onConnection?.(conn);
  });

  bot.waitFor = async (predicate, what, timeoutMs = 10000) => {
    const until = performance.now() + timeoutMs;
    while (!predicate()) {
      if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  bot.close = () => new Promise((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  });
  return bot;
}
