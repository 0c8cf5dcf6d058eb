// README's wscat session, typed line by line into the real wscat against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startServer } from './js/server.mjs';

const sid = 'MZ22222222222222222222222222222222';
// 160 μ-law bytes (20 ms): 0x80..0xFF then 0x00..0x1F, so no negative zero (0x7F) to normalise.
const frame = Buffer.from([...Array(128).keys()].map((i) => 0x80 + i).concat([...Array(32).keys()]));
const lines = [
  '{"event":"connected","protocol":"Call","version":"1.0.0"}',
  `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC11111111111111111111111111111111","streamSid":"${sid}","callSid":"CA33333333333333333333333333333333","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"${sid}"}`,
  `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"${frame.toString('base64')}"},"streamSid":"${sid}"}`,
  `{"event":"stop","sequenceNumber":"3","streamSid":"${sid}"}`,
];

test('wscat typed session gets its media frame echoed', async () => {
  const server = await startServer();
  try {
    const wscat = path.join(process.env.NODE_PATH, 'wscat', 'bin', 'wscat');
    const child = spawn(process.execPath, [wscat, '-c', `ws://127.0.0.1:${server.port}/media-stream`]);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // Type only once wscat is connected, as a person would: the server has answered its upgrade.
    const upgraded = 'callstream_http_requests_total{route="/media-stream",status="101"} 1';
    for (let i = 0; ; ++i) {
      const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      if (metrics.includes(upgraded)) break;
      if (i > 300) throw new Error(`wscat did not connect: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const line of lines) {
      child.stdin.write(line + '\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    const timer = setTimeout(() => child.kill(), 15000);
    await exited; // the server closes the socket after stop, which ends wscat
    clearTimeout(timer);
    const echoed = `{"event":"media","streamSid":"${sid}","media":{"payload":"${frame.toString('base64')}"}}`;
    assert.ok(out.includes(echoed), `wscat printed:\n${out}`);
    assert.match(server.log(), /stream_closed .*reason=stop frames_in=1 frames_out=1/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
