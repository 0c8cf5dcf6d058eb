// An unmodified bot from npm behind callstream's `twilio` bridge protocol: the OpenAI Agents
// SDK's TwilioRealtimeTransportLayer (@openai/agents-extensions), used as its documentation
// shows, with its Realtime connection pointed at the local Realtime stand-in.
//
// What this shows, honestly: @openai/agents 0.18 tells Twilio (callstream) its audio is μ-law,
// but its second session.update asks the Realtime API for audio/pcm at 24 kHz both ways
// (BRIDGE.md §1.1.6). The stand-in honours the request, as the real service does, so the bot
// sends PCM bytes labelled μ-law: static on a real call, the bot's defect. callstream's part is
// to carry the bot's bytes exactly, which is what is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer } from './js/server.mjs';
import { startRealtimeStandin } from './js/openai_realtime_standin.mjs';
import { startCaller, callerFrame } from './js/audio_caller.mjs';

const require = createRequire(process.env.NODE_PATH + '/');
const { WebSocketServer } = require('ws');
const { TwilioRealtimeTransportLayer } = require('@openai/agents-extensions');
const { RealtimeAgent, RealtimeSession } = require('@openai/agents/realtime');

test('the Agents SDK Twilio transport runs unchanged behind the twilio bridge', async (t) => {
  // The stand-in's VAD is off (loudRms: Infinity) so the reply is never interrupted.
  const standin = await startRealtimeStandin({ loudRms: Infinity });
  // The bot: a WebSocket server for Twilio Media Streams, as the SDK's Twilio guide writes it.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const sessions = [];
  const marksBack = []; // marks callstream echoed to the bot
  wss.on('connection', async (ws) => {
    const agent = new RealtimeAgent({ name: 'Greeter', instructions: 'Greet the caller.' });
    const transport = new TwilioRealtimeTransportLayer({ twilioWebSocket: ws });
    transport.on('*', (event) => {
      if (event.type === 'twilio_message' && event.message.event === 'mark') marksBack.push(event.message.mark.name);
    });
    const session = new RealtimeSession(agent, { transport });
    sessions.push(session);
    await session.connect({ apiKey: 'sk-test', url: standin.url });
  });
  const server = await startServer(['--bridge', `agent=ws://127.0.0.1:${wss.address().port}`,
    '--bridge-protocol', 'agent=twilio']);
  try {
    const caller = await startCaller(server.port, { customParameters: { app: 'bridge', bridge: 'agent' }, speakAtMs: 0 });
    await caller.waitFor(() => standin.connections[0]?.updates >= 2, 'the bot configuring its session');
    const conn = standin.connections[0];
    // The caller's μ-law reaches the model unchanged through callstream and the bot.
    await caller.waitFor(() => conn.appends.length >= 20, 'caller audio at the model');
    const frame = callerFrame(20, true);
    const appended = conn.received.filter((e) => e.type === 'input_audio_buffer.append')
      .map((e) => Buffer.from(e.audio, 'base64'));
    for (const a of appended) assert.deepEqual(a, frame);

    const formats = conn.received.filter((e) => e.type === 'session.update')
      .map((e) => JSON.stringify(e.session.audio?.output?.format ?? null));
    t.diagnostic(`the bot's session.update output formats: ${formats.join(', ')}`);

    // The model speaks 1 s in the format the session has, whatever that is.
    conn.speak(1);
    await caller.waitFor(() => !conn.response && caller.received.length * 160 >= sentBytes(conn), 'the reply', 10000);
    const sent = Buffer.concat(conn.sent.filter((e) => e.type === 'response.output_audio.delta')
      .map((e) => Buffer.from(e.delta, 'base64')));
    const got = Buffer.concat(caller.received.map((f) => f.payload));
    t.diagnostic(`model sent ${sent.length} bytes as ${formats.at(-1)}; the caller got ${got.length}`);
    // Byte-exact: what the bot forwarded is what the caller got (callstream frames it in 160s;
    // only the last frame may be completed with μ-law silence). The one exception is G.711's
    // negative zero: the pipeline decodes and re-encodes, so 0x7F comes out as 0xFF, the same
    // sample (codec/g711.hpp).
    const expected = Buffer.from(sent.map((b) => (b === 0x7f ? 0xff : b)));
    assert.deepEqual(got.subarray(0, sent.length), expected);
    assert.ok(got.subarray(sent.length).every((b) => b === 0xff));
    // The marks the SDK puts behind its audio come back to it once the caller heard them.
    await caller.waitFor(() => marksBack.length > 0, 'a mark echoed to the bot');
    await caller.stop();
  } finally {
    for (const s of sessions) s.close();
    assert.equal(await server.stop(), 0, server.log());
    await standin.close();
    await new Promise((r) => wss.close(r));
  }
});

function sentBytes(conn) {
  return conn.sent.filter((e) => e.type === 'response.output_audio.delta')
    .reduce((n, e) => n + Buffer.from(e.delta, 'base64').length, 0);
}
