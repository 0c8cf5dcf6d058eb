// Calls placed through /make-call whose stream is bridged: the parameters kept on callstream's
// side (too many for Twilio's TwiML, which then carries only callstream_parameters_id) reach the
// upstream in start.customParameters, all of them, byte for byte. Twilio's Calls API is the
// local HTTPS stand-in; the upstream is a bot written the way Twilio's Node samples are.
// And a fork stream (both tracks, receive-only) bridged with the audio protocol: two channels.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { startAudioBot } from './js/audio_standin_bot.mjs';
import { FakeTwilio, sid, sleep, taggedFrame, waitFor } from './js/fake_twilio.mjs';
import { startTwilioBot } from './js/twilio_bot.mjs';
import { ACCOUNT_ENV, ACCOUNT_SID, AUTH_TOKEN, makeCall, standinArgs, startAccountStandin,
    startCallstream } from './twilio_support.mjs';

const STREAM_URL = 'wss://callstream.example.test/media-stream';

describe('make-call with stored parameters, bridged', () => {
    let standin;
    let bot;
    let cs;
    before(async () => {
        standin = await startAccountStandin();
        bot = await startTwilioBot({ echo: true });
        cs = await startCallstream([...standinArgs(standin), '--bridge', `bot=${bot.url}`],
            ACCOUNT_ENV);
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        await bot.close();
        await standin.close();
    });

    test('20 parameters of 400 characters reach the twilio-protocol upstream intact', async () => {
        standin.mode = 'ok';
        const parameters = { app: 'bridge', bridge: 'bot' };
        for (let i = 0; i < 20; i++) {
            // XML specials, quotes, TAB and non-ASCII: everything a TwiML round trip could spoil.
            parameters[`p${i}`] = `${i}:` + 'v&<"\'\té'.repeat(60).slice(0, 398 - String(i).length);
        }
        const { status, json } = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661',
            parameters });
        assert.equal(status, 201, JSON.stringify(json));
        const req = standin.requests.at(-1);
        assert.deepEqual(standin.violations, []);
        const twiml = req.form.find(([k]) => k === 'Twiml')[1];
        assert.ok(twiml.length <= 4000, `${twiml.length} characters`);
        // What Twilio puts in start.customParameters: the TwiML's <Parameter>s, only the id.
        const custom = {};
        for (const m of twiml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)) {
            custom[m[1]] = m[2];
        }
        assert.deepEqual(Object.keys(custom), ['callstream_parameters_id']);

        const { getExpectedTwilioSignature } = createRequire(process.env.NODE_PATH + '/')('twilio');
        const call = new FakeTwilio(cs.port, {
            callSid: json.call_sid, streamSid: 'MZ' + '5'.repeat(32), params: custom,
            accountSid: ACCOUNT_SID,
            headers: { 'X-Twilio-Signature': getExpectedTwilioSignature(AUTH_TOKEN, STREAM_URL, {}) },
        });
        const before = bot.connections.length;
        await call.open();
        call.streamAudio();
        await waitFor(() => call.received.length >= 10, 5000, 'audio echoed through the upstream');
        call.stop();
        await waitFor(() => call.closed !== null, 3000, 'stream closed');
        assert.equal(call.closed.code, 1000, call.closed.reason);
        const conn = bot.connections[before];
        const start = conn.events.find((e) => e.event === 'start');
        assert.ok(start, 'the upstream got start');
        assert.equal(start.start.callSid, json.call_sid);
        // Every stored parameter, and not the id that stood in for them.
        assert.deepEqual(start.start.customParameters, parameters);
        call.received.slice(0, 10).forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
        await sleep(50);
    });
});

// A fork stream (<Start><Stream track="both_tracks">): the audio upstream gets both tracks as
// two interleaved channels, in μ-law and in PCM16 (bit-exact G.711 decoding at 8 kHz), and
// callstream sends nothing on the receive-only stream, even when the app talks back.
// G.711 μ-law to PCM16 (ITU-T G.711; 0xFF and 0x7F are 0).
function ulawToPcm(u) {
    u = ~u & 0xff;
    const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
    return u & 0x80 ? -magnitude : magnitude;
}

// Each format: its name in the start frame, bytes per sample, and a sample of frame `f` at `s`.
const FORK_FORMATS = [
    ['pcmu', 'pcmu', 1, (f, s) => f[s]],
    ['l16-8000', 'l16', 2, (f, s) => f.readInt16LE(2 * s)],
];
for (const [format, encoding, width, sampleAt] of FORK_FORMATS) {
describe(`fork stream bridged with the audio protocol, ${format}`, () => {
    let bot;
    let cs;
    before(async () => {
        bot = await startAudioBot();
        bot.onConnection = (conn) => {
            // A bot that answers at once: none of this may reach a receive-only call.
            conn.sendAudio(Buffer.alloc(1600, 0x55));
            conn.send({ type: 'mark', name: 'reply' });
        };
        cs = await startCallstream(['--bridge', `fork=${bot.url}`, '--bridge-protocol', 'fork=audio',
            '--bridge-option', `fork=format=${format}`]);
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        await bot.close();
    });

    test('channels: 2, left = inbound and right = outbound byte for byte, nothing sent back',
        async () => {
            const call = new FakeTwilio(cs.port, {
                callSid: sid('CA', 0xf0), streamSid: sid('MZ', 0xf0),
                params: { app: 'bridge', bridge: 'fork' }, tracks: ['inbound', 'outbound'],
            });
            const outboundFrame = (i) => Buffer.alloc(160, 0x10 + (i % 0x60)).fill(0xa5, 80);
            const FRAMES = 50;
            const OUTBOUND_START = 5; // the dialled party's audio starts 100 ms later
            await call.open();
            let seq = 1;
            const media = (track, chunk, ts, payload) => call.send({
                event: 'media', sequenceNumber: String(++seq), streamSid: call.streamSid,
                media: { track, chunk: String(chunk), timestamp: String(ts),
                    payload: payload.toString('base64') },
            });
            for (let i = 0; i < FRAMES; i++) {
                media('inbound', i + 1, i * 20, taggedFrame(i));
                if (i >= OUTBOUND_START) {
                    const o = i - OUTBOUND_START;
                    media('outbound', o + 1, i * 20, outboundFrame(o));
                }
                await sleep(20);
            }
            await bot.waitFor(() => bot.connections[0]?.frames.length >= FRAMES, 'both tracks');
            call.seq = seq;
            call.stop();
            await waitFor(() => call.closed !== null, 3000, 'stream closed');
            const conn = bot.connections[0];
            assert.equal(conn.start.format.channels, 2);
            assert.equal(conn.start.format.encoding, encoding);
            assert.equal(conn.start.format.sampleRate, 8000);
            assert.equal(conn.frames.length, FRAMES);
            // μ-law bytes as the format carries them: themselves, or decoded to PCM16.
            const asFormat = (ulaw) => Array.from(ulaw, (u) => (width === 1 ? u : ulawToPcm(u)));
            conn.frames.forEach((f, i) => {
                assert.equal(f.length, 2 * 160 * width, `frame ${i}: 20 ms of two channels`);
                const left = [];
                const right = [];
                for (let s = 0; s < 160; s++) {
                    left.push(sampleAt(f, 2 * s));
                    right.push(sampleAt(f, 2 * s + 1));
                }
                assert.deepEqual(left, asFormat(taggedFrame(i)), `frame ${i} left`);
                const expected = i < OUTBOUND_START ? Buffer.alloc(160, 0xff)
                    : outboundFrame(i - OUTBOUND_START);
                assert.deepEqual(right, asFormat(expected), `frame ${i} right`);
            });
            // Nothing reached the simulated Twilio: no media, no mark, no clear.
            assert.equal(call.received.length, 0);
            assert.equal(call.violation, undefined);
            assert.equal(call.closed.code, 1000, call.closed.reason);
        });
});
}

// The hangup failure policy with Twilio credentials: an upstream that breaks mid-call gets the
// call ended through Twilio's REST API (POST Calls/{sid}.json Status=completed), not only its
// media stream closed; a bystander call on the same server keeps echoing.
describe('bridge failure hangs the call up through the REST API', () => {
    let standin;
    let bot;
    let cs;
    before(async () => {
        standin = await startAccountStandin();
        // Answers the start with half a JSON message: a hostile upstream (invalid_json).
        bot = await startTwilioBot({ echo: false, onStart: (ws) => ws.send('{"event":"media",') });
        cs = await startCallstream([...standinArgs(standin), '--bridge', `bad=${bot.url}`,
            '--no-verify-signatures'], ACCOUNT_ENV);
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        await bot.close();
        await standin.close();
    });

    test('POST Calls/{sid}.json Status=completed, the stream closed, the bystander untouched',
        async () => {
            const bystander = new FakeTwilio(cs.port, { callSid: sid('CA', 0xb1),
                streamSid: sid('MZ', 0xb1), params: { app: 'echo' }, accountSid: ACCOUNT_SID });
            await bystander.open();
            bystander.streamAudio();
            const callSid = sid('CA', 0xb2);
            const call = new FakeTwilio(cs.port, { callSid, streamSid: sid('MZ', 0xb2),
                params: { app: 'bridge', bridge: 'bad' }, accountSid: ACCOUNT_SID });
            await call.open();
            call.streamAudio(() => Buffer.alloc(160, 0xff));
            await waitFor(() => standin.requests.some((r) => r.path.endsWith(`/Calls/${callSid}.json`)),
                5000, 'the REST hangup');
            const hangup = standin.requests.find((r) => r.path.endsWith(`/Calls/${callSid}.json`));
            assert.equal(hangup.method, 'POST');
            assert.deepEqual(hangup.form, [['Status', 'completed']]);
            assert.equal(hangup.path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Calls/${callSid}.json`);
            assert.deepEqual(standin.violations, []);
            await waitFor(() => call.closed !== null, 5000, 'the bridged stream closed');
            assert.match(cs.logs(), /bridge_failed .*reason=invalid_json/);
            assert.match(cs.logs(), new RegExp(`bridge_hangup .*call_sid=${callSid}`));
            const echoed = bystander.received.length;
            await waitFor(() => bystander.received.length >= echoed + 10, 3000, 'bystander echoes');
            assert.equal(bystander.closed, null);
            bystander.stop();
            await waitFor(() => bystander.closed !== null, 3000, 'bystander closed');
            assert.equal(bystander.closed.code, 1000);
        });
});

// Pre-warm, measured: the upstream answers its WebSocket upgrade 400 ms late and greets the
// caller at `start`. With /twiml first (the phone rings for 1 s) the stream adopts the open
// upstream; without, the handshake comes after `start`. The test asserts the adoption and that
// the upstream was open before `start`; the times it prints are the figures of docs/bridge.md.
describe('pre-warm: first upstream audio after start, with and without', () => {
    const HANDSHAKE_MS = 400;
    let bot;
    let cs;
    before(async () => {
        bot = await startTwilioBot({ echo: false, greeting: Buffer.alloc(1600, 0x55),
            handshakeDelayMs: HANDSHAKE_MS });
        cs = await startCallstream(['--bridge', `slow=${bot.url}`]);
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        await bot.close();
    });

    test('start to first audio at the caller', async (t) => {
        const figures = { prewarmed: [], cold: [] };
        for (let round = 0; round < 5; round++) {
            for (const prewarm of [true, false]) {
                const n = 0xc0 + round * 2 + (prewarm ? 0 : 1);
                const callSid = sid('CA', n);
                const params = { app: 'bridge', bridge: 'slow', CallSid: callSid };
                const opened = bot.connections.length;
                if (prewarm) {
                    const res = await fetch(`${cs.base}/twiml?app=bridge&bridge=slow`, {
                        method: 'POST',
                        headers: { 'content-type': 'application/x-www-form-urlencoded' },
                        body: new URLSearchParams({ CallSid: callSid }).toString() });
                    assert.equal(res.status, 200);
                    await sleep(1000); // the phone rings
                    assert.equal(bot.connections.length, opened + 1, 'open before start');
                }
                const call = new FakeTwilio(cs.port, { callSid, streamSid: sid('MZ', n), params });
                await call.open();
                call.streamAudio(() => Buffer.alloc(160, 0xff));
                await waitFor(() => call.received.length >= 1, 5000, 'the greeting');
                (prewarm ? figures.prewarmed : figures.cold).push(
                    call.received[0].at - call.startedAt);
                assert.equal(bot.connections.length, opened + 1, 'one upstream per call');
                call.stop();
                await waitFor(() => call.closed !== null, 3000, 'closed');
            }
        }
        const m = await (await fetch(`${cs.base}/metrics`)).text();
        assert.match(m, /^callstream_bridge_prewarm_adopted_total 5$/m);
        const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
        t.diagnostic(`start -> first audio, upstream handshake ${HANDSHAKE_MS} ms: pre-warmed ` +
            `median ${median(figures.prewarmed)} ms (${figures.prewarmed.join(', ')}), cold ` +
            `median ${median(figures.cold)} ms (${figures.cold.join(', ')})`);
    });
});
