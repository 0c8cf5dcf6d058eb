// Starts the real callstream binary on a free port for JavaScript end-to-end tests.
import { spawn } from 'node:child_process';

// The environment a test server runs with: the caller's, minus every TWILIO_* and CALLSTREAM_*
// variable (a developer's real credentials or settings must not change what a test sees), plus
// `env`.
export function serverEnv(env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(
    ([k]) => !k.startsWith('TWILIO_') && !k.startsWith('CALLSTREAM_')));
  return { ...clean, ...env };
}

export async function startServer(args = [], env = {}) {
  const bin = process.env.CALLSTREAM_BIN;
  if (!bin) throw new Error('CALLSTREAM_BIN is not set (run through ctest)');
  const child = spawn(bin, ['--host', '127.0.0.1', '--port', '0', '--threads', '2', ...args], {
    env: serverEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`callstream did not start: ${log}`)), 15000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening .*port=(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`callstream exited (${code}): ${log}`)));
  });
  return {
    port,
    log: () => log,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.on('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    }),
  };
}
