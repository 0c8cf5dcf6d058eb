// /make-call, /calls/{sid}/hangup, /status and /calls against the real binary and a local HTTPS
// stand-in for Twilio's Calls API (TLS verified with a CA made for the test).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, PUBLIC_URL, makeCall, runStream, startCallstream } from './twilio_support.mjs';
import { makeCertificates, startStandin } from './twilio_standin.mjs';

const certDir = makeCertificates();

function twilioEnv(extra = {}) {
    return {
        TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        CALLSTREAM_API_TOKEN: API_TOKEN, TWILIO_FROM: 'callstream', ...extra,
    };
}

function formValues(request, name) {
    return request.form.filter(([k]) => k === name).map(([, v]) => v);
}

describe('make-call against the Twilio stand-in', () => {
    let standin;
    let cs;
    before(async () => {
        standin = await startStandin({ accountSid: ACCOUNT_SID, username: ACCOUNT_SID, password: AUTH_TOKEN, dir: certDir });
        cs = await startCallstream(['--public-url', PUBLIC_URL, '--twilio-api-base', standin.base,
            '--twilio-ca-file', standin.caFile, '--twilio-timeout-ms', '1500'], twilioEnv());
    });
    after(async () => {
        assert.equal(await cs.stop(), 0, cs.logs());
        await standin?.close();
    });

    test('a SIP call is placed with inline TwiML, status callback and Basic auth', async () => {
        standin.mode = 'ok';
        const before = standin.requests.length;
        const { status, json } = await makeCall(cs.base, {
            to: 'sip:jong-un@sip.linphone.org', parameters: { app: 'echo', note: 'a&b <c>' },
        });
        assert.equal(status, 201, JSON.stringify(json));
        assert.match(json.call_sid, /^CA[0-9a-f]{32}$/);
        assert.equal(json.status, 'queued');
        assert.equal(standin.requests.length, before + 1);
        const req = standin.requests.at(-1);
        assert.deepEqual(standin.violations, []);
        assert.equal(req.path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`);
        assert.deepEqual(formValues(req, 'To'), ['sip:jong-un@sip.linphone.org']);
        assert.deepEqual(formValues(req, 'From'), ['callstream']);
        const twiml = formValues(req, 'Twiml')[0];
        assert.ok(twiml.includes(`<Connect><Stream url="wss://callstream.example.test/media-stream">`), twiml);
        assert.ok(twiml.includes('<Parameter name="app" value="echo"/>'), twiml);
        assert.ok(twiml.includes('<Parameter name="note" value="a&amp;b &lt;c&gt;"/>'), twiml);
        assert.deepEqual(formValues(req, 'StatusCallback'), [`${PUBLIC_URL}/status`]);
        assert.deepEqual(formValues(req, 'StatusCallbackEvent'), ['initiated', 'ringing', 'answered', 'completed']);
        // The call is listed, newest first.
        const list = await (await fetch(`${cs.base}/calls`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).json();
        assert.equal(list.calls[0].sid, json.call_sid);
        assert.equal(list.calls[0].to, 'sip:jong-un@sip.linphone.org');
        assert.equal(list.calls[0].status, 'queued');
    });

    test('every optional field reaches Twilio encoded as Twilio expects', async () => {
        standin.mode = 'ok';
        const { status, json } = await makeCall(cs.base, {
            to: '+14155551212', from: '+15017122661', byoc: 'BY' + 'ab'.repeat(16), timeout: 25,
            record: true, machine_detection: 'Enable', status_callback_events: ['answered', 'completed'],
        });
        assert.equal(status, 201, JSON.stringify(json));
        const req = standin.requests.at(-1);
        assert.ok(req.body.includes('From=%2B15017122661'), req.body);
        assert.ok(req.body.includes('StatusCallbackEvent=answered&StatusCallbackEvent=completed'), req.body);
        assert.deepEqual(formValues(req, 'Timeout'), ['25']);
        assert.deepEqual(formValues(req, 'Record'), ['true']);
        assert.deepEqual(formValues(req, 'MachineDetection'), ['Enable']);
        assert.deepEqual(formValues(req, 'AsyncAmd'), ['true']);
        assert.deepEqual(formValues(req, 'Byoc'), ['BY' + 'ab'.repeat(16)]);

        const sip = await makeCall(cs.base, {
            to: 'sip:alice@example.com;transport=tls?X-Team=blue&X-Id=42',
            sip_auth_username: 'alice', sip_auth_password: 'p&ss word+',
        });
        assert.equal(sip.status, 201, JSON.stringify(sip.json));
        const sreq = standin.requests.at(-1);
        assert.ok(sreq.body.includes('X-Team%3Dblue%26X-Id%3D42'), sreq.body);
        assert.deepEqual(formValues(sreq, 'To'), ['sip:alice@example.com;transport=tls?X-Team=blue&X-Id=42']);
        assert.deepEqual(formValues(sreq, 'SipAuthPassword'), ['p&ss word+']);
        assert.deepEqual(standin.violations, []);
    });

    test('every new field reaches Twilio under its Twilio name', async () => {
        standin.mode = 'ok';
        let r = await makeCall(cs.base, {
            to: '+14155551212', from: '+15017122661', send_digits: 'ww1234#', time_limit: 3600,
            caller_id: '+15017122662', call_reason: 'Your order is ready', record: true,
            recording_channels: 'dual', recording_track: 'outbound', trim: 'do-not-trim',
            recording_status_callback: 'https://rec.example.com/done',
            recording_status_callback_event: ['in-progress', 'completed', 'absent'],
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        let req = standin.requests.at(-1);
        for (const [name, values] of [
            ['SendDigits', ['ww1234#']], ['TimeLimit', ['3600']], ['CallerId', ['+15017122662']],
            ['CallReason', ['Your order is ready']], ['Record', ['true']],
            ['RecordingChannels', ['dual']], ['RecordingTrack', ['outbound']], ['Trim', ['do-not-trim']],
            ['RecordingStatusCallback', ['https://rec.example.com/done']],
            ['RecordingStatusCallbackEvent', ['in-progress', 'completed', 'absent']],
        ]) {
            assert.deepEqual(formValues(req, name), values, name);
        }
        assert.ok(req.body.includes('SendDigits=ww1234%23'), req.body);

        r = await makeCall(cs.base, {
            to: '+14155551212', from: '+15017122661', machine_detection: 'DetectMessageEnd',
            machine_detection_timeout: 45, machine_detection_speech_threshold: 3000,
            machine_detection_speech_end_threshold: 800, machine_detection_silence_timeout: 6000,
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        req = standin.requests.at(-1);
        for (const [name, value] of [
            ['MachineDetectionTimeout', '45'], ['MachineDetectionSpeechThreshold', '3000'],
            ['MachineDetectionSpeechEndThreshold', '800'], ['MachineDetectionSilenceTimeout', '6000'],
        ]) {
            assert.deepEqual(formValues(req, name), [value], name);
        }

        r = await makeCall(cs.base, { to: 'client:agent_7', from: 'callstream', caller_id: 'client:bot' });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        req = standin.requests.at(-1);
        assert.deepEqual(formValues(req, 'To'), ['client:agent_7']);
        assert.deepEqual(formValues(req, 'CallerId'), ['client:bot']);

        const sipTo = 'sip:alice@example.com;transport=tls;region=ie1?User-to-User=56a390f3%3Bencoding%3Dhex&X-Id=9';
        r = await makeCall(cs.base, { to: sipTo });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        assert.deepEqual(formValues(standin.requests.at(-1), 'To'), [sipTo]);
        assert.deepEqual(standin.violations, []);
    });

    test('20 parameters of 400 characters: kept here, the TwiML carries an id, the stream gets all 20', async () => {
        standin.mode = 'ok';
        const parameters = {};
        for (let i = 0; i < 20; i++) {
            parameters[`p${i}`] = `${i}:` + 'v&<"\'\t'.repeat(66).slice(0, 398 - String(i).length);
        }
        parameters.app = 'echo';
        const { status, json } = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661', parameters });
        assert.equal(status, 201, JSON.stringify(json));
        const req = standin.requests.at(-1);
        assert.deepEqual(formValues(req, 'Url'), []);
        const twiml = formValues(req, 'Twiml')[0];
        assert.ok(twiml.length <= 4000, `${twiml.length} characters`);
        for (const [name, value] of req.form) {
            assert.ok(value.length <= 4000, `${name} is ${value.length} characters`);
        }
        assert.deepEqual(standin.violations, []);
        // What Twilio would put in start.customParameters: the TwiML's <Parameter>s.
        const custom = {};
        for (const m of twiml.matchAll(/<Parameter name="([^"]*)" value="([^"]*)"\/>/g)) {
            custom[m[1]] = m[2];
        }
        assert.deepEqual(Object.keys(custom), ['callstream_parameters_id']);
        assert.match(custom.callstream_parameters_id, /^[0-9a-f]{32}$/);

        const { getExpectedTwilioSignature } = createRequire(process.env.NODE_PATH + '/')('twilio');
        const code = await runStream(cs.base, {
            signature: getExpectedTwilioSignature(AUTH_TOKEN, 'wss://callstream.example.test/media-stream', {}),
            callSid: json.call_sid, streamSid: 'MZ' + '7'.repeat(32), customParameters: custom,
        });
        assert.equal(code, 1000);
        const call = await (await fetch(`${cs.base}/calls/${json.call_sid}`,
            { headers: { authorization: `Bearer ${API_TOKEN}` } })).json();
        assert.equal(call.streams.length, 1, JSON.stringify(call));
        assert.deepEqual(call.streams[0].parameters, parameters);
        assert.equal(call.streams[0].processors, 'echo');
        // The id is taken once: a second stream bringing it learns nothing and is refused.
        const again = await runStream(cs.base, {
            signature: getExpectedTwilioSignature(AUTH_TOKEN, 'wss://callstream.example.test/media-stream', {}),
            callSid: json.call_sid, streamSid: 'MZ' + '8'.repeat(32), customParameters: custom,
        });
        assert.equal(again, 1008);
    });

    test('keep-alive: consecutive calls reuse one TLS connection', async () => {
        standin.mode = 'ok';
        const connectionsBefore = standin.connections;
        for (let i = 0; i < 3; i++) {
            const { status } = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
            assert.equal(status, 201);
        }
        assert.ok(standin.connections - connectionsBefore <= 1,
            `opened ${standin.connections - connectionsBefore} connections for 3 calls`);
    });

    test('a keep-alive connection the server closed while idle is replaced transparently', async () => {
        standin.mode = 'ok';
        const first = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(first.status, 201);
        const connectionsBefore = standin.connections;
        standin.dropIdleConnections();
        await new Promise((r) => setTimeout(r, 100)); // let the close reach callstream's socket
        const second = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(second.status, 201, JSON.stringify(second.json));
        assert.equal(standin.connections, connectionsBefore + 1);
        assert.deepEqual(standin.violations, []);
    });

    test('Twilio errors map to 502 with code, message and more_info', async () => {
        standin.mode = 'auth';
        let r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(r.status, 502);
        assert.equal(r.json.code, 20003);
        assert.equal(r.json.message, 'Authenticate');
        assert.equal(r.json.more_info, 'https://www.twilio.com/docs/errors/20003');
        assert.equal(r.json.twilio_status, 401);

        standin.mode = 'invalid_to';
        r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(r.status, 502);
        assert.equal(r.json.code, 21211);
        assert.match(r.json.message, /is not a valid phone number/);
        assert.equal(r.json.more_info, 'https://www.twilio.com/docs/errors/21211');

        standin.mode = 'server_error';
        r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(r.status, 502);
        assert.equal(r.json.twilio_status, 500);
        assert.ok(r.json.message.length > 0);
        standin.mode = 'ok';
    });

    test('a Twilio slower than the timeout gives 504', async () => {
        standin.mode = 'slow';
        standin.slowMs = 4000;
        const started = Date.now();
        const r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        standin.mode = 'ok';
        assert.equal(r.status, 504, JSON.stringify(r.json));
        assert.match(r.json.error, /did not answer in time/);
        assert.ok(Date.now() - started < 3900, 'answered before Twilio did');
    });

    test('hangup posts Status=completed for the call', async () => {
        standin.mode = 'ok';
        const placed = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        const sid = placed.json.call_sid;
        const res = await fetch(`${cs.base}/calls/${sid}/hangup`, {
            method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` },
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { call_sid: sid, status: 'completed' });
        const req = standin.requests.at(-1);
        assert.equal(req.path, `/2010-04-01/Accounts/${ACCOUNT_SID}/Calls/${sid}.json`);
        assert.deepEqual(req.form, [['Status', 'completed']]);

        const bad = await fetch(`${cs.base}/calls/CA123/hangup`, {
            method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` },
        });
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).field, 'sid');
        const unauth = await fetch(`${cs.base}/calls/${sid}/hangup`, { method: 'POST' });
        assert.equal(unauth.status, 401);
    });

    test('bad input is refused with 400 naming the field, before Twilio is called', async () => {
        const cases = [
            ['not json', ''],
            ['[]', ''],
            ['{}', 'to'],
            ['{"to":"+1 415 555 1212"}', 'to'],
            ['{"to":"4155551212"}', 'to'],
            ['{"to":"+14155551212","from":"callstream"}', 'from'],
            ['{"to":"sip:nobody"}', 'to'],
            ['{"to":"sip:a@b.example;transport=sctp"}', 'to'],
            ['{"to":"sip:a@b.example?Via=evil"}', 'to'],
            [`{"to":"sip:${'a'.repeat(250)}@b.example"}`, 'to'],
            ['{"to":"sip:a@b.example","from":"has space"}', 'from'],
            ['{"to":"+14155551212","tO":"x"}', 'tO'],
            ['{"to":"+14155551212","timeout":0}', 'timeout'],
            ['{"to":"+14155551212","timeout":601}', 'timeout'],
            ['{"to":"+14155551212","timeout":2.5}', 'timeout'],
            ['{"to":"+14155551212","timeout":"30"}', 'timeout'],
            ['{"to":"+14155551212","record":"yes"}', 'record'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Yes"}', 'machine_detection'],
            ['{"to":"+14155551212","byoc":"BY12"}', 'byoc'],
            [`{"to":"sip:a@b.example","byoc":"BY${'0'.repeat(32)}"}`, 'byoc'],
            ['{"to":"sip:a@b.example","sip_auth_username":"u"}', 'sip_auth_password'],
            ['{"to":"+14155551212","from":"+15017122661","sip_auth_username":"u","sip_auth_password":"p"}', 'sip_auth_username'],
            ['{"to":"+14155551212","parameters":{"app":5}}', 'parameters'],
            [`{"to":"+14155551212","parameters":{"k":"${'v'.repeat(500)}"}}`, 'parameters'],
            ['{"to":"+14155551212","status_callback_events":["answered","hungup"]}', 'status_callback_events'],
            ['{"to":"+14155551212","from":"+15017122661","status_callback_events":[]}', 'status_callback_events'],
            ['{"to":"+14155551212","from":"+15017122661","send_digits":"1234x"}', 'send_digits'],
            [`{"to":"+14155551212","from":"+15017122661","send_digits":"${'1'.repeat(33)}"}`, 'send_digits'],
            ['{"to":"+14155551212","from":"+15017122661","send_digits":"1","machine_detection":"Enable"}', 'send_digits'],
            ['{"to":"+14155551212","from":"+15017122661","time_limit":0}', 'time_limit'],
            ['{"to":"+14155551212","from":"+15017122661","time_limit":86401}', 'time_limit'],
            ['{"to":"+14155551212","from":"+15017122661","caller_id":"someone"}', 'caller_id'],
            [`{"to":"+14155551212","from":"+15017122661","call_reason":"${'r'.repeat(256)}"}`, 'call_reason'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"recording_channels":"quad"}', 'recording_channels'],
            ['{"to":"+14155551212","from":"+15017122661","recording_channels":"dual"}', 'recording_channels'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"recording_track":"sideways"}', 'recording_track'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"trim":"trim"}', 'trim'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"recording_status_callback":"https://bad_host.example/x"}', 'recording_status_callback'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"recording_status_callback_event":["stopped"]}', 'recording_status_callback_event'],
            ['{"to":"+14155551212","from":"+15017122661","record":true,"recording_status_callback_event":[]}', 'recording_status_callback_event'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_timeout":2}', 'machine_detection_timeout'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_timeout":60}', 'machine_detection_timeout'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_speech_threshold":999}', 'machine_detection_speech_threshold'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_speech_threshold":6001}', 'machine_detection_speech_threshold'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_speech_end_threshold":499}', 'machine_detection_speech_end_threshold'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_speech_end_threshold":5001}', 'machine_detection_speech_end_threshold'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_silence_timeout":1999}', 'machine_detection_silence_timeout'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection":"Enable","machine_detection_silence_timeout":10001}', 'machine_detection_silence_timeout'],
            ['{"to":"+14155551212","from":"+15017122661","machine_detection_silence_timeout":5000}', 'machine_detection_silence_timeout'],
            ['{"to":"client:has space"}', 'to'],
            [`{"to":"client:${'c'.repeat(257)}"}`, 'to'],
            ['{"to":"sip:a@b.example;region=moon"}', 'to'],
            ['{"to":"sip:a@b.example?User-to-User=nothex"}', 'to'],
            ['{"to":"sip:a@b.example?Contact=evil"}', 'to'],
            ['{"to":"+14155551212","from":"+15017122661","parameters":{"callstream_parameters_id":"0123"}}', 'parameters'],
            ['{"to":"+14155551212","from":"+15017122661","mode":"fork"}', 'dial'],
            ['{"to":"+14155551212","from":"+15017122661","mode":"fork","dial":"555-1234"}', 'dial'],
            ['{"to":"+14155551212","from":"+15017122661","dial":"+14155550000"}', 'dial'],
            ['{"to":"+14155551212","from":"+15017122661","mode":"split","dial":"+14155550000"}', 'mode'],
        ];
        const requestsBefore = standin.requests.length;
        for (const [body, field] of cases) {
            const r = await makeCall(cs.base, body);
            assert.equal(r.status, 400, `${body}: ${JSON.stringify(r.json)}`);
            assert.equal(r.json.field ?? '', field, body);
            assert.ok(r.json.error.length > 0, body);
        }
        assert.equal(standin.requests.length, requestsBefore, 'a bad request reached Twilio');
    });

    test('the bearer token is required and compared exactly', async () => {
        const requestsBefore = standin.requests.length;
        for (const token of [null, '', 'wrong', API_TOKEN + 'x', API_TOKEN.slice(0, -1)]) {
            const r = await makeCall(cs.base, { to: '+14155551212' }, token);
            assert.equal(r.status, 401, String(token));
        }
        const list = await fetch(`${cs.base}/calls`);
        assert.equal(list.status, 401);
        assert.equal(standin.requests.length, requestsBefore);
    });

    test('status callbacks out of order keep the latest SequenceNumber', async () => {
        standin.mode = 'ok';
        const placed = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        const sid = placed.json.call_sid;
        // Unsigned callbacks are refused while an auth token is configured.
        const unsigned = await fetch(`${cs.base}/status`, {
            method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ CallSid: sid, CallStatus: 'completed', SequenceNumber: '9' }),
        });
        assert.equal(unsigned.status, 403);
        const { getExpectedTwilioSignature } = createRequire(process.env.NODE_PATH + '/')('twilio');
        const sendStatus = async (callSid, status, seq) => {
            const params = { CallSid: callSid, AccountSid: ACCOUNT_SID, CallStatus: status, SequenceNumber: seq };
            const res = await fetch(`${cs.base}/status`, {
                method: 'POST',
                headers: {
                    'content-type': 'application/x-www-form-urlencoded',
                    'x-twilio-signature': getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}/status`, params),
                },
                body: new URLSearchParams(params),
            });
            assert.equal(res.status, 204);
        };
        const statusOf = async (callSid) =>
            (await (await fetch(`${cs.base}/calls/${callSid}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).json()).status;
        for (const [status, seq] of [['ringing', '1'], ['completed', '3'], ['in-progress', '2'], ['initiated', '0']]) {
            await sendStatus(sid, status, seq);
        }
        const call = await (await fetch(`${cs.base}/calls/${sid}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).json();
        assert.equal(call.status, 'completed');
        assert.equal(call.to, '+14155551212');
        // The terminal status first, every earlier one after it: the call stays completed.
        const second = (await makeCall(cs.base, { to: '+14155551213', from: '+15017122661' })).json.call_sid;
        await sendStatus(second, 'completed', '3');
        for (const [status, seq] of [['initiated', '0'], ['ringing', '1'], ['in-progress', '2']]) {
            await sendStatus(second, status, seq);
            assert.equal(await statusOf(second), 'completed', `after ${status} (${seq})`);
        }
        const missing = await fetch(`${cs.base}/calls/CA${'f'.repeat(32)}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
        assert.equal(missing.status, 404);
    });

    test('connection refused gives 502 with a message', async () => {
        await standin.close();
        const r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
        assert.equal(r.status, 502, JSON.stringify(r.json));
        assert.match(r.json.error, /cannot reach Twilio.*refused/i);
    });
});

describe('make-call configuration', () => {
    test('API key credentials authenticate while the path keeps the Account SID', async () => {
        const apiKey = 'SK' + 'fedcba9876543210'.repeat(2);
        const standin = await startStandin({ accountSid: ACCOUNT_SID, username: apiKey, password: 'key-secret', dir: certDir });
        const cs = await startCallstream(['--public-url', PUBLIC_URL, '--twilio-api-base', standin.base,
            '--twilio-ca-file', standin.caFile], twilioEnv({ TWILIO_API_KEY: apiKey, TWILIO_API_SECRET: 'key-secret' }));
        try {
            const r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
            assert.equal(r.status, 201, JSON.stringify(r.json));
            assert.deepEqual(standin.violations, []);
            assert.equal(standin.requests[0].auth, 'Basic ' + Buffer.from(`${apiKey}:key-secret`).toString('base64'));
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
            await standin.close();
        }
    });

    test('a certificate the CA file does not vouch for is refused', async () => {
        const standin = await startStandin({ accountSid: ACCOUNT_SID, username: ACCOUNT_SID, password: AUTH_TOKEN, dir: certDir });
        const otherCa = makeCertificates();
        const cs = await startCallstream(['--public-url', PUBLIC_URL, '--twilio-api-base', standin.base,
            '--twilio-ca-file', `${otherCa}/ca.pem`], twilioEnv());
        try {
            const r = await makeCall(cs.base, { to: '+14155551212', from: '+15017122661' });
            assert.equal(r.status, 502, JSON.stringify(r.json));
            assert.match(r.json.error, /TLS handshake/);
            assert.equal(standin.requests.length, 0);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
            await standin.close();
        }
    });

    test('bad Twilio settings stop the server at startup with a clear message', async () => {
        for (const [args, env, message] of [
            [['--public-url', 'ftp://x.example'], twilioEnv(), /--public-url must look like/],
            [['--twilio-api-base', 'http://api.twilio.com'], twilioEnv(), /must be an https:\/\/ URL/],
            [['--twilio-ca-file', '/nonexistent/ca.pem'], twilioEnv(), /cannot load CA certificates/],
            [[], twilioEnv({ TWILIO_API_KEY: 'SK' + '1'.repeat(32) }), /TWILIO_API_SECRET/],
            [[], twilioEnv({ TWILIO_ACCOUNT_SID: 'AC123' }), /TWILIO_ACCOUNT_SID must be/],
            [[], twilioEnv({ TWILIO_ACCOUNT_SID: 'AC' + 'g'.repeat(32) }), /TWILIO_ACCOUNT_SID must be AC followed by 32 hex/],
            [['--public-url', 'https://my_host.example.test'], twilioEnv(), /not a valid host name/],
            [['--twilio-timeout-ms', '0'], twilioEnv(), /--twilio-timeout-ms/],
        ]) {
            await assert.rejects(startCallstream(args, env), message, args.join(' '));
        }
    });

    test('a --public-url port other than 443 is warned about at startup', async () => {
        const cs = await startCallstream(['--public-url', 'https://callstream.example.test:8443'], twilioEnv());
        assert.equal(await cs.stop(), 0, cs.logs());
        assert.match(cs.logs(), /public_url_port.*8443/);
        const quiet = await startCallstream(['--public-url', 'https://callstream.example.test:443'], twilioEnv());
        assert.equal(await quiet.stop(), 0, quiet.logs());
        assert.doesNotMatch(quiet.logs(), /public_url_port/);
    });

    test('without --public-url, a Host or X-Forwarded-Host that is not host[:port] gets 400', async () => {
        const cs = await startCallstream([], {});
        try {
            const bad = await fetch(`${cs.base}/twiml`, { headers: { 'x-forwarded-host': 'a.com/../x?y=1#' } });
            assert.equal(bad.status, 400);
            assert.match((await bad.json()).error, /host\[:port\]/);
            const underscore = await fetch(`${cs.base}/twiml`, { headers: { 'x-forwarded-host': 'a_b.example' } });
            assert.equal(underscore.status, 400);
            const good = await fetch(`${cs.base}/twiml`, { headers: { 'x-forwarded-host': 'abc.ngrok-free.app' } });
            assert.equal(good.status, 200);
            assert.match(await good.text(), /url="wss:\/\/abc\.ngrok-free\.app\/media-stream"/);
        } finally {
            assert.equal(await cs.stop(), 0, cs.logs());
        }
    });

    test('without a token, public URL or credentials /make-call says what to set', async () => {
        let cs = await startCallstream(['--public-url', PUBLIC_URL], twilioEnv({ CALLSTREAM_API_TOKEN: '' }));
        let r = await makeCall(cs.base, { to: '+14155551212' });
        assert.equal(await cs.stop(), 0, cs.logs());
        assert.equal(r.status, 503);
        assert.match(r.json.error, /CALLSTREAM_API_TOKEN|--api-token/);

        cs = await startCallstream([], twilioEnv());
        r = await makeCall(cs.base, { to: '+14155551212' });
        assert.equal(await cs.stop(), 0, cs.logs());
        assert.equal(r.status, 503);
        assert.match(r.json.error, /--public-url/);

        cs = await startCallstream(['--public-url', PUBLIC_URL], { CALLSTREAM_API_TOKEN: API_TOKEN });
        r = await makeCall(cs.base, { to: '+14155551212' });
        assert.equal(await cs.stop(), 0, cs.logs());
        assert.equal(r.status, 503);
        assert.match(r.json.error, /TWILIO_ACCOUNT_SID/);
    });
});
