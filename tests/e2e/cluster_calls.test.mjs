// A two-instance cluster (redis-server, HAProxy, callstream cs1 and cs2 on loopback ports of
// their own) and what it shares about calls:
//  - a call whose bridge was pre-warmed at /twiml or /make-call is pinned to that instance
//    (/i/{instance}/media-stream, HAProxy's use-server) and its stream adopts the upstream;
//    signatures verify on the pinned URL; an instance serves a stream pinned elsewhere;
//  - parameters too long for TwiML, stored at /twiml or /make-call on one instance (Redis), reach
//    a stream on the other;
//  - status callbacks keep their SequenceNumber order across instances.
// Twilio's Calls API is the local HTTPS stand-in; the upstream is a bot written the way Twilio's
// Node samples are.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { metric, startCluster } from './js/loopback_cluster.mjs';
import { FakeTwilio, sid, taggedFrame, waitFor } from './js/fake_twilio.mjs';
import { startTwilioBot } from './js/twilio_bot.mjs';
import { ACCOUNT_ENV, ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, PUBLIC_URL, makeCall, standinArgs,
    startAccountStandin } from './twilio_support.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const WebSocket = require('ws');
const { getExpectedTwilioSignature } = require('twilio');
const WSS_BASE = PUBLIC_URL.replace('https://', 'wss://');
const auth = { authorization: `Bearer ${API_TOKEN}` };

// POSTs Twilio's voice webhook, signed as Twilio signs it, to `base` + /twiml?query.
async function twiml(base, query, form) {
    const path = `/twiml?${new URLSearchParams(query)}`;
    const res = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded',
            'X-Twilio-Signature': getExpectedTwilioSignature(AUTH_TOKEN, PUBLIC_URL + path, form) },
        body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: await res.text() };
}

async function statusCallback(base, form) {
    const res = await fetch(`${base}/status`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded',
            'X-Twilio-Signature': getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}/status`,
                form) },
        body: new URLSearchParams(form).toString(),
    });
    assert.equal(res.status, 204, await res.text());
}

async function getCall(base, callSid) {
    const res = await fetch(`${base}/calls/${callSid}`, { headers: auth });
    return { status: res.status, json: await res.json() };
}

function streamUrl(body) {
    const m = /<Stream url="([^"]+)"/.exec(body);
    assert.ok(m, body);
    return m[1];
}

function parametersOf(body) {
    const out = {};
    for (const m of body.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)) out[m[1]] = m[2];
    return out;
}

// A simulated Twilio stream to `port` + `path`, signed for PUBLIC_URL's wss twin of `path`.
function stream(port, path, callSid, params, n) {
    const call = new FakeTwilio(port, { callSid, streamSid: sid('MZ', n), params,
        accountSid: ACCOUNT_SID,
        headers: { 'X-Twilio-Signature': getExpectedTwilioSignature(AUTH_TOKEN, WSS_BASE + path,
            {}) } });
    call.url = `ws://127.0.0.1:${port}${path}`;
    return call;
}

async function echoes(call) {
    await call.open();
    call.streamAudio();
    await waitFor(() => call.received.length >= 10, 8000, 'audio echoed through the upstream');
    call.received.slice(0, 10).forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
}

async function stop(call) {
    call.stop();
    await waitFor(() => call.closed !== null, 3000, 'stream closed');
    assert.equal(call.closed.code, 1000, call.closed.reason);
}

describe('cluster: pinning, shared parameters, status order', () => {
    let standin;
    let bot;
    let cluster;
    let cs;
    before(async () => {
        standin = await startAccountStandin();
        bot = await startTwilioBot({ echo: true });
        cluster = await startCluster({ names: ['cs1', 'cs2'],
            args: [...standinArgs(standin), '--bridge', `bot=${bot.url}`], env: ACCOUNT_ENV });
        cs = cluster.instances;
    });
    after(async () => {
        const codes = cluster ? await cluster.stop() : {};
        await bot?.close();
        await standin?.close();
        for (const [name, code] of Object.entries(codes)) assert.equal(code, 0, name);
    });

    test('a bridge pre-warmed at /twiml pins the stream to its instance through HAProxy',
        async () => {
            let n = 0x10;
            for (const name of ['cs1', 'cs2', 'cs2', 'cs1']) {
                const callSid = sid('CA', ++n);
                const form = { CallSid: callSid, AccountSid: ACCOUNT_SID, From: '+15017122661',
                    To: '+14155551212' };
                const opened = bot.connections.length;
                const adopted = await metric(cs[name].base, 'callstream_bridge_prewarm_adopted_total');
                // The webhook reaches `name` (as HAProxy's leastconn might have chosen it).
                const res = await twiml(cs[name].base, { app: 'bridge', bridge: 'bot' }, form);
                assert.equal(res.status, 200, res.body);
                const path = `/i/${name}/media-stream`;
                assert.equal(streamUrl(res.body), WSS_BASE + path);
                await waitFor(() => bot.connections.length === opened + 1, 3000,
                    'the upstream opened while the phone rings');
                // Twilio connects to the pinned URL through HAProxy.
                const call = stream(cluster.proxyPort, path, callSid, parametersOf(res.body), n);
                await echoes(call);
                assert.equal(bot.connections.length, opened + 1, 'no second upstream');
                const start = bot.connections[opened].events.find((e) => e.event === 'start');
                assert.equal(start?.start.callSid, callSid);
                assert.equal(await metric(cs[name].base, 'callstream_bridge_prewarm_adopted_total'),
                    adopted + 1, `${name} adopted the pre-warmed upstream`);
                const shown = await getCall(cluster.proxy, callSid);
                assert.equal(shown.json.instance, name, JSON.stringify(shown.json));
                await stop(call);
            }
        });

    test('the pinned URL is what Twilio signs: a signature for /media-stream is refused there',
        async () => {
            const ws = new WebSocket(`ws://127.0.0.1:${cluster.proxyPort}/i/cs1/media-stream`, {
                headers: { 'X-Twilio-Signature':
                    getExpectedTwilioSignature(AUTH_TOKEN, `${WSS_BASE}/media-stream`, {}) } });
            const status = await new Promise((resolve) => {
                ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
                ws.on('open', () => resolve('open'));
                ws.on('error', () => {});
            });
            assert.equal(status, 403);
        });

    test('/make-call opens the upstream as soon as Twilio answers and pins the stream there',
        async () => {
            const opened = bot.connections.length;
            const { status, json } = await makeCall(cluster.proxy, { to: '+14155551212',
                from: '+15017122661', parameters: { app: 'bridge', bridge: 'bot' } });
            assert.equal(status, 201, JSON.stringify(json));
            const sent = standin.requests.at(-1);
            assert.deepEqual(standin.violations, []);
            const body = sent.form.find(([k]) => k === 'Twiml')[1];
            const m = /\/i\/(cs[12])\/media-stream"/.exec(body);
            assert.ok(m, body);
            const name = m[1];
            // Before any socket: the upstream is open, keyed by the SID Twilio returned.
            await waitFor(() => bot.connections.length === opened + 1, 3000, 'pre-warm');
            assert.equal(await metric(cs[name].base, 'callstream_bridge_prewarm_opened_total') >= 1,
                true);
            const adopted = await metric(cs[name].base, 'callstream_bridge_prewarm_adopted_total');
            const call = stream(cluster.proxyPort, `/i/${name}/media-stream`, json.call_sid,
                parametersOf(body), 0x30);
            await echoes(call);
            assert.equal(bot.connections.length, opened + 1, 'no second upstream');
            assert.equal(await metric(cs[name].base, 'callstream_bridge_prewarm_adopted_total'),
                adopted + 1);
            await stop(call);
        });

    test('parameters stored at /twiml on cs1 reach a stream on cs2 (Redis), once', async () => {
        const callSid = sid('CA', 0x40);
        const note = 'n&<"\'é'.repeat(120); // 720 characters: over Twilio's 500 per parameter
        const res = await twiml(cs.cs1.base, { app: 'echo', note },
            { CallSid: callSid, AccountSid: ACCOUNT_SID, From: '+15017122661', To: '+1415' });
        assert.equal(res.status, 200, res.body);
        assert.equal(streamUrl(res.body), `${WSS_BASE}/media-stream`, 'echo is not pinned');
        const params = parametersOf(res.body);
        assert.deepEqual(Object.keys(params), ['callstream_parameters_id']);
        assert.equal(cluster.redisCli('EXISTS', `cs:params:${params.callstream_parameters_id}`),
            '1');
        const call = stream(cs.cs2.port, '/media-stream', callSid, params, 0x40);
        await call.open();
        call.streamAudio();
        await waitFor(() => call.received.length >= 5, 5000, 'echo on cs2');
        const shown = await getCall(cs.cs2.base, callSid);
        assert.equal(shown.json.instance, 'cs2');
        const p = shown.json.streams[0].parameters;
        assert.equal(p.note, note);
        assert.equal(p.app, 'echo');
        assert.equal(p.CallSid, callSid);
        assert.equal(p.callstream_parameters_id, undefined);
        assert.equal(cluster.redisCli('EXISTS', `cs:params:${params.callstream_parameters_id}`),
            '0', 'taken');
        await stop(call);
        // A second socket with the same id: the parameters were taken already.
        const again = stream(cs.cs1.port, '/media-stream', callSid, params, 0x41);
        await again.open();
        await waitFor(() => again.closed !== null, 3000, 'refused');
        assert.equal(again.closed.code, 1008);
        assert.match(again.closed.reason, /unknown callstream_parameters_id/);
    });

    test('/make-call parameters kept on cs1 reach the upstream of a stream that lands on cs2',
        async () => {
            const parameters = { app: 'bridge', bridge: 'bot' };
            for (let i = 0; i < 12; i++) parameters[`p${i}`] = `${i}:` + 'x&<"é'.repeat(80);
            const { status, json } = await makeCall(cs.cs1.base, { to: '+14155551212',
                from: '+15017122661', parameters });
            assert.equal(status, 201, JSON.stringify(json));
            const body = standin.requests.at(-1).form.find(([k]) => k === 'Twiml')[1];
            assert.ok(body.length <= 4000, `${body.length}`);
            assert.equal(streamUrl(body), `${WSS_BASE}/i/cs1/media-stream`);
            // cs1 is "down" for this stream: it lands on cs2 on the path pinned to cs1, which
            // cs2 serves; cs2 opens its own upstream with every stored parameter.
            const call = stream(cs.cs2.port, '/i/cs1/media-stream', json.call_sid,
                parametersOf(body), 0x50);
            await echoes(call);
            const conn = bot.connections.find((c) => c.events.find((e) => e.event === 'start' &&
                e.start.callSid === json.call_sid));
            assert.ok(conn, 'the upstream got start');
            const start = conn.events.find((e) => e.event === 'start');
            assert.deepEqual(start.start.customParameters, parameters);
            await stop(call);
        });

    test('status callbacks keep their SequenceNumber order across instances', async () => {
        const callSid = sid('CA', 0x60);
        const cb = (seq, callStatus) => ({ CallSid: callSid, AccountSid: ACCOUNT_SID,
            CallStatus: callStatus, SequenceNumber: String(seq), Direction: 'outbound-api' });
        await statusCallback(cs.cs1.base, cb(2, 'in-progress'));
        await statusCallback(cs.cs2.base, cb(1, 'ringing')); // late, on the other instance
        assert.equal((await getCall(cs.cs2.base, callSid)).json.status, 'in-progress');
        await statusCallback(cs.cs2.base, cb(3, 'completed'));
        await statusCallback(cs.cs1.base, cb(0, 'initiated')); // very late, on cs1
        assert.equal((await getCall(cs.cs1.base, callSid)).json.status, 'completed');
        assert.equal((await getCall(cs.cs2.base, callSid)).json.status, 'completed');
    });

    // Last: it stops Redis for good.
    test('Redis gone: a webhook that must store parameters answers 503, a stored id closes 1008,'
        + ' inline calls go on', async () => {
        const callSid = sid('CA', 0x70);
        const form = { CallSid: callSid, AccountSid: ACCOUNT_SID, From: '+15017122661', To: '+1415' };
        const stored = await twiml(cs.cs1.base, { app: 'echo', note: 'x'.repeat(600) }, form);
        const params = parametersOf(stored.body);
        await cluster.stopRedis();
        await waitFor(() => /redis_lost/.test(cs.cs1.logs()) && /redis_lost/.test(cs.cs2.logs()),
            3000, 'both instances to see Redis gone');
        const refused = await twiml(cs.cs1.base, { app: 'echo', note: 'y'.repeat(600) }, form);
        assert.equal(refused.status, 503, refused.body);
        assert.match(refused.body, /parameter store is unavailable/);
        const call = stream(cs.cs2.port, '/media-stream', callSid, params, 0x70);
        await call.open();
        await waitFor(() => call.closed !== null, 3000, 'refused');
        assert.equal(call.closed.code, 1008);
        assert.match(call.closed.reason, /store is unreachable/);
        // Parameters that fit inline need no store: the call runs.
        const inline = await twiml(cs.cs1.base, { app: 'echo' }, { ...form, CallSid: sid('CA', 0x71) });
        assert.equal(inline.status, 200, inline.body);
        const ok = stream(cs.cs2.port, '/media-stream', sid('CA', 0x71), parametersOf(inline.body),
            0x71);
        await ok.open();
        ok.streamAudio();
        await waitFor(() => ok.received.length >= 5, 5000, 'echo without Redis');
        await stop(ok);
    });
});
