// Changes NATS would never have heard of: a status change the full spool refused, an agent removed
// while the tap was detached or stopped. Each reaches the consumers once the tap can tell it — the
// refused change when the disk has room again, the removal at the next look at wazuh-db — instead of
// the agent keeping its old status in every consumer's view (and the KV bucket) for ever
// (test/chaos-e2e.test.ts found both). Real eBPF, the simulated manager, a real nats-server.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting, type Received } from './helpers/nats-server.js';
import { ROOT, runTap, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';
import { encodeFrame, FrameReader } from '../controller/src/state/sources/wdb-wire.js';

const A = { id: 1, name: 'web-01', ip: '10.3.0.1' };
const B = { id: 2, name: 'db-01', ip: '10.3.0.2' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const changes = (got: Received[], id: string) => got.filter((m) => m.body.event_type === 'status_change' && m.body.agent_id === id)
  .map((m) => `${m.body.previous_status}>${m.body.current_status}/${m.body.reason}`);

function home(t: Test, extra = ''): string {
  const h = mkdtempSync(join(tmpdir(), 'wnt-unseen-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  writeOssecConf(h, extra);
  return h;
}

/** A nats-server collecting every agent event, a simulated manager of A and B with an authd, and the tap's arguments. */
async function managerAndNats(t: Test) {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const h = home(t);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home: h, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  const authd = await sim.spawnAuthd();
  const sock = join(h, 'tap.sock');
  return { got, sim, authd, sock, args: ['run', '--home', h, '--nats-url', nats.url, '--control-socket', sock] };
}

t.test('a status change the full spool refused is published once the disk has room', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const spool = mountTmpfs(t, '1m');
  const h = home(t, `    <spool_dir>${spool}/spool</spool_dir>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home: h, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(h, 'tap.sock');
  const tap = await startTap(['run', '--home', h, '--nats-url', nats.url, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  const owed = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout).spool.owed_statuses;
  await sim.startup(A);
  await sim.keepalive(A);
  await waitFor(() => changes(got, '001').length === 2, 10_000, 'startup and active');
  const free = fillDisk(spool);
  await sim.shutdown(A);
  // Said by the shed report, every 5 s: 10 s proved short once in a full run beside a chaos loop.
  await waitFor(() => tap.logs.some((l) => l.msg === 'spool full: events shed'), 20_000, 'the refusal said');
  await sleep(500);
  t.same(changes(got, '001'), ['never_connected>pending/agent_startup', 'pending>active/keepalive'], 'the shutdown refused: not published');
  t.equal(await owed(), 1, 'status: one agent\'s change waiting for room');
  t.match((await runTap(['status', '--control-socket', sock])).stdout, /^spool .*DISK FULL.*, 1 agents' latest status change waiting for room$/m);
  free();
  await waitFor(() => changes(got, '001').length === 3, 10_000, 'the shutdown, once the disk has room').catch(() => {});
  t.same(changes(got, '001'), ['never_connected>pending/agent_startup', 'pending>active/keepalive', 'active>disconnected/agent_shutdown'],
    'published then, with its own reason, from the status the consumers had');
  await sleep(1500);
  t.equal(changes(got, '001').length, 3, 'once');
  t.equal(await owed(), 0, 'nothing waiting any more');
});

t.test('an agent removed while the tap was detached, or stopped: one removed event at the next look at wazuh-db', async (t) => {
  const { got, sim, authd, sock, args } = await managerAndNats(t);
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  for (const x of [A, B]) {
    await sim.startup(x);
    await sim.keepalive(x);
  }
  await waitFor(() => changes(got, '001').length === 2 && changes(got, '002').length === 2, 10_000, 'both active');

  t.equal((await runTap(['detach', '--control-socket', sock])).code, 0);
  await authd.remove(A.id);
  t.equal((await runTap(['attach', '--control-socket', sock])).code, 0);
  await waitFor(() => changes(got, '001').length === 3, 10_000, 'the removal, after attach').catch(() => {});
  t.same(changes(got, '001').slice(2), ['active>unknown/removed'], 'removed while detached');
  t.equal(got.find((m) => m.body.reason === 'removed')?.body.source, 'wazuh-db', 'learnt from wazuh-db');

  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  await authd.remove(B.id);
  tap = await startTap(args);
  await waitFor(() => changes(got, '002').length === 3, 10_000, 'the removal, at start').catch(() => {});
  t.same(changes(got, '002').slice(2), ['active>unknown/removed'], 'removed while the tap was stopped');
  await sleep(1000);
  t.same([changes(got, '001').length, changes(got, '002').length], [3, 3], 'nothing more: each removal said once');
});

t.test('a removed agent whose keepalives go on after a restart of the tap: stays removed', async (t) => {
  // Found by test/chaos-e2e.test.ts (seed 549): wazuh-db answers ok to an UPDATE that matches no row, and remoted
  // sends a removed agent's keepalives until it reloads client.keys. The tap started after the removal had not
  // seen it (its journal forgets a removed agent): the keepalive brought the agent back, `unknown → active`, in
  // the stream and the KV bucket for good.
  const { got, sim, authd, args } = await managerAndNats(t);
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  await authd.remove(A.id);
  await waitFor(() => changes(got, '001').length === 3, 10_000, 'active, then removed');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  tap = await startTap(args);

  const asked = () => tap.logs.filter((l) => l.msg === 'agents updated but not listed: asked wazuh-db');
  await sim.keepalive(A); // remoted has not reloaded client.keys
  await waitFor(() => asked().length === 1, 10_000, 'wazuh-db asked about agent 001');
  t.match(asked()[0], { asked: 1, described: 0, absent: 1, events: 0 }, 'it has no row');
  await sim.startup(A);
  await sim.keepalive(A);
  await sleep(1000);
  t.same(changes(got, '001'), ['never_connected>pending/agent_startup', 'pending>active/keepalive', 'active>unknown/removed'], 'stays removed');
  t.equal(asked().length, 1, 'asked once: its later UPDATEs are those of a removed agent');

  // Registered by a process the tap does not watch (wazuh-db's socket is open to any of the manager's): its
  // UPDATEs wait while wazuh-db is asked, then apply as they came, and it is followed from then on.
  const C = { id: 3, name: 'api-03', ip: '10.3.0.3' };
  t.equal(await wdbRequest(sim.wdbPath, 'global insert-agent {"id":3,"name":"api-03","ip":"any","register_ip":"any","internal_key":"k3","date_add":1796550000}'), 'ok');
  await sim.startup(C);
  await waitFor(() => changes(got, '003').length === 1, 10_000, 'agent 003 told');
  await sim.keepalive(C);
  await waitFor(() => changes(got, '003').length === 2, 10_000, 'then its keepalive').catch(() => {});
  t.same(changes(got, '003'), ['unknown>pending/agent_startup', 'pending>active/keepalive'], 'its startup as it came, held while wazuh-db was asked');
  t.equal(got.find((m) => m.body.agent_id === '003')?.body.agent_name, 'api-03', 'with wazuh-db\'s row');
  t.same(changes(got, '002'), [], 'an agent that changed nothing: nothing');
});

/** One request on wazuh-db's socket from this process (not a Wazuh daemon: the tap does not capture it). */
async function wdbRequest(socketPath: string, text: string): Promise<string> {
  const c = net.createConnection({ path: socketPath });
  t.teardown(() => c.destroy());
  await once(c, 'connect');
  c.write(encodeFrame(text));
  const reader = new FrameReader();
  for await (const chunk of c) {
    const [reply] = reader.push(chunk as Buffer);
    if (reply !== undefined) {
      c.destroy();
      return reply;
    }
  }
  throw new Error('wazuh-db closed the connection');
}

t.test('an agent removed, then registered again while the tap was detached, as wazuh-db restarts: told, not adopted silently', async (t) => {
  // At wazuh-db's (re)appearance an agent the tap never told of is adopted silently, as at start. A
  // removed one was told of — the table forgot it, the consumers did not: adopted silently, it came
  // back without a word and its next event said a previous_status they never received.
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const h = home(t);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home: h, agents: [A, B], persistDb: true });
  t.teardown(() => sim.stop());
  await sim.start();
  const authd = await sim.spawnAuthd();
  const sock = join(h, 'tap.sock');
  const tap = await startTap(['run', '--home', h, '--nats-url', nats.url, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  await authd.remove(A.id);
  await waitFor(() => changes(got, '001').length === 3, 10_000, 'active, then removed');

  t.equal((await runTap(['detach', '--control-socket', sock])).code, 0);
  await authd.register(A); // not seen: detached
  await sim.restartDb();
  await waitFor(() => tap.logs.some((l) => l.why === 'wazuh-db socket appeared'), 10_000, 'the look at the new wazuh-db');
  t.equal((await runTap(['attach', '--control-socket', sock])).code, 0);
  await sim.startup(A);
  await waitFor(() => changes(got, '001').length >= 5, 10_000, 'the registration told, then the startup').catch(() => {});
  t.same(changes(got, '001'), ['never_connected>pending/agent_startup', 'pending>active/keepalive', 'active>unknown/removed',
    'unknown>never_connected/initial_sync', 'never_connected>pending/agent_startup'], 'one chain: back from unknown, then the startup');
  // B, never told of (never changed since the tap started), is still adopted silently.
  t.same(changes(got, '002'), [], 'an agent the consumers never heard of: nothing');
});
