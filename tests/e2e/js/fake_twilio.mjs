// A simulated Twilio leg for bridge tests: connects to callstream's /media-stream exactly as
// Twilio does (TWILIO.md §1: connected, start, media with string counters, dtmf, stop) and
// plays what callstream sends back the way Twilio does (§2): media is buffered and played in
// order at real time, a mark is echoed once the audio before it has played, a clear drops the
// buffer and echoes every pending mark at once. It records what it received and heard, so a
// test can compare callstream's idea of "heard" with the caller's.
import { createRequire } from 'node:module';

// The npm peers live in build/npm (NODE_PATH), which ESM imports do not search.
const require = createRequire(process.env.NODE_PATH + '/');
const WebSocket = require('ws');

export const ACCOUNT = 'AC' + '11'.repeat(16);

export function sid(prefix, n) {
    return prefix + n.toString(16).padStart(32, '0');
}

// 160 bytes of μ-law whose first byte tags the frame (never 0x7F, which decodes like 0xFF).
export function taggedFrame(tag) {
    const f = Buffer.alloc(160, 0xd5);
    f[0] = tag % 0x7f;
    f[1] = Math.floor(tag / 0x7f) % 0x7f;
    return f;
}

export class FakeTwilio {
    // headers: extra upgrade headers (X-Twilio-Signature); tracks: start.tracks, e.g.
    // ['inbound', 'outbound'] for a fork (receive-only) stream.
    constructor(port, { callSid, streamSid, params = {}, headers = {}, accountSid = ACCOUNT,
        tracks = ['inbound'] }) {
        this.url = `ws://127.0.0.1:${port}/media-stream`;
        this.headers = headers;
        this.accountSid = accountSid;
        this.tracks = tracks;
        this.callSid = callSid;
        this.streamSid = streamSid;
        this.params = params;
        this.seq = 0;
        this.chunk = 0;
        this.received = [];   // {at, payload: Buffer}
        this.heard = 0;       // frames fully played
        this.playEnd = 0;     // ms timestamp when the buffer runs dry
        this.frames = [];     // {endsAt, payload} not yet played
        this.pendingMarks = []; // {name, timer}
        this.marksEchoed = [];  // {name, at, cleared}
        this.clears = [];       // {at, droppedFrames}
        this.closed = null;     // {code, reason, at}
        this.startedAt = 0;
    }

    open() {
        return new Promise((resolve, reject) => {
            this.ws = new WebSocket(this.url, { headers: this.headers });
            this.ws.on('open', () => {
                this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
                this.send({
                    event: 'start', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
                    start: {
                        accountSid: this.accountSid, streamSid: this.streamSid,
                        callSid: this.callSid, tracks: this.tracks,
                        customParameters: this.params,
                        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
                    },
                });
                this.startedAt = Date.now();
                resolve();
            });
            this.ws.on('error', reject);
            this.ws.on('message', (data) => this.onMessage(JSON.parse(data.toString())));
            this.ws.on('close', (code, reason) => {
                this.closed = { code, reason: reason.toString(), at: Date.now() };
                for (const m of this.pendingMarks) clearTimeout(m.timer);
                clearInterval(this.mediaTimer);
            });
        });
    }

    send(msg) {
        if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
    }

    media(payload) {
        this.chunk += 1;
        this.send({
            event: 'media', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
            media: {
                track: 'inbound', chunk: String(this.chunk),
                timestamp: String((this.chunk - 1) * 20), payload: payload.toString('base64'),
            },
        });
    }

    // Sends caller audio at real time: frame i is frameFn(i) (a Buffer of 160 bytes).
    streamAudio(frameFn = (i) => taggedFrame(i)) {
        let i = 0;
        const t0 = Date.now();
        const tick = () => {
            // Catch up on timer lateness so the caller's clock stays real time.
            while (i * 20 <= Date.now() - t0) this.media(frameFn(i++));
        };
        tick();
        this.mediaTimer = setInterval(tick, 5);
    }

    stopAudio() { clearInterval(this.mediaTimer); }

    dtmf(digit) {
        this.send({
            event: 'dtmf', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
            dtmf: { track: 'inbound_track', digit },
        });
    }

    stop() {
        this.stopAudio();
        this.send({
            event: 'stop', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
            stop: { accountSid: this.accountSid, callSid: this.callSid },
        });
    }

    close() { this.stopAudio(); this.ws.close(); }

    heardAt(now = Date.now()) {
        // Frames whose playout ended by `now` (Twilio plays at real time).
        while (this.frames.length && this.frames[0].endsAt <= now) {
            this.frames.shift();
            this.heard += 1;
        }
        return this.heard;
    }

    onMessage(msg) {
        const now = Date.now();
        if (msg.streamSid !== this.streamSid) {
            this.violation = `streamSid ${msg.streamSid}`;
            return;
        }
        if (msg.event === 'media') {
            const payload = Buffer.from(msg.media.payload, 'base64');
            this.received.push({ at: now, payload });
            this.playEnd = Math.max(this.playEnd, now) + (payload.length / 8);
            this.frames.push({ endsAt: this.playEnd, payload });
        } else if (msg.event === 'mark') {
            const name = msg.mark.name;
            const wait = Math.max(0, this.playEnd - now);
            const entry = { name };
            entry.timer = setTimeout(() => {
                this.pendingMarks = this.pendingMarks.filter((m) => m !== entry);
                this.echoMark(name, false);
            }, wait);
            this.pendingMarks.push(entry);
        } else if (msg.event === 'clear') {
            this.heardAt(now);
            this.clears.push({ at: now, droppedFrames: this.frames.length, heard: this.heard });
            this.frames = [];
            this.playEnd = now;
            const pending = this.pendingMarks;
            this.pendingMarks = [];
            for (const m of pending) {
                clearTimeout(m.timer);
                this.echoMark(m.name, true);
            }
        } else {
            this.violation = `unexpected event ${msg.event}`;
        }
    }

    echoMark(name, cleared) {
        this.marksEchoed.push({ name, at: Date.now(), cleared });
        this.send({
            event: 'mark', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
            mark: { name },
        });
    }
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(pred, ms = 5000, what = 'condition') {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (pred()) return;
        await sleep(5);
    }
    throw new Error(`timed out waiting for ${what}`);
}
