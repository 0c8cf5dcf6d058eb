// Forking a call: the TwiML both entry points write (<Start><Stream track="both_tracks"> and
// <Dial>), and a simulated Twilio that streams both tracks of a forked call with different
// sox-made audio. The recording must hold the inbound track left and the outbound track right,
// bit for bit and placed by their timestamps, and callstream must send nothing on the socket.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, PUBLIC_URL, makeCall, startCallstream } from './twilio_support.mjs';
import { startStandin } from './twilio_standin.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const WebSocket = require('ws');

const FRAME = 160; // 20 ms of 8 kHz μ-law

function sox(args) {
    try {
        return execFileSync('sox', args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
    } catch (e) {
        if (e.code === 'ENOENT') {
            throw new Error('sox is missing: apt-get install sox');
        }
        throw e;
    }
}

// `seconds` of 8 kHz μ-law made by sox from a synth spec, and sox's own PCM16 decoding of it.
function makeAudio(dir, name, seconds, ...synth) {
    const ul = join(dir, `${name}.ul`);
    sox(['-n', '-r', '8000', '-c', '1', '-e', 'mu-law', '-t', 'raw', ul, 'synth', String(seconds), ...synth]);
    const ulaw = readFileSync(ul);
    const pcmBytes = sox(['-t', 'raw', '-r', '8000', '-c', '1', '-e', 'mu-law', ul, '-t', 'raw', '-e', 'signed', '-b', '16', '-L', '-']);
    const pcm = new Int16Array(pcmBytes.buffer, pcmBytes.byteOffset, pcmBytes.length / 2);
    return { ulaw, pcm: Int16Array.from(pcm) };
}

// The stereo samples of a PCM16 WAV file, or null while it is not complete.
function readWav(file) {
    const b = readFileSync(file);
    if (b.length < 44 || b.toString('ascii', 0, 4) !== 'RIFF') {
        return null;
    }
    let at = 12;
    let fmt = null;
    while (at + 8 <= b.length) {
        const id = b.toString('ascii', at, at + 4);
        const size = b.readUInt32LE(at + 4);
        if (id === 'fmt ') {
            fmt = { channels: b.readUInt16LE(at + 10), rate: b.readUInt32LE(at + 12), bits: b.readUInt16LE(at + 22) };
        } else if (id === 'data') {
            const data = b.subarray(at + 8, at + 8 + size);
            const samples = new Int16Array(data.length / 2);
            for (let i = 0; i < samples.length; i++) {
                samples[i] = data.readInt16LE(2 * i);
            }
            return { ...fmt, samples };
        }
        at += 8 + size + (size & 1);
    }
    return null;
}

function startMessage(streamSid, callSid, customParameters) {
    return JSON.stringify({
        event: 'start', sequenceNumber: '1', streamSid,
        start: {
            accountSid: ACCOUNT_SID, streamSid, callSid, tracks: ['inbound', 'outbound'], customParameters,
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
    });
}

function openStream(base) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(base.replace('http://', 'ws://') + '/media-stream');
        const received = [];
        ws.on('message', (m) => received.push(m.toString()));
        // A server that never closes fails the test instead of hanging it.
        ws.closed = new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error('the server did not close the stream')), 10000);
            ws.on('close', (code, reason) => {
                clearTimeout(timer);
                done({ code, reason: reason.toString() });
            });
        });
        ws.received = received;
        ws.on('open', () => resolve(ws));
        ws.on('error', reject);
    });
}

// The <Parameter>s of a TwiML document, as Twilio would put them in customParameters.
function twimlParameters(twiml) {
    const unescape = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
        .replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const out = {};
    for (const m of twiml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)) {
        out[unescape(m[1])] = unescape(m[2]);
    }
    return out;
}

// Streams a forked call's two tracks into `cs` (recording into `dir`/recordings) and checks the
// WAV and that nothing came back.
async function checkForkRecording(cs, dir, tag) {
    // The caller speaks from the start (a sweep); the dialled party answers 400 ms later
    // (noise). Different audio on each track, so a swapped or shifted channel shows.
    const inbound = makeAudio(dir, 'inbound', 3, 'sine', '300-3000');
    const outbound = makeAudio(dir, 'outbound', 2.8, 'pinknoise', 'vol', '0.3');
    const outboundStartMs = 400;
    const twiml = await (await fetch(`${cs.base}/twiml?mode=fork&dial=%2B14155550100&app=record,echo`,
        { headers: { 'x-forwarded-host': 'abc.ngrok-free.app' } })).text();
    const custom = twimlParameters(twiml);
    assert.deepEqual(custom, { app: 'record,echo' }); // echo would answer on a bidirectional stream

    const streamSid = 'MZ' + tag.repeat(16);
    const callSid = 'CA' + tag.repeat(16);
    const ws = await openStream(cs.base);
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    ws.send(startMessage(streamSid, callSid, custom));
    let sequence = 1;
    const media = (track, chunk, timestamp, bytes) => JSON.stringify({
        event: 'media', sequenceNumber: String(++sequence), streamSid,
        media: { track, chunk: String(chunk), timestamp: String(timestamp), payload: bytes.toString('base64') },
    });
    // Inbound frames one by one; the outbound track in bursts of five frames that lag
    // behind (each track keeps its own chunk counter), as two media paths would deliver them.
    const inFrames = inbound.ulaw.length / FRAME;
    const outFrames = outbound.ulaw.length / FRAME;
    let outNext = 0;
    for (let i = 0; i < inFrames; i++) {
        ws.send(media('inbound', i + 1, i * 20, inbound.ulaw.subarray(i * FRAME, (i + 1) * FRAME)));
        if (i % 5 === 4) {
            while (outNext < outFrames && outboundStartMs + outNext * 20 <= (i - 5) * 20) {
                const ts = outboundStartMs + outNext * 20;
                ws.send(media('outbound', outNext + 1, ts, outbound.ulaw.subarray(outNext * FRAME, (outNext + 1) * FRAME)));
                outNext++;
            }
        }
        await new Promise((r) => setTimeout(r, 4));
    }
    for (; outNext < outFrames; outNext++) {
        ws.send(media('outbound', outNext + 1, outboundStartMs + outNext * 20,
            outbound.ulaw.subarray(outNext * FRAME, (outNext + 1) * FRAME)));
    }
    ws.send(JSON.stringify({ event: 'stop', sequenceNumber: String(++sequence), streamSid,
        stop: { accountSid: ACCOUNT_SID, callSid } }));
    const closed = await ws.closed;
    assert.equal(closed.code, 1000, closed.reason);
    assert.deepEqual(ws.received, [], 'callstream sent something on a receive-only stream');

    // The WAV is complete once it holds both tracks to the end.
    const total = Math.max(inbound.pcm.length, outboundStartMs * 8 + outbound.pcm.length);
    const recordings = join(dir, 'recordings');
    let wav = null;
    for (let tries = 0; tries < 200; tries++) {
        const file = readdirSync(recordings).find((f) => f.startsWith(callSid) && f.endsWith('.wav'));
        wav = file ? readWav(join(recordings, file)) : null;
        if (wav && wav.samples.length >= 2 * total) {
            break;
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(wav, 'no WAV written');
    assert.equal(wav.channels, 2);
    assert.equal(wav.rate, 8000);
    assert.equal(wav.samples.length, 2 * total);
    let leftMismatch = 0;
    let rightMismatch = 0;
    for (let i = 0; i < total; i++) {
        const left = i < inbound.pcm.length ? inbound.pcm[i] : 0;
        const o = i - outboundStartMs * 8;
        const right = o >= 0 && o < outbound.pcm.length ? outbound.pcm[o] : 0;
        leftMismatch += wav.samples[2 * i] !== left ? 1 : 0;
        rightMismatch += wav.samples[2 * i + 1] !== right ? 1 : 0;
    }
    assert.equal(leftMismatch, 0, 'left channel differs from the inbound track');
    assert.equal(rightMismatch, 0, 'right channel differs from the outbound track');
}

describe('forking a call', () => {
    let dir;
    let cs;
    before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'callstream-fork-'));
        cs = await startCallstream(['--recordings-dir', join(dir, 'recordings')], {});
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        rmSync(dir, { recursive: true, force: true });
    });

    test('/twiml?mode=fork writes <Start><Stream track="both_tracks"> then <Dial>', async () => {
        const res = await fetch(`${cs.base}/twiml?mode=fork&dial=${encodeURIComponent('+14155550100')}&app=record`,
            { headers: { 'x-forwarded-host': 'abc.ngrok-free.app' } });
        assert.equal(res.status, 200);
        assert.equal(await res.text(), '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Start>'
            + '<Stream url="wss://abc.ngrok-free.app/media-stream" track="both_tracks">'
            + '<Parameter name="app" value="record"/></Stream></Start>'
            + '<Dial><Number>+14155550100</Number></Dial></Response>\n');
        const sip = await (await fetch(`${cs.base}/twiml?mode=fork&dial=${encodeURIComponent('sip:agent@pbx.example.com;transport=tls')}`,
            { headers: { 'x-forwarded-host': 'abc.ngrok-free.app' } })).text();
        assert.ok(sip.includes('<Dial><Sip>sip:agent@pbx.example.com;transport=tls</Sip></Dial>'), sip);
        for (const [query, field] of [['mode=fork', 'dial'], ['mode=fork&dial=555', 'dial'],
            ['mode=fork&dial=sip%3Anobody', 'dial'], ['mode=tee&dial=%2B14155550100', 'mode'],
            ['dial=%2B14155550100', 'dial'], ['callstream_parameters_id=0', 'callstream_parameters_id']]) {
            const bad = await fetch(`${cs.base}/twiml?${query}`, { headers: { 'x-forwarded-host': 'abc.ngrok-free.app' } });
            assert.equal(bad.status, 400, query);
            assert.equal((await bad.json()).field, field, query);
        }
    });

    test('both tracks land left and right, bit for bit by timestamp, and nothing is sent back', async () => {
        await checkForkRecording(cs, dir, 'f0');
    });

    test('bad base64 on the outbound track closes 1007, as on the inbound one', async () => {
        for (const track of ['outbound', 'inbound']) {
            const streamSid = 'MZ' + 'e0'.repeat(16);
            const ws = await openStream(cs.base);
            ws.send(startMessage(streamSid, 'CA' + 'e1'.repeat(16), { app: 'record' }));
            ws.send(JSON.stringify({
                event: 'media', sequenceNumber: '2', streamSid,
                media: { track, chunk: '1', timestamp: '0', payload: 'not*base64!' },
            }));
            const closed = await ws.closed;
            assert.equal(closed.code, 1007, `${track}: ${closed.reason}`);
            assert.match(closed.reason, /media\.payload/);
        }
    });
});

describe('forking a call with DSP threads', () => {
    test('the outbound track travels through the worker ring in order with the inbound one', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'callstream-fork-dsp-'));
        const cs = await startCallstream(['--recordings-dir', join(dir, 'recordings'), '--dsp-threads', '1'], {});
        try {
            await checkForkRecording(cs, dir, 'd5');
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('forking a placed call', () => {
    test('/make-call with mode fork sends <Start><Stream track="both_tracks"> and <Dial>', async () => {
        const standin = await startStandin({ accountSid: ACCOUNT_SID, username: ACCOUNT_SID, password: AUTH_TOKEN });
        const cs = await startCallstream(['--public-url', PUBLIC_URL, '--twilio-api-base', standin.base,
            '--twilio-ca-file', standin.caFile], {
            TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN, CALLSTREAM_API_TOKEN: API_TOKEN,
            TWILIO_FROM: '+15017122661',
        });
        try {
            const r = await makeCall(cs.base, {
                to: '+14155551212', mode: 'fork', dial: 'sip:agent@pbx.example.com', parameters: { app: 'record' },
            });
            assert.equal(r.status, 201, JSON.stringify(r.json));
            const twiml = standin.requests.at(-1).form.find(([k]) => k === 'Twiml')[1];
            assert.equal(twiml, '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Start>'
                + '<Stream url="wss://callstream.example.test/media-stream" track="both_tracks">'
                + '<Parameter name="app" value="record"/></Stream></Start>'
                + '<Dial><Sip>sip:agent@pbx.example.com</Sip></Dial></Response>\n');
            assert.deepEqual(standin.violations, []);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
            await standin.close();
            standin.cleanup();
        }
    });
});
