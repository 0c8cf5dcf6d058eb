// The two sample `audio` bots of docs/bridge.md, run as they are (docs/examples/audio_bot.py with
// Debian's python3-websockets, docs/examples/audio_bot.mjs with ws) behind callstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from './js/server.mjs';
import { startCaller } from './js/audio_caller.mjs';

const source = process.env.CALLSTREAM_SOURCE_DIR;
const examples = path.join(source, 'docs', 'examples');

// The doc shows the files verbatim: the code blocks are the files, so what a reader copies is
// what this test runs.
test('docs/bridge.md shows the sample bots exactly as docs/examples holds them', () => {
  const doc = readFileSync(path.join(source, 'docs', 'bridge.md'), 'utf8');
  const blocks = [...doc.matchAll(/```(python|js)\n([\s\S]*?)```/g)].map((m) => [m[1], m[2]]);
  const py = blocks.find(([lang, body]) => lang === 'python' && body.includes('callstream.audio.v1'));
  const js = blocks.find(([lang, body]) => lang === 'js' && body.includes('callstream.audio.v1'));
  assert.ok(py && js, 'both bots are in the doc');
  assert.equal(py[1], readFileSync(path.join(examples, 'audio_bot.py'), 'utf8'));
  assert.equal(js[1], readFileSync(path.join(examples, 'audio_bot.mjs'), 'utf8'));
});

async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

// A Python 3 that has the websockets module (Debian's python3-websockets).
function python() {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(candidate, ['-c', 'import websockets'], { stdio: 'ignore' });
    if (r.status === 0) return candidate;
  }
  throw new Error('no python3 with websockets: apt-get install python3-websockets');
}

async function runBot(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bot did not start: ${out}`)), 10000);
    const check = setInterval(() => {
      if (out.includes('listening on')) { clearInterval(check); clearTimeout(timer); resolve(); }
    }, 20);
    child.on('exit', (code) => { clearInterval(check); clearTimeout(timer); reject(new Error(`bot exited ${code}: ${out}`)); });
  });
  return {
    output: () => out,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', resolve);
      child.kill('SIGTERM');
    }),
  };
}

async function talkToBot(botPort, format) {
  const server = await startServer(['--bridge', `bot=ws://127.0.0.1:${botPort}`, '--bridge-protocol', 'bot=audio',
    '--bridge-option', `bot=format=${format}`, '--default-bridge', 'bot']);
  try {
    // The caller is quiet for 600 ms, then speaks: the greeting beep comes first, then the echo.
    const caller = await startCaller(server.port, { customParameters: { app: 'bridge', who: 'tester' }, speakAtMs: 600 });
    await caller.waitFor(() => caller.heardSpeechMs >= 280, 'the greeting beep');
    const beepEnd = caller.heard.findLastIndex((f) => f.kind !== 'silence');
    await caller.waitFor(() => caller.heardSpeechMs >= 280 + 400, 'the caller echoed back', 10000);
    assert.ok(caller.heard.length > beepEnd, 'echo after the beep');
    caller.dtmf('#');
    await caller.waitFor(() => caller.closed, 'the bot to hang up after #', 10000);
    return { caller, log: server.log() };
  } finally {
    assert.equal(await server.stop(), 0);
  }
}

test('the Python sample bot greets, echoes, reports its mark and hangs up on #', async () => {
  const port = await freePort();
  const bot = await runBot(python(), [path.join(examples, 'audio_bot.py'), String(port)]);
  try {
    const { log } = await talkToBot(port, 'l16-16000');
    assert.match(bot.output(), /call CA[0-9a-f]{32} from '' format \{'encoding': 'l16', 'sampleRate': 16000, 'channels': 1\}/);
    assert.match(bot.output(), /mark greeting played/);
    assert.match(log, /caller pressed #/);
  } finally {
    await bot.stop();
  }
});

test('the Node sample bot greets, echoes, reports its mark and hangs up on #', async () => {
  // The file runs in place; a temporary folder gives it the test peers' node_modules the way
  // `npm install ws` next to it would.
  const dir = mkdtempSync(path.join(tmpdir(), 'callstream-bot-'));
  symlinkSync(path.join(examples, 'audio_bot.mjs'), path.join(dir, 'audio_bot.mjs'));
  symlinkSync(process.env.NODE_PATH, path.join(dir, 'node_modules'));
  const port = await freePort();
  const bot = await runBot(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main',
    path.join(dir, 'audio_bot.mjs'), String(port)]);
  try {
    const { log } = await talkToBot(port, 'l16-24000');
    assert.match(bot.output(), /call CA[0-9a-f]{32} from '' format \{"encoding":"l16","sampleRate":24000,"channels":1\}/);
    assert.match(bot.output(), /mark greeting played/);
    assert.match(log, /caller pressed #/);
  } finally {
    await bot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
