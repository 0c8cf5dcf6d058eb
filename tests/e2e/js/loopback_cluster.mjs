// A loopback cluster for JavaScript end-to-end tests: redis-server, N callstream instances and
// HAProxy (configured by scripts/deploy/haproxy-config), each on free loopback ports of its
// own, started by the test and stopped after it. A missing tool fails with its Debian package.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startCallstream } from '../twilio_support.mjs';

const PACKAGES = { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools', haproxy: 'haproxy' };

function requireTools() {
    for (const [tool, pkg] of Object.entries(PACKAGES)) {
        try {
            execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
        } catch {
            throw new Error(`${tool} is missing: apt-get install ${pkg}`);
        }
    }
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(pred, ms, what) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (await pred()) return;
        await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}`);
}

function child(cmd, args) {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    return { proc, log: () => log,
        stop: () => new Promise((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done();
            proc.on('exit', () => done());
            proc.kill('SIGKILL');
        }) };
}

async function answers(url) {
    try {
        return (await fetch(url)).status === 200;
    } catch {
        return false;
    }
}

// `names`: the instances' --instance-id; `args`, `env`: for every instance.
export async function startCluster({ names = ['cs1', 'cs2'], args = [], env = {} } = {}) {
    requireTools();
    const dir = mkdtempSync(join(tmpdir(), 'callstream-cluster-'));
    const redisPort = await freePort();
    const redis = child('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no']);
    const redisCli = (...a) => execFileSync('redis-cli', ['-p', String(redisPort), ...a])
        .toString().trim();
    await until(() => { try { return redisCli('PING') === 'PONG'; } catch { return false; } },
        5000, 'redis-server');
    const instances = {};
    for (const name of names) {
        const agent = await freePort();
        const cs = await startCallstream(['--redis-url', `redis://127.0.0.1:${redisPort}`,
            '--instance-id', name, '--agent-port', String(agent), '--cluster-ttl', '2', ...args],
        env);
        await until(() => /redis_connected/.test(cs.logs()), 5000, `${name} reaching Redis`);
        instances[name] = { ...cs, name, agent };
    }
    const proxyPort = await freePort();
    const cfg = execFileSync(join(process.env.CALLSTREAM_SOURCE_DIR,
        'scripts/deploy/haproxy-config'), ['--inter', '300', '--bind', `127.0.0.1:${proxyPort}`,
        ...names.map((n) => `${n}=127.0.0.1:${instances[n].port}/${instances[n].agent}`)]);
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    const haproxy = child('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')]);
    const proxy = `http://127.0.0.1:${proxyPort}`;
    await until(() => answers(`${proxy}/healthz`), 10000, `haproxy:\n${haproxy.log()}`);
    await sleep(1000); // the first health and agent checks see every instance
    return {
        instances, proxy, proxyPort, redisCli,
        stopRedis: () => redis.stop(),
        logs: () => Object.values(instances).map((i) => `--- ${i.name}\n${i.logs()}`).join('\n') +
            `\n--- haproxy\n${haproxy.log()}`,
        stop: async () => {
            const codes = {};
            await haproxy.stop();
            for (const i of Object.values(instances)) codes[i.name] = await i.stop();
            await redis.stop();
            rmSync(dir, { recursive: true, force: true });
            return codes;
        },
    };
}

// One Prometheus counter's value from an instance's /metrics (0 when absent).
export async function metric(base, name) {
    const text = await (await fetch(`${base}/metrics`)).text();
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
}
