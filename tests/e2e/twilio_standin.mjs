// A local HTTPS stand-in for Twilio's Calls API, for end-to-end tests.
//
// It generates a throw-away CA and a server certificate for 127.0.0.1/localhost with openssl
// into a temp dir, listens on a free port, checks every request the way Twilio would (method,
// path /2010-04-01/Accounts/AC…/Calls.json, Basic auth, form fields) and answers like Twilio:
// 201 with a call resource, or Twilio's error JSON {code, message, more_info, status}.
// Failure modes are selected with `standin.mode`:
//   'ok'           201 call resource (200 for a hangup)
//   'auth'         401 code 20003
//   'invalid_to'   400 code 21211
//   'server_error' 500 with an HTML body (as a proxy in front of Twilio might send)
//   'slow'         answers only after `slowMs` (longer than the client's timeout)
// and "connection refused" is `await standin.close()` (nothing listens on the port any more).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function openssl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA and a server certificate it signed, for 127.0.0.1 and localhost, in a new temp dir.
export function makeCertificates() {
    const dir = mkdtempSync(join(tmpdir(), 'callstream-standin-'));
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out',
        'ca.pem', '-days', '2', '-subj', '/CN=callstream test CA',
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out',
        'server.csr', '-subj', '/CN=localhost'], dir);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'], dir);
    return dir;
}

function hex(n) {
    return randomBytes(n).toString('hex');
}

export async function startStandin({ accountSid, username, password, dir = undefined } = {}) {
    const certDir = dir ?? makeCertificates();
    const standin = {
        mode: 'ok',
        slowMs: 3000,
        requests: [],   // {method, path, auth, contentType, form: [[k, v]...], body}
        violations: [], // what Twilio would have refused for reasons we did not intend
        connections: 0, // TLS connections accepted (keep-alive reuse keeps this low)
        caFile: join(certDir, 'ca.pem'),
        port: 0,
        dir: certDir,
    };
    const expectedAuth = 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
    const callsPath = `/2010-04-01/Accounts/${accountSid}/Calls.json`;
    const hangupPath = new RegExp(`^/2010-04-01/Accounts/${accountSid}/Calls/(CA[0-9a-f]{32})\\.json$`);

    const server = https.createServer({
        key: readFileSync(join(certDir, 'server.key')),
        cert: readFileSync(join(certDir, 'server.pem')),
    });
    server.keepAliveTimeout = 5000;
    server.on('secureConnection', () => { standin.connections += 1; });
    server.on('request', (req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            const form = [...new URLSearchParams(body).entries()];
            const record = {
                method: req.method, path: req.url, auth: req.headers.authorization,
                contentType: req.headers['content-type'], form, body,
            };
            standin.requests.push(record);
            const send = (status, json) => {
                const text = typeof json === 'string' ? json : JSON.stringify(json);
                res.writeHead(status, {
                    'content-type': typeof json === 'string' ? 'text/html' : 'application/json',
                    'content-length': Buffer.byteLength(text),
                });
                res.end(text);
            };
            const twilioError = (status, code, message) => send(status, {
                code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status,
            });
            const get = (k) => form.filter(([n]) => n === k).map(([, v]) => v);

            if (req.method !== 'POST') {
                standin.violations.push(`method ${req.method}`);
                return twilioError(405, 20004, 'Method not allowed');
            }
            if (req.headers.authorization !== expectedAuth) {
                standin.violations.push(`authorization ${req.headers.authorization}`);
                return twilioError(401, 20003, 'Authenticate');
            }
            if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
                standin.violations.push(`content-type ${req.headers['content-type']}`);
            }
            const hang = hangupPath.exec(req.url);
            if (req.url !== callsPath && !hang) {
                standin.violations.push(`path ${req.url}`);
                return twilioError(404, 20404, 'The requested resource was not found');
            }
            const respond = () => {
                switch (standin.mode) {
                case 'auth': return twilioError(401, 20003, 'Authenticate');
                case 'invalid_to':
                    return twilioError(400, 21211, `The 'To' number ${get('To')[0]} is not a valid phone number.`);
                case 'server_error': return send(500, '<html><body>Internal Server Error</body></html>');
                default: break;
                }
                if (hang) {
                    if (get('Status')[0] !== 'completed') {
                        standin.violations.push(`hangup Status ${get('Status')}`);
                    }
                    return send(200, { sid: hang[1], account_sid: accountSid, status: 'completed' });
                }
                for (const k of ['To', 'From']) {
                    if (get(k).length !== 1) {
                        standin.violations.push(`${k} sent ${get(k).length} times`);
                    }
                }
                if (get('Twiml').length + get('Url').length !== 1) {
                    standin.violations.push('exactly one of Twiml and Url is needed');
                }
                if (get('Twiml')[0] && get('Twiml')[0].length > 4000) {
                    standin.violations.push('Twiml over 4000 characters');
                }
                if (get('Url')[0] && get('Url')[0].length > 4000) {
                    standin.violations.push('Url over 4000 characters');
                }
                const sid = 'CA' + hex(16);
                return send(201, {
                    sid, account_sid: accountSid, status: 'queued', direction: 'outbound-api',
                    to: get('To')[0], from: get('From')[0], api_version: '2010-04-01',
                    start_time: null, end_time: null, price: null, queue_time: '0',
                    uri: `/2010-04-01/Accounts/${accountSid}/Calls/${sid}.json`,
                    subresource_uris: { streams: `/2010-04-01/Accounts/${accountSid}/Calls/${sid}/Streams.json` },
                });
            };
            if (standin.mode === 'slow') {
                const t = setTimeout(respond, standin.slowMs);
                res.on('close', () => clearTimeout(t));
            } else {
                respond();
            }
        });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    standin.port = server.address().port;
    standin.base = `https://127.0.0.1:${standin.port}`;
    // Twilio's servers also drop idle keep-alive connections; tests do it on demand to see the
    // client notice and reconnect.
    standin.dropIdleConnections = () => server.closeIdleConnections();
    let closed = null;
    standin.close = () => {
        closed ??= new Promise((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
        });
        return closed;
    };
    standin.cleanup = () => rmSync(certDir, { recursive: true, force: true });
    return standin;
}
