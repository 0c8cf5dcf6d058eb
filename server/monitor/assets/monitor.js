// The monitor page: trades the API token for a monitor token, keeps /monitor/events open and
// redraws the call table from each snapshot (at most 10 a second), keeps a timeline of events,
// and runs the actions (hang up, play, clear) through callstream's HTTP API with the API token.
// In a cluster the list holds every instance's calls; listening opens /i/{instance}/monitor/…,
// which HAProxy routes to the instance holding the call, and the actions go to any instance,
// which forwards them to the owner over the cluster bus (docs/monitor.md).
// The API token comes from the URL fragment (#token=…, never sent to the server) or the form,
// and is kept in sessionStorage for this tab only.
import { Listener } from './listen.js';

const $ = (sel, root = document) => root.querySelector(sel);
const state = { apiToken: '', socket: null, rows: new Map(), seenEvents: new Map(), listener: null,
                listening: '', snapshots: 0, lastSnapshot: null };
window.callstreamMonitor = state; // for operators' consoles and the browser tests

function wsUrl(path, token) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}?token=${encodeURIComponent(token)}`;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${state.apiToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function monitorToken() {
  return (await api('POST', '/monitor/token')).token;
}

function setStatus(text, kind) {
  const s = $('#status');
  s.textContent = text;
  s.dataset.state = kind;
}

async function connect() {
  let token;
  try {
    token = await monitorToken();
  } catch (e) {
    setStatus('token refused', 'error');
    $('#login').hidden = false;
    console.log(`monitor: ${e.message}`);
    return;
  }
  $('#login').hidden = true;
  const ws = new WebSocket(wsUrl('/monitor/events', token));
  state.socket = ws;
  ws.onopen = () => setStatus('live', 'live');
  ws.onmessage = (e) => render(expand(JSON.parse(e.data)));
  ws.onclose = () => {
    setStatus('reconnecting', 'error');
    if (state.socket === ws) setTimeout(connect, 1000); // with a fresh token
  };
}

const fmtDuration = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

function meter(row, leg, reading) {
  if (!reading) { // another instance's call: its meters stay on its owner
    $(`.db[data-leg="${leg}"]`, row).textContent = '';
    return;
  }
  const db = reading.level_dbfs;
  const el = $(`.meter[data-leg="${leg}"]`, row);
  el.dataset.level = db.toFixed(1);
  el.dataset.hot = String(db > -6);
  $('.bar', el).style.width = `${Math.max(0, Math.min(100, (db + 60) * 100 / 60))}%`;
  $(`.db[data-leg="${leg}"]`, row).textContent = db <= -99 ? '–∞' : `${db.toFixed(0)} dB`;
  $(`.speaking[data-leg="${leg}"]`, row).dataset.on = String(reading.speaking);
}

function makeRow(call) {
  const row = $('#call-row').content.firstElementChild.cloneNode(true);
  row.dataset.streamSid = call.stream_sid;
  row.dataset.callSid = call.call_sid;
  row.dataset.instance = call.instance ?? '';
  row.dataset.remote = String(Boolean(call.remote));
  $('.instance', row).textContent = call.instance || '–';
  $('.sid', row).textContent = `${call.call_sid.slice(0, 12)}…`;
  $('.sid', row).title = `${call.call_sid}, stream ${call.stream_sid}`;
  $('.parties', row).textContent = `${call.from || '?'} → ${call.to || '?'}`;
  $('.app', row).textContent = call.app + (call.receive_only ? ' (fork)' : '');
  row.addEventListener('click', (e) => action(e, call));
  $('#calls tbody').append(row);
  return row;
}

// A "levels" message carries [stream_sid, duration_ms, caller dBFS, caller speaking, outbound
// dBFS, outbound speaking, frames in, out, dropped, listening, events] per call; the facts
// (from, to, app, …) come from the last full "snapshot", sent once a second and whenever a call
// is new.
// Other instances' calls (cluster mode, "remote": true) come only in full snapshots, with what
// the cluster registry holds, and are carried over into the levels messages in between.
const facts = new Map();
let remote = [];
function expand(msg) {
  if (msg.type === 'snapshot') {
    facts.clear();
    for (const c of msg.calls) facts.set(c.stream_sid, c);
    remote = msg.calls.filter((c) => c.remote);
    return msg;
  }
  const now = Date.now();
  return {
    ...msg,
    instance: state.lastSnapshot?.instance,
    cluster: state.lastSnapshot?.cluster,
    calls: [...msg.calls.map(([sid, duration, cdb, cs, odb, os, fin, fout, fdrop, listening, events]) => ({
      call_sid: '?', from: '', to: '', app: '', bridge: null, ...facts.get(sid),
      stream_sid: sid, duration_ms: duration,
      caller: { level_dbfs: cdb, speaking: cs === 1 }, outbound: { level_dbfs: odb, speaking: os === 1 },
      frames_in: fin, frames_out: fout, frames_dropped: fdrop, listening: listening === 1, events,
    })), ...remote.map((c) => ({ ...c, duration_ms: c.started ? now - c.started : 0 }))],
  };
}

function render(snapshot) {
  state.snapshots++;
  state.lastSnapshot = snapshot;
  $('#instance').textContent = snapshot.instance ? `instance ${snapshot.instance}` : '';
  const cluster = $('#cluster');
  cluster.hidden = !snapshot.cluster;
  document.body.dataset.cluster = String(Boolean(snapshot.cluster)); // shows the instance column
  if (snapshot.cluster) {
    cluster.dataset.state = snapshot.cluster.ok ? 'live' : 'error';
    cluster.textContent = snapshot.cluster.ok
      ? `cluster: ${snapshot.cluster.remote_calls} on other instances`
      : 'cluster unavailable: this instance\'s calls only';
    cluster.title = snapshot.cluster.error;
  }
  const live = new Set();
  for (const call of snapshot.calls) {
    live.add(call.stream_sid);
    let row = state.rows.get(call.stream_sid);
    if (!row) {
      if (call.call_sid === '?') continue; // its facts come with the next full snapshot
      row = makeRow(call);
      state.rows.set(call.stream_sid, row);
    }
    $('.duration', row).textContent = fmtDuration(call.duration_ms);
    $('.bridge', row).textContent = call.bridge ? `${call.bridge.upstream ?? ''} ${call.bridge.state ?? ''}` : '–';
    meter(row, 'caller', call.caller);
    meter(row, 'outbound', call.outbound);
    $('.frames', row).textContent = call.remote ? '–'
      : `${call.frames_in} / ${call.frames_out} / ${call.frames_dropped}`;
    row.dataset.listening = String(call.listening);
    timeline(call);
  }
  for (const [sid, row] of state.rows) {
    if (!live.has(sid)) {
      row.remove();
      state.rows.delete(sid);
      addTimeline(Date.now(), row.dataset.callSid, 'ended', '');
    }
  }
  $('#call-count').textContent = String(snapshot.calls.length);
  $('#no-calls').hidden = snapshot.calls.length > 0;
}

function timeline(call) {
  const seen = state.seenEvents.get(call.stream_sid) ?? 0;
  let last = seen;
  for (const e of call.events) {
    if (e.seq <= seen) continue;
    addTimeline(e.at, call.call_sid, e.kind, e.detail);
    last = Math.max(last, e.seq);
  }
  state.seenEvents.set(call.stream_sid, last);
}

function addTimeline(at, who, kind, detail) {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  const time = new Date(at).toISOString().slice(11, 23);
  li.append(`${time} ${who.slice(0, 12)}… `);
  const b = document.createElement('b');
  b.textContent = kind;
  li.append(b, ` ${detail}`);
  $('#timeline').prepend(li);
  while ($('#timeline').children.length > 200) $('#timeline').lastChild.remove();
}

async function action(e, call) {
  const button = e.target.closest('button[data-action]');
  if (!button) return;
  const row = e.currentTarget;
  try {
    switch (button.dataset.action) {
      case 'listen': await listen(call); break;
      case 'hangup':
        if (confirm(`Hang up ${call.call_sid}?`)) {
          await api('POST', `/calls/${call.call_sid}/hangup`);
          addTimeline(Date.now(), call.call_sid, 'hangup', 'asked');
        }
        break;
      case 'play': {
        const prompts = $('input[data-field="prompt"]', row).value || 'tone:440:500';
        await api('POST', `/streams/${call.stream_sid}/play`, { prompts });
        break;
      }
      case 'clear': await api('POST', `/streams/${call.stream_sid}/clear`); break;
    }
  } catch (err) {
    addTimeline(Date.now(), call.call_sid, 'error', err.message);
  }
}

// The listen socket's path: pinned to the call's instance in a cluster, plain otherwise.
export function listenPath(call, cluster) {
  const path = `/monitor/listen/${call.stream_sid}`;
  return cluster && call.instance ? `/i/${encodeURIComponent(call.instance)}${path}` : path;
}

async function listen(call) {
  stopListening();
  const token = await monitorToken();
  const listener = new Listener({
    url: wsUrl(listenPath(call, state.lastSnapshot?.cluster), token),
    onStats: (s) => {
      const f = (v) => (Number.isFinite(v) ? v.toFixed(0) : '–');
      $('#listen-latency').textContent = f(s.total);
      $('#listen-network').textContent = f(s.network);
      $('#listen-buffer').textContent = f(s.buffer);
      $('#listen-output').textContent = f(s.output);
    },
    onEnd: (code, reason) => {
      addTimeline(Date.now(), call.call_sid, 'listen-ended', `${code} ${reason}`);
      if (state.listener === listener) $('#listen-panel').hidden = true;
    },
  });
  state.listener = listener;
  state.listening = call.stream_sid;
  $('#listen-call').textContent = `${call.call_sid} (${call.from || '?'} → ${call.to || '?'})`;
  $('#listen-panel').hidden = false;
  await listener.start();
}

function stopListening() {
  if (state.listener) state.listener.stop();
  state.listener = null;
  state.listening = '';
  $('#listen-panel').hidden = true;
}

function start() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('callstream-api-token', fromHash);
    history.replaceState(null, '', location.pathname); // keep it out of the address bar
  }
  state.apiToken = sessionStorage.getItem('callstream-api-token') ?? '';
  $('#login').addEventListener('submit', (e) => {
    e.preventDefault();
    state.apiToken = $('#api-token').value.trim();
    sessionStorage.setItem('callstream-api-token', state.apiToken);
    connect();
  });
  $('#listen-stop').addEventListener('click', stopListening);
  if (state.apiToken) connect(); else { $('#login').hidden = false; setStatus('API token needed', 'error'); }
}
start();
