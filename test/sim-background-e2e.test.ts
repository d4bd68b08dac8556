// The real tap against a simulated manager with its background traffic (SimManager `background`,
// WAZUH-PROTOCOL §2) at short intervals: remoted's poll of the active agents every 100 ms on a
// connection of its own, analysisd's every 130 ms on its own, get-distinct-groups on short
// connections every 150 ms, the agents' messages from remoted's 4 worker connections, monitord's
// get-agent-info after its sweep — all racing the agents as they start, keep alive, shut down, go
// silent (a sweep), and as remoted restarts (killed, maybe in the middle of a poll) and they come
// back. Each agent's status events must be exactly its real transitions, with the right reason, code
// and source (no `initial_sync` correction from a listing that raced a keepalive or a shutdown), and
// the tap's final view must be wazuh-db's (`get-agent-info` of each agent).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager, type SimAgent } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

const MARK = bpfMark();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const A: SimAgent[] = [1, 2, 3, 4, 5, 6].map((id) => ({ id, name: `agent${id}`, ip: `10.0.0.${id}` }));
const byId = (id: number) => A[id - 1];
type Ev = [previous: string, current: string, reason: string, code: number, source: string];

for (const version of [4, 5] as const) t.test(`background traffic at short intervals (${version}.x): one status event per real transition, and the tap ends where wazuh-db is`, async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-simbg-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n`);
  const sim = new SimManager({
    binDir: join(ROOT, 'build/sim/bin'), home, agents: A, version, pageRows: 4, // pages of 4: listings of 6 agents come in two
    background: { remotedPollMs: 100, groupsMs: 150, analysisdPollMs: 130 },
  });
  t.teardown(() => sim.stop());
  await sim.start();
  const monitord = await sim.spawnMonitord();
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));

  /** Keepalives of these agents, round after round, ~every `everyMs`, for `ms`. */
  const keepAlive = async (ids: number[], ms: number, everyMs = 120) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      for (const id of ids) await sim.keepalive(byId(id));
      await sleep(everyMs);
    }
  };

  // 1. Every agent starts, then keeps alive for 2 s while both polls run.
  for (const a of A) await sim.startup(a);
  await keepAlive([1, 2, 3, 4, 5, 6], 2000);
  // 2. Agent 5 shuts down; 3 and 4 go silent while the others keep alive; monitord's sweep then takes 3 and 4.
  await sim.shutdown(byId(5));
  await keepAlive([1, 2, 6], 2600);
  for (const id of [1, 2, 6]) await sim.keepalive(byId(id));
  t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) - 1), [3, 4], 'the sweep disconnects the silent agents 3 and 4');
  await keepAlive([1, 2, 6], 600);
  // 3. remoted restarts (SIGKILL: maybe in the middle of a poll): its reset takes 1, 2 and 6.
  await sim.restartRemoted();
  await sleep(400); // the new remoted tracks no agent: only analysisd polls
  // 4. 1 and 2 come back as agents do to a restarted manager (pending and active from two worker
  //    threads, 2 ms apart), 3 comes back by itself; then they keep alive; then 2 shuts down.
  t.same(await sim.reconnect(2, 1, 2000), { pending: 2, active: 2, errors: 0 }, '1 and 2 reconnect');
  await sim.startup(byId(3));
  await keepAlive([1, 2, 3], 1500);
  await sim.shutdown(byId(2));
  await keepAlive([1, 3], 800);

  const want: Record<string, Ev[]> = {
    '001': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'manager_reset', 5, 'remoted'],
      ['disconnected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted']],
    '002': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'manager_reset', 5, 'remoted'],
      ['disconnected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'agent_shutdown', 3, 'remoted']],
    '003': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'no_keepalive', 4, 'monitord'],
      ['disconnected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted']],
    '004': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'no_keepalive', 4, 'monitord']],
    '005': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'agent_shutdown', 3, 'remoted']],
    '006': [['never_connected', 'pending', 'agent_startup', 0, 'remoted'], ['pending', 'active', 'keepalive', 0, 'remoted'],
      ['active', 'disconnected', 'manager_reset', 5, 'remoted']],
  };
  const total = Object.values(want).reduce((n, e) => n + e.length, 0);
  const status = () => got.filter((m) => m.body.event_type === 'status_change').map((m) => m.body);
  await waitFor(() => status().length >= total, 10_000, `${total} status events`).catch(() => {});
  await sleep(1000); // more would be a defect: polls go on meanwhile, give them time to show one

  // wazuh-db's own view, asked the way monitord asks (the tap sees these replies too: they must change nothing).
  const truth: Record<string, string> = {};
  for (const a of A) truth[String(a.id).padStart(3, '0')] = /"connection_status":"(\w+)"/.exec(await monitord.agentInfo(a.id))?.[1] ?? 'none';
  await sleep(500);

  const evs = status();
  const seq = (id: string) => evs.filter((b) => b.agent_id === id).map((b) => [b.previous_status, b.current_status, b.reason, b.status_code, b.source]);
  const corrections = evs.filter((b) => b.reason === 'initial_sync');
  if (evs.length !== total || corrections.length) {
    // For whoever reads a failure: every status event, in order, with the times the tap gives them.
    t.comment(JSON.stringify(evs.map((b) => `${b.time} ${b.agent_id} ${b.previous_status}->${b.current_status} ${b.reason} ${b.status_code} ${b.source}`), null, 1));
  }
  t.same(corrections.map((b) => `${b.agent_id} ${b.previous_status}->${b.current_status}`), [], 'no initial_sync correction: no listing that raced a change undid it');
  for (const id of Object.keys(want)) t.same(seq(id), want[id], `agent ${id}: exactly its transitions, reason, code and source`);
  t.equal(evs.length, total, `${total} status events in all`);

  // The tap's final view — each agent's last event (never_connected, as the tap learned it at start, when
  // it has none) and its own counts — is wazuh-db's.
  const last: Record<string, string> = {};
  for (const id of Object.keys(truth)) last[id] = evs.filter((b) => b.agent_id === id).at(-1)?.current_status ?? 'never_connected';
  t.same(last, truth, 'the last status each agent was published with is wazuh-db\'s');
  t.same(truth, { '001': 'active', '002': 'disconnected', '003': 'active', '004': 'disconnected', '005': 'disconnected', '006': 'disconnected' }, 'wazuh-db is where the scenario leads');
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout || '{}') as { agents?: Record<string, number> };
  const counts: Record<string, number> = {};
  for (const s of Object.values(truth)) counts[s] = (counts[s] ?? 0) + 1;
  t.same(Object.fromEntries(Object.entries(st.agents ?? {}).filter(([, n]) => n > 0)), counts, 'the tap\'s table counts wazuh-db\'s statuses');

  // The polls above were seen, not missed: a change the tap cannot see (made by a process that is not
  // Wazuh's, which it never captures) is found by the next listing of the active agents — remoted's or
  // analysisd's — and published as a correction.
  const intruder = await sim.spawnClient('not-wazuh');
  await intruder.startup(byId(6));
  await intruder.keepalive(byId(6));
  await waitFor(() => status().length > evs.length, 5000, 'a poll to correct agent 6').catch(() => {});
  t.same(status().slice(evs.length).map((b) => [b.agent_id, b.previous_status, b.current_status, b.reason]), [['006', 'disconnected', 'active', 'initial_sync']],
    'the next poll corrects agent 6, made active unseen');
  t.match(status().at(-1)?.source, /^(remoted|analysisd)$/, 'from a poll\'s listing');

  t.equal(tap.proc.exitCode, null, 'the tap runs on');
  await tap.stop('SIGTERM');
  await sim.stop();
  t.same(await leftBehind(MARK), [], 'no program of the tap left in the kernel');
});
