// An upstream bot written the way Twilio's Node Media Streams samples are: a plain `ws`
// WebSocketServer, one JSON message per event, `streamSid` taken from `start`, media answered
// with `media`, `mark` and `clear` sent back. It knows nothing of callstream: it is what a team
// would point Twilio at, pointed at callstream's bridge instead.
//
// Behaviour is chosen per test:
//   echo: true           send every caller media payload straight back
//   greeting: Buffer     μ-law sent (in 20 ms messages) right after `start`, then mark "greeting"
//   onStart(ws, state)   extra actions after start (e.g. stream 3 s, then clear)
// Everything received is recorded in `bot.connections[i].events` with arrival times.
import { createRequire } from 'node:module';

const require = createRequire(process.env.NODE_PATH + '/');
const { WebSocketServer } = require('ws');

// handshakeDelayMs: the upgrade is answered that late, like a provider across the ocean.
export function startTwilioBot({ echo = true, greeting = null, onStart = null,
    onMessage = null, handshakeDelayMs = 0 } = {}) {
    const bot = { connections: [], port: 0 };
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0,
        verifyClient: handshakeDelayMs > 0
            ? (info, done) => setTimeout(() => done(true), handshakeDelayMs) : undefined });
    bot.wss = wss;
    wss.on('connection', (ws, req) => {
        const conn = { events: [], openedAt: Date.now(), headers: req.headers, ws,
            streamSid: null };
        bot.connections.push(conn);
        ws.on('message', (message, isBinary) => {
            if (isBinary) {
                conn.events.push({ event: 'binary', at: Date.now() });
                return;
            }
            const data = JSON.parse(message);
            conn.events.push({ ...data, at: Date.now() });
            switch (data.event) {
            case 'connected':
                break;
            case 'start':
                conn.streamSid = data.start.streamSid;
                if (greeting) {
                    for (let i = 0; i < greeting.length; i += 160) {
                        ws.send(JSON.stringify({ event: 'media', streamSid: conn.streamSid,
                            media: { payload: greeting.subarray(i, i + 160).toString('base64') } }));
                    }
                    ws.send(JSON.stringify({ event: 'mark', streamSid: conn.streamSid,
                        mark: { name: 'greeting' } }));
                }
                if (onStart) onStart(ws, conn);
                break;
            case 'media':
                if (echo) {
                    ws.send(JSON.stringify({ event: 'media', streamSid: conn.streamSid,
                        media: { payload: data.media.payload } }));
                }
                break;
            case 'mark':
            case 'dtmf':
            case 'stop':
                break;
            default:
                break;
            }
            if (onMessage) onMessage(ws, conn, data);
        });
    });
    return new Promise((resolve) => wss.on('listening', () => {
        bot.port = wss.address().port;
        bot.url = `ws://127.0.0.1:${bot.port}`;
        bot.close = () => new Promise((done) => {
            for (const c of bot.connections) c.ws.terminate();
            wss.close(() => done());
        });
        resolve(bot);
    }));
}
