// An upstream bot written the way Twilio's Node Media Streams samples are: a plain `ws`
// WebSocketServer, one JSON message per event, `streamSid` taken from `start`, media answered
// with `media`, `mark` and `clear` sent back. It knows nothing of callstream: it is what a team
// would point Twilio at, pointed at callstream's bridge instead.
//
// Behaviour is chosen per test:
//   echo: true           send every caller media payload straight back
//   greeting: Buffer     μ-law sent (in 20 ms messages) right after `start`, then mark "greeting"
//   onStart(ws, state)   extra actions after start (e.g. stream 3 s, then clear)
//   tls: {key, cert}     serve wss:// (PEM strings or Buffers) on an HTTPS server; the URL then
//                        names `localhost`, so the certificate's host name is what is checked
// Everything received is recorded in `bot.connections[i].events` with arrival times. A TLS bot
// also records the SNI host names clients sent (`bot.tls.sni`, one per ClientHello that had one),
// the handshakes completed (`bot.tls.secured`) and the errors of the ones that failed
// (`bot.tls.errors`), so a test can tell a certificate the client refused from one never shown.
import https from 'node:https';
import { createRequire } from 'node:module';

const require = createRequire(process.env.NODE_PATH + '/');
const { WebSocketServer } = require('ws');

// handshakeDelayMs: the upgrade is answered that late, like a provider across the ocean.
export function startTwilioBot({ echo = true, greeting = null, onStart = null,
    onMessage = null, handshakeDelayMs = 0, tls = null } = {}) {
    const bot = { connections: [], port: 0 };
    const verifyClient = handshakeDelayMs > 0
        ? (info, done) => setTimeout(() => done(true), handshakeDelayMs) : undefined;
    let httpsServer = null;
    let wss;
    if (tls) {
        bot.tls = { sni: [], secured: 0, errors: [] };
        // SNICallback runs on each ClientHello that names a host, before the certificate is
        // sent; calling back without a context keeps the one below.
        httpsServer = https.createServer({ key: tls.key, cert: tls.cert,
            SNICallback: (name, done) => {
                bot.tls.sni.push(name);
                done(null);
            } });
        httpsServer.on('secureConnection', () => { bot.tls.secured += 1; });
        httpsServer.on('tlsClientError', (err) => { bot.tls.errors.push(err.message); });
        wss = new WebSocketServer({ server: httpsServer, verifyClient });
        httpsServer.listen(0, '127.0.0.1');
    } else {
        wss = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient });
    }
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
        bot.url = tls ? `wss://localhost:${bot.port}` : `ws://127.0.0.1:${bot.port}`;
        bot.close = () => new Promise((done) => {
            for (const c of bot.connections) c.ws.terminate();
            // A WebSocketServer does not close a server it was handed.
            wss.close(() => (httpsServer ? httpsServer.close(() => done()) : done()));
        });
        resolve(bot);
    }));
}
