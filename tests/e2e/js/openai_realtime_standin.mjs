// A local stand-in for the OpenAI Realtime API over WebSocket, written from the documented event
// schemas (GA interface: session.created/update/updated, input_audio_buffer.append,
// speech_started/stopped, response.created/output_audio.delta/output_audio.done/done,
// response.cancel, conversation.item.truncate/truncated, error).
//
// What it does like the real service:
//   - sends session.created with the GA defaults (audio/pcm 24 kHz both ways) on connect, and
//     answers every session.update with session.updated holding the full effective session; only
//     the fields sent change;
//   - decodes every append in the session's input format and runs a simple server VAD: the first
//     loud 20 ms of caller audio gives input_audio_buffer.speech_started (audio_start_ms on the
//     input timeline), 500 ms of quiet gives speech_stopped; with interrupt_response (default) a
//     speech start cancels the active response (response.done status cancelled, turn_detected);
//   - streams assistant audio (a 440 Hz tone) in the session's output format, faster than real
//     time, as response.output_audio.delta of one assistant item;
//   - response.cancel with nothing active, and a truncate of an unknown item or past the item's
//     audio, are answered with `error` events as documented.
// Test knobs (set on the returned object, or per connection in onConnection):
//   speakOnSessionReady  seconds of assistant audio to stream after the first session.updated
//   speedup              how much faster than real time deltas are sent (default 4)
//   deltaMs              audio per delta (default 100)
//   lateDeltas           deltas of the interrupted item still sent after speech_started (the
//                        ones in flight on the wire); they carry a 2 kHz tone so a caller can tell
//   holdUpdatedMs        delay before session.updated is sent (caller audio then arrives first)
//   hostile              per-connection misbehaviour: 'malformed_json' | 'bad_base64' |
//                        'format_mismatch' | 'error_events' | 'session_expired' | 'binary'
import { createRequire } from 'node:module';

const { WebSocketServer } = createRequire(process.env.NODE_PATH + '/')('ws');

const TONE_HZ = 440;
export const LATE_TONE_HZ = 2000;

// G.711 μ-law, as ITU-T G.191 (enough for test signals).
export function linearToUlaw(sample) {
  const BIAS = 0x84;
  let sign = 0;
  let s = sample;
  if (s < 0) { s = -s; sign = 0x80; }
  if (s > 32635) s = 32635;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}
export function ulawToLinear(code) {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return (u & 0x80) ? 0x84 - t : t - 0x84;
}

// `ms` of a tone at `hz` in `format` ('pcmu' at 8 kHz or 'pcm24' PCM16 LE at 24 kHz), starting
// at sample `phase` so consecutive chunks join without a click.
export function tone(format, ms, hz, phase = 0, amplitude = 8000) {
  const rate = format === 'pcm24' ? 24000 : 8000;
  const n = (rate * ms) / 1000;
  if (format === 'pcm24') {
    const buf = Buffer.alloc(n * 2);
    for (let i = 0; i < n; i++) {
      buf.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * hz * (phase + i)) / rate)), i * 2);
    }
    return buf;
  }
  const buf = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    buf[i] = linearToUlaw(Math.round(amplitude * Math.sin((2 * Math.PI * hz * (phase + i)) / rate)));
  }
  return buf;
}

// RMS of audio in a session format.
export function rms(format, buf) {
  let sum = 0;
  let n = 0;
  if (format === 'pcm24') {
    for (let i = 0; i + 1 < buf.length; i += 2) { const s = buf.readInt16LE(i); sum += s * s; n++; }
  } else {
    for (const b of buf) { const s = ulawToLinear(b); sum += s * s; n++; }
  }
  return n ? Math.sqrt(sum / n) : 0;
}

function formatOf(f) {
  if (!f) return 'unknown';
  if (f.type === 'audio/pcmu') return 'pcmu';
  if (f.type === 'audio/pcm' && (f.rate ?? 24000) === 24000) return 'pcm24';
  return 'unknown';
}
const bytesPerMs = (format) => (format === 'pcm24' ? 48 : 8);

function defaultSession(id, model) {
  return {
    type: 'realtime', object: 'realtime.session', id, model,
    output_modalities: ['audio'], instructions: 'You are a helpful assistant.',
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 }, transcription: null, noise_reduction: null,
        turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300,
          silence_duration_ms: 500, create_response: true, interrupt_response: true },
      },
      output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1.0 },
    },
    tools: [], tool_choice: 'auto', max_output_tokens: 'inf',
  };
}

// Deep merge of what a session.update sent (null clears, objects merge, the rest replaces).
function merge(target, patch) {
  for (const [k, v] of Object.entries(patch)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && target[k] && typeof target[k] === 'object') {
      merge(target[k], v);
    } else {
      target[k] = v;
    }
  }
}

export async function startRealtimeStandin(options = {}) {
  const standin = {
    speakOnSessionReady: 0,
    speedup: 4,
    deltaMs: 100,
    lateDeltas: 0,
    holdUpdatedMs: 0,
    loudRms: 2000,
    hostile: null,
    onConnection: null, // (conn) => void: per-connection knobs
    connections: [],
    port: 0,
    ...options,
  };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => wss.once('listening', resolve));
  standin.port = wss.address().port;
  standin.url = `ws://127.0.0.1:${standin.port}/v1/realtime?model=gpt-realtime`;
  let nextId = 1;
  const id = (prefix) => `${prefix}_${String(nextId++).padStart(6, '0')}`;

  wss.on('connection', (ws, request) => {
    const conn = {
      ws, url: request.url, headers: request.headers, received: [], sent: [],
      session: defaultSession(id('sess'), new URL(request.url, 'ws://x').searchParams.get('model')),
      hostile: standin.hostile, speakOnSessionReady: standin.speakOnSessionReady,
      lateDeltas: standin.lateDeltas,
      inputMs: 0,            // caller audio appended so far, on the input timeline
      inputBytes: 0,
      appends: [],           // {ms, rms} per append, in order
      speaking: false, quietMs: 0, speechStartedAtMs: null,
      response: null,        // {id, itemId, timer, sentMs, status}
      items: new Map(),      // assistant item id -> audio ms sent
      truncates: [], errors: [], updates: 0, closed: false,
      speechStartedWall: null,
    };
    standin.connections.push(conn);
    standin.onConnection?.(conn);

    const send = (event) => {
      if (ws.readyState !== ws.OPEN) return;
      event.event_id ??= id('event');
      conn.sent.push(event);
      ws.send(JSON.stringify(event));
    };
    const error = (code, message, type = 'invalid_request_error') =>
      send({ type: 'error', error: { type, code, message, param: null, event_id: null } });
    conn.send = send;
    conn.sendRaw = (data, binary = false) => ws.send(data, { binary });

    const outFormat = () => formatOf(conn.session.audio.output.format);
    const inFormat = () => formatOf(conn.session.audio.input.format);

    function delta(response, audio) {
      send({ type: 'response.output_audio.delta', response_id: response.id, item_id: response.itemId,
        output_index: 0, content_index: 0, delta: audio.toString('base64') });
      const ms = audio.length / bytesPerMs(outFormat());
      response.sentMs += ms;
      conn.items.set(response.itemId, (conn.items.get(response.itemId) ?? 0) + ms);
    }

    function finish(response, status, reason) {
      if (conn.response !== response) return;
      clearTimeout(response.timer);
      conn.response = null;
      send({ type: 'response.output_audio.done', response_id: response.id, item_id: response.itemId,
        output_index: 0, content_index: 0 });
      send({ type: 'response.done', response: { object: 'realtime.response', id: response.id, status,
        status_details: reason ? { type: status, reason } : null, output: [], usage: null } });
    }

    // Streams `seconds` of tone as one assistant item, `speedup` times faster than real time.
    conn.speak = (seconds) => {
      if (conn.response) finish(conn.response, 'cancelled', 'client_cancelled');
      const response = { id: id('resp'), itemId: id('item'), sentMs: 0, phase: 0, timer: null };
      conn.response = response;
      send({ type: 'response.created', response: { object: 'realtime.response', id: response.id,
        status: 'in_progress', output: [] } });
      send({ type: 'conversation.item.added', item: { id: response.itemId, type: 'message',
        role: 'assistant', content: [] } });
      const total = seconds * 1000;
      const tick = () => {
        if (conn.response !== response) return;
        const ms = Math.min(standin.deltaMs, total - response.sentMs);
        if (ms <= 0) { finish(response, 'completed'); return; }
        const format = outFormat();
        const rate = format === 'pcm24' ? 24000 : 8000;
        delta(response, tone(format, ms, TONE_HZ, response.phase));
        response.phase += (rate * ms) / 1000;
        response.timer = setTimeout(tick, ms / standin.speedup);
      };
      tick();
    };

    function speechStarted() {
      conn.speaking = true;
      conn.speechStartedAtMs = conn.inputMs;
      conn.speechStartedWall = Date.now();
      const interrupted = conn.response;
      send({ type: 'input_audio_buffer.speech_started', audio_start_ms: Math.max(0, conn.inputMs - 20),
        item_id: id('item') });
      if (interrupted) {
        // Deltas already on the wire when the server noticed the speech.
        for (let i = 0; i < conn.lateDeltas; i++) {
          delta(interrupted, tone(outFormat(), standin.deltaMs, LATE_TONE_HZ));
        }
        const vad = conn.session.audio.input.turn_detection;
        if (vad?.interrupt_response !== false) finish(interrupted, 'cancelled', 'turn_detected');
      }
    }

    function append(event) {
      let audio;
      try {
        audio = Buffer.from(event.audio ?? '', 'base64');
      } catch {
        return error('invalid_value', 'audio is not base64');
      }
      const format = inFormat();
      const ms = audio.length / bytesPerMs(format);
      conn.inputBytes += audio.length;
      const level = rms(format, audio);
      conn.appends.push({ ms: conn.inputMs, rms: level, bytes: audio.length });
      conn.inputMs += ms;
      const vad = conn.session.audio.input.turn_detection;
      if (!vad) return;
      if (level >= standin.loudRms) {
        conn.quietMs = 0;
        if (!conn.speaking) speechStarted();
      } else if (conn.speaking) {
        conn.quietMs += ms;
        if (conn.quietMs >= (vad.silence_duration_ms ?? 500)) {
          conn.speaking = false;
          send({ type: 'input_audio_buffer.speech_stopped', audio_end_ms: conn.inputMs, item_id: id('item') });
        }
      }
    }

    function sessionUpdated() {
      const effective = structuredClone(conn.session);
      if (conn.hostile === 'format_mismatch') {
        // What a provider update once did to Twilio calls: PCM at 24 kHz whatever was asked.
        effective.audio.output.format = { type: 'audio/pcm', rate: 24000 };
      }
      send({ type: 'session.updated', session: effective });
      conn.updates++;
      if (conn.updates === 1) {
        if (conn.hostile === 'malformed_json') conn.sendRaw('{"type":"response.output_audio.delta","delta":');
        if (conn.hostile === 'binary') conn.sendRaw(Buffer.from([1, 2, 3]), true);
        if (conn.hostile === 'bad_base64') {
          send({ type: 'response.created', response: { id: 'resp_bad', status: 'in_progress' } });
          send({ type: 'response.output_audio.delta', response_id: 'resp_bad', item_id: 'item_bad',
            output_index: 0, content_index: 0, delta: '@@not*base64@@' });
        }
        if (conn.hostile === 'error_events') {
          error('invalid_value', 'the stand-in reports a recoverable error');
          error(null, 'the stand-in reports a server error', 'server_error');
        }
        if (conn.hostile === 'session_expired') {
          error('session_expired', 'Your session hit the maximum duration of 60 minutes.');
          setTimeout(() => ws.close(1001, 'session expired'), 20);
        }
        if (conn.speakOnSessionReady > 0 && !['malformed_json', 'binary', 'bad_base64'].includes(conn.hostile)) {
          conn.speak(conn.speakOnSessionReady);
        }
      }
    }

    ws.on('message', (data, isBinary) => {
      if (isBinary) return error('invalid_request_error', 'binary frames are not supported');
      let event;
      try {
        event = JSON.parse(data.toString());
      } catch {
        return error('invalid_json', 'could not parse the client event');
      }
      conn.received.push(event);
      switch (event.type) {
        case 'session.update': {
          if (event.session?.type && event.session.type !== 'realtime') {
            return error('invalid_value', "session.type must be 'realtime'");
          }
          for (const dir of ['input', 'output']) {
            const f = event.session?.audio?.[dir]?.format;
            if (f && (f.type === 'audio/pcmu' || f.type === 'audio/pcma') && 'rate' in f) {
              return error('unknown_parameter', `Unknown parameter: 'session.audio.${dir}.format.rate'.`);
            }
          }
          merge(conn.session, event.session ?? {});
          if (standin.holdUpdatedMs > 0) return void setTimeout(sessionUpdated, standin.holdUpdatedMs);
          return sessionUpdated();
        }
        case 'input_audio_buffer.append':
          return append(event);
        case 'response.create':
          return conn.speak(standin.speakOnResponseCreate ?? 2);
        case 'response.cancel':
          if (!conn.response) return error('response_cancel_not_active', 'Cancellation failed: no active response found');
          return finish(conn.response, 'cancelled', 'client_cancelled');
        case 'conversation.item.truncate': {
          const length = conn.items.get(event.item_id);
          conn.truncates.push({ ...event, at: Date.now(), itemMs: length });
          if (length === undefined) return error('item_not_found', `Item ${event.item_id} not found`);
          if (!(event.audio_end_ms >= 0) || event.audio_end_ms > length) {
            return error('invalid_value', `Audio content of ${length}ms is already shorter than ${event.audio_end_ms}ms`);
          }
          return send({ type: 'conversation.item.truncated', item_id: event.item_id, content_index: 0,
            audio_end_ms: event.audio_end_ms });
        }
        default:
          return undefined;
      }
    });
    ws.on('close', () => {
      conn.closed = true;
      if (conn.response) clearTimeout(conn.response.timer);
    });
    // Like the service, the first server event is session.created.
    send({ type: 'session.created', session: structuredClone(conn.session) });
  });

  standin.close = () => new Promise((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  });
  return standin;
}
