// The metrics endpoint as any local user meets it (docs/architecture.md: "reachable by every local
// user"): what a scrape costs the tap, and whether someone holding connections keeps Prometheus out.
// A scrape read the delivery statistics seven times (each sorting the 4,096 latency samples twice),
// nothing was cached, and every scraper got its own rendering: 32 connections scraping in a loop held
// the tap's event loop (status changes hundreds of ms late). At the cap the newest connection was
// refused: a user holding 32 connections open kept Prometheus out for good.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import pino from 'pino';
import { metricsRegistry, serveMetrics, METRICS_LIMITS, type MetricsSources } from '../controller/src/metrics.js';
import { deliveryMetrics } from '../controller/src/agent/parts/metrics.js';
import { Delivery } from '../controller/src/publish/delivery.js';
import { freePort, startNatsServer } from './helpers/nats-server.js';
import { testEvent } from './helpers/delivery-events.js';
import { startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sources that count how often each is read. */
function counting(delivery: () => ReturnType<MetricsSources['delivery']> = () => ({ published: 1, failed: 0, latencyMs: 3, delayMs: 1 })) {
  const reads: Record<string, number> = {};
  const count = <T>(k: string, f: () => T) => () => { reads[k] = (reads[k] ?? 0) + 1; return f(); };
  const src: MetricsSources = {
    capture: count('capture', () => ({ captured: 1, lost: 0 })), decoder: count('decoder', () => ({ frames: 1, malformed: 0 })),
    events: count('events', () => ({ status_change: 1 })), delivery: count('delivery', delivery),
    natsConnected: count('natsConnected', () => true), attached: count('attached', () => true), agents: count('agents', () => ({ active: 1 })),
    alerts: count('alerts', () => ({ published: 0 })), log: count('log', () => ({ droppedLines: 0, pendingBytes: 0 })),
    errors: count('errors', () => ({ records: 0 })),
  };
  return { src, reads };
}

const metric = (text: string, name: string) => new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1];

/** A tap started detached (no kernel, no NATS) serving /metrics on a port of its own. */
async function detachedTapWithMetrics(t: Tap.Test, name: string) {
  const home = mkdtempSync(join(tmpdir(), `wnt-metrics-${name}-`));
  writeOssecConf(home);
  const port = await freePort();
  const tap = await startTap(['run', '--home', home, '--nats-url', `nats://127.0.0.1:${await freePort()}`, '--control-socket', join(home, 'tap.sock'),
    '--no-attach', '--metrics', `127.0.0.1:${port}`], /^started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => tap.logs.some((l) => l.msg === 'metrics on /metrics'), 10_000, 'the endpoint');
  return { tap, port };
}

/** `n` scrapes 100 ms apart, as Prometheus makes them: how many were answered whole, and why the others were not. */
async function scrapes(port: number, n: number): Promise<{ ok: number; failed: string[] }> {
  let ok = 0;
  const failed: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
      if (res.status === 200 && /^wazuh_nats_tap_attached 0$/m.test(await res.text())) ok++;
      else failed.push(String(res.status));
    } catch (e) {
      failed.push((e as Error).cause ? String((e as { cause: Error }).cause.message) : (e as Error).message);
    }
    await sleep(100);
  }
  return { ok, failed };
}

t.test('a scrape reads each source once: one snapshot of the delivery statistics for every metric', async (t) => {
  const { src, reads } = counting();
  const reg = metricsRegistry(src);
  const text = await reg.metrics();
  t.equal(metric(text, 'wazuh_nats_tap_delivery_total{outcome="published"}'), '1');
  t.equal(metric(text, 'wazuh_nats_tap_publish_latency_ms'), '3');
  for (const [k, n] of Object.entries(reads)) t.equal(n, 1, `${k} read once (${n})`);
  await reg.metrics();
  t.equal(reads.delivery, 2, 'read again at the next scrape, not kept from the last');
});

t.test('concurrent scrapes share one rendering, and its body serves every scrape for cacheMs', async (t) => {
  const { src, reads } = counting();
  const port = await freePort();
  const server = await serveMetrics(metricsRegistry(src), { host: '127.0.0.1', port }, undefined, { cacheMs: 60_000 });
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const url = `http://127.0.0.1:${port}/metrics`;
  const bodies = await Promise.all(Array.from({ length: 20 }, async () => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text()));
  t.ok(bodies.every((b) => b === bodies[0] && /wazuh_nats_tap_attached 1/.test(b)), '20 concurrent scrapes: the same body');
  for (let i = 0; i < 50; i++) t.equal((await fetch(url, { signal: AbortSignal.timeout(10_000) })).status, 200);
  t.equal(reads.delivery, 1, `70 scrapes, one rendering (the sources read ${reads.delivery} times)`);
  t.equal(METRICS_LIMITS.cacheMs, 1000, 'the tap\'s: a second');

  // A body older than cacheMs is rendered again: what Prometheus sees stays current.
  const { src: src2, reads: reads2 } = counting();
  const port2 = await freePort();
  const fresh = await serveMetrics(metricsRegistry(src2), { host: '127.0.0.1', port: port2 }, undefined, { cacheMs: 0 });
  t.teardown(() => { fresh.closeAllConnections(); fresh.close(); });
  for (let i = 0; i < 3; i++) {
    await fetch(`http://127.0.0.1:${port2}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
    await sleep(5);
  }
  t.equal(reads2.delivery, 3, 'past cacheMs: rendered again');
});

t.test('latency gauges have no sample before a first measurement (not 0)', async (t) => {
  const none = { count: 0, p50: 0, p99: 0, max: 0 };
  const st = (lat: typeof none, delay: typeof none) => ({
    published: 0, acknowledged: 0, spooled: 0, shed: { status: 0, keepalive: 0, alert: 0, tap: 0 }, failures: 0, rejected: 0, denied: 0,
    deferred: 0, spoolBytes: 0, spoolRecords: 0, spoolOldestMs: null, spoolBoundBytes: 1, diskFull: false, writeErrors: 0, readErrors: 0,
    latencyMs: lat, delayMs: delay,
  }) as unknown as Parameters<typeof deliveryMetrics>[0];
  const scrape = (d: Parameters<typeof deliveryMetrics>[0]) => metricsRegistry(counting(() => deliveryMetrics(d)).src).metrics();
  const before = await scrape(st(none, none));
  t.equal(metric(before, 'wazuh_nats_tap_publish_latency_ms'), undefined, 'publish_latency_ms: no sample yet');
  t.equal(metric(before, 'wazuh_nats_tap_capture_delay_ms'), undefined, 'capture_delay_ms: no sample yet');
  t.match(before, /^# TYPE wazuh_nats_tap_capture_delay_ms gauge$/m, 'the metric is declared all the same');
  const after = await scrape(st({ count: 4, p50: 20, p99: 41, max: 41 }, { count: 1, p50: 0.5, p99: 0.5, max: 0.5 }));
  t.equal(metric(after, 'wazuh_nats_tap_publish_latency_ms'), '41');
  t.equal(metric(after, 'wazuh_nats_tap_capture_delay_ms'), '0.5');
});

t.test('the spool on /metrics: events NATS has not acknowledged and the age of the oldest, beside the disk the segments take', async (t) => {
  const port = await freePort(); // NATS away: what is spooled waits
  const dir = mkdtempSync(join(tmpdir(), 'wnt-metrics-spool-'));
  const d = new Delivery({
    servers: [`nats://127.0.0.1:${port}`], mode: 'core', log: pino({ level: 'silent' }), reconnectDelayMs: 100,
    spool: { dir: join(dir, 'spool'), maxBytes: 64 << 20 },
  });
  d.start();
  t.teardown(() => d.close(200));
  const scrape = async () => {
    const text = await metricsRegistry(counting(() => deliveryMetrics(d.stats())).src).metrics();
    return {
      events: Number(metric(text, 'wazuh_nats_tap_spool_events')), age: Number(metric(text, 'wazuh_nats_tap_spool_oldest_age_seconds')),
      bytes: Number(metric(text, 'wazuh_nats_tap_spool_bytes')),
    };
  };
  t.same(await scrape(), { events: 0, age: 0, bytes: 0 }, 'nothing spooled');
  for (let i = 0; i < 5; i++) d.enqueue(testEvent(i, 3));
  await sleep(300);
  const waiting = await scrape();
  t.equal(waiting.events, 5, '5 events wait');
  t.ok(waiting.age >= 0.3 && waiting.age < 60, `the oldest has waited ${waiting.age} s`);
  const nats = await startNatsServer({ port });
  t.teardown(() => nats.stop());
  await waitFor(async () => (await scrape()).events === 0, 15_000, 'the spool drained');
  const drained = await scrape();
  t.equal(drained.age, 0, 'none waits');
  t.ok(drained.bytes > 0, `spool_bytes counts the segment with the delivered events (${drained.bytes}): not a backlog`);
});

t.test('a local user holding every metrics connection no longer keeps Prometheus out: the oldest idle one makes room', async (t) => {
  const { tap, port } = await detachedTapWithMetrics(t, 'hold');
  // 40 connections kept open, each opened again 10 ms after the tap closes it (hold.mjs of the review).
  const holder = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    let opened = 0;
    const one = () => { opened++; const s = net.connect(${port}, '127.0.0.1'); s.on('error', () => {}); s.on('close', () => setTimeout(one, 10)); };
    for (let i = 0; i < 40; i++) one();
    setInterval(() => process.stdout.write(opened + '\\n'), 200);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill('SIGKILL'));
  let opened = 0;
  holder.stdout!.on('data', (b: Buffer) => { opened = Number(b.toString().trim().split('\n').pop()); });
  await waitFor(() => opened >= 40, 5000, 'the holder\'s connections');
  await sleep(500);
  const { ok, failed } = await scrapes(port, 20);
  t.equal(ok, 20, `every scrape answered while ${opened} connections were opened to hold the endpoint (${failed.slice(0, 3).join('; ')})`);
  const said = tap.logs.filter((l) => /^metrics: \d+ connections open already: the oldest idle one closed/.test(String(l.msg)));
  t.ok(said.length >= 1 && said.length <= 2, `said, not once each (${said.length} lines)`);
  holder.kill('SIGKILL');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('connections whose answers are never read (requests piped in, nothing read) hold no slot past busyMs: every scrape answered', async (t) => {
  const { tap, port } = await detachedTapWithMetrics(t, 'busy');
  // 32 connections, each sending 3,000 requests at once and reading nothing, with a receive buffer of
  // 1 KiB (the session-diff review's probe): their answers stay "in progress". Each is opened again when closed.
  const holder = spawn('python3', ['-c', `
import socket, select, sys, time
REQ = b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'
def busy():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(('127.0.0.1', ${port})); s.setblocking(False)
    try:
        for _ in range(3000): s.send(REQ)
    except BlockingIOError: pass
    return s
conns = set(busy() for _ in range(${METRICS_LIMITS.maxConnections}))
opened = len(conns); last = 0
while True:
    p = select.poll(); fds = {c.fileno(): c for c in conns}
    for fd in fds: p.register(fd, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    for fd, ev in p.poll(50):
        c = fds[fd]; conns.discard(c); c.close()
        try: conns.add(busy()); opened += 1
        except Exception: pass
    if time.time() - last > 0.2: print(opened, flush=True); last = time.time()
`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => holder.kill('SIGKILL'));
  let opened = 0;
  holder.stdout!.on('data', (b: Buffer) => { opened = Number(b.toString().trim().split('\n').pop()); });
  await waitFor(() => opened >= METRICS_LIMITS.maxConnections, 5000, 'the holder\'s connections');
  await sleep(METRICS_LIMITS.busyMs + 500); // their answers are in progress longer than busyMs now
  const { ok, failed } = await scrapes(port, 20);
  t.equal(ok, 20, `every scrape answered (${failed.slice(0, 3).join('; ')})`);
  holder.kill('SIGKILL');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a server given no registry source still answers (the plain Registry of the fd tests)', async (t) => {
  const port = await freePort();
  const server = await serveMetrics(new Registry(), { host: '127.0.0.1', port });
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${port}/nope`, { signal: AbortSignal.timeout(5000) })).status, 404);
});
