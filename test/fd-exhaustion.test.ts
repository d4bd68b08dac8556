// Out of file descriptors (SPEC §8: fd exhaustion is survived, never a crash). The metrics port
// is open to every local user: idle connections by the thousand used to take every descriptor
// of the tap, and the next scandir('/proc') of the target rescan threw EMFILE → exit 1. The tap
// now caps and times out those connections; run under a 200-descriptor limit, it must keep
// capturing, answer `status`, and serve /metrics again once the idle connections timed out.
// The parts that open files on events survive EMFILE too, in a process whose descriptors are
// used up (helpers/fd-child.ts): said once, retried, nothing lost (the alerts follower's own
// test is in alerts-follower.test.ts; the status journal's in status-journal.test.ts).
import t from 'tap';
import net from 'node:net';
import { mkdtempSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, startNats } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';
import { startFdChild } from './helpers/fd-child-process.js';
import { encodeFrame, FrameReader } from '../controller/src/state/sources/wdb-wire.js';
import { contractJson } from './helpers/contract.js';

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
const LIMIT = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test(`${3 * LIMIT} idle connections to the metrics port of a tap limited to ${LIMIT} descriptors: it keeps running, answers status, serves /metrics again`, async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const statuses: Record<string, unknown>[] = [];
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m: Msg) => { statuses.push(contractJson(t, m)); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();

  const home = mkdtempSync(join(tmpdir(), 'wnt-fds-'));
  writeOssecConf(home);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const port = await freePort();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--control-socket', sock, '--metrics', `127.0.0.1:${port}`],
    /^attached/, ['prlimit', `--nofile=${LIMIT}:${LIMIT}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  const pid = tap.proc.pid!;
  const fds = () => { try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; } };
  const base = fds();
  t.ok(base > 0 && base < LIMIT - 60, `the tap uses ${base} of its ${LIMIT} descriptors before`);

  // Idle connections, 50 at a time, each given 2 s to connect (past the listen backlog a SYN may go unanswered).
  const socks: net.Socket[] = [];
  t.teardown(() => { for (const s of socks) s.destroy(); });
  let connected = 0;
  let closedByTap = 0;
  const open = () => new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    socks.push(s);
    const timer = setTimeout(resolve, 2000);
    s.once('connect', () => {
      connected++;
      clearTimeout(timer);
      resolve();
      s.once('close', () => { closedByTap++; });
      s.resume(); // the tap may answer a silent connection 408 before it closes it: read it, to see the close
    });
    s.on('error', () => { clearTimeout(timer); resolve(); });
  });
  for (let i = 0; i < 3 * LIMIT; i += 50) await Promise.all(Array.from({ length: 50 }, open));
  t.ok(connected > LIMIT, `${connected} connections made`);

  // Past a target rescan (2 s) and several alerts polls (1 s).
  let peak = fds();
  for (const end = Date.now() + 3500; Date.now() < end && tap.proc.exitCode === null;) {
    peak = Math.max(peak, fds());
    await sleep(100);
  }
  t.equal(tap.proc.exitCode, null, `still running (${tap.stderr().slice(-300)})`);
  t.ok(peak > 0 && peak < LIMIT - 20, `at most ${peak} descriptors open meanwhile`);
  const st = await runTap(['status', '--json', '--control-socket', sock]);
  t.equal(st.code, 0, 'answers status');
  t.match(JSON.parse(st.stdout), { attached: true, nats: { connected: true } });
  await sim.startup(A);
  await waitFor(() => statuses.some((e) => e.agent_id === '001'), 10_000, 'a status change captured and published');

  // The idle connections are closed by the tap (past the cap, the oldest at once; the others after their timeout),
  // while this side keeps them open: /metrics answers again.
  await waitFor(() => closedByTap === connected, 15_000, `the tap to close the ${connected} idle connections (closed ${closedByTap})`);
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  t.equal(res.status, 200, '/metrics answers');
  t.match(await res.text(), /^wazuh_nats_tap_attached 1$/m);
  // Past the cap the oldest idle connection is closed for the new one (metrics-endpoint.test.ts): said, not once each.
  const drops = tap.logs.filter((l) => /^metrics: (connections refused|\d+ connections open already: the oldest idle one closed)/.test(String(l.msg)));
  t.ok(drops.length >= 1 && drops.length <= 4, `the closed connections said, not once each (${drops.length} lines)`);
  for (const s of socks) s.destroy();
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

const KEY = (n: number) => n.toString(16).padStart(64, 'a');
const keysFile = (ids: number[]) => ids.map((i) => `${String(i).padStart(3, '0')} agent${i} any ${KEY(i)}\n`).join('');

t.test('client.keys changes while out of descriptors: said once, read again a moment later without another change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-fds-keys-'));
  const file = join(dir, 'client.keys');
  writeFileSync(file, keysFile([1]));
  const child = startFdChild(t);
  await child.send(`keys ${file}`);
  const keys = () => child.events.filter((e) => e.ev === 'keys').map((e) => e.ids);
  await waitFor(() => keys().length === 1, 3000, 'the first read');
  t.same(keys(), [[1]]);
  await child.send('exhaust 0');
  // authd's way: a temporary file renamed over it (the rename needs no descriptor).
  writeFileSync(`${file}.tmp`, keysFile([1, 2]));
  renameSync(`${file}.tmp`, file);
  await waitFor(() => child.events.some((e) => e.ev === 'error'), 3000, 'the failed read');
  await sleep(700); // several retries (every 200 ms here)
  const errors = child.events.filter((e) => e.ev === 'error');
  t.same(errors.map((e) => e.code), ['EMFILE'], 'said once, not at every retry');
  t.equal(child.p.exitCode, null, 'still running');
  t.same(keys(), [[1]], 'nothing read meanwhile');
  await child.send('release');
  await waitFor(() => keys().length === 2, 3000, 'the retry once descriptors are back');
  t.same(keys()[1], [1, 2], 'the change is read with no further change to the file');
  await child.send('close');
});

t.test('the sync with wazuh-db started while out of descriptors: the connection is tried again, the sync completes once they are back', async (t) => {
  // A wazuh-db that knows agents 3 and 4, on a socket of this test.
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-fds-wdb-')), 'wdb');
  const server = net.createServer((c) => {
    const reader = new FrameReader();
    c.on('data', (d: Buffer) => {
      for (const q of reader.push(d)) c.write(encodeFrame(q.startsWith('global get-all-agents') ? 'ok [{"id":3},{"id":4}]' : 'err unknown'));
    });
    c.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const child = startFdChild(t);
  await child.send('exhaust 0');
  await child.send(`sync ${path}`);
  await sleep(1200); // two retries
  t.same(child.events.filter((e) => e.ev === 'sync'), [], 'not given up');
  await child.send('release');
  await waitFor(() => child.events.some((e) => e.ev === 'sync'), 5000, 'the sync');
  t.match(child.events.find((e) => e.ev === 'sync'), { ids: [3, 4] }, 'the agents listed once descriptors are back');
  await child.send('close');
});

// libuv answers an accept that fails with EMFILE by closing a reserve descriptor, accepting and
// closing the pending connections, and opening the reserve again; only when that fails too does
// Node emit 'error' on the server — which, with no listener after listen(), killed the process.
t.test('the metrics endpoint out of descriptors: connections are closed, the process lives (an accept error would be said once); it serves again after', async (t) => {
  const port = await freePort();
  const child = startFdChild(t);
  await child.send(`metrics ${port}`);
  await waitFor(() => child.events.some((e) => e.ev === 'metrics'), 3000, 'the endpoint');
  await child.send('exhaust 0');
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('close', () => resolve());
      s.on('error', () => {});
      setTimeout(() => { s.destroy(); resolve(); }, 1000);
    });
  }
  await sleep(200);
  t.equal(child.p.exitCode, null, `still running ${child.stderr().slice(-300)}`);
  const said = child.logs.filter((l) => /accepting a connection failed/.test(l.msg));
  t.ok(said.length <= 1, `said at most once (${said.length})`);
  await child.send('release');
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  t.equal(res.status, 200, 'serves again');
  await child.send('close');
});

// The drain reads unsent records back from the spool's segment files (opened on demand). Out of
// descriptors, that open threw EMFILE out of the delivery's pump (a setImmediate): an uncaught
// exception, which in the tap is a fatal error (exit 1). Now the failure is counted, said once,
// and the drain tries again (100 ms, doubling, at most 5 s): nothing lost, nothing out of order.
t.test('the spool read back while out of descriptors: the drain waits and tries again, said once; every event delivered, in order, once they are back', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const got: number[] = [];
  const sub = nc.subscribe('wazuh.agent.>', { callback: (_e, m: Msg) => { got.push(m.json<{ n: number }>().n); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();

  const dir = join(mkdtempSync(join(tmpdir(), 'wnt-fds-spool-')), 'spool');
  const child = startFdChild(t);
  await child.send(`delivery ${nats.url} ${dir}`);
  for (let i = 0; i < 50 && (await child.send('dstats')).connected !== true; i++) await sleep(100);
  await child.send('enqueue 5');
  await waitFor(() => got.length === 5, 5000, 'the first events, read back from the spool file');

  await child.send('exhaust 0');
  await child.send('enqueue 5');
  await sleep(1000); // the failed read, and retries after 100, 200, 400 ms
  if (!t.equal(child.p.exitCode, null, `still running ${child.stderr().slice(-400)}`)) return;
  const st = await child.send('dstats');
  t.ok(st.readErrors >= 2, `the failed reads counted, retried (${st.readErrors})`);
  t.equal(st.spoolRecords, 5, 'the events wait in the spool');
  t.equal(got.length, 5, 'nothing delivered meanwhile');
  const said = child.logs.filter((l) => /^spool: cannot read/.test(l.msg));
  t.equal(said.length, 1, 'said once, not at every retry');
  t.match(said[0], { level: 'error', o: { err: 'EMFILE' } });

  await child.send('release');
  await waitFor(() => got.length === 10, 10_000, 'the drain to go on once descriptors are back');
  t.same(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every event, once, in order');
  t.ok(child.logs.some((l) => l.msg === 'spool: reading again: draining goes on'), 'the recovery said');
  await child.send('enqueue 1');
  await waitFor(() => got.length === 11, 5000, 'and the next one');
  await child.send('close');
});
