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
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { QUICK, quantile, round, sleep, startNats, startTap, until } from './lib.mjs';

const BAR_MS = 100;

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

const ms3 = (x) => (Number.isFinite(x) ? round(x, 3) : null);

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
    nats = await startNats();
    const file = join(home, 'logs/alerts/alerts.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    tap = await startTap({ home, natsUrl: nats.url, attach: false, label: 'alerts' });
    if (!await until(() => tap.logs.some((l) => /following Wazuh's alerts/.test(String(l.msg))), 10_000)) throw new Error('the tap does not follow alerts.json');

    nc = await connect({ servers: nats.url });
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
    for (let seq = 1; seq <= total; seq++) {
      const line = alertLine(seq);
      sent.set(seq, performance.now());
      appendFileSync(file, line);
      await sleep(intervalMs);
    }
    const end = Date.now() + timeoutMs;
    while (got < total && Date.now() < end) await new Promise((r) => { wake = r; setTimeout(r, 100); });
    const received = lat.length;
    const p99 = quantile(lat, 0.99);
    return {
      name: 'alerts-latency', n, received, missing: n - received, interval_ms: intervalMs,
      p50_ms: ms3(quantile(lat, 0.5)), p99_ms: ms3(p99), max_ms: ms3(lat.reduce((a, b) => Math.max(a, b), -Infinity)),
      mean_ms: ms3(received ? lat.reduce((a, b) => a + b, 0) / received : null),
      bar_ms: BAR_MS, ok: received === n && p99 < BAR_MS,
    };
  } finally {
    await nc?.close().catch(() => {});
    await tap?.stop();
    await nats?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** The `make bench` measurement: 1,000 alerts 5 ms apart (300 in quick mode). */
export async function run({ quick = QUICK } = {}) {
  const r = await benchAlertsLatency({ n: quick ? 300 : 1000, intervalMs: 5 });
  return {
    rows: [{
      measure: 'alert latency, alerts.json append → subscriber, p50 / p99 / max', value: `${round(r.p50_ms, 1)} / ${round(r.p99_ms, 1)} / ${round(r.max_ms, 1)}`,
      unit: 'ms', bar: 'p99 < 100 ms (issue 8)', pass: r.ok, note: `${r.received}/${r.n} alerts, one write() each, ${r.interval_ms} ms apart`,
    }],
    details: r,
  };
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
