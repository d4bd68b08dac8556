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
import { connectNats } from '../controller/src/publish/nats-connect.js';
import { MAX_CONTROL_LINE } from '../controller/src/publish/nats-parser.js';
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
