// A "NATS server" that answers the handshake, then sends what the client cannot parse and keeps
// sending (`MSG a 1 999999999999`, then bytes without end): a hostile server, or a broken proxy in
// front of a real one. nats.js's reader stops at the parse error and left the socket open, its data
// piling up unread (+5 GB of RSS in 20 s); and it says so with console.log, free text in the
// middle of the tap's JSON log. Now the transport is closed (nats-connect.ts) and nats.js reconnects
// as for any failed connection; the console is routed into the log (util/log.ts, routeConsole).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connectNats, unsentBytes, MAX_UNSENT_BYTES, MAX_WRITES_PENDING, type PeerFault } from '../controller/src/publish/nats-connect.js';
import { MAX_CONTROL_LINE, MAX_PINGS_PER_SECOND } from '../controller/src/publish/nats-parser.js';
import { startNatsServer } from './helpers/nats-server.js';
import { runTap, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

interface Hostile { url: string; accepted: () => number; closedByClient: () => number; sentMB: () => number; close(): Promise<void> }

/**
 * The hostile server: INFO, PONG, then `then` — by default an impossible MSG — and 64 KiB chunks
 * for as long as the client reads them (at most `maxMs`).
 */
async function hostile(maxMs = 15_000, then = 'MSG a 1 999999999999\r\n'): Promise<Hostile> {
  const open = new Set<Socket>();
  let accepted = 0;
  let closedByClient = 0;
  let sent = 0;
  const chunk = Buffer.alloc(65536, 'B');
  const server: Server = createServer((s) => {
    accepted++;
    open.add(s);
    const until = Date.now() + maxMs;
    let done = false;
    s.on('error', () => {});
    s.on('close', () => { open.delete(s); if (!done) closedByClient++; done = true; });
    s.write('INFO {"server_id":"HOSTILE","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576}\r\n');
    s.once('data', () => {
      s.write(`PONG\r\n${then}`);
      const pump = () => {
        while (!done && Date.now() < until) {
          sent += chunk.length;
          if (!s.write(chunk)) { s.once('drain', pump); return; }
        }
        if (!done) { done = true; s.destroy(); }
      };
      pump();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `nats://127.0.0.1:${(server.address() as { port: number }).port}`,
    accepted: () => accepted, closedByClient: () => closedByClient, sentMB: () => sent / 1048576,
    close: async () => { for (const s of open) s.destroy(); await new Promise((r) => server.close(r)); },
  };
}

t.test('a connection whose reader refused the bytes is closed, and a new one follows', async (t) => {
  const h = await hostile();
  t.teardown(() => h.close());
  const p = connectNats({ servers: h.url, maxReconnectAttempts: 3, reconnectTimeWait: 200 }, 5000);
  const nc = await p.connection.catch(() => null);
  t.teardown(() => nc?.close());
  await waitFor(() => h.closedByClient() >= 1, 5000, 'the client to close the connection it could not read');
  t.ok(h.sentMB() < 64, `it stopped reading at once: ${h.sentMB().toFixed(1)} MB sent before the close`);
  await waitFor(() => h.accepted() >= 2, 5000, 'a reconnection');
  t.pass(`reconnected (${h.accepted()} connections)`);
});

t.test('a control line without an end (`INFO {` and bytes for ever): the client stops at 1 MiB, closes and reconnects', async (t) => {
  // nats.js gathers a control line byte by byte without a bound: a full core and a heap that grew
  // until the pings ran out (nats-parser.ts).
  const h = await hostile(15_000, 'INFO {"connect_urls":["');
  t.teardown(() => h.close());
  const p = connectNats({ servers: h.url, maxReconnectAttempts: 3, reconnectTimeWait: 200 }, 5000);
  const nc = await p.connection.catch(() => null);
  t.teardown(() => nc?.close());
  const t0 = Date.now();
  await waitFor(() => h.closedByClient() >= 1, 5000, 'the client to close the connection whose line never ends');
  // Without the bound the line goes on until the pings run out (a minute): no close within the wait.
  t.ok(h.sentMB() < 32, `closed after ${h.sentMB().toFixed(1)} MB sent (the bound is ${MAX_CONTROL_LINE / 1048576} MiB; the rest was in the socket buffers), ${Date.now() - t0} ms`);
  await waitFor(() => h.accepted() >= 2, 5000, 'a reconnection');
  t.pass(`reconnected (${h.accepted()} connections)`);
});

t.test('the tap against it: bounded memory, JSON-only stdout, a quick stop', async (t) => {
  const h = await hostile();
  t.teardown(() => h.close());
  const home = mkdtempSync(join(tmpdir(), 'wnt-hostile-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, `    <server_url>${h.url}</server_url>\n`);
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await new Promise((r) => setTimeout(r, 4000)); // two reconnect delays (2 s)
  const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${tap.proc.pid}/status`, 'utf8'))![1]) / 1024;
  t.ok(rssMB() < 200, `RSS ${rssMB().toFixed(0)} MB after ${h.sentMB().toFixed(0)} MB sent (without the fix: GBs)`);
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock], 5000)).stdout);
  t.equal(st.attached, true, 'it runs on, attached');
  t.ok(tap.logs.every((l) => typeof l.level === 'number'), 'every stdout line is a JSON log line');
  const lib = tap.logs.filter((l) => l.msg === 'a library wrote to the console');
  t.ok(lib.length >= 1 && lib.length <= 10, `nats.js's "reader closed" came as ${lib.length} warning(s), at most 10 a minute`);
  t.match(String(lib[0]?.text), /^reader closed Error: processMsgArgs Bad or Missing Size Error/);
  t.ok(h.accepted() >= 2, `and it connects again, as after any failed connection (${h.accepted()} connections in 4 s)`);
  const t0 = Date.now();
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  t.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
});

t.test('tail --json against it: stdout holds events only (nats.js\'s console text goes to stderr), and it ends on time', async (t) => {
  const h = await hostile();
  t.teardown(() => h.close());
  const r = await runTap(['tail', '--json', '--nats-url', h.url, '--duration', '3'], 15_000);
  t.equal(r.stdout, '', 'no event, and nothing else, on stdout');
  t.match(r.stderr, /reader closed Error: processMsgArgs/, 'the library\'s text on stderr');
  t.ok(h.accepted() >= 2, `reconnected (${h.accepted()} connections)`);
  t.equal(r.code, 0, 'ended by --duration');
});

// ---------------------------------------------------------------- floods of control lines (review rt-life F2, F3)

interface Flooder extends Hostile { readBytes: () => number }

/**
 * A "server" that answers the handshake (INFO, PONG), then sends `line` without pause while the client
 * reads (at most `maxMs`). `read` false: it stops reading its socket after the handshake, so what the
 * client writes (a PONG for each PING) has nowhere to go.
 */
async function flooder(line: string, o: { read?: boolean; maxMs?: number } = {}): Promise<Flooder> {
  const open = new Set<Socket>();
  let accepted = 0;
  let closedByClient = 0;
  let sent = 0;
  let readBytes = 0;
  const chunk = Buffer.from(line ? line.repeat(Math.ceil(65536 / line.length)) : '');
  const server: Server = createServer((s) => {
    accepted++;
    open.add(s);
    const until = Date.now() + (o.maxMs ?? 15_000);
    let done = false;
    s.on('error', () => {});
    s.on('close', () => { open.delete(s); if (!done) closedByClient++; done = true; });
    s.on('data', (d) => { readBytes += d.length; });
    s.write('INFO {"server_id":"FLOOD","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576}\r\n');
    s.once('data', () => {
      s.write('PONG\r\n');
      if (o.read === false) s.pause();
      const pump = () => {
        while (!done && Date.now() < until) {
          sent += chunk.length;
          if (!s.write(chunk)) { s.once('drain', pump); return; }
        }
        if (!done) { done = true; s.destroy(); }
      };
      if (line) setTimeout(pump, 50); // else: silent
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `nats://127.0.0.1:${(server.address() as { port: number }).port}`,
    accepted: () => accepted, closedByClient: () => closedByClient, sentMB: () => sent / 1048576, readBytes: () => readBytes,
    close: async () => { for (const s of open) s.destroy(); await new Promise((r) => server.close(r)); },
  };
}

const FLOODS: { name: string; line: string; kind: PeerFault['kind'] }[] = [
  { name: 'an -ERR after which nats-server closes (Unknown Protocol Operation)', line: "-ERR 'Unknown Protocol Operation'\r\n", kind: 'server-error' },
  { name: 'permissions violations the client never earned', line: "-ERR 'Permissions Violation for Publish to \"wazuh.x\"'\r\n", kind: 'refusals' },
  { name: `PINGs (more than ${MAX_PINGS_PER_SECOND} a second)`, line: 'PING\r\n', kind: 'pings' },
];

for (const f of FLOODS) {
  t.test(`a flood of ${f.name}: the client closes the connection at once, says why, and reconnects`, async (t) => {
    // Before: nats.js kept the connection and worked through every line (a status event an -ERR, a
    // socket write a PING) at the network's speed: no close ever came.
    const h = await flooder(f.line);
    t.teardown(() => h.close());
    const faults: PeerFault[] = [];
    const p = connectNats({ servers: h.url, maxReconnectAttempts: 5, reconnectTimeWait: 200 }, 5000, { onFault: (x) => faults.push(x) });
    const nc = await p.connection.catch(() => null);
    t.teardown(() => nc?.close());
    await waitFor(() => h.closedByClient() >= 1, 5000, 'the client to close the flooding connection');
    t.ok(h.sentMB() < 64, `closed after ${h.sentMB().toFixed(1)} MB sent`);
    t.equal(faults[0]?.kind, f.kind, `the reason: ${faults[0]?.error.message}`);
    await waitFor(() => h.accepted() >= 2, 5000, 'a reconnection');
    t.pass(`reconnected (${h.accepted()} connections)`);
  });
}

t.test('a server that does not read: past the bound of unsent bytes the connection is closed and made again', async (t) => {
  // Before: nats.js wrote every frame whatever the socket held: the tap's memory grew without bound.
  // (A paused server does not see the close: the client's side is looked at.)
  const h = await flooder('', { read: false });
  t.teardown(() => h.close());
  const faults: PeerFault[] = [];
  const p = connectNats({ servers: h.url, maxReconnectAttempts: 5, reconnectTimeWait: 200 }, 5000, { onFault: (x) => faults.push(x) });
  const nc = (await p.connection)!;
  t.teardown(() => nc.close());
  const transport = () => (nc as unknown as { protocol: { transport: { isClosed: boolean }; connected: boolean } }).protocol;
  const first = transport().transport;
  const payload = new Uint8Array(64 * 1024);
  const n = Math.ceil((8 * MAX_UNSENT_BYTES) / payload.length); // the kernel's buffers take some MB first
  for (let i = 0; i < n && faults.length === 0; i++) {
    nc.publish('x', payload);
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  t.equal(faults[0]?.kind, 'unread', `the reason: ${faults[0]?.error.message}`);
  await waitFor(() => first.isClosed, 5000, 'the connection the server does not read closed');
  await waitFor(() => h.accepted() >= 2 && transport().connected, 5000, 'a reconnection');
  t.pass(`reconnected (${h.accepted()} connections)`);

  // Small frames (a PONG is 6 bytes): their number is bounded too, once the kernel's buffers are full.
  const second = transport().transport;
  for (let i = 0; i < n && unsentBytes(nc) < 1024 * 1024; i++) {
    nc.publish('x', payload);
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  t.equal(faults.length, 1, `${(unsentBytes(nc) / 1048576).toFixed(1)} MiB unsent: below the bound`);
  for (let i = 0; i < MAX_WRITES_PENDING + 1000 && faults.length === 1; i++) {
    nc.publish('x');
    await new Promise<void>((r) => queueMicrotask(r)); // each publish its own write
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  t.equal(faults[1]?.kind, 'unread', `the reason: ${faults[1]?.error.message}`);
  await waitFor(() => second.isClosed, 5000, 'that connection closed too');
});

t.test('a real nats-server refusing every publish (permissions): the refusals are answers, the connection stays', async (t) => {
  const srv = await startNatsServer({ extra: 'authorization { users = [ { user: "u", password: "p", permissions: { publish: { deny: ["denied.>"] } } } ] }' });
  t.teardown(() => srv.stop());
  const faults: PeerFault[] = [];
  const p = connectNats({ servers: srv.url, user: 'u', pass: 'p' }, 5000, { onFault: (x) => faults.push(x) });
  const nc = await p.connection;
  t.teardown(() => nc.close());
  let refused = 0;
  void (async () => { for await (const s of nc.status()) if (s.type === 'error') refused++; })();
  for (let i = 0; i < 5000; i++) nc.publish(`denied.${i % 10}`, 'x');
  await nc.flush();
  await waitFor(() => refused >= 5000, 10_000, 'every refusal');
  t.same(faults, [], 'no fault');
  t.equal(nc.isClosed(), false, 'still connected');
  await nc.flush();
});

/** The control socket's `status`, timed (ms), without a CLI's start-up in the figure. */
function statusMs(sock: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let buf = '';
    const c = netConnect(sock, () => c.write('{"cmd":"status"}\n'));
    c.on('data', (d) => { buf += d; if (buf.includes('\n')) { c.destroy(); resolve(performance.now() - t0); } });
    c.on('error', reject);
  });
}

const TAP_FLOODS = [
  { name: 'PINGs, not reading (F3)', line: 'PING\r\n', read: false, msg: /^NATS server sends PINGs without pause/ },
  { name: 'PINGs, reading', line: 'PING\r\n', read: true, msg: /^NATS server sends PINGs without pause/ },
  { name: 'permissions violations', line: "-ERR 'Permissions Violation for Publish to \"wazuh.x\"'\r\n", read: true, msg: /^NATS server sends more refusals/ },
  { name: '-ERR Unknown Protocol Operation', line: "-ERR 'Unknown Protocol Operation'\r\n", read: true, msg: /^NATS server error: connection ended/ },
];

for (const f of TAP_FLOODS) {
  t.test(`the tap against a flood of ${f.name}: bounded memory, status at once, a quick stop`, async (t) => {
    // Before: RSS 112 MB → 1.78 GB in 11 s (not reading); 82-93 % of a core, status in 1.5-6.9 s,
    // SIGTERM past its 10 s deadline (reading).
    const h = await flooder(f.line, { read: f.read });
    t.teardown(() => h.close());
    const home = mkdtempSync(join(tmpdir(), 'wnt-flood-'));
    t.teardown(() => rmSync(home, { recursive: true, force: true }));
    writeOssecConf(home, `    <server_url>${h.url}</server_url>\n    <reconnect_delay>1</reconnect_delay>\n`);
    const sock = join(home, 'tap.sock');
    const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
    t.teardown(() => tap.stop('SIGKILL'));
    const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${tap.proc.pid}/status`, 'utf8'))![1]) / 1024;
    const rss0 = rssMB();
    await waitFor(() => h.accepted() >= 1, 10_000, 'the first connection');
    const lat: number[] = [];
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 400));
      lat.push(await statusMs(sock));
    }
    lat.sort((a, b) => a - b);
    const rss = rssMB();
    t.ok(rss - rss0 < 100, `RSS ${rss0.toFixed(0)} → ${rss.toFixed(0)} MB (${h.sentMB().toFixed(0)} MB flooded)`);
    t.ok(lat[4] < 200, `status answered in ${lat.map((x) => x.toFixed(0)).join(', ')} ms`);
    t.ok(h.closedByClient() >= 1, `the tap closed the flooding connection (${h.closedByClient()} times)`);
    await waitFor(() => h.accepted() >= 2, 10_000, 'a reconnection');
    t.ok(tap.logs.some((l) => f.msg.test(String(l.msg))), 'and said why');
    const said = tap.logs.filter((l) => f.msg.test(String(l.msg))).length;
    t.ok(said <= 2, `said ${said} time(s): once a minute at most`);
    const t0 = Date.now();
    t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
    t.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  });
}
