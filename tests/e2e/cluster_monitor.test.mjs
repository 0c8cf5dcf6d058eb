// The live monitor across a two-instance cluster (redis-server, HAProxy from
// scripts/deploy/haproxy-config, callstream cs1 and cs2 with --monitor, each on loopback ports of
// its own): /monitor/events on either instance lists both instances' calls, each with its owner;
// an ended call leaves the list; the listen socket at /i/{instance}/monitor/listen/… reaches the
// owner through HAProxy, also when leastconn would have sent the request elsewhere, and carries
// the caller's very bytes; a hang-up through HAProxy ends a call on the other instance; with
// Redis gone the local calls stay listed and the cluster part says it is unavailable.
// Callers are simulated Twilio legs (Twilio's JSON over a real WebSocket).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { startCluster } from './js/loopback_cluster.mjs';
import { FakeTwilio, sid, taggedFrame, waitFor } from './js/fake_twilio.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const WebSocket = require('ws');

const API_TOKEN = 'cluster-monitor-token-5d1e';

// Debian's headless Chromium through playwright-core, as the monitor's own browser test runs it.
async function launchChromium() {
    let executablePath;
    try {
        executablePath = execFileSync('sh', ['-c', 'command -v chromium']).toString().trim();
    } catch {
        throw new Error('chromium is missing: apt-get install chromium');
    }
    const { chromium } = require('playwright-core');
    return chromium.launch({ executablePath, headless: true, chromiumSandbox: false,
        args: ['--autoplay-policy=no-user-gesture-required', '--disable-gpu', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
}
const auth = { authorization: `Bearer ${API_TOKEN}` };

async function monitorToken(base) {
    const res = await fetch(`${base}/monitor/token`, { method: 'POST', headers: auth });
    assert.equal(res.status, 200);
    return (await res.json()).token;
}

// A /monitor/events socket at `url` (a ws:// URL without the token), keeping its newest full
// snapshot.
async function watch(url, token) {
    const ws = new WebSocket(`${url}?token=${token}`);
    const w = { ws, snapshot: null, snapshots: 0 };
    ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'snapshot') {
            w.snapshot = msg;
            w.snapshots += 1;
        }
    });
    await new Promise((resolve, reject) => {
        ws.on('open', resolve);
        ws.on('error', reject);
    });
    w.call = (callSid) => w.snapshot?.calls.find((c) => c.call_sid === callSid);
    w.close = () => ws.close();
    return w;
}

// Opens a listen socket at `url`; resolves with {ws, got} (what it delivers, collected from the
// first message on) when it opened or {status} when it was refused.
function upgrade(url) {
    return new Promise((resolve) => {
        const ws = new WebSocket(url);
        const got = listenTo(ws);
        ws.on('unexpected-response', (req, res) => resolve({ status: res.statusCode }));
        ws.on('open', () => resolve({ ws, got }));
        ws.on('error', () => {});
    });
}

// What a listen socket delivered: the hello, the caller leg's frames [{seq, bytes}], how many
// outbound frames, how it closed.
function listenTo(ws) {
    const got = { hello: null, caller: [], outbound: 0, closed: null };
    ws.on('message', (data, binary) => {
        if (!binary) {
            got.hello = JSON.parse(data.toString());
            return;
        }
        for (let at = 0; at + 16 <= data.length;) {
            const leg = data[at];
            const size = data.readUInt16LE(at + 2);
            const seq = data.readUInt32LE(at + 4);
            const bytes = data.subarray(at + 16, at + 16 + size);
            if (leg === 0) got.caller.push({ seq, bytes: Buffer.from(bytes) });
            else got.outbound += 1;
            at += 16 + size;
        }
    });
    ws.on('close', (code, reason) => { got.closed = { code, reason: reason.toString() }; });
    return got;
}

describe('cluster: the monitor lists, listens and hangs up across instances', () => {
    let cluster;
    let cs;
    let ws;
    const calls = {};
    before(async () => {
        cluster = await startCluster({ names: ['cs1', 'cs2'], args: ['--monitor'],
            env: { CALLSTREAM_API_TOKEN: API_TOKEN } });
        cs = cluster.instances;
        ws = cluster.proxy.replace('http://', 'ws://');
        // One call on each instance, pinned there through HAProxy as a cluster's TwiML pins it.
        let n = 0x50;
        for (const name of ['cs1', 'cs2']) {
            n += 1;
            const call = new FakeTwilio(cluster.proxyPort, { callSid: sid('CA', n),
                streamSid: sid('MZ', n), params: { app: 'echo', From: `+1555000${n}`,
                    To: `+1555999${n}` } });
            call.url = `${ws}/i/${name}/media-stream`;
            await call.open();
            call.streamAudio();
            calls[name] = call;
        }
        await waitFor(() => calls.cs1.received.length > 5 && calls.cs2.received.length > 5, 5000,
            'both calls echoing');
    });
    after(async () => {
        for (const call of Object.values(calls)) if (!call.closed) call.close();
        const codes = cluster ? await cluster.stop() : {};
        for (const [name, code] of Object.entries(codes)) {
            const log = cs[name].logs();
            const report = log.indexOf('ERROR: '); // a sanitizer's report, if there is one
            assert.equal(code, 0, `${name} exited ${code}:\n` +
                (report >= 0 ? log.slice(report, report + 12000) : log.slice(-6000)));
        }
    });

    test('/monitor/events on either instance, through HAProxy, lists both with their owner',
        async () => {
            const token = await monitorToken(cluster.proxy);
            for (const path of ['/i/cs1/monitor/events', '/i/cs2/monitor/events',
                '/monitor/events']) {
                const w = await watch(`${ws}${path}`, token);
                try {
                    await waitFor(() => w.call(calls.cs1.callSid) && w.call(calls.cs2.callSid),
                        3000, `both calls on ${path}: ${JSON.stringify(w.snapshot)}`);
                    const here = w.snapshot.instance;
                    if (path.startsWith('/i/')) assert.equal(here, path.split('/')[2]);
                    assert.deepEqual(w.snapshot.cluster, { ok: true, error: '', remote_calls: 1 });
                    for (const name of ['cs1', 'cs2']) {
                        const c = w.call(calls[name].callSid);
                        assert.equal(c.instance, name, JSON.stringify(c));
                        assert.equal(c.stream_sid, calls[name].streamSid);
                        assert.equal(c.from, calls[name].params.From);
                        assert.equal(c.to, calls[name].params.To);
                        assert.equal(c.app, 'echo');
                        assert.ok(Math.abs(c.started - calls[name].startedAt) < 2000,
                            `started ${c.started} vs ${calls[name].startedAt}`);
                        if (name === here) {
                            assert.equal(c.remote, undefined);
                            assert.ok(c.frames_in > 0, 'local meters');
                            assert.equal(typeof c.caller.level_dbfs, 'number');
                        } else {
                            assert.equal(c.remote, true);
                            assert.equal(c.caller, null, 'remote meters stay on the owner');
                        }
                    }
                } finally {
                    w.close();
                }
            }
        });

    test('the page, through HAProxy, shows each call\'s instance and listens at its pinned path',
        async () => {
            const browser = await launchChromium();
            try {
                const page = await browser.newPage({ viewport: { width: 1440, height: 560 } });
                page.on('console', (m) => {
                    if (m.type() === 'error') console.log(`# page: ${m.text()}`);
                });
                const sockets = [];
                page.on('websocket', (s) => sockets.push(s.url()));
                await page.goto(`${cluster.proxy}/monitor#token=${API_TOKEN}`);
                await page.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
                const row = (name) => page.locator(`tr[data-call-sid="${calls[name].callSid}"]`);
                for (const name of ['cs1', 'cs2']) await row(name).waitFor({ timeout: 3000 });
                // The instance that serves the page's events socket (after its first snapshot).
                const here = (await page.locator('#instance').textContent()).replace('instance ', '');
                for (const name of ['cs1', 'cs2']) {
                    assert.equal(await row(name).locator('td.instance').textContent(), name);
                    assert.equal(await row(name).getAttribute('data-remote'),
                        String(name !== here));
                }
                assert.match(await page.locator('#cluster').textContent(),
                    /1 on other instances/);
                await row('cs2').locator('button[data-action="listen"]').click();
                await page.waitForFunction(() => /^\d+$/.test(
                    document.querySelector('#listen-latency').textContent), null,
                { timeout: 5000 });
                const listen = sockets.find((u) => u.includes('/monitor/listen/'));
                assert.ok(listen.includes(`/i/cs2/monitor/listen/${calls.cs2.streamSid}?token=`),
                    listen);
                await page.locator('#listen-stop').click();
                await waitFor(() => (cs.cs2.logs().match(/monitor_listen_ended/g) ?? []).length >= 1,
                    3000, 'the page\'s listen-in ended on cs2');
            } finally {
                await browser.close();
            }
        });

    test('listen through HAProxy reaches the owner, even where leastconn points elsewhere',
        async () => {
            // A token from cs1 (same API token, so the same key) opens a socket on cs2.
            const token = await monitorToken(cs.cs1.base);
            // Idle tunnels pinned to cs2 make leastconn send unpinned requests to cs1.
            const load = [];
            for (let i = 0; i < 3; i++) load.push(await watch(`${ws}/i/cs2/monitor/events`, token));
            let listener = null;
            try {
                const target = calls.cs2;
                const unpinned = await upgrade(
                    `${ws}/monitor/listen/${target.streamSid}?token=${token}`);
                assert.equal(unpinned.status, 404, 'leastconn sent the unpinned socket to cs1');
                const pinned = await upgrade(
                    `${ws}/i/cs2/monitor/listen/${target.streamSid}?token=${token}`);
                assert.ok(pinned.ws, `pinned listen refused: ${pinned.status}`);
                listener = pinned.ws;
                const { got } = pinned;
                await waitFor(() => got.caller.length >= 50, 4000, 'a second of caller audio');
                assert.equal(got.hello.call_sid, target.callSid);
                assert.ok(got.outbound > 0, 'the outbound leg too');
                // Each caller frame is exactly a frame the caller sent, in order, none skipped.
                const tags = got.caller.map((f) => f.bytes[0] + f.bytes[1] * 0x7f);
                got.caller.forEach((f, i) => {
                    assert.ok(f.bytes.equals(taggedFrame(tags[i])), `frame ${i} is the caller's`);
                    if (i > 0) assert.equal(tags[i], tags[i - 1] + 1, `frame ${i} follows on`);
                });
                pinned.ws.close();
                await waitFor(() => got.closed !== null, 2000, 'listen closed');
                await waitFor(() => /monitor_listen_ended[^\n]*call_sid=/.test(cs.cs2.logs()),
                    2000, 'cs2 logs the listen-in');
                // A forged token is refused on the pinned path as well.
                const forged = await upgrade(
                    `${ws}/i/cs2/monitor/listen/${target.streamSid}?token=${token.slice(0, -1)}` +
                    (token.endsWith('0') ? '1' : '0'));
                assert.equal(forged.status, 401);
            } finally {
                listener?.close();
                for (const w of load) w.close();
            }
        });

    test('hang-up through HAProxy ends a call on the other instance; it leaves the list',
        async () => {
            const token = await monitorToken(cluster.proxy);
            const w = await watch(`${ws}/i/cs1/monitor/events`, token);
            const load = [];
            for (let i = 0; i < 3; i++) load.push(await watch(`${ws}/i/cs2/monitor/events`, token));
            try {
                await waitFor(() => w.call(calls.cs2.callSid), 3000, 'cs2 call listed on cs1');
                const listen = await upgrade(
                    `${ws}/i/cs2/monitor/listen/${calls.cs2.streamSid}?token=${token}`);
                assert.ok(listen.ws, `listen refused: ${listen.status}`);
                const { got } = listen;
                // leastconn sends this to cs1, which forwards it to the owner over the bus.
                const res = await fetch(`${cluster.proxy}/calls/${calls.cs2.callSid}/hangup`,
                    { method: 'POST', headers: auth });
                const body = await res.json();
                assert.equal(res.status, 200, JSON.stringify(body));
                assert.equal(body.instance, 'cs2');
                await waitFor(() => calls.cs2.closed !== null, 3000, 'the caller sees the close');
                assert.equal(calls.cs2.closed.code, 1000);
                assert.equal(calls.cs2.closed.reason, 'call hung up');
                await waitFor(() => got.closed !== null, 3000, 'the listener is told');
                assert.equal(got.closed.reason, 'call ended');
                await waitFor(() => w.snapshot && !w.call(calls.cs2.callSid), 3000,
                    'the hung-up call leaves cs1\'s list');
                assert.ok(w.call(calls.cs1.callSid));
                assert.equal(w.snapshot.cluster.remote_calls, 0);
            } finally {
                w.close();
                for (const l of load) l.close();
            }
        });

    test('a call ending on cs1 leaves cs2\'s list', async () => {
        const extra = new FakeTwilio(cluster.proxyPort, { callSid: sid('CA', 0x60),
            streamSid: sid('MZ', 0x60), params: { app: 'echo' } });
        extra.url = `${ws}/i/cs1/media-stream`;
        await extra.open();
        extra.streamAudio();
        calls.extra = extra;
        const w = await watch(`${ws}/i/cs2/monitor/events`, await monitorToken(cluster.proxy));
        try {
            await waitFor(() => w.call(extra.callSid), 3000, 'the new call listed on cs2');
            assert.equal(w.call(extra.callSid).instance, 'cs1');
            extra.stop();
            await waitFor(() => extra.closed !== null, 3000, 'stream closed');
            await waitFor(() => w.snapshot && !w.call(extra.callSid), 3000,
                'the ended call leaves cs2\'s list');
            assert.ok(w.call(calls.cs1.callSid), 'the other cs1 call stays');
        } finally {
            w.close();
        }
    });

    test('Redis gone: local calls stay listed, the cluster part is flagged', async () => {
        const token = await monitorToken(cs.cs1.base);
        const w = await watch(`${ws}/i/cs1/monitor/events`, token);
        try {
            await waitFor(() => w.snapshot?.cluster?.ok === true, 3000, 'cluster ok first');
            await cluster.stopRedis();
            await waitFor(() => w.snapshot?.cluster?.ok === false, 4000,
                `the cluster flagged: ${JSON.stringify(w.snapshot?.cluster)}`);
            assert.match(w.snapshot.cluster.error, /Redis/);
            assert.equal(w.snapshot.cluster.remote_calls, 0);
            const before = w.snapshots;
            await waitFor(() => w.snapshots >= before + 2, 3000, 'snapshots keep coming');
            const c = w.call(calls.cs1.callSid);
            assert.ok(c, 'the local call is still listed');
            assert.equal(c.instance, 'cs1');
            assert.ok(c.frames_in > 0);
            // A watcher joining now is served too, and both instances stay healthy.
            const late = await watch(`${ws}/i/cs2/monitor/events`, token);
            await waitFor(() => late.snapshot, 3000, 'a snapshot for a new watcher');
            assert.equal(late.snapshot.cluster.ok, false);
            late.close();
            for (const name of ['cs1', 'cs2']) {
                assert.equal((await fetch(`${cs[name].base}/healthz`)).status, 200, name);
            }
            assert.ok(calls.cs1.closed === null, 'the cs1 call still runs');
        } finally {
            w.close();
        }
    });
});
