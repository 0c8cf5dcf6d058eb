// app=bridge with the twilio protocol, end to end: a simulated Twilio leg (js/fake_twilio.mjs,
// which plays what it receives at real time and echoes marks as Twilio does) calls the real
// callstream binary, which bridges the call to a bot written the way Twilio's Node samples are
// (js/twilio_bot.mjs). Every test keeps a bystander app=echo call running and checks it still
// echoes, so one call's upstream never disturbs another call.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sleep, taggedFrame, waitFor } from './js/fake_twilio.mjs';
import { startTwilioBot } from './js/twilio_bot.mjs';
import { API_TOKEN, startCallstream } from './twilio_support.mjs';
import {
    assertBystanderEchoes, metric, metrics, metricsOnce, newCall, startBystander,
} from './js/bridge_calls.mjs';

const LEAD_MS = 60;
describe('bridge: twilio protocol', () => {
    let bot;
    let cs;
    before(async () => {
        bot = await startTwilioBot({ echo: true });
        cs = await startCallstream(['--bridge', `bot=${bot.url}`, '--bridge-lead-ms',
            String(LEAD_MS), '--api-token', API_TOKEN]);
    });
    after(async () => {
        await cs.stop();
        await bot.close();
    });

    test('the bot gets Twilio messages exactly as Twilio sends them and its media reaches the caller',
        async () => {
            const bystander = await startBystander(cs.port);
            const call = newCall(cs.port, { app: 'bridge', bridge: 'bot', FirstName: 'Jane' });
            const before = bot.connections.length;
            await call.open();
            call.streamAudio();
            await waitFor(() => call.received.length >= 50, 5000, '50 echoed frames');
            const res = await fetch(`${cs.base}/calls/${call.callSid}`,
                { headers: { authorization: `Bearer ${API_TOKEN}` } });
            assert.equal(res.status, 200);
            assert.deepEqual((await res.json()).bridge,
                { upstream: 'bot', protocol: 'twilio', state: 'open' });
            call.dtmf('7');
            await sleep(100);
            call.stop();
            await waitFor(() => call.closed !== null, 3000, 'stream closed');
            const conn = bot.connections[before];
            await waitFor(() => conn.events.some((e) => e.event === 'stop'), 3000, 'stop');
            const events = conn.events;
            assert.equal(events[0].event, 'connected');
            assert.deepEqual({ ...events[0], at: undefined },
                { event: 'connected', protocol: 'Call', version: '1.0.0', at: undefined });
            const start = events[1];
            assert.equal(start.event, 'start');
            assert.equal(start.sequenceNumber, '1');
            assert.equal(start.streamSid, call.streamSid);
            assert.equal(start.start.callSid, call.callSid);
            assert.equal(start.start.streamSid, call.streamSid);
            assert.match(start.start.accountSid, /^AC[0-9a-f]{32}$/);
            assert.deepEqual(start.start.tracks, ['inbound']);
            assert.equal(start.start.customParameters.FirstName, 'Jane');
            assert.equal(start.start.customParameters.bridge, 'bot');
            assert.deepEqual(start.start.mediaFormat,
                { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 });
            const media = events.filter((e) => e.event === 'media');
            assert.ok(media.length >= 50);
            media.forEach((m, i) => {
                assert.equal(typeof m.sequenceNumber, 'string');
                assert.equal(m.media.track, 'inbound');
                assert.equal(m.media.chunk, String(i + 1));
                assert.equal(m.media.timestamp, String(i * 20));
                // The caller's own bytes, unchanged.
                assert.deepEqual(Buffer.from(m.media.payload, 'base64'), taggedFrame(i));
            });
            // Sequence numbers count every message after connected, from 1, without gaps.
            events.slice(1).forEach((e, i) => assert.equal(e.sequenceNumber, String(i + 1)));
            const dtmf = events.find((e) => e.event === 'dtmf');
            assert.deepEqual(dtmf.dtmf, { track: 'inbound_track', digit: '7' });
            const stop = events.find((e) => e.event === 'stop');
            assert.deepEqual(stop.stop, { accountSid: start.start.accountSid, callSid: call.callSid });
            // The bot's echo came back to the caller in order and byte for byte.
            call.received.slice(0, 50).forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
            await assertBystanderEchoes(bystander);
            bystander.close();
        });

    test('a bot mark is echoed when the caller has heard the audio before it, and pacing keeps ' +
        'Twilio at most the lead ahead', async () => {
        const second = Buffer.alloc(8000, 0x55); // 1 s of audio, sent in one go
        const marks = [];
        const pacedBot = await startTwilioBot({
            echo: false,
            onStart: (ws, conn) => {
                ws.send(JSON.stringify({ event: 'media', streamSid: conn.streamSid,
                    media: { payload: second.toString('base64') } }));
                ws.send(JSON.stringify({ event: 'mark', streamSid: conn.streamSid,
                    mark: { name: 'after-1s' } }));
            },
            onMessage: (ws, conn, msg) => {
                if (msg.event === 'mark') marks.push({ name: msg.mark.name, at: Date.now() });
            },
        });
        const cs2 = await startCallstream(['--bridge', `paced=${pacedBot.url}`,
            '--bridge-lead-ms', String(LEAD_MS)]);
        try {
            const call = newCall(cs2.port, { app: 'bridge', bridge: 'paced' });
            await call.open();
            call.streamAudio(() => Buffer.alloc(160, 0xff));
            let maxAhead = 0;
            const probe = setInterval(() => {
                const ahead = call.received.length - call.heardAt();
                maxAhead = Math.max(maxAhead, ahead);
            }, 2);
            await waitFor(() => marks.length === 1, 4000, 'mark echo');
            clearInterval(probe);
            assert.equal(marks[0].name, 'after-1s');
            assert.equal(call.received.length, 50, 'exactly 50 frames of 20 ms');
            const firstAt = call.received[0].at;
            const lastHeardAt = firstAt + 1000;
            // Echoed once the caller's playout passed the mark, not when the bytes were sent.
            assert.ok(marks[0].at >= lastHeardAt - 30,
                `mark echoed ${lastHeardAt - marks[0].at} ms before the audio had played`);
            assert.ok(marks[0].at <= lastHeardAt + 150, 'mark echoed late');
            // The sender never ran more than the lead (plus a frame of timer slack) ahead.
            assert.ok(maxAhead <= LEAD_MS / 20 + 1, `Twilio held ${maxAhead} frames`);
            console.log(`# marks: echo ${marks[0].at - lastHeardAt} ms after the audio ended; ` +
                `at most ${maxAhead} frames buffered at Twilio (lead ${LEAD_MS} ms)`);
            call.close();
        } finally {
            await cs2.stop();
            await pacedBot.close();
        }
    });

    test('a clear from the bot stops the caller\'s audio within the lead and every pending mark ' +
        'is echoed, as Twilio does', async () => {
        const audio = Buffer.alloc(8000 * 3, 0x55); // 3 s
        const marks = [];
        let clearAt = 0;
        const clearingBot = await startTwilioBot({
            echo: false,
            onStart: (ws, conn) => {
                for (let i = 0; i < 6; i++) {
                    ws.send(JSON.stringify({ event: 'media', streamSid: conn.streamSid,
                        media: { payload: audio.subarray(i * 4000, (i + 1) * 4000)
                            .toString('base64') } }));
                    ws.send(JSON.stringify({ event: 'mark', streamSid: conn.streamSid,
                        mark: { name: `part${i}` } }));
                }
                setTimeout(() => {
                    clearAt = Date.now();
                    ws.send(JSON.stringify({ event: 'clear', streamSid: conn.streamSid }));
                }, 1000);
            },
            onMessage: (ws, conn, msg) => {
                if (msg.event === 'mark') marks.push({ name: msg.mark.name, at: Date.now() });
            },
        });
        const cs2 = await startCallstream(['--bridge', `c=${clearingBot.url}`,
            '--bridge-lead-ms', String(LEAD_MS)]);
        try {
            const bystander = await startBystander(cs2.port);
            const call = newCall(cs2.port, { app: 'bridge', bridge: 'c' });
            await call.open();
            call.streamAudio(() => Buffer.alloc(160, 0xff));
            await waitFor(() => marks.length === 6, 5000, 'all six marks echoed');
            await sleep(300);
            assert.deepEqual(marks.map((m) => m.name), ['part0', 'part1', 'part2', 'part3',
                'part4', 'part5']);
            // part0 (500 ms) and part1 (1 s) played; the rest came back right after the clear.
            assert.ok(marks[1].at <= clearAt + 60, 'part1 played before the clear');
            for (const m of marks.slice(2)) {
                assert.ok(m.at - clearAt < 200, `${m.name} echoed ${m.at - clearAt} ms after clear`);
            }
            assert.equal(call.clears.length, 1, 'Twilio got one clear');
            // Audio after the clear: nothing new; what Twilio still held was within the lead.
            const afterClear = call.received.filter((r) => r.at > call.clears[0].at).length;
            assert.equal(afterClear, 0, 'no audio after the clear');
            assert.ok(call.clears[0].droppedFrames <= LEAD_MS / 20 + 1,
                `Twilio dropped ${call.clears[0].droppedFrames} frames at the clear`);
            const heardSeconds = call.clears[0].heard * 0.02;
            assert.ok(heardSeconds > 0.8 && heardSeconds < 1.2, `heard ${heardSeconds} s`);
            const m = await metrics(`http://127.0.0.1:${cs2.port}`);
            assert.ok(metric(m, 'callstream_bridge_clears_total') >= 1);
            await assertBystanderEchoes(bystander);
            call.close();
            bystander.close();
        } finally {
            await cs2.stop();
            await clearingBot.close();
        }
    });

    test('pre-warm: /twiml opens the call\'s upstream, the stream adopts it (figures printed)',
        async () => {
            const greeting = Buffer.alloc(1600, 0x55);
            // A bot that is slow to accept, like a remote provider: 300 ms before the upgrade.
            const slowBot = await startTwilioBot({ echo: false, greeting });
            const origEmit = slowBot.wss.handleUpgrade.bind(slowBot.wss);
            slowBot.wss.handleUpgrade = (req, socket, head, cb) =>
                setTimeout(() => origEmit(req, socket, head, cb), 300);
            const cs2 = await startCallstream(['--bridge', `g=${slowBot.url}`]);
            const base = `http://127.0.0.1:${cs2.port}`;
            try {
                const measure = async (prewarm) => {
                    const call = newCall(cs2.port, { app: 'bridge', bridge: 'g' });
                    if (prewarm) {
                        const res = await fetch(`${base}/twiml?app=bridge&bridge=g`, {
                            method: 'POST',
                            headers: { 'content-type': 'application/x-www-form-urlencoded' },
                            body: `CallSid=${call.callSid}&From=%2B15550001111&To=%2B15550002222`,
                        });
                        assert.equal(res.status, 200);
                        await sleep(600); // the phone rings
                    }
                    await call.open();
                    call.streamAudio(() => Buffer.alloc(160, 0xff));
                    await waitFor(() => call.received.length > 0, 5000, 'greeting');
                    const ms = call.received[0].at - call.startedAt;
                    call.close();
                    return ms;
                };
                const cold = await measure(false);
                const warm = await measure(true);
                const m = await metrics(base);
                assert.equal(metric(m, 'callstream_bridge_prewarm_opened_total'), 1);
                assert.equal(metric(m, 'callstream_bridge_prewarm_adopted_total'), 1);
                assert.equal(slowBot.connections.length, 2, 'one upstream per call');
                console.log(`# pre-warm: start -> first upstream audio at the caller: ` +
                    `${cold} ms without, ${warm} ms with (upstream accepts after 300 ms)`);
            } finally {
                await cs2.stop();
                await slowBot.close();
            }
        });
});

// Hostile upstreams: each is closed, counted by reason, and the call handled by the policy
// (hangup without credentials = the media stream is closed); the bystander keeps echoing.
describe('bridge: hostile upstreams', () => {
    const cases = [
        ['invalid_json', (ws) => ws.send('{"event":"media",')],
        ['binary_frame', (ws) => ws.send(Buffer.from([1, 2, 3]))],
        ['bad_base64', (ws, conn) => ws.send(JSON.stringify({ event: 'media',
            streamSid: conn.streamSid, media: { payload: '!!!notbase64' } }))],
        ['too_big', (ws, conn) => ws.send(JSON.stringify({ event: 'media',
            streamSid: conn.streamSid, media: { payload: Buffer.alloc(200000).toString('base64') } }))],
        ['too_fast', (ws, conn) => {
            const chunk = Buffer.alloc(8000, 0x55).toString('base64'); // 1 s per message
            for (let i = 0; i < 5; i++) {
                ws.send(JSON.stringify({ event: 'media', streamSid: conn.streamSid,
                    media: { payload: chunk } }));
            }
        }],
        ['bad_event', (ws) => ws.send(JSON.stringify({ event: 'media', streamSid: 'MZnope',
            media: { payload: '' } }))],
    ];
    for (const [label, misbehave] of cases) {
        test(`${label}: closed, counted, call hung up, other calls undisturbed`, async () => {
            const bot = await startTwilioBot({ echo: false, onStart: misbehave });
            const cs = await startCallstream(['--bridge', `h=${bot.url}`,
                '--bridge-max-buffered-ms', '3000', '--bridge-max-message-bytes', '65536']);
            try {
                const bystander = await startBystander(cs.port);
                const call = newCall(cs.port, { app: 'bridge', bridge: 'h' });
                await call.open();
                call.streamAudio(() => Buffer.alloc(160, 0xff));
                await waitFor(() => call.closed !== null, 5000, 'the bridged stream closed');
                const closedMetric = 'callstream_streams_closed_total{reason="upstream_failed"}';
                const m = await metricsOnce(cs.base, closedMetric);
                assert.equal(metric(m, `callstream_bridge_failures_total{reason="${label}"}`), 1,
                    m.split('\n').filter((l) => l.includes('failures')).join('\n'));
                assert.equal(metric(m, closedMetric), 1);
                await waitFor(() => bot.connections[0].ws.readyState >= 2, 3000, 'upstream closed');
                assert.match(cs.logs(), new RegExp(`bridge_failed .*reason=${label}`));
                await assertBystanderEchoes(bystander);
                bystander.close();
            } finally {
                await cs.stop();
                await bot.close();
            }
        });
    }

    test('never answering (TCP accepted, no handshake): connect_timeout, call hung up', async () => {
        const sockets = [];
        const silent = net.createServer((s) => sockets.push(s));
        await new Promise((r) => silent.listen(0, '127.0.0.1', r));
        const cs = await startCallstream(['--bridge', `s=ws://127.0.0.1:${silent.address().port}`,
            '--bridge-connect-timeout-ms', '500']);
        try {
            const bystander = await startBystander(cs.port);
            const call = newCall(cs.port, { app: 'bridge', bridge: 's' });
            await call.open();
            call.streamAudio(() => Buffer.alloc(160, 0xff));
            await waitFor(() => call.closed !== null, 5000, 'the bridged stream closed');
            const m = await metrics(cs.base);
            assert.equal(metric(m, 'callstream_bridge_failures_total{reason="connect_timeout"}'), 1);
            await assertBystanderEchoes(bystander);
            bystander.close();
        } finally {
            await cs.stop();
            for (const s of sockets) s.destroy();
            silent.close();
        }
    });

    test('a call cannot name an upstream that is not configured', async () => {
        const cs = await startCallstream(['--bridge', 'x=ws://127.0.0.1:9/']);
        try {
            const call = newCall(cs.port, { app: 'bridge', bridge: 'ws://evil.example/' });
            await call.open();
            await waitFor(() => call.closed !== null, 3000, 'refused');
            assert.equal(call.closed.code, 1008);
            assert.match(call.closed.reason, /unknown bridge/);
        } finally {
            await cs.stop();
        }
    });

    test('reconnect policy: a dropped upstream is reopened and the call goes on', async () => {
        let first = true;
        const flaky = await startTwilioBot({
            echo: true,
            onStart: (ws) => {
                if (first) {
                    first = false;
                    setTimeout(() => ws.terminate(), 200);
                }
            },
        });
        const cs = await startCallstream(['--bridge', `r=${flaky.url}`,
            '--bridge-on-failure', 'r=reconnect']);
        try {
            const call = newCall(cs.port, { app: 'bridge', bridge: 'r' });
            await call.open();
            call.streamAudio();
            await waitFor(() => flaky.connections.length === 2 &&
                flaky.connections[1].events.some((e) => e.event === 'media'), 5000, 'reconnected');
            const second = flaky.connections[1].events;
            assert.equal(second[0].event, 'connected');
            assert.equal(second[1].event, 'start');
            assert.equal(second[1].start.callSid, call.callSid);
            const before = call.received.length;
            await waitFor(() => call.received.length > before + 10, 3000, 'echo after reconnect');
            assert.equal(call.closed, null);
            const m = await metrics(cs.base);
            assert.equal(metric(m, 'callstream_bridge_reconnects_total'), 1);
            assert.equal(metric(m, 'callstream_bridge_failures_total{reason="upstream_lost"}'), 1);
            call.close();
        } finally {
            await cs.stop();
            await flaky.close();
        }
    });

    test('prompt policy: the fallback prompt plays, then the call is hung up', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'callstream-bridge-'));
        try {
            execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-b', '16',
                join(dir, 'sorry.wav'), 'synth', '0.4', 'sine', '440']);
        } catch (e) {
            throw new Error(`sox is needed (Debian package sox): ${e.message}`);
        }
        const rude = await startTwilioBot({ echo: false, onStart: (ws) => ws.send('not json') });
        const cs = await startCallstream(['--bridge', `p=${rude.url}`, '--prompts-dir', dir,
            '--bridge-on-failure', 'p=prompt:sorry.wav']);
        try {
            const call = newCall(cs.port, { app: 'bridge', bridge: 'p' });
            await call.open();
            call.streamAudio(() => Buffer.alloc(160, 0xff));
            await waitFor(() => call.closed !== null, 5000, 'hung up after the prompt');
            assert.equal(call.received.length, 20, '0.4 s of prompt = 20 frames');
            assert.ok(call.received.some((r) => r.payload.some((b) => b !== 0xff)),
                'the prompt is not silence');
            assert.ok(call.closed.at - call.received[0].at >= 350, 'closed after it played');
        } finally {
            await cs.stop();
            await rude.close();
        }
    });
});
