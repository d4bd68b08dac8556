// A NATS URL whose port accepts TCP and never speaks (or stops speaking): every connection attempt
// ends by its deadline and releases its socket, Delivery.close() and `tail` are bounded, and the
// tap stops on SIGTERM (issue 14, item 1). Against real sockets: a silent listener, a server that
// answers the handshake and then goes quiet, a port nobody listens on.
import t from 'tap';
import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pino from 'pino';
import { Delivery } from '../controller/src/publish/delivery.js';
import { freePort } from './helpers/nats-server.js';
import { BIN, runTap, startTap, WITHOUT_TEST_HOOKS } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: process.env.DEBUG_DELIVERY ? 'debug' : 'silent' });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sockets a process holds open (its /proc/<pid>/fd entries that are sockets). */
function socketsOf(pid: number | 'self'): number {
  const dir = `/proc/${pid}/fd`;
  let n = 0;
  for (const fd of readdirSync(dir)) {
    try { if (readlinkSync(join(dir, fd)).startsWith('socket:')) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

interface Listener { url: string; server: Server; open: Set<Socket>; accepted: () => number; silent: boolean; close(): Promise<void> }

/**
 * A TCP listener on loopback. `speaks: false`: accepts and never sends a byte (the case).
 * `speaks: true`: a minimal NATS server (INFO, PONG for every PING) until `silent` is set.
 * It never closes a connection itself: what stays open is what the client did not release.
 */
async function listener(speaks = false): Promise<Listener> {
  const open = new Set<Socket>();
  let accepted = 0;
  const l: Listener = {
    url: '', open, accepted: () => accepted, silent: !speaks,
    server: createServer((s) => {
      accepted++;
      open.add(s);
      s.on('error', () => {});
      s.on('close', () => open.delete(s));
      if (!speaks) return;
      s.write('INFO {"server_id":"SILENT","server_name":"silent","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576}\r\n');
      s.on('data', (d) => {
        if (l.silent) return;
        const pings = d.toString('latin1').split('PING\r\n').length - 1;
        if (pings) s.write('PONG\r\n'.repeat(pings));
      });
    }),
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => l.server.close(r));
    },
  };
  await new Promise<void>((r) => l.server.listen(0, '127.0.0.1', r));
  l.url = `nats://127.0.0.1:${(l.server.address() as { port: number }).port}`;
  return l;
}

t.test('a silent NATS: every connect attempt ends by its deadline and releases its socket', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const d = new Delivery({
    servers: [l.url], mode: 'core', log, spool: { dir: tmp('spool-silent-'), maxBytes: 4 << 20 },
    connectTimeoutMs: 150, reconnectDelayMs: 20,
    connectOptions: { timeout: 150 }, // the same deadline through nats.js's own option (what an earlier version had)
  });
  t.teardown(() => d.close(100));
  d.start();
  await waitFor(() => l.accepted() >= 3, 5000, 'the first attempts');
  const base = socketsOf('self');
  await waitFor(() => l.accepted() >= 40, 30_000, '40 connection attempts');
  t.ok(d.stats().reconnectCycles >= 39, `every attempt failed (${d.stats().reconnectCycles})`);
  t.ok(l.open.size <= 1, `the listener holds ${l.open.size} connection(s) open: at most the attempt in flight`);
  // Both ends live in this process: a leaked attempt would hold two descriptors.
  t.ok(socketsOf('self') <= base + 2, `sockets of this process: ${socketsOf('self')}, ${base} after 3 attempts`);
  t.notOk(d.stats().connected);
});

t.test('Delivery.close() is bounded: a connect in flight is abandoned, its socket released', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const base = socketsOf('self');
  // nats.js's own default deadline (20 s): close() must not wait for it.
  const d = new Delivery({
    servers: [l.url], mode: 'core', log, spool: { dir: tmp('spool-silent-'), maxBytes: 4 << 20 },
    connectTimeoutMs: 20_000,
  });
  d.start();
  d.enqueue({ subject: 'wazuh.agent.001.status', headers: {}, body: '{}', kind: 'status', eventId: 'e1' });
  await waitFor(() => l.open.size === 1, 5000, 'the attempt to be accepted');
  const t0 = Date.now();
  await d.close(1000);
  const ms = Date.now() - t0;
  t.ok(ms < 1500, `close() returned after ${ms} ms`);
  await waitFor(() => l.open.size === 0, 2000, 'the attempt\'s socket to be closed');
  t.ok(socketsOf('self') <= base + 1, `no socket left (${socketsOf('self')}, ${base} before; the listener's own)`);
  t.equal(d.spool.stats().records, 1, 'the message stays in the spool for the next start');
});

t.test('Delivery.close() during the wait between attempts (reconnect_delay 60 s) returns at once', async (t) => {
  const port = await freePort(); // nobody listens: refused at once, then the wait
  const d = new Delivery({
    servers: [`nats://127.0.0.1:${port}`], mode: 'core', log, spool: { dir: tmp('spool-silent-'), maxBytes: 4 << 20 },
    reconnectDelayMs: 60_000,
  });
  d.start();
  await waitFor(() => d.stats().reconnectCycles >= 1, 5000, 'the first refusal');
  await sleep(100);
  const t0 = Date.now();
  await d.close(1000);
  t.ok(Date.now() - t0 < 1500, `close() returned after ${Date.now() - t0} ms`);
});

t.test('a server that answered and then went silent (half-open): close() is bounded, the socket released', async (t) => {
  const l = await listener(true);
  t.teardown(() => l.close());
  const d = new Delivery({
    servers: [l.url], mode: 'core', log, spool: { dir: tmp('spool-silent-'), maxBytes: 4 << 20 },
    connectTimeoutMs: 1000,
  });
  d.start();
  await waitFor(() => d.stats().connected, 5000, 'connected to the fake server');
  await waitFor(() => d.stats().acknowledged === 0 && d.stats().inFlight === 0, 1000, 'idle');
  l.silent = true;
  for (let i = 0; i < 10; i++) d.enqueue({ subject: 'wazuh.agent.001.status', headers: {}, body: `{"i":${i}}`, kind: 'status', eventId: `e${i}` });
  await sleep(200);
  t.equal(d.stats().acknowledged, 0, 'nothing acknowledged by a server that does not answer');
  const t0 = Date.now();
  await d.close(500);
  t.ok(Date.now() - t0 < 2500, `close() returned after ${Date.now() - t0} ms`);
  await waitFor(() => l.open.size === 0, 2000, 'the connection to be closed');
  t.equal(d.spool.stats().records, 10, 'the unacknowledged messages stay spooled');
});

/** Run the CLI; resolves with its exit code, output and how long it ran. */
async function cli(args: string[], killAfterMs = 30_000, onStart?: (p: ReturnType<typeof spawn>) => void) {
  const t0 = Date.now();
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS; // what SIGTERM does is the CLI's own, not the test runner's signal-exit
  const p = spawn(cmd, [...pre, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => { stdout += d; });
  p.stderr!.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
  onStart?.(p);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once('exit', (c, s) => r([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: Date.now() - t0 };
}

t.test('tail to a silent port: exit 1 with a clear message by the connect deadline', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const r = await cli(['tail', '--nats-url', l.url], 20_000);
  t.equal(r.code, 1, `exit code (${r.signal ?? ''} after ${r.ms} ms)`);
  t.match(r.stderr, /no answer from NATS at nats:\/\/127\.0\.0\.1:\d+ within 5 s/);
  t.ok(r.ms < 10_000, `ended after ${r.ms} ms`);
  await waitFor(() => l.open.size === 0, 2000, 'its socket closed');
});

t.test('tail --duration and --count end on time even when the server is silent', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const r = await cli(['tail', '--nats-url', l.url, '--duration', '1', '--count', '5'], 20_000);
  t.equal(r.code, 1, 'nothing was ever connected: an error');
  t.match(r.stderr, /no answer from NATS .* within/);
  t.ok(r.ms < 4000, `ended after ${r.ms} ms`);

  // Connected, then the server goes silent: --duration ends it, the drain does not hold it.
  const h = await listener(true);
  t.teardown(() => h.close());
  const r2 = await cli(['tail', '--nats-url', h.url, '--duration', '3', '--count', '5'], 20_000, (p) => {
    p.stderr!.on('data', (d) => { if (String(d).includes('Ctrl-C')) h.silent = true; });
  });
  t.equal(r2.code, 0, `exit code (${r2.stderr})`);
  t.match(r2.stderr, /Ctrl-C to stop/);
  t.ok(h.silent, 'it was subscribed when the server went silent');
  t.ok(r2.ms < 10_000, `ended after ${r2.ms} ms`);
});

t.test('tail: SIGTERM while connecting to a silent port ends it at once', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const r = await cli(['tail', '--nats-url', l.url], 20_000, (p) => {
    void waitFor(() => l.open.size === 1, 5000, 'connecting').then(() => p.kill('SIGTERM'));
  });
  t.equal(r.code, 0);
  t.ok(r.ms < 3000, `ended after ${r.ms} ms`);
});

t.test('the tap with a silent NATS: SIGTERM stops it, no socket per attempt left behind', async (t) => {
  const l = await listener();
  t.teardown(() => l.close());
  const home = tmp('wnt-silent-');
  writeOssecConf(home, `    <server_url>${l.url}</server_url>\n    <reconnect_delay>1</reconnect_delay>\n`);
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock, '--no-attach'], /started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => l.accepted() >= 1, 10_000, 'the first attempt');
  await sleep(200);
  const base = socketsOf(tap.proc.pid!);
  // The default deadline is 5 s an attempt: two attempts, then one more in flight.
  await waitFor(() => l.accepted() >= 3, 20_000, 'three attempts');
  t.ok(l.open.size <= 1, `the listener holds ${l.open.size} of ${l.accepted()} connection(s) open`);
  t.ok(socketsOf(tap.proc.pid!) <= base, `sockets of the tap: ${socketsOf(tap.proc.pid!)}, ${base} after the first attempt`);
  const st = await runTap(['status', '--json', '--control-socket', sock]);
  t.match(JSON.parse(st.stdout), { nats: { connected: false } });
  const t0 = Date.now();
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null }, 'exit 0 on SIGTERM');
  t.ok(Date.now() - t0 < 10_000, `stopped after ${Date.now() - t0} ms`);
  t.ok(tap.logs.some((l) => l.msg === 'stopped'), 'logged stopped');
});
