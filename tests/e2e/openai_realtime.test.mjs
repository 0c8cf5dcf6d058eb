// End-to-end: the `openai-realtime` bridge protocol between a simulated Twilio caller (which
// plays out what it receives as Twilio does) and a stand-in for the OpenAI Realtime API written
// from the documented event schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './js/server.mjs';
import { startRealtimeStandin } from './js/openai_realtime_standin.mjs';
import { startCaller, callerFrame } from './js/audio_caller.mjs';

const LEAD_MS = 80; // --bridge-lead-ms
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withServer(upstreams, fn, env = {}) {
  const args = ['--bridge-lead-ms', String(LEAD_MS)];
  for (const [name, url, ...options] of upstreams) {
    args.push('--bridge', `${name}=${url}`, '--bridge-protocol', `${name}=openai-realtime`,
      '--bridge-header', `${name}=Authorization:CALLSTREAM_TEST_OPENAI_AUTH`);
    for (const o of options) args.push('--bridge-option', `${name}=${o}`);
  }
  const server = await startServer(args, { CALLSTREAM_TEST_OPENAI_AUTH: 'Bearer sk-test-123', ...env });
  try {
    await fn(server);
  } finally {
    assert.equal(await server.stop(), 0, server.log());
  }
}

const metrics = async (server) => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
const clientEvents = (conn, type) => conn.received.filter((e) => e.type === type);

test('session.update forces μ-law both ways, carries the per-call settings, and no early audio is lost', async () => {
  // session.updated comes 300 ms late: the caller's first 15 frames arrive before the session
  // is ready and must reach the model in order.
  const standin = await startRealtimeStandin({ holdUpdatedMs: 300 });
  try {
    await withServer([['rt', standin.url, 'model=gpt-realtime', 'voice=marin', 'instructions=Be brief.']], async (server) => {
      const caller = await startCaller(server.port, {
        customParameters: { app: 'bridge', bridge: 'rt', voice: 'cedar', instructions: 'Answer in French.' },
        speakAtMs: 0,
      });
      await caller.waitFor(() => standin.connections[0]?.appends.length >= 40, '40 appends');
      await caller.stop();
      const conn = standin.connections[0];
      assert.equal(conn.headers.authorization, 'Bearer sk-test-123');
      const updates = clientEvents(conn, 'session.update');
      assert.ok(updates.length >= 1);
      for (const u of updates) {
        assert.deepEqual(u.session.audio.input.format, { type: 'audio/pcmu' });
        assert.deepEqual(u.session.audio.output.format, { type: 'audio/pcmu' });
      }
      const last = updates.at(-1).session;
      assert.equal(last.model, 'gpt-realtime');
      assert.equal(last.audio.output.voice, 'cedar');
      assert.equal(last.instructions, 'Answer in French.');
      // Every append is one 20 ms frame holding the caller's bytes exactly, none missing.
      const appends = clientEvents(conn, 'input_audio_buffer.append').map((e) => Buffer.from(e.audio, 'base64'));
      const frame = callerFrame(20, true);
      for (const [i, a] of appends.entries()) assert.deepEqual(a, frame, `append ${i}`);
      const firstAppend = conn.received.findIndex((e) => e.type === 'input_audio_buffer.append');
      const updatedAt = conn.sent.findIndex((e) => e.type === 'session.updated');
      assert.ok(firstAppend > conn.received.findIndex((e) => e.type === 'session.update'));
      assert.ok(updatedAt >= 0);
      // Frames the caller sent before the session was ready were held, then all sent.
      const sentByCaller = caller.sentFrames;
      assert.ok(appends.length >= sentByCaller - 3, `${appends.length} appends of ${sentByCaller} frames`);
    });
  } finally {
    await standin.close();
  }
});

test('barge-in: truncate at what the caller heard, stop within the lead, drop late deltas', async (t) => {
  // 5 s of assistant audio, sent 2x faster than real time in 100 ms deltas (so the response is
  // still streaming when the caller speaks at 1.5 s); 3 deltas of the
  // item are still on the wire when the server sees the caller's speech.
  const standin = await startRealtimeStandin({ speakOnSessionReady: 5, speedup: 2, lateDeltas: 3 });
  try {
    await withServer([['rt', standin.url]], async (server) => {
      const caller = await startCaller(server.port, {
        customParameters: { app: 'bridge', bridge: 'rt' }, speakAfterHeardMs: 1500,
      });
      const conn = () => standin.connections[0];
      await caller.waitFor(() => conn()?.truncates.length === 1, 'a truncate', 15000);
      await caller.waitFor(() => caller.clears.length === 1, 'the clear');
      await sleep(600); // anything still coming would arrive now
      await caller.stop();

      const truncate = conn().truncates[0];
      const clear = caller.clears[0];
      const item = conn().sent.find((e) => e.type === 'response.output_audio.delta').item_id;
      assert.equal(truncate.item_id, item);
      assert.equal(truncate.content_index, 0);
      // What the caller had heard of the item when the clear reached it.
      const heard = clear.heardSpeechMs;
      t.diagnostic(`audio_end_ms=${truncate.audio_end_ms} caller heard=${heard} ms, ` +
        `queued at the caller when cleared=${clear.queuedMs} ms, ` +
        `speech to clear=${(clear.at - caller.speakingSince.at).toFixed(1)} ms`);
      assert.ok(Math.abs(truncate.audio_end_ms - heard) <= 40,
        `audio_end_ms ${truncate.audio_end_ms} vs heard ${heard}`);
      assert.ok(truncate.audio_end_ms <= truncate.itemMs, 'clamped to what was sent');
      // The server accepted it (no error about the truncate).
      assert.deepEqual(conn().sent.filter((e) => e.type === 'error' && e.error.code !== 'response_cancel_not_active'), []);

      // After the clear the caller gets no more assistant audio than the lead, and what it
      // had queued (received, not yet heard) was never more than the lead.
      const after = caller.received.filter((f) => f.at > clear.at && f.kind !== 'silence').length * 20;
      assert.ok(after <= LEAD_MS, `${after} ms of assistant audio after the clear`);
      assert.ok(clear.queuedMs <= LEAD_MS + 20, `${clear.queuedMs} ms queued at the caller`);
      // The late deltas (a 2 kHz tone) were sent by the server and never reached the caller.
      const speechAt = conn().sent.findIndex((e) => e.type === 'input_audio_buffer.speech_started');
      const late = conn().sent.slice(speechAt).filter((e) => e.type === 'response.output_audio.delta');
      assert.equal(late.length, 3);
      assert.equal(caller.received.filter((f) => f.kind === 'late').length, 0);
      // The caller heard well under the 5 s: the interruption held.
      assert.ok(caller.heardSpeechMs < 2500, `heard ${caller.heardSpeechMs} ms`);
      // response.cancel went once, while the response was active; the server's own cancel
      // (interrupt_response) crossed it and the benign error changed nothing.
      assert.equal(clientEvents(conn(), 'response.cancel').length, 1);
      const m = await metrics(server);
      assert.match(m, /callstream_bridge_barge_ins_total 1\b/);
      assert.match(m, /callstream_bridge_truncations_total 1\b/);
    });
  } finally {
    await standin.close();
  }
});

test('pcm24k: audio/pcm at 24 kHz both ways through the resampler', async () => {
  const standin = await startRealtimeStandin({ speakOnSessionReady: 1, speedup: 2 });
  try {
    await withServer([['rt', standin.url, 'format=pcm24k']], async (server) => {
      // The caller speaks once it has heard the assistant's 1 s (sooner would barge in).
      const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'rt' }, speakAfterHeardMs: 980 });
      await caller.waitFor(() => caller.heardSpeechMs >= 980, 'the assistant audio', 10000);
      const conn = standin.connections[0];
      await caller.waitFor(() => conn.sent.some((e) => e.type === 'input_audio_buffer.speech_started'), 'the caller heard by the model');
      await caller.stop();
      for (const u of clientEvents(conn, 'session.update')) {
        assert.deepEqual(u.session.audio.input.format, { type: 'audio/pcm', rate: 24000 });
        assert.deepEqual(u.session.audio.output.format, { type: 'audio/pcm', rate: 24000 });
      }
      const appends = clientEvents(conn, 'input_audio_buffer.append').map((e) => Buffer.from(e.audio, 'base64'));
      for (const a of appends) assert.equal(a.length, 960); // 20 ms, 24 kHz, 16 bit
      // The caller's 300 Hz tone made it through 8 -> 24 kHz loud enough to trigger the VAD.
      assert.ok(conn.sent.some((e) => e.type === 'input_audio_buffer.speech_started'));
      // The 440 Hz assistant tone reached the caller as speech, not as static.
      const speech = caller.received.filter((f) => f.kind === 'speech').length;
      assert.ok(speech >= 45, `${speech} frames of the tone`);
    });
  } finally {
    await standin.close();
  }
});

test('hostile Realtime upstreams end only their own call', async (t) => {
  const good = await startRealtimeStandin({ speakOnSessionReady: 6, speedup: 1.5 });
  const bad = await startRealtimeStandin();
  try {
    await withServer([['rt', good.url], ['bad', bad.url]], async (server) => {
      const bystander = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'rt' } });
      const cases = [
        ['malformed_json', 'invalid_json', true],
        ['bad_base64', 'bad_base64', true],
        ['format_mismatch', 'format_mismatch', true],
        ['binary', 'binary_frame', true],
        ['session_expired', 'session_expired', true],
        ['error_events', null, false],
      ];
      for (const [mode, label, ends] of cases) {
        bad.hostile = mode;
        const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'bad' } });
        if (ends) {
          await caller.waitFor(() => caller.closed, `${mode}: the call to end`, 8000);
          const m = await metrics(server);
          assert.match(m, new RegExp(`callstream_bridge_failures_total\\{[^}]*reason="${label}"[^}]*\\} [1-9]`), `${mode}\n${m}`);
        } else {
          await sleep(800);
          assert.equal(caller.closed, null, `${mode}: the call goes on`);
          assert.match(server.log(), /bridge_upstream_error/);
        }
        await caller.stop();
      }
      await bystander.waitFor(() => bystander.heardSpeechMs >= 5800, 'the bystander hearing its 6 s', 15000);
      assert.equal(bystander.closed, null);
      // Its audio played without a gap: every frame from the first to the last was the tone.
      const heard = bystander.heard.map((f) => f.kind);
      const first = heard.indexOf('speech');
      const last = heard.lastIndexOf('speech');
      const gaps = heard.slice(first, last + 1).filter((k) => k !== 'speech').length;
      t.diagnostic(`bystander heard ${bystander.heardSpeechMs} ms with ${gaps} silent frames inside`);
      assert.equal(gaps, 0);
      await bystander.stop();
    });
  } finally {
    await good.close();
    await bad.close();
  }
});
