// End-to-end: the live monitor (docs/monitor.md) in a real browser. Debian's headless Chromium,
// driven by playwright-core, opens GET /monitor from the real binary (its page files found
// beside the binary, as installed); callers are callstream-load and a simulated Twilio leg
// sending espeak-ng speech made 8 kHz μ-law by sox. The page's AudioWorklet tap records what
// an operator would hear; the test aligns it with what the caller sent.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { startServer } from './js/server.mjs';
import { makeCertificates, startStandin } from './twilio_standin.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const WebSocket = require('ws');

const API_TOKEN = 'monitor-test-token-0123456789';
const ACCOUNT_SID = 'AC' + 'ab'.repeat(16);
const AUTH_TOKEN = 'cd'.repeat(16);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sid = (prefix) => prefix + [...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');

function need(cmd, pkg) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`]).toString().trim();
  } catch {
    throw new Error(`${cmd} is missing: apt-get install ${pkg}`);
  }
}

function chromiumPath() {
  return need('chromium', 'chromium');
}

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing from build/npm: run scripts/setup (${e.message})`);
  }
}

// G.711 μ-law -> [-1, 1), the same table the page uses (and callstream's codec).
function ulawToFloat(b) {
  const u = ~b & 0xff;
  const exponent = (u >> 4) & 7;
  const mag = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return ((u & 0x80) ? -mag : mag) / 32768;
}

// Speech: espeak-ng's voice, made 8 kHz μ-law by sox.
function speechUlaw(dir) {
  need('espeak-ng', 'espeak-ng');
  need('sox', 'sox');
  const wav = join(dir, 'speech.wav');
  const ul = join(dir, 'speech.ul');
  execFileSync('espeak-ng', ['-w', wav, 'Hello, this is callstream. The monitor hears every word I say.']);
  execFileSync('sox', [wav, '-r', '8000', '-c', '1', '-e', 'mu-law', '-t', 'raw', ul, 'trim', '0', '3']);
  return readFileSync(ul);
}

// A Twilio leg: connected, start, media at real time (frame i from frameFn), records what it
// got back, when each frame went out, and how the socket closed.
class Caller {
  constructor(port, { app = 'echo', from = '+15550001111', to = '+15550002222' } = {}) {
    this.port = port;
    this.callSid = sid('CA');
    this.streamSid = sid('MZ');
    this.params = { app, From: from, To: to };
    this.sentAt = [];
    this.received = [];
    this.events = [];
    this.closed = null;
    this.seq = 0;
  }

  async open() {
    this.ws = new WebSocket(`ws://127.0.0.1:${this.port}/media-stream`);
    await new Promise((resolve, reject) => { this.ws.on('open', resolve); this.ws.on('error', reject); });
    this.ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      this.events.push(m.event);
      if (m.event === 'media') this.received.push(Buffer.from(m.media.payload, 'base64'));
    });
    this.ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString(), at: Date.now() }; clearInterval(this.timer); });
    this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.send({ event: 'start', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
      start: { accountSid: ACCOUNT_SID, streamSid: this.streamSid, callSid: this.callSid, tracks: ['inbound'],
        customParameters: this.params, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } });
  }

  send(m) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m)); }

  stream(frameFn) {
    let i = 0;
    const t0 = Date.now();
    const tick = () => {
      while (i * 20 <= Date.now() - t0) {
        const payload = frameFn(i);
        this.sentAt[i] = Date.now();
        this.send({ event: 'media', sequenceNumber: String(++this.seq), streamSid: this.streamSid,
          media: { track: 'inbound', chunk: String(i + 1), timestamp: String(i * 20), payload: payload.toString('base64') } });
        i++;
      }
    };
    tick();
    this.timer = setInterval(tick, 5);
  }

  close() { clearInterval(this.timer); this.ws.close(); }
}

// How well `heard` (what the page played) carries `sent`, window by window. The page's jitter
// buffer plays silence on an underrun and primes again (60 ms or more), and cuts back a queue
// over its ceiling, so on a loaded machine everything after a gap is shifted: one lag for the
// whole speech would measure the gaps, not the audio. Each 100 ms window of `sent` is aligned on
// its own, searched from the last speech window's lag (back 250 ms for a cut, on 300 ms for a
// gap); the score is the normalised correlation of all windows at their lags together, and a
// window that played silence or noise pulls it down. Returns {r, lags} with lags[w] per window.
function alignedCorrelation(sent, heard, firstLag, { step = 1, window = 800 } = {}) {
  let xy = 0, xx = 0, yy = 0, last = firstLag;
  const lags = [];
  for (let w = 0; w + window <= sent.length; w += window) {
    const from = lags.length === 0 ? Math.max(0, last - 400) : Math.max(0, last - 2000);
    const to = lags.length === 0 ? last + 400 : last + 2400;
    let best = { lag: last, r: -2, xy: 0, xx: 0, yy: 0 };
    for (let lag = from; lag <= to; lag++) {
      let a = 0, b = 0, c = 0;
      for (let i = w; i < w + window; i += step) {
        const y = heard[i + lag] ?? 0;
        a += sent[i] * y; b += sent[i] * sent[i]; c += y * y;
      }
      const r = a / Math.sqrt(b * c || 1);
      if (r > best.r) best = { lag, r, xy: a, xx: b, yy: c };
    }
    xy += best.xy; xx += best.xx; yy += best.yy;
    lags.push(best.lag);
    // Only speech sets the next search: a quiet window's best lag is chance.
    if (best.xx > 0.001 * window / step && best.r >= 0.8) last = best.lag;
  }
  return { r: xy / Math.sqrt(xx * yy || 1), lags };
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// The HTTP status and body a refused WebSocket upgrade got (or 101 and the first message).
function tryUpgrade(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('message', (d) => { resolve({ status: 101, body: d.toString() }); ws.close(); });
    ws.on('error', () => {});
  });
}

const token = async (base, bearer = API_TOKEN) => fetch(`${base}/monitor/token`, {
  method: 'POST', headers: bearer ? { Authorization: `Bearer ${bearer}` } : {},
});

describe('monitor: off by default, and tokens', () => {
  test('without --monitor every /monitor path is 404', async () => {
    const cs = await startServer([], { CALLSTREAM_API_TOKEN: API_TOKEN });
    try {
      const base = `http://127.0.0.1:${cs.port}`;
      assert.equal((await fetch(`${base}/monitor`)).status, 404);
      assert.equal((await fetch(`${base}/monitor/monitor.js`)).status, 404);
      assert.equal((await token(base)).status, 404);
      const up = await tryUpgrade(`ws://127.0.0.1:${cs.port}/monitor/events?token=x`);
      assert.equal(up.status, 404);
    } finally {
      assert.equal(await cs.stop(), 0, cs.log());
    }
  });

  test('no token, a forged token or an expired one: 401 and no call data', async () => {
    const cs = await startServer(['--monitor', '--monitor-token-ttl', '1'], { CALLSTREAM_API_TOKEN: API_TOKEN });
    const caller = new Caller(cs.port);
    try {
      const base = `http://127.0.0.1:${cs.port}`;
      const ws = `ws://127.0.0.1:${cs.port}`;
      await caller.open();
      caller.stream(() => Buffer.alloc(160, 0xff));
      assert.equal((await token(base, '')).status, 401);
      assert.equal((await token(base, 'wrong')).status, 401);
      for (const path of ['/monitor/events', `/monitor/listen/${caller.streamSid}`]) {
        for (const query of ['', '?token=', '?token=9999999999999.00.' + '0'.repeat(64)]) {
          const r = await tryUpgrade(ws + path + query);
          assert.equal(r.status, 401, `${path}${query}: ${r.body}`);
          assert.ok(!r.body.includes(caller.callSid) && !r.body.includes(caller.streamSid), r.body);
        }
      }
      // A good token opens both sockets; the same token after its second has passed does not.
      const res = await token(base);
      assert.equal(res.status, 200);
      const { token: t, expires_in } = await res.json();
      assert.equal(expires_in, 1);
      const ok = await tryUpgrade(`${ws}/monitor/events?token=${t}`);
      assert.equal(ok.status, 101);
      assert.ok(JSON.parse(ok.body).calls.some((c) => c.call_sid === caller.callSid), ok.body);
      const tampered = t.replace(/^\d+/, (n) => String(Number(n) + 60000));
      assert.equal((await tryUpgrade(`${ws}/monitor/events?token=${tampered}`)).status, 401);
      await sleep(1100);
      const late = await tryUpgrade(`${ws}/monitor/events?token=${t}`);
      assert.equal(late.status, 401);
      assert.match(late.body, /expired/);
      assert.equal((await tryUpgrade(`${ws}/monitor/listen/${caller.streamSid}?token=${t}`)).status, 401);
      assert.match(cs.log(), /monitor_token_refused/);
    } finally {
      caller.close();
      assert.equal(await cs.stop(), 0, cs.log());
    }
  });
});

describe('monitor page in headless Chromium', () => {
  let cs;
  let standin;
  let browser;
  let page;
  let dir;
  let speech;
  const certDir = makeCertificates();

  before(async () => {
    const executablePath = chromiumPath();
    const { chromium } = loadPlaywright();
    dir = mkdtempSync(join(tmpdir(), 'callstream-monitor-'));
    speech = speechUlaw(dir);
    standin = await startStandin({ accountSid: ACCOUNT_SID, username: ACCOUNT_SID, password: AUTH_TOKEN, dir: certDir });
    // Twilio's REST API is the stand-in (the hang-up button goes through it); the page's files
    // come from beside the binary, as an installed callstream finds them.
    cs = await startServer(['--monitor', '--no-verify-signatures', '--twilio-api-base', standin.base,
      '--twilio-ca-file', standin.caFile, '--prompts-dir', dir],
    { CALLSTREAM_API_TOKEN: API_TOKEN, TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN });
    browser = await chromium.launch({
      executablePath, headless: true, chromiumSandbox: false,
      args: ['--autoplay-policy=no-user-gesture-required', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 560 } });
    page.on('console', (m) => { if (m.type() === 'error') console.log(`# page: ${m.text()}`); });
    page.on('dialog', (d) => d.accept());
    await page.goto(`http://127.0.0.1:${cs.port}/monitor#token=${API_TOKEN}`);
    await page.waitForSelector('#status[data-state="live"]', { timeout: 5000 });
  });

  after(async () => {
    await browser?.close();
    if (cs) assert.equal(await cs.stop(), 0, cs.log());
    await standin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(certDir, { recursive: true, force: true });
  });

  const row = (streamSid) => page.locator(`tr[data-stream-sid="${streamSid}"]`);
  const rowCount = () => page.locator('#calls tbody tr').count();
  const level = async (streamSid, leg) => Number(await row(streamSid).locator(`.meter[data-leg="${leg}"]`).getAttribute('data-level'));

  test('a call started by callstream-load is listed within 1 s', async () => {
    const load = process.env.CALLSTREAM_LOAD_BIN;
    assert.ok(load, 'CALLSTREAM_LOAD_BIN is not set (run through ctest)');
    const before = await rowCount();
    const t0 = Date.now();
    const child = spawn(load, ['--url', `ws://127.0.0.1:${cs.port}/media-stream`, '--streams', '1',
      '--warmup', '0', '--duration', '2', '--grace', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    try {
      await waitFor(async () => (await rowCount()) > before, 1000, 'the load generator\'s call in the table');
      const ms = Date.now() - t0;
      console.log(`# monitor: callstream-load's call listed ${ms} ms after the generator started`);
      assert.ok(ms <= 1000);
      const calls = await page.evaluate(() => window.callstreamMonitor.lastSnapshot.calls);
      assert.ok(calls.some((c) => c.app === 'echo' && c.frames_in >= 0), JSON.stringify(calls));
    } finally {
      const code = await new Promise((r) => child.on('exit', r));
      assert.equal(code, 0, out);
    }
    await waitFor(async () => (await rowCount()) === before, 3000, 'the finished call to leave the table');
  });

  test('the caller meter rises with speech and falls with silence', async () => {
    const caller = new Caller(cs.port);
    await caller.open();
    // 1.5 s of speech, then silence.
    caller.stream((i) => (i < 75 ? speech.subarray((i * 160) % (speech.length - 160), ((i * 160) % (speech.length - 160)) + 160) : Buffer.alloc(160, 0xff)));
    try {
      await waitFor(() => row(caller.streamSid).count(), 1000, 'the call row');
      let loudest = -100;
      while (caller.sentAt.length < 70) {
        loudest = Math.max(loudest, await level(caller.streamSid, 'caller'));
        await sleep(50);
      }
      await waitFor(() => caller.sentAt.length > 100, 2000, 'silence to be sent');
      const quiet = await waitFor(async () => {
        const l = await level(caller.streamSid, 'caller');
        return l <= -60 ? String(l) : null;
      }, 500, 'the meter to fall');
      console.log(`# monitor: caller meter ${loudest} dBFS while speaking, ${quiet} dBFS in silence`);
      assert.ok(loudest >= -20, `loudest ${loudest}`);
      assert.equal(await row(caller.streamSid).locator('.speaking[data-leg="caller"]').getAttribute('data-on'), 'false');
    } finally {
      caller.close();
    }
  });

  test('listening: the page\'s AudioWorklet tap hears the caller (correlation >= 0.9) and the latency is measured', async () => {
    const caller = new Caller(cs.port);
    await caller.open();
    // Silence until the page listens and records, then the 3 s of speech, then silence.
    const frames = Math.floor(speech.length / 160);
    let from = Infinity; // the first speech frame
    caller.stream((i) => (i >= from && i < from + frames ? speech.subarray((i - from) * 160, (i - from + 1) * 160) : Buffer.alloc(160, 0xff)));
    try {
      await waitFor(() => row(caller.streamSid).count(), 1000, 'the call row');
      await row(caller.streamSid).locator('button[data-action="listen"]').click();
      await page.waitForFunction(() => window.callstreamMonitor.listener?.ws?.readyState === 1, null, { timeout: 5000 });
      await page.evaluate(() => window.callstreamMonitor.listener.record(6));
      from = caller.sentAt.length + 10;
      // Mid-speech: a DTMF digit for the timeline, and the screenshot for docs/ and the README.
      await waitFor(() => caller.sentAt.length > from + frames / 2, 8000, 'half the speech to be sent');
      caller.send({ event: 'dtmf', sequenceNumber: String(++caller.seq), streamSid: caller.streamSid,
        dtmf: { track: 'inbound_track', digit: '5' } });
      await page.waitForSelector('#timeline li[data-kind="dtmf"]', { timeout: 2000 });
      await page.screenshot({ path: join(process.env.CALLSTREAM_SOURCE_DIR, 'docs', 'monitor.png') });
      await waitFor(() => caller.sentAt.length > from + frames + 25, 8000, 'the speech to be sent');
      await sleep(300);
      const shown = await page.locator('#listen-latency').textContent();
      const tap = await page.evaluate(async () => {
        const r = await window.callstreamMonitor.listener.dump();
        return { left: Array.from(r.left), right: Array.from(r.right), startWallMs: r.startWallMs, sampleRate: r.sampleRate };
      });
      assert.equal(tap.sampleRate, 8000);
      const sent = Array.from(speech.subarray(0, frames * 160), ulawToFloat);
      const heard = tap.left;
      // Align on the onset, then refine over ±400 samples by normalised correlation.
      const onset = (xs) => xs.findIndex((v) => Math.abs(v) > 0.02);
      const coarse = onset(heard) - onset(sent);
      assert.ok(onset(heard) >= 0, 'the tap heard nothing');
      // One lag for the whole speech, as before: logged, for comparison with the windows.
      const corr = (lag) => {
        let xy = 0, xx = 0, yy = 0;
        for (let i = 0; i < sent.length; i++) {
          const y = heard[i + lag] ?? 0;
          xy += sent[i] * y; xx += sent[i] * sent[i]; yy += y * y;
        }
        return xy / Math.sqrt(xx * yy || 1);
      };
      let single = { lag: coarse, r: -1 };
      for (let lag = Math.max(0, coarse - 400); lag <= coarse + 400; lag++) {
        const r = corr(lag);
        if (r > single.r) single = { lag, r };
      }
      const best = alignedCorrelation(sent, heard, single.lag);
      // The right channel is callstream's echo of the caller: the same speech.
      const rightCorr = alignedCorrelation(sent, tap.right, single.lag, { step: 2 }).r;
      // Latency: when a sent frame's first sample was played by the page minus when the caller
      // sent that frame, for the speech frames.
      const lat = [];
      for (let k = 0; k < frames; k++) {
        const lag = best.lags[Math.min(best.lags.length - 1, Math.floor((k * 160) / 800))];
        lat.push(tap.startWallMs + ((lag + k * 160) * 1000) / 8000 - caller.sentAt[from + k]);
      }
      lat.sort((a, b) => a - b);
      const median = lat[Math.floor(lat.length / 2)];
      const stats = await page.evaluate(() => window.callstreamMonitor.listener.stats());
      console.log(`# monitor: jitter buffer underruns ${stats.underruns}, frames ${stats.frames}`);
      console.log(`# monitor: listen correlation caller ${best.r.toFixed(3)} (one lag: ${single.r.toFixed(3)}), ` +
        `callstream leg ${rightCorr.toFixed(3)}; ` +
        `listen latency measured ${median.toFixed(0)} ms (p90 ${lat[Math.floor(lat.length * 0.9)].toFixed(0)} ms), page shows ${shown} ms`);
      assert.ok(best.r >= 0.9, `correlation ${best.r}`);
      assert.ok(rightCorr >= 0.9, `callstream leg correlation ${rightCorr}`);
      assert.ok(Number.isFinite(Number(shown)), `page latency ${shown}`);
      await page.locator('#listen-stop').click();
      await waitFor(() => /monitor_listen_ended[^\n]*duration_ms=\d+/.test(cs.log()), 2000, 'the listen-in log line');
      const started = cs.log().split('\n').find((l) => l.includes('monitor_listen_started') && l.includes(caller.streamSid));
      assert.ok(started && started.includes(caller.callSid) && /remote=127\.0\.0\.1:\d+/.test(started), started);
    } finally {
      caller.close();
    }
  });

  test('play and clear buttons reach the call through the API', async () => {
    const caller = new Caller(cs.port, { app: 'play' });
    await caller.open();
    caller.stream(() => Buffer.alloc(160, 0xff));
    try {
      await waitFor(() => row(caller.streamSid).count(), 1000, 'the call row');
      await row(caller.streamSid).locator('input[data-field="prompt"]').fill('tone:440:3000');
      await row(caller.streamSid).locator('button[data-action="play"]').click();
      await waitFor(() => caller.received.some((f) => f.some((b) => b !== 0xff && b !== 0x7f)), 2000, 'the prompt at the caller');
      await waitFor(async () => (await level(caller.streamSid, 'outbound')) > -20, 2000, 'the outbound meter to rise');
      await row(caller.streamSid).locator('button[data-action="clear"]').click();
      await waitFor(() => caller.events.includes('clear'), 2000, 'a clear at the caller');
      await page.waitForSelector('#timeline li[data-kind="clear"]', { timeout: 2000 });
    } finally {
      caller.close();
    }
  });

  test('the hang-up button ends the call: Twilio is asked, and the caller sees the close', async () => {
    const caller = new Caller(cs.port);
    await caller.open();
    caller.stream(() => Buffer.alloc(160, 0xff));
    try {
      await waitFor(() => row(caller.streamSid).count(), 1000, 'the call row');
      const before = standin.requests.length;
      await row(caller.streamSid).locator('button[data-action="hangup"]').click();
      await waitFor(() => caller.closed, 3000, 'the caller\'s socket to close');
      assert.equal(caller.closed.code, 1000);
      assert.equal(caller.closed.reason, 'call hung up');
      const asked = standin.requests.slice(before).find((r) => r.path.includes(`/Calls/${caller.callSid}.json`));
      assert.ok(asked, JSON.stringify(standin.requests.slice(before)));
      assert.deepEqual(asked.form.filter(([k]) => k === 'Status').map(([, v]) => v), ['completed']);
      await waitFor(async () => (await row(caller.streamSid).count()) === 0, 1000, 'the row to go');
    } finally {
      caller.close();
    }
  });
});
