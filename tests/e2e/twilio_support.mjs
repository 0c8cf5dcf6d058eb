// Starts the real callstream binary for end-to-end tests and finds the port it bound.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

import { serverEnv } from './js/server.mjs';
import { makeCertificates, startStandin } from './twilio_standin.mjs';

export const ACCOUNT_SID = 'AC' + '0123456789abcdef'.repeat(2);
export const AUTH_TOKEN = 'test-auth-token-7f3a';
export const API_TOKEN = 'test-api-token-91c2';
export const PUBLIC_URL = 'https://callstream.example.test';
// What a callstream placing calls through the stand-in needs: its environment (credentials and
// API token) and its flags (public URL, the stand-in's base and CA).
export const ACCOUNT_ENV = { TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    CALLSTREAM_API_TOKEN: API_TOKEN, TWILIO_FROM: 'callstream' };
export const standinArgs = (standin) => ['--public-url', PUBLIC_URL, '--twilio-api-base',
    standin.base, '--twilio-ca-file', standin.caFile];

// The HTTPS Calls API stand-in for ACCOUNT_SID/AUTH_TOKEN, answering 'ok'.
export async function startAccountStandin() {
    const standin = await startStandin({ accountSid: ACCOUNT_SID, username: ACCOUNT_SID,
        password: AUTH_TOKEN, dir: makeCertificates() });
    standin.mode = 'ok';
    return standin;
}

// Spawns callstream on 127.0.0.1 with a free port; resolves when it logs "listening".
// `env` replaces the Twilio/callstream variables entirely so the host environment cannot leak in.
export function startCallstream(args, env = {}) {
    const bin = process.env.CALLSTREAM_BIN;
    if (!bin) {
        throw new Error('CALLSTREAM_BIN is not set (run through ctest)');
    }
    const proc = spawn(bin, ['--host', '127.0.0.1', '--port', '0', '--threads', '2', ...args], {
        env: serverEnv(env),
        stdio: ['ignore', 'ignore', 'pipe'],
    });
    let logs = '';
    let started = false;
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`callstream did not start:\n${logs}`));
        }, 10000);
        proc.on('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`callstream exited with ${code}:\n${logs}`));
        });
        proc.stderr.on('data', (d) => {
            logs += d.toString();
            const m = /listening .*port=(\d+)/.exec(logs);
            if (m && !started) {
                started = true;
                clearTimeout(timer);
                proc.removeAllListeners('exit');
                const port = Number(m[1]);
                resolve({
                    proc,
                    port,
                    base: `http://127.0.0.1:${port}`,
                    logs: () => logs,
                    stop: () => new Promise((done) => {
                        if (proc.exitCode !== null || proc.signalCode !== null) {
                            return done(proc.exitCode ?? proc.signalCode);
                        }
                        proc.on('exit', (code) => done(code));
                        proc.kill('SIGTERM');
                    }),
                });
            }
        });
    });
}

// POST JSON to /make-call with the bearer token (or `token`), returning {status, json}.
export async function makeCall(base, body, token = API_TOKEN) {
    const headers = { 'content-type': 'application/json' };
    if (token !== null) {
        headers.authorization = `Bearer ${token}`;
    }
    const res = await fetch(`${base}/make-call`, {
        method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
        json = JSON.parse(text);
    } catch {
        json = { raw: text };
    }
    return { status: res.status, json };
}

// A stream that runs start..stop as Twilio would send it (signed with `signature` when given),
// resolving with the close code the server sent.
export function runStream(base, { signature, callSid, streamSid, customParameters = {}, accountSid = ACCOUNT_SID }) {
    const WebSocket = createRequire(process.env.NODE_PATH + '/')('ws');
    return new Promise((resolve, reject) => {
        const headers = signature === undefined ? {} : { 'X-Twilio-Signature': signature };
        const ws = new WebSocket(base.replace('http://', 'ws://') + '/media-stream', { headers });
        ws.on('open', () => {
            ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
            ws.send(JSON.stringify({
                event: 'start', sequenceNumber: '1', streamSid,
                start: {
                    accountSid, streamSid, callSid, tracks: ['inbound'], customParameters,
                    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
                },
            }));
            ws.send(JSON.stringify({ event: 'stop', sequenceNumber: '2', streamSid }));
        });
        ws.on('close', (code) => resolve(code));
        ws.on('error', reject);
    });
}
