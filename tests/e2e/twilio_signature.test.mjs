// X-Twilio-Signature on the routes Twilio calls, checked against the official twilio npm
// package: signatures it makes are accepted, tampered ones get 403.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { API_TOKEN, AUTH_TOKEN, PUBLIC_URL, runStream, startCallstream } from './twilio_support.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const twilio = require('twilio');
const WebSocket = require('ws');

const CALL_SID = 'CA' + '5'.repeat(32);
const voiceParams = {
    AccountSid: 'AC' + '0123456789abcdef'.repeat(2), CallSid: CALL_SID, CallStatus: 'ringing',
    Direction: 'inbound', From: '+14155551212', To: '+15017122661', Caller: '+14155551212',
};

function sign(url, params) {
    return twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params);
}

async function postForm(base, path, params, signature) {
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    if (signature !== undefined) {
        headers['x-twilio-signature'] = signature;
    }
    return fetch(base + path, { method: 'POST', headers, body: new URLSearchParams(params) });
}

function upgrade(base, signature) {
    return new Promise((resolve) => {
        const headers = signature === undefined ? {} : { 'X-Twilio-Signature': signature };
        const ws = new WebSocket(base.replace('http://', 'ws://') + '/media-stream', { headers });
        ws.on('open', () => {
            ws.close();
            resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => {
            resolve(res.statusCode);
            ws.terminate();
        });
        ws.on('error', () => resolve(0));
    });
}

describe('signature checks with an auth token configured', () => {
    let cs;
    before(async () => {
        cs = await startCallstream(['--public-url', PUBLIC_URL],
            { TWILIO_AUTH_TOKEN: AUTH_TOKEN, CALLSTREAM_API_TOKEN: API_TOKEN });
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
    });

    test('/twiml accepts twilio-signed form webhooks and refuses tampered ones', async () => {
        const path = '/twiml?app=echo';
        const good = sign(PUBLIC_URL + path, voiceParams);
        let res = await postForm(cs.base, path, voiceParams, good);
        assert.equal(res.status, 200);
        const xml = await res.text();
        assert.ok(xml.includes('<Stream url="wss://callstream.example.test/media-stream">'), xml);
        assert.ok(xml.includes('<Parameter name="app" value="echo"/>'), xml);

        // Twilio is inconsistent about ports: a signature over the :443 form is accepted too.
        const withPort = sign(PUBLIC_URL + ':443' + path, voiceParams);
        assert.equal((await postForm(cs.base, path, voiceParams, withPort)).status, 200);

        const tamperedParams = { ...voiceParams, From: '+14155550000' };
        assert.equal((await postForm(cs.base, path, tamperedParams, good)).status, 403);
        assert.equal((await postForm(cs.base, '/twiml?app=record', voiceParams, good)).status, 403);
        assert.equal((await postForm(cs.base, path, voiceParams)).status, 403);
        assert.equal((await postForm(cs.base, path, voiceParams, '')).status, 403);
        const flipped = (good[0] === 'A' ? 'B' : 'A') + good.slice(1);
        assert.equal((await postForm(cs.base, path, voiceParams, flipped)).status, 403);
        const otherHost = sign('https://attacker.example' + path, voiceParams);
        assert.equal((await postForm(cs.base, path, voiceParams, otherHost)).status, 403);
        const otherToken = twilio.getExpectedTwilioSignature('not-the-token', PUBLIC_URL + path, voiceParams);
        assert.equal((await postForm(cs.base, path, voiceParams, otherToken)).status, 403);

        // GET webhooks sign the URL alone.
        res = await fetch(cs.base + path, { headers: { 'x-twilio-signature': sign(PUBLIC_URL + path, {}) } });
        assert.equal(res.status, 200);
        res = await fetch(cs.base + path);
        assert.equal(res.status, 403);
    });

    test('/status accepts signed callbacks, including repeated keys, and refuses tampered ones', async () => {
        const params = { ...voiceParams, CallStatus: 'in-progress', SequenceNumber: '2' };
        assert.equal((await postForm(cs.base, '/status', params, sign(PUBLIC_URL + '/status', params))).status, 204);
        assert.equal((await postForm(cs.base, '/status', { ...params, CallStatus: 'completed' },
            sign(PUBLIC_URL + '/status', params))).status, 403);

        // A repeated key: twilio-node signs each distinct value, sorted.
        const body = new URLSearchParams(params);
        body.append('Extra', 'b');
        body.append('Extra', 'a');
        const signature = sign(PUBLIC_URL + '/status', { ...params, Extra: ['b', 'a'] });
        const res = await fetch(cs.base + '/status', {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
            body,
        });
        assert.equal(res.status, 204);
    });

    test('the bodySHA256 form: signed URL and matching body hash', async () => {
        const body = JSON.stringify({ CallSid: CALL_SID, Caller: '+12349013030' });
        const hash = createHash('sha256').update(body).digest('hex');
        const path = `/twiml?bodySHA256=${hash}`;
        const signature = sign(PUBLIC_URL + path, null);
        assert.ok(twilio.validateRequestWithBody(AUTH_TOKEN, signature, PUBLIC_URL + path, body));
        const post = (b, s) => fetch(cs.base + path, {
            method: 'POST', headers: { 'content-type': 'application/json', 'x-twilio-signature': s }, body: b,
        });
        assert.equal((await post(body, signature)).status, 200);
        assert.equal((await post(body + ' ', signature)).status, 403); // body does not match the hash
        assert.equal((await post(body, sign(PUBLIC_URL + '/twiml', {}))).status, 403);
    });

    test('the /media-stream upgrade needs the signature of its wss:// URL', async () => {
        const wss = PUBLIC_URL.replace('https://', 'wss://') + '/media-stream';
        assert.equal(await upgrade(cs.base, sign(wss, {})), 101);
        // Some stacks present the https:// form; it is accepted too.
        assert.equal(await upgrade(cs.base, sign(PUBLIC_URL + '/media-stream', {})), 101);
        assert.equal(await upgrade(cs.base), 403);
        assert.equal(await upgrade(cs.base, sign(wss + 'x', {})), 403);
        assert.equal(await upgrade(cs.base, twilio.getExpectedTwilioSignature('wrong', wss, {})), 403);
        assert.ok(!cs.logs().includes(AUTH_TOKEN), 'the auth token appeared in the log');
        assert.ok(!cs.logs().includes(sign(wss, {})), 'a signature appeared in the log');
        assert.match(cs.logs(), /twilio_signature_rejected/);
    });
});

describe('calls seen through webhooks and streams', () => {
    test('an inbound call from /twiml and its stream show up in GET /calls/{sid}', async () => {
        const cs = await startCallstream(['--public-url', PUBLIC_URL],
            { TWILIO_AUTH_TOKEN: AUTH_TOKEN, CALLSTREAM_API_TOKEN: API_TOKEN });
        try {
            const callSid = 'CA' + '7'.repeat(32);
            const params = { ...voiceParams, CallSid: callSid };
            const res = await postForm(cs.base, '/twiml', params, sign(PUBLIC_URL + '/twiml', params));
            assert.equal(res.status, 200);
            const streamSid = 'MZ' + '8'.repeat(32);
            await runStream(cs.base, {
                signature: sign(PUBLIC_URL.replace('https://', 'wss://') + '/media-stream', {}),
                callSid, streamSid, customParameters: { app: 'echo' },
            });
            // The session reports its end when it finishes, which may trail the close frame.
            let call;
            for (let i = 0; i < 100; i++) {
                call = await (await fetch(`${cs.base}/calls/${callSid}`,
                    { headers: { authorization: `Bearer ${API_TOKEN}` } })).json();
                if (call.streams?.[0]?.stopped) {
                    break;
                }
                await new Promise((r) => setTimeout(r, 20));
            }
            assert.equal(call.sid, callSid);
            assert.equal(call.from, '+14155551212');
            assert.equal(call.direction, 'inbound');
            assert.equal(call.streams.length, 1);
            assert.equal(call.streams[0].stream_sid, streamSid);
            assert.equal(call.streams[0].processors, 'echo');
            assert.notEqual(call.streams[0].stopped, null);
            assert.deepEqual(call.processors, ['echo']);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
        }
    });
});

describe('signature checks without --public-url', () => {
    test('the URL comes from the Host header; the upgrade is checked as wss:// even over plain ws', async () => {
        const cs = await startCallstream([], { TWILIO_AUTH_TOKEN: AUTH_TOKEN });
        try {
            const host = `127.0.0.1:${cs.port}`;
            assert.equal(await upgrade(cs.base, sign(`wss://${host}/media-stream`, {})), 101);
            assert.equal(await upgrade(cs.base, sign(`wss://other.example/media-stream`, {})), 403);
            const path = '/twiml?app=echo';
            assert.equal((await postForm(cs.base, path, voiceParams, sign(`http://${host}${path}`, voiceParams))).status, 200);
            assert.equal((await postForm(cs.base, path, voiceParams, sign(`${PUBLIC_URL}${path}`, voiceParams))).status, 403);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
        }
    });
});

describe('signature checks switched off', () => {
    test('--no-verify-signatures accepts unsigned webhooks and upgrades', async () => {
        const cs = await startCallstream(['--public-url', PUBLIC_URL, '--no-verify-signatures'],
            { TWILIO_AUTH_TOKEN: AUTH_TOKEN });
        try {
            assert.equal((await postForm(cs.base, '/twiml', voiceParams)).status, 200);
            assert.equal((await postForm(cs.base, '/status', voiceParams)).status, 204);
            assert.equal(await upgrade(cs.base), 101);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
        }
    });

    test('without an auth token nothing can be verified and nothing is refused', async () => {
        const cs = await startCallstream(['--public-url', PUBLIC_URL], {});
        try {
            assert.equal((await postForm(cs.base, '/twiml', voiceParams, 'bogus')).status, 200);
            assert.match(cs.logs(), /twilio_signatures_off/);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
        }
    });
});
