// SPEC §3 "Order", through the real eBPF path: agents coming back after a
// manager restart get `pending` from one remoted thread and, a moment later,
// `active` from another, on two connections and two CPUs (two perf rings),
// while both CPUs are busy. wazuh-db applies pending then active, so every
// agent must come out pending, then active — never active then pending.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { startTap, ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const AGENTS = 1500;

/** Busy loops on every CPU, as a loaded manager host: the writers get preempted inside their sendto. */
function contention(t: Tap.Test, n: number): ChildProcess[] {
  const hogs = Array.from({ length: n }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  t.teardown(() => { for (const h of hogs) h.kill('SIGKILL'); });
  return hogs;
}

t.test('pending and active of each agent, from two threads on two CPUs under load, come out in wazuh-db\'s order', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-order-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, '    <keepalive_events>no</keepalive_events>\n');
  const agents = Array.from({ length: AGENTS }, (_, i) => ({ id: i + 1, name: `a${i + 1}`, ip: 'any' }));
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents });
  t.teardown(() => sim.stop());
  await sim.start();
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.*.status');
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'order', '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));

  const hogs = contention(t, 4);
  for (const gap of [2000, 500]) { // µs from the start of an agent's pending write to its active pair
    const first = gap === 2000 ? 1 : AGENTS / 2 + 1;
    const r = await sim.reconnect(AGENTS / 2, first, gap, 120_000);
    t.same(r, { pending: AGENTS / 2, active: AGENTS / 2, errors: 0 }, `gap ${gap} µs: every request answered ok`);
  }
  for (const h of hogs) h.kill('SIGKILL');
  // wazuh-db's own view: what it applied last for every agent (it lists the active ones).
  const activeInDb = new Set(await sim.pollActive());
  await waitFor(() => got.length >= 2 * AGENTS, 60_000, `${2 * AGENTS} status events`);
  await new Promise((r) => setTimeout(r, 500));

  const seq = new Map<number, string[]>();
  for (const m of got) {
    const b = m.body;
    const id = Number(b.agent_id);
    seq.set(id, [...(seq.get(id) ?? []), `${b.previous_status}>${b.current_status}`]);
  }
  t.equal(seq.size, AGENTS, 'every agent has events');
  // wazuh-db is the truth: what it applied last is the agent's last event, for every agent.
  const expect = (id: number) => (activeInDb.has(id)
    ? 'never_connected>pending pending>active' : 'never_connected>active active>pending');
  const wrong = [...seq].filter(([id, s]) => s.join(' ') !== expect(id)).map(([id, s]) => `${id}: ${s.join(' ')} (wazuh-db: ${activeInDb.has(id) ? 'active' : 'pending'})`);
  t.ok(activeInDb.size > AGENTS * 0.9, `wazuh-db applied most agents' active last (${activeInDb.size} of ${AGENTS})`);
  t.same(wrong.slice(0, 5), [], `every agent's events in wazuh-db's order (${wrong.length} of ${AGENTS} not)`);
  t.equal(got.length, 2 * AGENTS, 'two events an agent, no more');
});

/** n agents, wazuh-db answering (or, `at: 'read'`, reading) each one's pending `lateUs` late, a tap attached and a subscriber to the status subjects. */
async function lateReplySession(t: Tap.Test, tag: string, n: number, lateUs: number, at: 'reply' | 'read' = 'reply') {
  const home = mkdtempSync(join(tmpdir(), `wnt-order-${tag}-`));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, '    <keepalive_events>no</keepalive_events>\n');
  const agents = Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `a${i + 1}`, ip: 'any' }));
  const late = { match: '"connection_status":"pending"', us: lateUs };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents, ...(at === 'reply' ? { lateReply: late } : { lateRead: late }) });
  t.teardown(() => sim.stop());
  await sim.start();
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.*.status');
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'order', '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  /** Each agent's events, once there are two an agent: `previous>current(reason)`. */
  const sequences = async () => {
    await waitFor(() => got.length >= 2 * n, 20_000, `${2 * n} status events`);
    await new Promise((r) => setTimeout(r, 300));
    const seq = new Map<number, string[]>();
    for (const m of got) seq.set(Number(m.body.agent_id), [...(seq.get(Number(m.body.agent_id)) ?? []), `${m.body.previous_status}>${m.body.current_status}(${m.body.reason})`]);
    return seq;
  };
  return { sim, tap, got, agents, sequences };
}

t.test('a reply written late (wazuh-db\'s worker preempted before its sendto): the exchanges still come out in wazuh-db\'s order', async (t) => {
  // wazuh-db applies each agent's pending, then (2 ms later, another connection) its active, but writes
  // pending's reply 6 ms late: active's reply comes first. Paired at their replies, the tap published
  // active then pending, and kept pending while wazuh-db had active (decode/apply-order.ts).
  const n = 20;
  const { sim, got, sequences } = await lateReplySession(t, 'late', n, 6000);
  t.same(await sim.reconnect(n, 1, 2000, 60_000), { pending: n, active: n, errors: 0 }, 'every request answered ok');
  const activeInDb = new Set(await sim.pollActive());
  t.equal(activeInDb.size, n, 'wazuh-db applied every agent\'s active last');
  const seq = await sequences();
  const wrong = [...seq].filter(([, s]) => s.join(' ') !== 'never_connected>pending(agent_startup) pending>active(keepalive)').map(([id, s]) => `${id}: ${s.join(' ')}`);
  t.equal(seq.size, n, 'every agent has events');
  t.same(wrong.slice(0, 5), [], `pending, then active, for every agent (${wrong.length} of ${n} not)`);
  t.equal(got.length, 2 * n, 'two events an agent, no more');
});

t.test('a request read late (wazuh-db\'s worker woken late): the exchanges come out in wazuh-db\'s order, not their writes\'', async (t) => {
  // Each agent's pending is written 2 ms before its active, but wazuh-db's worker reads pending 6 ms late
  // (a worker woken late on a loaded host: CI's order-cpus run had one agent so): it applies active, then
  // pending, and keeps the agent pending. Ordered by their writes, the tap published pending>active and
  // kept it active. The capture sees when the worker read each request (bpf read_at).
  const n = 20;
  const { sim, got, sequences } = await lateReplySession(t, 'lateread', n, 6000, 'read');
  t.same(await sim.reconnect(n, 1, 2000, 60_000), { pending: n, active: n, errors: 0 }, 'every request answered ok');
  const activeInDb = new Set(await sim.pollActive());
  const seq = await sequences();
  t.equal(seq.size, n, 'every agent has events');
  // wazuh-db is the truth: on a loaded machine a pending may still be read first (then active is last).
  t.ok(activeInDb.size < n / 2, `wazuh-db applied most agents' pending last (${n - activeInDb.size} of ${n})`);
  const wrong = [...seq].filter(([id, s]) => s.map((e) => e.replace(/\(.*\)$/, '')).join(' ')
    !== (activeInDb.has(id) ? 'never_connected>pending pending>active' : 'never_connected>active active>pending')).map(([id, s]) => `${id}: ${s.join(' ')}`);
  t.same(wrong.slice(0, 5), [], `every agent's events in wazuh-db's order (${wrong.length} of ${n} not)`);
  t.equal(got.length, 2 * n, 'two events an agent, no more');
});

t.test('a late reply still comes first when the tap\'s own thread stalls meanwhile (the release follows what the capture handed over)', async (t) => {
  // pending's reply 40 ms late (inside the 50 ms hold), active answered at once; the tap stopped 140 ms
  // right after it held active's exchange (a GC, a starved host). Its timer released by the wall's clock:
  // past 50 ms, active went out, then pending's reply — written long before — was applied after it.
  const { sim, tap, agents, sequences } = await lateReplySession(t, 'stall', 6, 40_000);
  const a = await sim.spawnClient(sim.daemon('remoted'));
  const b = await sim.spawnClient(sim.daemon('remoted'));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (const agent of agents) {
    // 12 ms apart: a loaded machine delayed pending's worker by 3 ms once (the gap first tried), and
    // wazuh-db applied active first — then its order is pending last, and the test's truth with it.
    const pending = a.startup(agent); // applied now, answered 40 ms later
    await sleep(12);
    const active = b.keepalive(agent); // applied after pending, answered first
    await sleep(9);
    process.kill(tap.proc.pid!, 'SIGSTOP');
    await sleep(140);
    process.kill(tap.proc.pid!, 'SIGCONT');
    await Promise.all([pending, active]);
    await sleep(100);
  }
  const activeInDb = new Set(await sim.pollActive());
  const seq = await sequences();
  // wazuh-db is the truth (under load its worker can apply the two the other way round: then so must the tap).
  const wrong = agents.filter(({ id }) => (seq.get(id) ?? []).map((e) => e.replace(/\(.*\)$/, '')).join(' ')
    !== (activeInDb.has(id) ? 'never_connected>pending pending>active' : 'never_connected>active active>pending')).map(({ id }) => `${id}: ${(seq.get(id) ?? []).join(' ')}`);
  t.same(wrong, [], `every agent's events in wazuh-db's order (${wrong.length} of ${agents.length} not)`);
});
