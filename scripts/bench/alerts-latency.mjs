#!/usr/bin/env node
// Latency of Wazuh's alerts through the tap (issue 8: under 100 ms): an alert line appended to
// logs/alerts/alerts.json → the tap (a real `wazuh-nats-tap run`, eBPF not attached: alerts do
// not go through the kernel) → a local nats-server → a subscriber. One line per write(), paced,
// so each alert is timed on its own; the clock is this process's, at both ends.
//
// As a module: `await benchAlertsLatency({ n, intervalMs })` returns a plain result object.
// Standalone: `node scripts/bench/alerts-latency.mjs [--n 1000] [--interval-ms 5]` prints it as
// JSON; exit 1 when alerts went missing or it could not run. Needs root (the tap opens its BPF
// object even detached), a built tree (`make build`) and nats-server.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BAR_MS = 100;

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/** Spawn and wait (bounded) until `ready` matches its output. */
async function started(cmd, args, ready, what, timeoutMs = 30_000) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${what} not ready after ${timeoutMs} ms:\n${out.slice(-2000)}`)), timeoutMs);
    const on = (d) => {
      out += d;
      if (out.length > 1e6) out = out.slice(-5e5);
      if (ready.test(out)) { clearTimeout(timer); res(); }
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.once('exit', (c) => { clearTimeout(timer); rej(new Error(`${what} exited (${c}):\n${out.slice(-2000)}`)); });
  });
  p.stdout.resume();
  p.stderr.resume();
  return p;
}

async function ended(p, ms = 10_000) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  await done;
  clearTimeout(t);
}

function alertLine(seq) {
  const now = new Date();
  return `${JSON.stringify({
    timestamp: now.toISOString().replace('Z', '+0000'),
    rule: { level: 10, description: 'sshd: authentication success.', id: '5715', firedtimes: seq, mail: false, groups: ['syslog', 'sshd', 'authentication_success'] },
    agent: { id: '001', name: 'agent1', ip: '10.0.0.1' }, manager: { name: 'bench' }, id: `${Math.floor(now / 1000)}.${seq}`,
    full_log: `Nov 27 12:00:00 agent1 sshd[${seq}]: Accepted password for admin from 192.168.1.50 port ${seq} ssh2`,
    decoder: { parent: 'sshd', name: 'sshd' }, data: { srcip: '192.168.1.50', srcport: String(seq), dstuser: 'admin' },
    location: '/var/log/auth.log',
  })}\n`;
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null);
const ms3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);

/**
 * @param {{ n?: number, intervalMs?: number, warmup?: number, timeoutMs?: number }} [opts]
 * @returns {Promise<{ name: string, n: number, received: number, missing: number, interval_ms: number,
 *   p50_ms: number|null, p99_ms: number|null, max_ms: number|null, mean_ms: number|null, bar_ms: number, ok: boolean }>}
 */
export async function benchAlertsLatency(opts = {}) {
  const n = opts.n ?? 1000;
  const intervalMs = opts.intervalMs ?? 5;
  const warmup = opts.warmup ?? 20;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  if (!Number.isSafeInteger(n) || n < 1 || n > 1e6) throw new RangeError('n: 1 to 1,000,000');
  // At least 1 ms: the writer shares this process's event loop with the subscriber, so a loop
  // that never yields would time its own blocking, not the tap.
  if (!(intervalMs >= 1 && intervalMs <= 1000)) throw new RangeError('intervalMs: 1 to 1000');

  const home = mkdtempSync(join(tmpdir(), 'wnt-bench-alerts-'));
  let nats = null;
  let tap = null;
  let nc = null;
  try {
    const port = await freePort();
    writeFileSync(join(home, 'nats.conf'), `listen: 127.0.0.1:${port}\n`);
    nats = await started('nats-server', ['-c', join(home, 'nats.conf')], /Server is ready/, 'nats-server');
    mkdirSync(join(home, 'etc'), { recursive: true });
    writeFileSync(join(home, 'etc/ossec.conf'), '<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n'
      + `    <server_url>nats://127.0.0.1:${port}</server_url>\n    <metrics>no</metrics>\n  </nats>\n</ossec_config>\n`);
    const file = join(home, 'logs/alerts/alerts.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    tap = await started(process.execPath, [join(ROOT, 'bin/wazuh-nats-tap.js'), 'run', '--home', home, '--no-attach',
      '--control-socket', join(home, 'tap.sock'), '--node', 'bench'], /following Wazuh's alerts/, 'the tap');

    nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    const sent = new Map();
    const lat = [];
    let got = 0;
    let wake = null;
    nc.subscribe('wazuh.security.alerts.>', {
      callback: (_e, m) => {
        const at = performance.now();
        const seq = Number(m.json().alert?.data?.srcport);
        const t0 = sent.get(seq);
        if (t0 === undefined) return;
        sent.delete(seq);
        got++;
        if (seq > warmup) lat.push(at - t0);
        wake?.();
      },
    });
    await nc.flush();
    const total = warmup + n;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    for (let seq = 1; seq <= total; seq++) {
      const line = alertLine(seq);
      sent.set(seq, performance.now());
      appendFileSync(file, line);
      await sleep(intervalMs);
    }
    const end = Date.now() + timeoutMs;
    while (got < total && Date.now() < end) await new Promise((r) => { wake = r; setTimeout(r, 100); });
    lat.sort((a, b) => a - b);
    const received = lat.length;
    const p99 = pct(lat, 0.99);
    return {
      name: 'alerts-latency', n, received, missing: n - received, interval_ms: intervalMs,
      p50_ms: ms3(pct(lat, 0.5)), p99_ms: ms3(p99), max_ms: ms3(lat.length ? lat[lat.length - 1] : null),
      mean_ms: ms3(received ? lat.reduce((a, b) => a + b, 0) / received : null),
      bar_ms: BAR_MS, ok: received === n && p99 !== null && p99 < BAR_MS,
    };
  } finally {
    await nc?.close().catch(() => {});
    await ended(tap);
    await ended(nats);
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : dflt;
  };
  benchAlertsLatency({ n: arg('--n', Number(process.env.BENCH_ALERTS ?? 1000)), intervalMs: arg('--interval-ms', 5) }).then(
    (r) => { console.log(JSON.stringify(r, null, 2)); process.exitCode = r.missing === 0 ? 0 : 1; },
    (e) => { console.error(`alerts-latency: ${e.message}`); process.exitCode = 1; },
  );
}
