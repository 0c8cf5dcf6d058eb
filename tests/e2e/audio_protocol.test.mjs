// End-to-end: the `audio` bridge protocol (callstream.audio.v1, docs/bridge.md) between a
// simulated Twilio caller and a stand-in bot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './js/server.mjs';
import { startAudioBot } from './js/audio_standin_bot.mjs';
import { startCaller, callerFrame } from './js/audio_caller.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// `ms` of a sine as PCM16 LE at `rate`.
function l16Tone(rate, ms, hz = 440, amplitude = 8000) {
  const n = (rate * ms) / 1000;
  const buf = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  return buf;
}

async function withServer(upstreams, fn) {
  const args = [];
  for (const [name, url, ...options] of upstreams) {
    args.push('--bridge', `${name}=${url}`, '--bridge-protocol', `${name}=audio`);
    for (const o of options) args.push('--bridge-option', `${name}=${o}`);
  }
  const server = await startServer(args);
  try {
    await fn(server);
  } finally {
    assert.equal(await server.stop(), 0, server.log());
  }
}
const metrics = async (server) => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();

test('start frame, 20 ms caller frames, bot audio of any length, marks, dtmf, clear, hangup', async () => {
  const bot = await startAudioBot();
  try {
    await withServer([['bot', bot.url, 'format=l16-16000']], async (server) => {
      const caller = await startCaller(server.port, {
        customParameters: { app: 'bridge', bridge: 'bot', lang: 'fr' }, speakAtMs: 0,
      });
      await bot.waitFor(() => bot.connections[0]?.frames.length >= 25, 'caller audio at the bot');
      const conn = bot.connections[0];
      assert.equal(conn.protocol, 'callstream.audio.v1');
      // The first frame is the metadata, as text.
      assert.equal(JSON.parse(conn.text[0]).type, 'start');
      assert.equal(conn.start.version, 1);
      assert.equal(conn.start.callSid, caller.callSid);
      assert.equal(conn.start.streamSid, caller.streamSid);
      assert.equal(conn.start.customParameters.lang, 'fr');
      assert.deepEqual(conn.start.format, { encoding: 'l16', sampleRate: 16000, channels: 1 });
      assert.equal(conn.start.frameMs, 20);
      for (const f of conn.frames) assert.equal(f.length, 640);

      // 1 s of tone in one binary frame, a mark, then 3 s more in odd-sized pieces.
      conn.sendAudio(l16Tone(16000, 1000));
      conn.send({ type: 'mark', name: 'first' });
      const more = l16Tone(16000, 3000);
      for (let i = 0; i < more.length; i += 1001) conn.sendAudio(more.subarray(i, i + 1001));
      conn.send({ type: 'mark', name: 'second' });
      const sentAt = performance.now();
      await bot.waitFor(() => conn.controls.some((c) => c.type === 'mark' && c.name === 'first'), 'mark first');
      const firstAfter = performance.now() - sentAt;
      assert.ok(caller.heardSpeechMs >= 960, `the mark came after the audio before it played (${caller.heardSpeechMs} ms heard)`);
      assert.ok(firstAfter >= 900, `mark first after ${firstAfter} ms`);
      assert.deepEqual(conn.controls.find((c) => c.name === 'first'), { type: 'mark', name: 'first', cleared: false });

      caller.dtmf('5');
      await bot.waitFor(() => conn.controls.some((c) => c.type === 'dtmf'), 'dtmf');
      assert.deepEqual(conn.controls.find((c) => c.type === 'dtmf'), { type: 'dtmf', digit: '5' });

      // clear: the caller stops hearing within the lead; the pending mark is reported cleared.
      await caller.waitFor(() => caller.heardSpeechMs >= 1500, '1.5 s heard');
      conn.send({ type: 'clear' });
      await caller.waitFor(() => caller.clears.length === 1, 'the clear');
      await bot.waitFor(() => conn.controls.some((c) => c.name === 'second'), 'mark second');
      assert.deepEqual(conn.controls.find((c) => c.name === 'second'), { type: 'mark', name: 'second', cleared: true });
      const heardAtClear = caller.heardSpeechMs;
      await sleep(300);
      assert.ok(caller.heardSpeechMs - heardAtClear <= 100, 'nothing plays after the clear');
      assert.ok(caller.heardSpeechMs < 2500);

      // hangup ends the call.
      conn.send({ type: 'hangup', reason: 'done here' });
      await caller.waitFor(() => caller.closed, 'the call to end');
      assert.match(server.log(), /done here/);
      await bot.waitFor(() => conn.closed, 'the upstream to close');
    });
  } finally {
    await bot.close();
  }
});

test('pcmu passes the caller and the bot through byte for byte; stop reaches the bot', async () => {
  const bot = await startAudioBot();
  try {
    await withServer([['bot', bot.url, 'format=pcmu']], async (server) => {
      const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'bot' }, speakAtMs: 0 });
      await bot.waitFor(() => bot.connections[0]?.frames.length >= 10, 'caller audio');
      const conn = bot.connections[0];
      assert.deepEqual(conn.start.format, { encoding: 'pcmu', sampleRate: 8000, channels: 1 });
      for (const f of conn.frames) assert.deepEqual(f, callerFrame(20, true));
      // 500 ms of μ-law made of distinct bytes (no 0x7F/0xFF), in 7 odd pieces.
      const audio = Buffer.from([...Array(4000).keys()].map((i) => 0x80 + (i % 0x7e)));
      for (let i = 0; i < audio.length; i += 577) conn.sendAudio(audio.subarray(i, i + 577));
      await caller.waitFor(() => caller.received.length >= 25, 'the bot audio');
      const got = Buffer.concat(caller.received.map((f) => f.payload));
      assert.deepEqual(got.subarray(0, audio.length), audio);
      await caller.stop();
      await bot.waitFor(() => conn.controls.some((c) => c.type === 'stop'), 'stop');
      await bot.waitFor(() => conn.closed, 'close after stop');
    });
  } finally {
    await bot.close();
  }
});

test('xoff/xon: a bot that honours flow control is paced without loss', async () => {
  const bot = await startAudioBot();
  try {
    await withServer([['bot', bot.url, 'format=l16-8000', 'xoff_ms=1000']], async (server) => {
      const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'bot' } });
      await bot.waitFor(() => bot.connections[0]?.start, 'start');
      const conn = bot.connections[0];
      await conn.speak(l16Tone(8000, 3000), 1600); // 100 ms pieces, as fast as allowed
      await caller.waitFor(() => caller.heardSpeechMs >= 2960, 'all 3 s heard', 10000);
      const [xoff, xon] = conn.flow;
      assert.equal(xoff.type, 'xoff');
      assert.ok(xoff.queuedMs >= 1000 && xoff.queuedMs < 1200, JSON.stringify(xoff));
      assert.equal(xon.type, 'xon');
      assert.ok(xon.queuedMs <= 800, JSON.stringify(xon));
      await caller.stop();
      assert.doesNotMatch(await metrics(server), /callstream_bridge_failures_total\{[^}]*reason="too_fast"/);
    });
  } finally {
    await bot.close();
  }
});

test('hostile audio upstreams end only their own call', async () => {
  const good = await startAudioBot();
  const bad = await startAudioBot();
  const deaf = await startAudioBot({ acceptSubprotocol: false });
  try {
    await withServer([['good', good.url, 'format=l16-8000'], ['bad', bad.url], ['deaf', deaf.url]], async (server) => {
      const bystander = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'good' } });
      await good.waitFor(() => good.connections[0]?.start, 'bystander start');
      good.connections[0].sendAudio(l16Tone(8000, 4000));

      const cases = [
        ['not json', (c) => c.sendRaw('{"type":', false), 'invalid_json'],
        ['mark without a name', (c) => c.send({ type: 'mark' }), 'bad_event'],
      ];
      for (const [what, misbehave, label] of cases) {
        bad.onConnection = (c) => setTimeout(() => misbehave(c), 100);
        const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'bad' } });
        await caller.waitFor(() => caller.closed, `${what}: the call to end`, 8000);
        assert.match(await metrics(server), new RegExp(`callstream_bridge_failures_total\\{[^}]*reason="${label}"`), what);
      }
      const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'deaf' } });
      await caller.waitFor(() => caller.closed, 'no subprotocol: the call to end', 8000);
      assert.match(await metrics(server), /callstream_bridge_failures_total\{[^}]*reason="bad_subprotocol"/);

      await bystander.waitFor(() => bystander.heardSpeechMs >= 3960, 'the bystander hearing 4 s', 10000);
      assert.equal(bystander.closed, null);
      await bystander.stop();
    });
  } finally {
    await good.close();
    await bad.close();
    await deaf.close();
  }
});
