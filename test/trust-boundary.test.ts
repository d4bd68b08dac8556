// The trust boundary of SPEC §2, against real eBPF and real processes: only this
// manager's own wazuh-db socket and daemons can cause an event. A local user
// imitating Wazuh (same names, same relative socket path, same bytes), and a
// second Wazuh home on the same host, are invisible to the tap.
import t from 'tap';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager, SimProcess, SimClient, installSimDaemon } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const binDir = join(ROOT, 'build/sim/bin');
const NOBODY = 65534;
const A1 = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
const A5 = { id: 5, name: 'db-server-05', ip: '192.168.56.25' };

const tmpHome = (t: Tap.Test, tag: string) => {
  const home = mkdtempSync(join(tmpdir(), `wnt-trust-${tag}-`));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  return home;
};

/** A tap on home A with a real nats-server, and a way to read its status. */
async function tapOn(t: Tap.Test, home: string) {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--control-socket', sock, '--node', 'node-a']);
  t.teardown(() => tap.stop('SIGKILL'));
  // The start's look at wazuh-db done: a later one, under load, would read what the imitation below
  // wrote through A's own socket (it is made world-writable) — wazuh-db A's truth, not a forgery.
  await waitFor(() => tap.logs.some((l) => l.msg === 'state resynchronised from wazuh-db' && l.why === 'attached'), 15_000, 'the start\'s resynchronisation');
  const status = async () => {
    const r = await runTap(['status', '--json', '--control-socket', sock]);
    if (r.code !== 0) throw new Error(`status: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, any>;
  };
  return { tap, got, status };
}

const agentEvents = (got: { body: Record<string, unknown> }[]) =>
  got.filter((m) => m.body.event_type === 'status_change' || m.body.event_type === 'keepalive');

t.test('a local user imitating Wazuh (its own wazuh-db and wazuh-remoted, its own queue/db/wdb) cannot make the tap publish', async (t) => {
  const homeA = tmpHome(t, 'a');
  writeOssecConf(homeA);
  const simA = new SimManager({ binDir, home: homeA, agents: [A1, A5] });
  t.teardown(() => simA.stop());
  await simA.start();
  const { tap, got, status } = await tapOn(t, homeA);

  // nobody's imitation: the same executables under the daemons' names, in a home of its own,
  // binding the same relative path queue/db/wdb, running as uid 65534.
  const homeX = tmpHome(t, 'x');
  chownSync(homeX, NOBODY, NOBODY);
  const simX = new SimManager({ binDir, home: homeX, uid: NOBODY, gid: NOBODY });
  t.teardown(() => simX.stop());
  await simX.start();
  t.equal(statSync(join(homeX, 'queue/db/wdb')).uid, NOBODY, 'the imitation\'s socket is nobody\'s');
  t.equal(simX.db!.child.pid !== undefined && statSync(`/proc/${simX.db!.pid}`).uid, NOBODY, 'its wazuh-db runs as nobody');

  // The forgery of the issue: agent 005 "active", then a startup, keepalives and a shutdown.
  t.match(await simX.rawreq('global update-connection-status {"id":5,"connection_status":"active","sync_status":"synced","status_code":0}'), /^ok/);
  for (const a of [A5, A1]) {
    await simX.startup(a);
    await simX.keepalive(a);
  }
  await simX.shutdown(A1);

  // Even connected to A's own socket (made world-writable here), a process that is not one of A's
  // daemons writes nothing the tap reads: its requests are not captured, so no reply is wanted either.
  for (const d of [homeA, join(homeA, 'queue'), join(homeA, 'queue/db')]) chmodSync(d, 0o755);
  const mark = tap.logs.length;
  chmodSync(join(homeA, 'queue/db/wdb'), 0o666);
  // The same socket with another mode is no wazuh-db come back: the tap does not look at wazuh-db A
  // again (it did while the socket's ctime named it). Such a look, made while the intruder writes
  // through A's socket, would read those writes from wazuh-db A — its truth, not a forgery: what a
  // full run once saw as "005 pending". 1.5 s: past the watch's look each second.
  await new Promise((r) => setTimeout(r, 1500));
  t.notOk(tap.logs.slice(mark).some((l) => l.msg === 'state resynchronised from wazuh-db'), 'no resynchronisation for a chmod of the socket');
  installSimDaemon(binDir, homeX, 'wazuh-remoted');
  const intruder = new SimClient(new SimProcess(join(homeX, 'bin'), 'wazuh-remoted', homeA, ['--no-reset'], { uid: NOBODY, gid: NOBODY }));
  t.teardown(() => intruder.kill('SIGKILL'));
  await intruder.proc.ready();
  await intruder.startup(A5);
  await intruder.keepalive(A5);

  // The real manager still speaks, and is heard: proof the tap was listening all along.
  await simA.startup(A1);
  await waitFor(() => agentEvents(got).some((m) => m.body.agent_id === '001'), 10_000, 'agent 001 of the real manager');
  await new Promise((r) => setTimeout(r, 1000)); // anything forged would show up now

  const events = agentEvents(got);
  t.same(events.map((m) => [m.body.agent_id, m.body.previous_status, m.body.current_status]),
    [['001', 'never_connected', 'pending']], 'one event: the real manager\'s');
  t.notOk(got.some((m) => m.body.agent_id === '005'), 'nothing about agent 005');
  const st = await status();
  t.match(st.agents, { never_connected: 1, pending: 1, active: 0 }, 'the state holds what the tap saw of wazuh-db A');
  const targets = (st.targets as { pid: number; name: string }[]).map((x) => x.pid);
  for (const p of [simX.db!.pid, simX.remoted!.pid, intruder.pid]) t.notOk(targets.includes(p!), `pid ${p} (nobody's) is not a target`);
  t.ok(targets.includes(simA.remoted!.pid!), 'A\'s remoted is');
  t.equal(tap.proc.exitCode, null, 'the tap is still running');
});

type Agent = { id: number; name: string; ip: string };
/** Two homes side by side, each with its simulated manager, and a tap on A only. */
async function twoHomes(t: Tap.Test, tag: string, agentsA: Agent[], agentsB: Agent[]) {
  const homeA = tmpHome(t, `${tag}a`);
  const homeB = tmpHome(t, `${tag}b`);
  writeOssecConf(homeA);
  const simA = new SimManager({ binDir, home: homeA, agents: agentsA });
  const simB = new SimManager({ binDir, home: homeB, agents: agentsB });
  t.teardown(() => simA.stop());
  t.teardown(() => simB.stop());
  await simA.start();
  await simB.start();
  return { homeA, homeB, simA, simB, ...(await tapOn(t, homeA)) };
}

t.test('two Wazuh homes on one host: a tap follows its own manager only', async (t) => {
  // B has agents with the same ids, and more.
  const agentsB = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, name: `b${i + 1}`, ip: `10.1.0.${i + 1}` }));
  const { homeA, homeB, simA, simB, got, status } = await twoHomes(t, '', [A1, A5], agentsB);

  await simA.startup(A1);
  await simA.keepalive(A1);
  await simA.startup(A5);
  await simA.keepalive(A5);
  // B's manager is busy with its own agents, and its remoted's poll lists B's active agents only:
  // a complete listing of `active` in which A's agents 1 and 5 are absent.
  for (const a of agentsB.slice(10, 20)) {
    await simB.startup(a);
    await simB.keepalive(a);
  }
  await simB.shutdown(agentsB[1]);
  t.same(await simB.pollActive(), agentsB.slice(10, 20).map((a) => a.id), 'B lists its own active agents');
  await simB.restartRemoted(); // B's manager restart: reset-agents-connection, on B's wazuh-db
  await simA.pollActive();
  // One of A's own daemons (a target) connected to B's socket: the socket is not A's, nothing is read.
  const stray = new SimClient(new SimProcess(join(homeA, 'bin'), 'wazuh-remoted', homeB, ['--no-reset']));
  t.teardown(() => stray.kill('SIGKILL'));
  await stray.proc.ready();
  await stray.startup(agentsB[30]);
  await stray.keepalive(agentsB[30]);

  await waitFor(() => agentEvents(got).filter((m) => m.body.event_type === 'status_change').length >= 4, 10_000, 'A\'s four transitions');
  await new Promise((r) => setTimeout(r, 1000));
  const statuses = got.filter((m) => m.body.event_type === 'status_change');
  t.same(statuses.map((m) => [m.body.agent_id, m.body.previous_status, m.body.current_status, m.body.reason]), [
    ['001', 'never_connected', 'pending', 'agent_startup'],
    ['001', 'pending', 'active', 'keepalive'],
    ['005', 'never_connected', 'pending', 'agent_startup'],
    ['005', 'pending', 'active', 'keepalive'],
  ], 'A\'s transitions, and nothing of B: no reset, no correction from B\'s listing');
  t.ok(agentEvents(got).every((m) => ['001', '005'].includes(String(m.body.agent_id))), 'no event names one of B\'s agents');

  const st = await status();
  t.match(st.agents, { active: 2 }, 'A\'s two agents are active');
  t.ok(st.counters.other_wdb >= 4, `A's daemon writing on B's socket was refused in the kernel (other_wdb ${st.counters.other_wdb})`);
  const targets = (st.targets as { pid: number }[]).map((x) => x.pid);
  t.ok(targets.includes(stray.pid!), 'although that daemon is a target');
  t.notOk(Object.values(simB.pids()).some((p) => targets.includes(p)), 'none of B\'s daemons is a target');

  // What the tap follows, as status shows it: A's queue/db (device and inode), A's bin/.
  const dbDir = statSync(join(homeA, 'queue/db'));
  t.match(st.identity.wdb_dir, `${homeA}/queue/db (`);
  t.match(st.identity.wdb_dir, ` inode ${dbDir.ino})`);
  t.match(st.identity.wdb_socket, ` inode ${statSync(join(homeA, 'queue/db/wdb')).ino}`);
  t.same(st.identity.exe_dirs.map((d: { path: string }) => d.path), [join(homeA, 'bin'), join(homeA, 'framework/python/bin')]);
  const table = await runTap(['status', '--control-socket', join(homeA, 'tap.sock')]);
  t.match(table.stdout, new RegExp(`socket +${homeA}/queue/db \\(\\d+:\\d+ inode ${dbDir.ino}\\) entry wdb, now`), 'status shows the socket followed');
  t.match(table.stdout, new RegExp(`daemons +${homeA}/bin \\(`));
});

t.test('a daemon that closes its connection and opens one to another home: each write judged by the socket it is on', async (t) => {
  // The kernel keeps what it decided about each open file (bpf/wdbtap.bpf.c, fd_classes), keyed by the
  // file's slot. A connection closed and another opened reuses the descriptor, and most likely the slot:
  // what was decided for the old one must not carry over to the new one, either way.
  const agentsA = Array.from({ length: 4 }, (_, i) => ({ id: i + 1, name: `a${i + 1}`, ip: `10.0.0.${i + 1}` }));
  const agentsB = Array.from({ length: 4 }, (_, i) => ({ id: i + 11, name: `b${i + 11}`, ip: `10.1.0.${i + 11}` }));
  const { homeA, homeB, got, status } = await twoHomes(t, 'r', agentsA, agentsB);
  // One of A's daemons (a target), going back and forth between A's socket and B's.
  const d = new SimClient(new SimProcess(join(homeA, 'bin'), 'wazuh-remoted', homeA, ['--no-reset']));
  t.teardown(() => d.kill('SIGKILL'));
  await d.proc.ready();
  const openDescriptors = () => d.proc.pid ? readdirSync(`/proc/${d.proc.pid}/fd`).length : 0;
  const counts: number[] = [];
  for (let i = 0; i < 4; i++) {
    await d.home(homeA);
    await d.startup(agentsA[i]);
    await d.keepalive(agentsA[i]);
    await waitFor(() => agentEvents(got).some((m) => m.body.agent_id === `00${i + 1}` && m.body.current_status === 'active'), 10_000,
      `A's agent ${i + 1} active, on a connection opened after one to B's socket`);
    counts.push(openDescriptors());
    await d.home(homeB);
    await d.startup(agentsB[i]);
    await d.keepalive(agentsB[i]);
    counts.push(openDescriptors());
  }
  await d.home(homeA);
  await d.keepalive(agentsA[0]); // after B's last writes: anything of B's would be out by now
  await new Promise((r) => setTimeout(r, 1500));
  t.same(counts, counts.map(() => counts[0]), `the same number of descriptors open throughout (${counts[0]}): each new connection took the old one's`);
  const ids = [...new Set(agentEvents(got).map((m) => String(m.body.agent_id)))].sort();
  t.same(ids, ['001', '002', '003', '004'], "A's four agents, and none of B's");
  const st = await status();
  t.ok(st.counters.other_wdb >= 12, `every write on B's socket refused in the kernel (other_wdb ${st.counters.other_wdb}; 3 a visit)`);
});

t.test('wazuh-db re-creates its socket (a restart): the new one is followed at once', async (t) => {
  const home = tmpHome(t, 'r');
  writeOssecConf(home);
  const sim = new SimManager({ binDir, home, agents: [A1] });
  t.teardown(() => sim.stop());
  await sim.start();
  const { got } = await tapOn(t, home);
  const before = statSync(join(home, 'queue/db/wdb')).ctimeMs;
  // wazuh-db restarts: a new socket (a new inode) at the same place, and remoted reconnects at once.
  await sim.stop();
  const again = new SimManager({ binDir, home, agents: [A1] });
  t.teardown(() => again.stop());
  await again.start({ reset: false });
  t.ok(statSync(join(home, 'queue/db/wdb')).ctimeMs > before, 'a new socket (the inode number may be reused: identity is the entry, not the number)');
  await again.startup(A1);
  await waitFor(() => got.some((m) => m.body.agent_id === '001' && m.body.current_status === 'pending'), 3000,
    'the first request on the new socket, without waiting for a rescan');
  t.pass('captured');
});

t.test('5.x: a short-lived wazuh-manager-authd is named authd (resolved in the kernel at its exec)', async (t) => {
  const home = tmpHome(t, '5');
  writeOssecConf(home);
  const sim = new SimManager({ binDir, home, version: 5 });
  t.teardown(() => sim.stop());
  await sim.start();
  const { got } = await tapOn(t, home);
  const authd = await sim.spawnAuthd();
  await authd.register({ id: 7, name: 'web07', ip: 'any' });
  await authd.quit(); // gone long before any /proc scan could read its executable
  await waitFor(() => got.some((m) => m.body.agent_id === '007'), 10_000, 'the registration');
  const ev = got.find((m) => m.body.agent_id === '007')!;
  t.match(ev.body, { event_type: 'status_change', current_status: 'never_connected', reason: 'registered', source: 'authd' });
});

t.test('5.x: wazuh-manager-modulesd and wazuh-manager-monitord share the comm wazuh-manager-m; each is named by its executable', async (t) => {
  const home = tmpHome(t, '5m');
  writeOssecConf(home);
  const sim = new SimManager({ binDir, home, version: 5, agents: [A1] });
  t.teardown(() => sim.stop());
  await sim.start();
  const { got } = await tapOn(t, home);
  const modulesd = await sim.spawnModulesd();
  const monitord = await sim.spawnMonitord();
  t.equal(readFileSync(`/proc/${modulesd.pid}/comm`, 'utf8').trim(), readFileSync(`/proc/${monitord.pid}/comm`, 'utf8').trim(), 'one comm for both');
  await modulesd.managerInfo(); // agent 000: the state keeps no manager row, publishes nothing
  await modulesd.register({ id: 8, name: 'web08', ip: 'any' });
  await sim.startup(A1);
  t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) + 60), [1]);
  await waitFor(() => got.some((m) => m.body.agent_id === '008') && got.some((m) => m.body.agent_id === '001' && m.body.current_status === 'disconnected'),
    10_000, 'the registration and the sweep');
  t.match(got.find((m) => m.body.agent_id === '008')!.body, { current_status: 'never_connected', reason: 'registered', source: 'modulesd' });
  t.match(got.find((m) => m.body.agent_id === '001' && m.body.current_status === 'disconnected')!.body, { reason: 'no_keepalive', source: 'monitord' });
  t.notOk(got.some((m) => m.body.agent_id === '000'), 'nothing about the manager\'s own row');
});
