// The wall clock steps (an NTP correction — chrony's makestep at boot —, `date -s`, a resumed
// virtual machine): event times follow it, and nothing the tap waits for does. Every interval, retry
// and deadline is measured on the monotonic clock; a step back of an hour must not hold a reconnect,
// a JetStream retry or a log line for that hour, nor leave every later event an hour off.
// Only this process's (or the child tap's) Date moves (helpers/wall-clock.cjs): the machine's clock
// is shared with the other tests and taps.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { installWallClock } from './helpers/wall-clock.cjs';
import { LogLimiter } from '../controller/src/util/log-limiter.js';
import { RateLimitedLog } from '../controller/src/util/rate-limit.js';
import { monotonicToWallClock } from '../controller/src/util/clock.js';
import { Delivery } from '../controller/src/publish/delivery.js';
import { startNatsServer, natsCollecting } from './helpers/nats-server.js';
import { testEvent } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startTapCommand, BIN, ROOT } from './helpers/tap-process.js';
import { Spool } from '../controller/src/publish/spool.js';
import { StatusJournal } from '../controller/src/state/sources/status-journal.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';
import { writeOssecConf } from './helpers/config.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';

const MARK = bpfMark();
const HOUR = 3_600_000;
const log = pino({ level: process.env.DEBUG_DELIVERY ? 'debug' : 'silent' });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the log limits count their minute on the monotonic clock', async (t) => {
  const clock = installWallClock();
  t.teardown(() => clock.restore());
  const limiter = new LogLimiter(50);
  t.ok(limiter.allow('k'), 'the first line is written');
  t.notOk(limiter.allow('k'), 'the next within the interval is held');
  clock.step(-HOUR);
  await sleep(80);
  t.same(limiter.allow('k'), { held: 1 }, 'after the interval, a line again (with the count held), although the wall clock went back an hour');

  const lines: string[] = [];
  const rl = new RateLimitedLog((_f, msg) => lines.push(msg), { max: 1, intervalMs: 50 });
  rl.log({}, 'one');
  rl.log({}, 'held');
  clock.step(-HOUR);
  await sleep(80);
  rl.log({}, 'two');
  t.ok(lines.includes('two'), `a new interval began after 50 ms on the monotonic clock (${JSON.stringify(lines)})`);
});

t.test('capture times become wall-clock times by the wall clock of now, not of the start', async (t) => {
  const clock = installWallClock();
  t.teardown(() => clock.restore());
  const wall = monotonicToWallClock();
  const near = (a: number, b: number) => Math.abs(a - b) < 50;
  t.ok(near(wall(process.hrtime.bigint()), Date.now()), 'at the start');
  clock.step(-HOUR);
  await sleep(1100);
  const ms = wall(process.hrtime.bigint());
  t.ok(near(ms, Date.now()), `a second after a step back of an hour: ${new Date(ms).toISOString()} against the clock's ${new Date().toISOString()}`);
  clock.step(2 * HOUR);
  await sleep(1100);
  t.ok(near(wall(process.hrtime.bigint()), Date.now()), 'and after a step forward');
});

t.test('core NATS: a step back of the wall clock during an outage does not hold the reconnect', async (t) => {
  const clock = installWallClock();
  t.teardown(() => clock.restore());
  const srv = await startNatsServer();
  t.teardown(() => srv.stop());
  const d = new Delivery({
    servers: [srv.url], mode: 'core', log, spool: { dir: tmp('clock-core-'), maxBytes: 8 << 20 },
    reconnectDelayMs: 250, maxReconnects: 1000,
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.stats().connected, 10_000, 'connected');
  await srv.stop();
  await waitFor(() => !d.stats().connected, 10_000, 'the outage seen');
  await sleep(600); // nats.js dialled (and failed) at least once: its servers' last attempt is stamped
  clock.step(-HOUR);
  t.ok(d.enqueue(testEvent(1, 1)), 'an event during the outage is spooled');
  await srv.restart();
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const got: string[] = [];
  const sub = nc.subscribe('wazuh.>', { callback: (_e, m) => got.push(m.string()) });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  await waitFor(() => d.stats().connected, 10_000, 'reconnected within seconds, not an hour')
    .catch((e) => { t.comment(JSON.stringify(d.stats())); throw e; });
  await waitFor(() => got.length >= 1, 10_000, 'the spooled event delivered');
  t.match(got[0], /"ev-1"/);
});

t.test('JetStream: a retry waiting for its stream is not held by a step back of the wall clock', async (t) => {
  const clock = installWallClock();
  t.teardown(() => clock.restore());
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const stream = { name: 'WAZUH', subjects: ['wazuh.>'] };
  await jsm.streams.add(stream);
  const d = new Delivery({
    servers: [srv.url], mode: 'jetstream', log, spool: { dir: tmp('clock-js-'), maxBytes: 8 << 20 },
    reconnectDelayMs: 250, maxReconnects: 8, ackTimeoutMs: 1000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: false },
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.stats().connected && d.stats().streamReady, 10_000, 'connected');
  await jsm.streams.delete('WAZUH');
  t.ok(d.enqueue(testEvent(1, 1)), 'enqueued while the stream is missing');
  await waitFor(() => d.stats().failures >= 1, 10_000, 'the publish refused (no stream): a retry is scheduled');
  clock.step(-HOUR);
  await jsm.streams.add(stream);
  await waitFor(() => d.stats().acknowledged >= 1, 15_000, 'stored within the retry backoff, not an hour later')
    .catch((e) => { t.comment(JSON.stringify(d.stats())); throw e; });
  t.equal((await jsm.streams.info('WAZUH')).state.messages, 1);
});

t.test('a full disk: the spool and the status journal look again after their delay, whatever the wall clock did', async (t) => {
  const clock = installWallClock();
  t.teardown(() => clock.restore());
  const mnt = mountTmpfs(t);
  // The spool looks at the free space once a second: a disk filled meanwhile fails its next write.
  const s = Spool.open({ dir: join(mnt, 'spool'), maxBytes: 600 * 1024, segmentBytes: 256 * 1024, retryMs: 100 });
  t.teardown(() => s.close());
  t.ok(s.append([testEvent(0, 1)])[0] > 0, 'the disk looked at: room');
  const free = fillDisk(mnt);
  const big = Array.from({ length: 400 }, (_, i) => ({ ...testEvent(1 + i, 1), body: 'x'.repeat(2000) }));
  s.append(big);
  t.equal(s.stats().writeErrors, 1, 'a write failed (ENOSPC)');
  let recovered = 0;
  const j = new StatusJournal(join(mnt, 'agents.status'), { retryMs: 100, onRecovered: () => recovered++ });
  j.open();
  j.recordMany([{ agentId: '001', status: 'active', statusCode: 0 }]);
  t.ok(j.writeFailures > 0, 'the journal\'s write failed');
  clock.step(-HOUR);
  free();
  await sleep(300);
  t.ok(s.append([testEvent(500, 1)])[0] > 0, 'the spool accepts again once the disk has room');
  j.recordMany([{ agentId: '001', status: 'disconnected', statusCode: 4 }]);
  t.equal(recovered, 1, 'the journal writes again');
  j.close(new Map());
});

t.test('the tap: events carry the wall-clock time of their capture after the clock stepped back', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const home = tmp('wnt-clock-');
  writeOssecConf(home, '');
  const offsetFile = join(home, 'clock-offset');
  writeFileSync(offsetFile, '0');
  const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  const tap = await startTapCommand([process.execPath, '--require', join(ROOT, 'test/helpers/wall-clock.cjs'), BIN],
    ['run', '--home', home, '--nats-url', nats.url, '--node', 'node-clock'], /^attached/,
    { ...process.env, WNT_WALL_CLOCK_FILE: offsetFile });
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.start();
  await waitFor(() => tap.logs.some((l) => l.why === 'wazuh-db socket appeared'), 5000, 'the tap to ask wazuh-db');

  const status = () => got.filter((m) => m.body.event_type === 'status_change');
  // How far an event's time is from this process's (unstepped) clock, read as soon as it is seen.
  const lag = (m: { body: Record<string, unknown> }) => Date.now() - Date.parse(String(m.body.time));
  await sim.startup(A);
  await waitFor(() => status().length >= 1, 10_000, 'the startup event');
  const before = lag(status()[0]);
  t.ok(Math.abs(before) < 5000, `before the step, the event's time is now (${before} ms off)`);

  writeFileSync(offsetFile, String(-HOUR)); // the tap's wall clock goes back an hour
  await sleep(1500);
  await sim.keepalive(A);
  await sim.shutdown(A);
  await waitFor(() => status().length >= 3, 10_000, 'the keepalive and shutdown events');
  for (const m of status().slice(1)) {
    const off = lag(m) - HOUR;
    t.ok(Math.abs(off) < 5000, `${m.body.current_status}: the time of the tap's clock, an hour back (${off} ms from it)`);
  }
  t.equal((await tap.stop()).code, 0);
  t.same(await leftBehind(MARK), [], 'no program left behind');
});
