// app=bridge to a wss:// upstream, end to end: the Twilio-protocol bot of js/twilio_bot.mjs
// served over HTTPS, with certificates made here by the openssl CLI (a test CA, leaves it signed
// for the right and the wrong host, and a self-signed leaf). callstream must trust the CA given
// with --bridge-ca-file and nothing else, check the certificate names the URL's host, and send
// that host as SNI (none for an IP address); a refused certificate fails the call's bridge as
// tls_failed, with OpenSSL's reason in the log, before any media is sent. The first call and every
// refused one run beside a bystander app=echo call, which must keep echoing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { taggedFrame, waitFor } from './js/fake_twilio.mjs';
import { startTwilioBot } from './js/twilio_bot.mjs';
import { API_TOKEN, startCallstream } from './twilio_support.mjs';
import {
    assertBystanderEchoes, metric, metrics, metricsOnce, newCall, startBystander,
} from './js/bridge_calls.mjs';

function openssl(args, cwd) {
    try {
        execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
        throw new Error(`openssl ${args[0]} failed (Debian package openssl): ${e.stderr ?? e}`);
    }
}

// In a new temp dir: ca.pem (a test CA), other-ca.pem (one that signed nothing), bundle.pem
// (both), and for each leaf NAME.key/NAME.pem with `san` as its subjectAltName, signed by the CA,
// or self-signed when `selfSigned`.
function makeCertificates(leaves) {
    const dir = mkdtempSync(join(tmpdir(), 'callstream-bridge-tls-'));
    for (const ca of ['ca', 'other-ca']) {
        openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`,
            '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=callstream bridge test ${ca}`,
            '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    }
    // A PEM bundle in which the CA that signed the leaves is not the first certificate.
    writeFileSync(join(dir, 'bundle.pem'), Buffer.concat([readFileSync(join(dir, 'other-ca.pem')),
        readFileSync(join(dir, 'ca.pem'))]));
    for (const { name, cn, san, selfSigned = false } of leaves) {
        if (selfSigned) {
            openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`,
                '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`,
                '-addext', `subjectAltName=${san}`], dir);
            continue;
        }
        openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out',
            `${name}.csr`, '-subj', `/CN=${cn}`], dir);
        writeFileSync(join(dir, `${name}.cnf`), `subjectAltName=${san}\n`);
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.cnf`],
        dir);
    }
    const read = (name) => ({ key: readFileSync(join(dir, `${name}.key`)),
        cert: readFileSync(join(dir, `${name}.pem`)) });
    return { dir, caFile: join(dir, 'ca.pem'), bundleFile: join(dir, 'bundle.pem'), read };
}

// The bridged call's upstream failed: the stream is closed (the default policy, hangup, without
// Twilio credentials), the failure counted once as tls_failed and logged with OpenSSL's reason
// for refusing the certificate (`why`).
async function assertTlsFailed(cs, call, why) {
    await waitFor(() => call.closed !== null, 5000, 'the bridged stream closed');
    assert.deepEqual({ ...call.closed, at: undefined },
        { code: 1000, reason: 'upstream failed: tls_failed', at: undefined });
    const closedMetric = 'callstream_streams_closed_total{reason="upstream_failed"}';
    const m = await metricsOnce(cs.base, closedMetric);
    assert.equal(metric(m, 'callstream_bridge_failures_total{reason="tls_failed"}'), 1,
        m.split('\n').filter((l) => l.includes('failures')).join('\n'));
    assert.equal(metric(m, closedMetric), 1);
    assert.equal(metric(m, 'callstream_bridge_connects_total'), 0);
    assert.equal(metric(m, 'callstream_bridge_frames_to_upstream_total'), 0);
    assert.equal(call.received.length, 0, 'the caller heard nothing');
    assert.match(cs.logs(), new RegExp('bridge_failed .*reason=tls_failed ' +
        `detail="certificate verify failed \\(SSL routines\\): ${why}"`));
}

describe('bridge: wss:// upstreams', () => {
    let certs;
    let good;
    let wrongHost;
    let selfSigned;
    before(async () => {
        certs = makeCertificates([
            { name: 'good', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' },
            { name: 'wrong', cn: 'wrong.example', san: 'DNS:wrong.example' },
            { name: 'self', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', selfSigned: true },
        ]);
        good = await startTwilioBot({ echo: true, tls: certs.read('good') });
        wrongHost = await startTwilioBot({ echo: true, tls: certs.read('wrong') });
        selfSigned = await startTwilioBot({ echo: true, tls: certs.read('self') });
    });
    after(async () => {
        await good.close();
        await wrongHost.close();
        await selfSigned.close();
        rmSync(certs.dir, { recursive: true, force: true });
    });

    test('a certificate from the --bridge-ca-file CA for the URL\'s host: the call is bridged ' +
        'over TLS, byte for byte, with SNI', async () => {
        const cs = await startCallstream(['--bridge', `bot=${good.url}/media?x=1`,
            '--bridge-ca-file', certs.caFile, '--api-token', API_TOKEN]);
        try {
            assert.match(good.url, /^wss:\/\/localhost:\d+$/);
            const bystander = await startBystander(cs.port);
            const call = newCall(cs.port, { app: 'bridge', bridge: 'bot' });
            await call.open();
            call.streamAudio();
            await waitFor(() => call.received.length >= 50, 5000, '50 echoed frames');
            const res = await fetch(`${cs.base}/calls/${call.callSid}`,
                { headers: { authorization: `Bearer ${API_TOKEN}` } });
            assert.equal(res.status, 200);
            assert.deepEqual((await res.json()).bridge,
                { upstream: 'bot', protocol: 'twilio', state: 'open' });
            call.stop();
            await waitFor(() => call.closed !== null, 3000, 'stream closed');
            assert.equal(good.connections.length, 1);
            const conn = good.connections[0];
            await waitFor(() => conn.events.some((e) => e.event === 'stop'), 3000, 'stop');
            // One TLS handshake, completed, that named the URL's host.
            assert.deepEqual(good.tls.sni, ['localhost']);
            assert.equal(good.tls.secured, 1);
            assert.deepEqual(good.tls.errors, []);
            // The upgrade went to the URL's path and query, with the port in Host.
            assert.equal(conn.headers.host, `localhost:${good.port}`);
            const events = conn.events;
            assert.equal(events[0].event, 'connected');
            const start = events[1];
            assert.equal(start.event, 'start');
            assert.equal(start.streamSid, call.streamSid);
            assert.equal(start.start.callSid, call.callSid);
            assert.equal(start.start.streamSid, call.streamSid);
            assert.equal(start.start.customParameters.bridge, 'bot');
            const media = events.filter((e) => e.event === 'media');
            assert.ok(media.length >= 50);
            media.forEach((m, i) => {
                assert.equal(m.media.chunk, String(i + 1));
                assert.deepEqual(Buffer.from(m.media.payload, 'base64'), taggedFrame(i));
            });
            call.received.slice(0, 50)
                .forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
            const m = await metrics(cs.base);
            assert.equal(metric(m, 'callstream_bridge_connects_total'), 1);
            assert.doesNotMatch(m, /callstream_bridge_failures_total\{/);
            await assertBystanderEchoes(bystander);
            bystander.close();
        } finally {
            await cs.stop();
        }
    });

    test('an IP address in the URL: the certificate\'s IP SAN is checked, and no SNI is sent ' +
        '(RFC 6066 allows host names only)', async () => {
        const sni = good.tls.sni.length;
        const secured = good.tls.secured;
        const conns = good.connections.length;
        const cs = await startCallstream(['--bridge', `ip=wss://127.0.0.1:${good.port}`,
            '--bridge-ca-file', certs.caFile]);
        try {
            const call = newCall(cs.port, { app: 'bridge', bridge: 'ip' });
            await call.open();
            call.streamAudio();
            await waitFor(() => call.received.length >= 10, 5000, '10 echoed frames');
            call.received.slice(0, 10)
                .forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
            assert.equal(good.tls.secured, secured + 1);
            assert.equal(good.connections.length, conns + 1);
            assert.equal(good.connections[conns].headers.host, `127.0.0.1:${good.port}`);
            assert.deepEqual(good.tls.sni.slice(sni), [], 'an IP literal was sent as SNI');
            call.close();
        } finally {
            await cs.stop();
        }
    });

    test('a certificate from the trusted CA that names another host: tls_failed, hung up, ' +
        'no media reaches that bot', async () => {
        const cs = await startCallstream(['--bridge', `w=${wrongHost.url}`,
            '--bridge-ca-file', certs.caFile]);
        try {
            const bystander = await startBystander(cs.port);
            const call = newCall(cs.port, { app: 'bridge', bridge: 'w' });
            await call.open();
            call.streamAudio();
            await assertTlsFailed(cs, call, 'hostname mismatch');
            // The bot was reached and asked for localhost; callstream refused what it was shown.
            await waitFor(() => wrongHost.tls.errors.length === 1, 3000, 'the bot saw the refusal');
            assert.match(wrongHost.tls.errors[0], /alert bad certificate/);
            assert.deepEqual(wrongHost.tls.sni, ['localhost']);
            assert.equal(wrongHost.tls.secured, 0);
            assert.equal(wrongHost.connections.length, 0, 'no WebSocket reached the bot');
            await assertBystanderEchoes(bystander);
            bystander.close();
        } finally {
            await cs.stop();
        }
    });

    test('a self-signed certificate for the right host, not in the CA file: tls_failed',
        async () => {
            const cs = await startCallstream(['--bridge', `s=${selfSigned.url}`,
                '--bridge-ca-file', certs.caFile]);
            try {
                const bystander = await startBystander(cs.port);
                const call = newCall(cs.port, { app: 'bridge', bridge: 's' });
                await call.open();
                call.streamAudio();
                await assertTlsFailed(cs, call, 'self-signed certificate');
                await waitFor(() => selfSigned.tls.errors.length === 1, 3000, 'the refusal');
                assert.match(selfSigned.tls.errors[0], /alert unknown ca/);
                assert.equal(selfSigned.tls.secured, 0);
                assert.equal(selfSigned.connections.length, 0);
                await assertBystanderEchoes(bystander);
                bystander.close();
            } finally {
                await cs.stop();
            }
        });

    test('without --bridge-ca-file the system store is used, which does not know the test CA: ' +
        'tls_failed', async () => {
        const secured = good.tls.secured;
        const errors = good.tls.errors.length;
        const conns = good.connections.length;
        const cs = await startCallstream(['--bridge', `bot=${good.url}`]);
        try {
            const bystander = await startBystander(cs.port);
            const call = newCall(cs.port, { app: 'bridge', bridge: 'bot' });
            await call.open();
            call.streamAudio();
            await assertTlsFailed(cs, call, 'unable to get local issuer certificate');
            await waitFor(() => good.tls.errors.length === errors + 1, 3000, 'the refusal');
            assert.match(good.tls.errors[errors], /alert unknown ca/);
            assert.equal(good.tls.secured, secured);
            assert.equal(good.connections.length, conns);
            await assertBystanderEchoes(bystander);
            bystander.close();
        } finally {
            await cs.stop();
        }
    });

    test('an IP address the certificate does not name: tls_failed (IP address mismatch)',
        async () => {
            const cs = await startCallstream(['--bridge', `w=wss://127.0.0.1:${wrongHost.port}`,
                '--bridge-ca-file', certs.caFile]);
            const errors = wrongHost.tls.errors.length;
            const sni = wrongHost.tls.sni.length;
            try {
                const bystander = await startBystander(cs.port);
                const call = newCall(cs.port, { app: 'bridge', bridge: 'w' });
                await call.open();
                call.streamAudio();
                await assertTlsFailed(cs, call, 'IP address mismatch');
                await waitFor(() => wrongHost.tls.errors.length === errors + 1, 3000, 'refusal');
                assert.match(wrongHost.tls.errors[errors], /alert bad certificate/);
                assert.deepEqual(wrongHost.tls.sni.slice(sni), []);
                assert.equal(wrongHost.connections.length, 0);
                await assertBystanderEchoes(bystander);
                bystander.close();
            } finally {
                await cs.stop();
            }
        });

    test('--bridge-ca-file is a bundle: a CA after another one in the file is trusted',
        async () => {
            const conns = good.connections.length;
            const cs = await startCallstream(['--bridge', `bot=${good.url}`,
                '--bridge-ca-file', certs.bundleFile]);
            try {
                const call = newCall(cs.port, { app: 'bridge', bridge: 'bot' });
                await call.open();
                call.streamAudio();
                await waitFor(() => call.received.length >= 10, 5000, '10 echoed frames');
                call.received.slice(0, 10)
                    .forEach((r, i) => assert.deepEqual(r.payload, taggedFrame(i)));
                assert.equal(good.connections.length, conns + 1);
                call.close();
            } finally {
                await cs.stop();
            }
        });

    test('a --bridge-ca-file that cannot be read stops callstream at startup, naming it',
        async () => {
            const missing = join(certs.dir, 'missing.pem');
            await assert.rejects(startCallstream(['--bridge', `bot=${good.url}`,
                '--bridge-ca-file', missing]), (e) => {
                assert.match(e.message, /callstream exited with [1-9]/);
                assert.ok(e.message.includes(`--bridge-ca-file ${missing}`), e.message);
                return true;
            });
        });
});
