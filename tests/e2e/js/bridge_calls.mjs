// What the app=bridge end-to-end tests share: simulated Twilio calls with SIDs unique in the
// test process, /metrics read and parsed, and the bystander app=echo call each test keeps
// running to show that one call's upstream never disturbs another call.
import assert from 'node:assert/strict';

import { FakeTwilio, sid, sleep, waitFor } from './fake_twilio.mjs';

let nextCall = 1;

export function newCall(port, params) {
    const n = nextCall++;
    return new FakeTwilio(port, { callSid: sid('CA', n), streamSid: sid('MZ', n), params });
}

export async function metrics(base) {
    return (await fetch(`${base}/metrics`)).text();
}

export function metric(text, name) {
    const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
}

// /metrics once `name` reaches `atLeast`, or after 3 s as it then is. The server counts a
// stream's close when its session ends, which may be a moment after the client saw the close
// frame.
export async function metricsOnce(base, name, atLeast = 1) {
    let m = await metrics(base);
    for (const end = Date.now() + 3000; metric(m, name) < atLeast && Date.now() < end;) {
        await sleep(20);
        m = await metrics(base);
    }
    return m;
}

// A call that echoes for the whole test: it must keep receiving its own frames back.
export async function startBystander(port) {
    const b = newCall(port, { app: 'echo' });
    await b.open();
    b.streamAudio();
    return b;
}

export async function assertBystanderEchoes(b) {
    const before = b.received.length;
    await waitFor(() => b.received.length >= before + 10, 3000, 'bystander echo');
    assert.equal(b.closed, null, 'the bystander call was not closed');
}
