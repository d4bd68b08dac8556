// systemd's notification protocol (agent/sd-notify.ts, agent/systemd.ts), as the unit uses it
// (Type=notify, WatchdogSec=): the socket systemd listens on is played by a python3 reader
// (helpers/notify-socket.ts), the tap is the real one with real eBPF and the simulated manager.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notifyAddress, systemdNotifier, watchdogMs } from '../controller/src/agent/sd-notify.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { notifySocket } from './helpers/notify-socket.js';
import { runTap, startTapCommand, BIN, ROOT } from './helpers/tap-process.js';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };

function tmp(t: Tap.Test): string {
  const d = mkdtempSync(join(tmpdir(), 'wnt-sd-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('$NOTIFY_SOCKET: a path or an abstract @name, anything else refused', async (t) => {
  const p = notifyAddress('/run/systemd/notify')!;
  t.equal(p.len, 2 + 19 + 1, 'family, path, its NUL');
  t.same([...p.addr.subarray(0, 3)], [1, 0, '/'.charCodeAt(0)], 'AF_UNIX, then the path');
  const a = notifyAddress('@sd-abc')!;
  t.equal(a.len, 2 + 1 + 6, 'family, a leading NUL, the name');
  t.same([...a.addr.subarray(2, 5)], [0, 's'.charCodeAt(0), 'd'.charCodeAt(0)]);
  for (const bad of ['relative/path', '@', '', `/${'x'.repeat(107)}`, '/a\0b']) t.equal(notifyAddress(bad), null, JSON.stringify(bad.slice(0, 20)));
  t.ok(notifyAddress(`/${'x'.repeat(106)}`), 'the longest path sun_path holds');
});

t.test('$WATCHDOG_USEC and $WATCHDOG_PID: for this process only, and taken out of the environment', async (t) => {
  const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' };
  t.equal(watchdogMs(env, 42), 30_000);
  t.same(env, {}, 'removed: a process the tap starts is not the one systemd watches');
  t.equal(watchdogMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), null, 'another process\'s');
  t.equal(watchdogMs({ WATCHDOG_USEC: '5000' }, 42), 5, 'no pid: ours');
  for (const bad of [undefined, '', '0', '-5', 'soon', '1e400']) t.equal(watchdogMs({ WATCHDOG_USEC: bad }, 1), null, String(bad));
});

t.test('the notifier sends datagrams to a path and to an abstract name, never blocks, and leaves the environment', async (t) => {
  const d = tmp(t);
  for (const name of [join(d, 'notify'), `@wnt-sd-${process.pid}-${Date.now()}`]) {
    const sock = await notifySocket(t, name);
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: name };
    const n = systemdNotifier(env)!;
    t.ok(n, name);
    t.same(env, {}, 'NOTIFY_SOCKET removed');
    t.ok(n.send('READY=1\nSTATUS=hello'));
    await waitFor(() => sock.got.length === 1, 5000, 'the datagram');
    t.same(sock.got[0].fields, { READY: '1', STATUS: 'hello' });
    n.close();
    t.notOk(n.send('WATCHDOG=1'), 'closed: nothing sent');
  }
  const gone = systemdNotifier({ NOTIFY_SOCKET: join(d, 'nobody') })!;
  t.notOk(gone.send('READY=1'), 'nobody listening: false, no throw');
  gone.close();
  t.equal(systemdNotifier({}), null, 'not under systemd: none');
  t.equal(systemdNotifier({ NOTIFY_SOCKET: 'notify' }), null, 'not an address: none');
});

/** A home with the simulated manager, a NATS, the notify socket, and the tap started as systemd would. */
async function underSystemd(t: Tap.Test, o: { watchdogUsec?: number; env?: NodeJS.ProcessEnv; extra?: string; ready?: RegExp | null } = {}) {
  const h = tmp(t);
  const { nats } = await natsCollecting(t, 'wazuh.>');
  writeOssecConf(h, `    <server_url>${nats.url}</server_url>\n${o.extra ?? ''}`);
  const sim = new SimManager({ binDir, home: h, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const name = join(h, 'notify');
  const sd = await notifySocket(t, name);
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env, NOTIFY_SOCKET: name };
  if (o.watchdogUsec) env.WATCHDOG_USEC = String(o.watchdogUsec);
  const tap = await startTapCommand([process.execPath, BIN], ['run', '--home', h, '--control-socket', join(h, 'tap.sock')],
    o.ready === undefined ? /^attached/ : o.ready, env);
  t.teardown(() => tap.proc.kill('SIGKILL'));
  return { h, sim, sd, tap, sock: join(h, 'tap.sock') };
}

t.test('under systemd: READY=1 once attached, WATCHDOG=1 twice an interval, STOPPING=1 at SIGTERM, exit 0', async (t) => {
  const { sd, tap } = await underSystemd(t, { watchdogUsec: 1_000_000 });
  await waitFor(() => sd.with('READY').length > 0, 10_000, 'READY=1');
  const ready = sd.with('READY', '1');
  t.equal(ready.length, 1, 'once');
  t.equal(ready[0].fields.MAINPID, String(tap.proc.pid), 'MAINPID: the tap itself');
  // NATS may or may not be connected yet at the attach: the tap connects beside it (events wait in
  // the spool), so READY never waits for NATS — the status says which it was then.
  t.match(ready[0].fields.STATUS, /^attached \(sendto\), \d+ agents, NATS (connected|disconnected), \d+ published$/,
    `after the attach: STATUS for systemctl status, as it was then: ${ready[0].fields.STATUS}`);
  const from = sd.got.length;
  await new Promise((r) => setTimeout(r, 2600));
  const pings = sd.got.slice(from).filter((n) => n.fields.WATCHDOG === '1');
  t.ok(pings.length >= 4 && pings.length <= 6, `WATCHDOG=1 every ~500 ms for WatchdogSec=1s (${pings.length} in 2.6 s)`);
  t.ok(pings.every((n) => /^attached/.test(n.fields.STATUS)), 'each with the status');
  t.ok(tap.logs.some((l) => l.msg === 'systemd: ready, watchdog on' && l.watchdog_ms === 1000), 'said in the log');
  const r = await tap.stop('SIGTERM');
  t.same(r, { code: 0, signal: null });
  const stopping = sd.with('STOPPING', '1');
  t.equal(stopping.length, 1, 'STOPPING=1');
  t.equal(stopping[0].fields.STATUS, 'stopping (SIGTERM)');
});

t.test('no watchdog asked: READY=1 and STOPPING=1 only', async (t) => {
  const { sd, tap } = await underSystemd(t);
  await waitFor(() => sd.with('READY').length > 0, 10_000, 'READY=1');
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(sd.with('WATCHDOG').length, 0, 'no ping');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  t.same(sd.got.map((n) => Object.keys(n.fields)[0]), ['READY', 'STOPPING']);
});

t.test('an event loop held in a system call (a rename on a file system that hangs): the pings stop, so systemd would restart the tap', async (t) => {
  const d = tmp(t);
  const hold = join(d, 'hold');
  const { sd, sim, tap, sock } = await underSystemd(t, { watchdogUsec: 1_000_000, env: slowSyncEnv(hold) });
  await waitFor(() => sd.with('READY').length > 0, 10_000, 'READY=1');
  await waitFor(() => sd.with('WATCHDOG').length >= 2, 5000, 'pings');
  // The next rename waits: the spool's ack cursor, written (tmp + rename) on the event loop once NATS acknowledges.
  writeFileSync(`${hold}.rename`, '');
  writeFileSync(hold, '');
  await sim.startup(A);
  await waitFor(() => existsSync(`${hold}.rename.entered`), 10_000, 'a rename to be held');
  const from = sd.got.length;
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(sd.got.slice(from).filter((n) => n.fields.WATCHDOG).length, 0, 'no ping for 2 s: twice WatchdogSec, systemd would kill it (SIGABRT)');
  t.not((await runTap(['status', '--control-socket', sock], 3000)).code, 0, 'and the tap does not answer: it is not alive, only running');
  unlinkSync(hold);
  await waitFor(() => sd.got.slice(from).some((n) => n.fields.WATCHDOG), 5000, 'the pings again once the call returns');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('<enabled>no</enabled> under systemd: READY=1 with the reason, exit 0 — a start with nothing to do, not a failed one', async (t) => {
  const h = tmp(t);
  writeOssecConf(h);
  const conf = join(h, 'etc/ossec.conf');
  writeFileSync(conf, `<ossec_config><nats><enabled>no</enabled></nats></ossec_config>\n`);
  const name = join(h, 'notify');
  const sd = await notifySocket(t, name);
  const proc = spawn(process.execPath, [BIN, 'run', '--home', h, '--control-socket', join(h, 'tap.sock')],
    { stdio: 'ignore', env: { ...process.env, NOTIFY_SOCKET: name } });
  t.teardown(() => proc.kill('SIGKILL'));
  const code = await new Promise((r) => proc.once('exit', r));
  t.equal(code, 0, 'exit 0');
  await waitFor(() => sd.got.length > 0, 5000, 'a notification');
  t.equal(sd.got.length, 1);
  t.equal(sd.got[0].fields.READY, '1');
  t.match(sd.got[0].fields.STATUS, /^disabled \(<enabled>no<\/enabled> in .*ossec\.conf\)$/);
});
