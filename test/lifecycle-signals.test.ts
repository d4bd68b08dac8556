// The agent's one lifecycle with real signals, a real nats-server and real
// eBPF (SPEC §8): a signal at any phase of start-up or shutdown, a second
// instance, a fatal error after start and `<enabled>no</enabled>` on reload all
// end the same way — detached, the process gone, the right exit code.
import t from 'tap';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { runTap, startTap, startTapCommand, BIN, ROOT, WITHOUT_TEST_HOOKS, type TapProcess } from './helpers/tap-process.js';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { spooled } from './helpers/spooled.js';
import { bpfMark, leftBehind, tapProgramsOf } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const MARK = bpfMark();
const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };

function home(t: Tap.Test, extra = ''): string {
  const h = mkdtempSync(join(tmpdir(), 'wnt-life-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  writeOssecConf(h, extra);
  return h;
}

/** A home with the simulated manager running (agent A), stopped at the end of the test. */
async function simulated(t: Tap.Test, extra = ''): Promise<{ h: string; sim: SimManager }> {
  const h = home(t, extra);
  const sim = new SimManager({ binDir, home: h, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  return { h, sim };
}

/** A wazuh-db that accepts and never answers: the tap's start-up waits in its first sync (3 s a query). */
async function silentWdb(t: Tap.Test, h: string): Promise<Server> {
  mkdirSync(join(h, 'queue/db'), { recursive: true });
  const conns: Socket[] = [];
  const srv = createServer((s) => { conns.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => srv.listen(join(h, 'queue/db/wdb'), () => r()));
  t.teardown(() => { for (const c of conns) c.destroy(); srv.close(); });
  return srv;
}

/** Until the tap's executable runs (it names itself, after taking its signals): what came before is Node's own start. */
async function handlesSignals(pid: number): Promise<void> {
  await waitFor(() => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('wazuh-nats-tap run');
    } catch {
      return true; // exited: the caller sees it
    }
  }, 5000, 'the tap to take its signals');
}

async function exitWithin(tap: Pick<TapProcess, 'proc'>, ms: number) {
  const t0 = Date.now();
  await waitFor(() => tap.proc.exitCode !== null || tap.proc.signalCode !== null, ms, `the tap to exit within ${ms} ms`);
  return { code: tap.proc.exitCode, signal: tap.proc.signalCode, ms: Date.now() - t0 };
}

const msgs = (tap: TapProcess) => tap.logs.map((l) => String(l.msg));

t.test('SIGTERM at each phase of start-up, and after: exit 0, detached, nothing left', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.tap.>');
  const h = home(t);
  await silentWdb(t, h);
  // Delays after the tap took its signals: loading, the kernel check and config, the spool, the first sync.
  for (const delay of [0, 15, 60, 200, 600, 1500]) {
    const tap = await startTap(['run', '--home', h, '--nats-url', nats.url, '--control-socket', join(h, 'tap.sock')], null);
    t.teardown(() => tap.stop('SIGKILL'));
    await handlesSignals(tap.proc.pid!);
    await new Promise((r) => setTimeout(r, delay));
    tap.proc.kill('SIGTERM');
    const r = await exitWithin(tap, 10_000);
    t.same([r.code, r.signal], [0, null], `SIGTERM ${delay} ms in: exit 0 (${r.ms} ms), not killed by the signal`);
    t.ok(msgs(tap).includes('stopping'), `${delay} ms: through the shutdown path`);
  }
  t.ok(got.some((m) => m.body.action === 'stopped'), 'a stop during the first sync still says stopped on NATS');
  t.same(await leftBehind(MARK), [], 'no program left in the kernel');
});

t.test('signals to the last instant: after a SIGTERM, SIGHUPs and SIGTERMs on every turn until the process is gone never end it by a signal', async (t) => {
  const h = home(t);
  for (let round = 0; round < 2; round++) {
    // SIGHUP's and SIGTERM's default actions as systemd leaves them (the test runner's hooks take them in a child).
    const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')], /^attached/,
      WITHOUT_TEST_HOOKS);
    t.teardown(() => tap.stop('SIGKILL'));
    let gone = false;
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => tap.proc.once('exit', (code, signal) => { gone = true; r({ code, signal }); }));
    tap.proc.kill('SIGTERM');
    let sent = 0;
    // `systemctl reload` or a second stop in the milliseconds between the lifecycle's end and the process's.
    while (!gone) {
      try {
        process.kill(tap.proc.pid!, sent % 2 ? 'SIGTERM' : 'SIGHUP');
        sent++;
      } catch {
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    t.same(await exit, { code: 0, signal: null }, `round ${round + 1}: exit 0 after ${sent} signals, not killed by one`);
  }
  t.same(await leftBehind(MARK), [], 'no program left in the kernel');
});

t.test('SIGHUP during start-up never kills; it is handled once started', async (t) => {
  const h = home(t);
  await silentWdb(t, h);
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')], null);
  t.teardown(() => tap.stop('SIGKILL'));
  await handlesSignals(tap.proc.pid!);
  for (const delay of [0, 20, 100, 400, 1000]) {
    await new Promise((r) => setTimeout(r, delay));
    tap.proc.kill('SIGHUP');
  }
  t.equal(tap.proc.exitCode, null, 'alive through five SIGHUPs');
  await waitFor(() => msgs(tap).some((m) => m.startsWith('attached')), 15_000, 'the start-up to finish (the first sync times out)');
  await waitFor(() => msgs(tap).includes('configuration reloaded'), 2000, 'the deferred reload');
  t.equal(msgs(tap).filter((m) => m === 'configuration reloaded').length, 1, 'the SIGHUPs of the start-up make one reload');
  tap.proc.kill('SIGHUP');
  await waitFor(() => msgs(tap).filter((m) => m === 'configuration reloaded').length === 2, 2000, 'a reload once started');
  t.ok(tapProgramsOf(tap.proc.pid!).length > 0, 'still attached');
  tap.proc.kill('SIGTERM');
  t.same((await exitWithin(tap, 10_000)).code, 0);
});

t.test('a storm of signals while the kernel verifies the programs (a SIGHUP every millisecond): the load succeeds', async (t) => {
  // The verifier gives up (EAGAIN) when a signal is pending for the loading thread, and libbpf
  // retries a few times only: a profiler's SIGPROF or a HUP loop made the start fail with
  // "the kernel refused the BPF programs … Resource temporarily unavailable".
  const { h } = await simulated(t);
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')], null);
  t.teardown(() => tap.stop('SIGKILL'));
  await handlesSignals(tap.proc.pid!);
  let sent = 0;
  const storm = setInterval(() => {
    for (let i = 0; i < 4 && tap.proc.exitCode === null; i++, sent++) tap.proc.kill('SIGHUP');
  }, 1);
  try {
    await waitFor(() => tap.proc.exitCode !== null || msgs(tap).some((m) => m.startsWith('attached')), 20_000, 'attached, or an exit');
  } finally {
    clearInterval(storm);
  }
  t.equal(tap.proc.exitCode, null, `alive after ${sent} SIGHUPs: ${tap.stderr().slice(0, 300)}`);
  t.ok(msgs(tap).some((m) => m.startsWith('attached')), 'attached');
  t.ok(tapProgramsOf(tap.proc.pid!).length > 0, 'its programs are in the kernel');
  tap.proc.kill('SIGTERM');
  t.same((await exitWithin(tap, 10_000)).code, 0);
});

t.test('NATS down with a 1 minute reconnect delay, and a second SIGTERM during the shutdown: exit 0, quickly', async (t) => {
  const { h, sim } = await simulated(t, '    <reconnect_delay>1m</reconnect_delay>\n');
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await new Promise((r) => setTimeout(r, 300));
  tap.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 30));
  tap.proc.kill('SIGTERM');
  const r = await exitWithin(tap, 10_000);
  t.same([r.code, r.signal], [0, null], 'exit 0, not 143');
  t.ok(r.ms < 5000, `within seconds (${r.ms} ms), not after the reconnect delay`);
  t.ok(msgs(tap).includes('already stopping'), 'the second signal was taken by the shutdown in progress');
  t.same(await leftBehind(MARK), []);
});

t.test('one tap per home: a second run exits 2 naming the first, also with a spool of its own', async (t) => {
  const { h, sim } = await simulated(t);
  const first = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'a.sock')]);
  t.teardown(() => first.stop('SIGKILL'));
  const second = await runTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'b.sock')]);
  t.equal(second.code, 2, 'exit 2');
  t.match(second.stderr, new RegExp(`\\(pid ${first.proc.pid}\\) already runs on the spool`), 'names the running one');
  // Another spool_dir, same home: still the same manager.
  const other = join(h, 'other-spool');
  writeOssecConf(h, `    <spool_dir>${other}</spool_dir>\n`);
  const third = await runTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'c.sock')]);
  t.equal(third.code, 2);
  t.match(third.stderr, new RegExp(`\\(pid ${first.proc.pid}\\) already runs on the Wazuh home ${h}`));
  t.equal(first.proc.exitCode, null, 'the first one runs on');
  t.ok(tapProgramsOf(first.proc.pid!).length > 0, 'still attached');
});

t.test('a fatal error after start (its lock removed): detached and gone, exit 1 — never half alive', async (t) => {
  const { h, sim } = await simulated(t);
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  const progs = tapProgramsOf(tap.proc.pid!);
  t.ok(progs.length > 0, 'attached');
  unlinkSync(join(h, 'var/nats-tap/lock'));
  const r = await exitWithin(tap, 15_000);
  t.same([r.code, r.signal], [1, null], 'exit 1');
  t.ok(tap.logs.some((l) => l.level === 60 && /lock .* was removed or replaced/.test(String(l.msg))), 'the fatal error is logged');
  t.match(tap.stderr(), /was removed or replaced/);
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('SIGHUP after <enabled>no</enabled>: the agent stops (exit 0) instead of saying "reloaded"', async (t) => {
  const { h, sim } = await simulated(t);
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  const conf = join(h, 'etc/ossec.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace('<enabled>yes</enabled>', '<enabled>no</enabled>'));
  tap.proc.kill('SIGHUP');
  const r = await exitWithin(tap, 10_000);
  t.same([r.code, r.signal], [0, null]);
  t.ok(msgs(tap).some((m) => m.startsWith('disabled in the configuration')));
  t.notOk(msgs(tap).includes('configuration reloaded'));
  t.same(await leftBehind(MARK), []);
});

t.test('a disk whose fdatasync hangs: SIGTERM still ends the tap in time (exit 0), and what it spooled is there after', async (t) => {
  const { h, sim } = await simulated(t);
  // helpers/slow-sync.c: while `hold` exists every fdatasync of the tap waits (NATS is away: events go to disk).
  const hold = join(h, 'sync-hold');
  writeFileSync(hold, '');
  t.teardown(() => rmSync(hold, { force: true }));
  const tap = await startTapCommand([process.execPath, BIN],
    ['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')], /^attached/,
    { ...process.env, ...slowSyncEnv(hold) });
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await waitFor(() => existsSync(`${hold}.entered`), 10_000, 'the spool\'s periodic sync to start (and hang)');
  tap.proc.kill('SIGTERM');
  const r = await exitWithin(tap, 15_000);
  t.same([r.code, r.signal], [0, null], `exit 0 (${r.ms} ms), not ended by the deadline or a signal`);
  t.ok(r.ms < 5000, `within seconds (${r.ms} ms): the last sync is not waited for on the event loop`);
  t.ok(msgs(tap).includes('stopped'), 'through the whole shutdown path');
  t.ok(tap.logs.some((l) => /the last sync did not finish/.test(String(l.msg))), 'the unfinished sync is said');
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
  rmSync(hold); // the disk answers
  const statuses = spooled(join(h, 'var/nats-tap')).filter((e) => e.kind === 'status');
  t.ok(statuses.some((e) => e.subject === 'wazuh.agent.001.status'), 'the agent\'s status change waits in the spool for the next start');
});

t.test('a log pipe nobody reads: the tap runs on, says so in status, and a SIGTERM ends it in seconds with exit 0', async (t) => {
  const { h, sim } = await simulated(t);
  // A FIFO opened read-write (so it has a reader that never reads), filled: the tap's first log line blocks.
  const fifo = join(h, 'log-fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
  t.teardown(() => closeSync(fd));
  const chunk = Buffer.alloc(4096, 'x');
  for (let i = 0; i < 1024; i++) {
    try { writeSync(fd, chunk); } catch { break; } // EAGAIN: full
  }
  const sock = join(h, 'tap.sock');
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', sock],
    { stdio: ['ignore', fd, 'ignore'] });
  t.teardown(() => proc.kill('SIGKILL'));
  let attached = false;
  for (let i = 0; i < 60 && !attached && proc.exitCode === null; i++) {
    attached = /attached/.test((await runTap(['status', '--control-socket', sock], 5000)).stdout);
    if (!attached) await new Promise((r) => setTimeout(r, 250));
  }
  t.ok(attached, 'attached and answering status while its log is blocked');
  await sim.startup(A);
  t.ok(tapProgramsOf(proc.pid!).length > 0, 'its programs in the kernel');
  await new Promise((r) => setTimeout(r, 1100)); // past LOG_STALL_MS
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock], 5000)).stdout);
  t.ok(st.log.pending_bytes > 0 && st.log.stalled_ms >= 1000, `status says the log waits (${JSON.stringify(st.log)})`);
  t.match((await runTap(['status', '--control-socket', sock], 5000)).stdout, /^log\s+STALLED: stdout has not drained for \d+ s/m, 'and its table');
  proc.kill('SIGTERM');
  const r = await exitWithin({ proc }, 20_000);
  t.ok(r.code !== null || r.signal !== null, `ended (${r.ms} ms)`);
  t.same({ code: r.code, signal: r.signal }, { code: 0, signal: null },
    'exit 0: its stalled log is not flushed (those lines counted as dropped), nothing waits on it');
  t.ok(r.ms < 10_000, 'within the deadline');
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});
