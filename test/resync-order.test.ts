// A resynchronisation reads wazuh-db outside the capture (after attach, after lost records). Its rows
// can already show a write whose records have not reached the state yet — still in the kernel's rings
// or the shim's queue while the controller is busy. Applied first, such a row published the change as a
// drift (reason initial_sync) and the write's own event found nothing left to change: CI saw an agent's
// start-up published that way. The rows now wait until the capture has handled every write that began
// before they were read (Capture.settled). Real eBPF, the simulated manager, the tap's own Tap with a
// consumer held at a gate (a busy controller); only NATS is replaced by an array.
import t from 'tap';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { STATE_COMMANDS } from '../controller/src/state/commands.js';
import { ATTACHED_RESYNC, LIGHT_LOOK_WITHIN_MS, LIGHT_LOSS_LOOK_WITHIN_MS, LOSS_RESYNC, Tap } from '../controller/src/agent/tap.js';
import { Lifecycle } from '../controller/src/agent/lifecycle.js';
import { initialSync, seedTable } from '../controller/src/state/sources/initial-sync.js';
import type { ReliablePublisher } from '../controller/src/publish/reliable.js';
import type { AgentEvent, CaptureRecord } from '../controller/src/types.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { parseReply } from '../controller/src/decode/wdb-reply.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { ROOT } from './helpers/tap-process.js';

const binDir = join(ROOT, 'build/sim/bin');
const quiet = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * A capture whose consumer can be held (a busy controller): while the gate is shut, the batch taken
 * waits there, and no other is taken. A gate, not a delay: what is handled when does not depend on
 * how fast this machine is.
 */
async function gatedCapture(t: Tap.Test, home: string, consume: (b: CaptureRecord[]) => void) {
  let shut = false;
  let waiting: (() => void)[] = [];
  const capture = Capture.open({ ...artefacts(), home, commands: STATE_COMMANDS, fastpath: true });
  capture.start(async (b) => {
    if (shut) await new Promise<void>((res) => waiting.push(res));
    consume(b);
  }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(() => capture.close());
  const gate = {
    shut() { shut = true; },
    open() { shut = false; const w = waiting; waiting = []; for (const f of w) f(); },
  };
  t.teardown(() => gate.open());
  return { capture, gate };
}

t.test('settled(ns): once it resolves, every write that began before ns has been handled', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-settled-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const sim = new SimManager({ binDir, home, agents: [{ id: 931, name: 'settled', ip: '10.0.0.31' }] });
  t.teardown(() => sim.stop());
  const handled: CaptureRecord[] = [];
  const { capture, gate } = await gatedCapture(t, home, (b) => handled.push(...b));
  await sim.start();
  t.ok(await capture.settled(process.hrtime.bigint(), 10_000), 'the start-up\'s writes handled');

  gate.shut();
  const from = process.hrtime.bigint();
  await sim.startup({ id: 931, name: 'settled', ip: '10.0.0.31' });
  const to = process.hrtime.bigint();
  const between = () => handled.filter((r) => r.tsNs >= from && r.tsNs < to).length;
  let done = false;
  const settled = capture.settled(to, 10_000).then((v) => { done = true; return v; });
  await sleep(300);
  t.equal(done, false, 'not settled while the consumer holds the records');
  t.equal(between(), 0, 'the start-up\'s records not handled yet');
  gate.open();
  t.ok(await settled, 'settled once the consumer let them through');
  const n = between();
  t.ok(n >= 2, `its request and reply were handled when settled resolved (${n} records)`);
  await sleep(300);
  t.equal(between(), n, 'nothing of before `to` came after');

  // A time never reached: false at the deadline, not a hang.
  t.equal(await capture.settled(process.hrtime.bigint() + 60_000_000_000n, 200), false, 'false after the timeout');
});

t.test('settled(ns) under a steady load: every round finds records, and it still resolves', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-settled-load-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const sim = new SimManager({ binDir, home, agents: [] });
  t.teardown(() => sim.stop());
  const handled: CaptureRecord[] = [];
  const { capture } = await gatedCapture(t, home, (b) => handled.push(...b));
  await sim.start();
  // 3 s of keepalives at 3,000/s (6,000 requests and 6,000 replies a second): records in every round.
  const load = sim.remoted.proc.command('load 300 3000 9000 3000 2 0 1 - agent', 30_000);
  await sleep(500);
  const rounds = capture.batches;
  const took: number[] = [];
  const asked: bigint[] = [];
  let failed = 0;
  const end = performance.now() + 1500;
  while (performance.now() < end) {
    const ns = process.hrtime.bigint();
    asked.push(ns);
    const t0 = performance.now();
    // A few rounds' wait: a resynchronisation waits 1 s for the capture, a rule that moved the mark only
    // when a take found nothing left settled waiting 0.2–0.7 s under this load.
    if (!(await capture.settled(ns, 250))) failed++;
    took.push(performance.now() - t0);
    await sleep(50);
  }
  t.equal(failed, 0, `settled resolved every time while the load ran (${took.length} times, at most ${Math.round(Math.max(...took))} ms)`);
  t.ok(capture.batches - rounds >= 300, `the load kept the rounds busy (${capture.batches - rounds} batches in 1.5 s)`);
  const out = await load;
  t.match(out, /errors=0/, 'the load ran without errors');
  // The load outlasted every call: records came after each ns, so each settled under load.
  const last = handled.reduce((m, r) => (r.tsNs > m ? r.tsNs : m), 0n);
  t.ok(asked.every((ns) => last > ns), 'records kept coming after every call');
});

t.test('a resync after a start-up it already sees: the start-up\'s own event, not an initial_sync', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-resync-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const A = { id: 932, name: 'ordered', ip: '10.0.0.32' };
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  const life = new Lifecycle(quiet);
  const tap = new Tap({ home, natsUrls: [], prefix: 'wazuh', node: 'resync-test', attach: true, log: quiet }, life);
  const events: AgentEvent[] = [];
  tap.publisher = { publishAgentEvents: (evs: AgentEvent[]) => { events.push(...evs); return evs.map(() => true); } } as unknown as ReliablePublisher;
  const { capture, gate } = await gatedCapture(t, home, (b) => tap.pipeline.push(b));
  tap.capture = capture;
  await sim.start();
  // As the agent starts (parts/state.ts): wazuh-db's rows seed the table, no event.
  const first = await initialSync({ home });
  t.ok(first.complete, 'the first sync read wazuh-db');
  seedTable(tap.state, first.agents);
  t.ok(await capture.settled(process.hrtime.bigint(), 10_000));
  t.same(events.filter((e) => e.agent_id === '932'), [], 'nothing of agent 932 yet');

  gate.shut(); // the controller is busy: the start-up's records wait in the capture
  await sim.startup(A);
  const resync = tap.resync('test: right after the start-up'); // wazuh-db already holds the agent as pending
  await sleep(300); // less than the resync waits for the capture (1 s)
  gate.open();
  await resync;
  t.ok(await capture.settled(process.hrtime.bigint(), 10_000));
  t.match(events.filter((e) => e.agent_id === '932'), [
    { event_type: 'status_change', previous_status: 'never_connected', current_status: 'pending', reason: 'agent_startup', source: 'remoted' },
  ], 'one event, the start-up\'s');
  t.equal(events.filter((e) => e.agent_id === '932').length, 1, 'and only one');
});

t.test('a resynchronisation of a fleet waits for a capture that cannot keep up once, not once a chunk of rows', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-settle-budget-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  // 9,000 agents: three chunks of rows (ROWS_CHUNK 4,096) and the removals' look after them.
  const agents = Array.from({ length: 9000 }, (_, i) => ({ id: i + 1, name: `fleet${i + 1}`, ip: `10.2.${(i >> 8) & 255}.${i & 255}` }));
  const sim = new SimManager({ binDir, home, agents });
  t.teardown(() => sim.stop());
  await sim.start();
  const lines: { msg?: string; settled?: boolean }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const tap = new Tap({ home, natsUrls: [], prefix: 'wazuh', node: 'budget', attach: false, log }, new Lifecycle(quiet));
  tap.publisher = { publishAgentEvents: (e: unknown[]) => e.map(() => true) } as unknown as ReliablePublisher;
  // A capture that never catches up (the records-lost case): each wait lasts what it is allowed, by
  // performance.now() as Capture.settled counts it (a timer of `ms` can fire a fraction of a
  // millisecond early by that clock, and left a sliver of the budget for one more wait).
  const allowed: number[] = [];
  tap.capture = {
    attached: true,
    settled: async (_ns: bigint, ms: number) => {
      allowed.push(ms);
      const end = performance.now() + ms;
      while (performance.now() < end) await sleep(Math.max(1, end - performance.now()));
      return false;
    },
  } as unknown as Capture;
  await tap.resync('records lost');
  t.equal(tap.state.size, 9000, 'every row applied all the same');
  t.ok(allowed.length >= 1, `the capture was waited for (${allowed.length} times)`);
  const total = allowed.reduce((a, b) => a + b, 0);
  t.ok(total <= 1000, `the waits were given ${total.toFixed(1)} ms in all: one SETTLE_MS (1 s) shared by the chunks, not 1 s each`);

  // A busy capture that catches up each time (300 ms here) spends nothing of it: every chunk is waited for.
  allowed.length = 0;
  tap.capture = {
    attached: true,
    settled: async (_ns: bigint, ms: number) => { allowed.push(ms); await sleep(300); return true; },
  } as unknown as Capture;
  lines.length = 0;
  await tap.resync('test: every agent'); // not 'records lost': so soon after the first, that one is a light look
  t.ok(allowed.length >= 4, `each of the three chunks and the removals' look waited (${allowed.length} waits)`);
  t.same(allowed.filter((ms) => ms !== 1000), [], 'each given the whole second: waits that caught up spent nothing');
  t.match(lines.filter((l) => l.msg === 'state resynchronised from wazuh-db'), [{ settled: true }], 'and the log says the capture was caught up');
});

t.test('the look after an attach soon after a complete one: the ids by status, rows only for the agents that moved', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-light-look-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const agents = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, name: `light${i + 1}`, ip: `10.3.0.${i + 1}` }));
  const sim = new SimManager({ binDir, home, agents, pageRows: 16 });
  t.teardown(() => sim.stop());
  await sim.start();
  for (const a of agents.slice(0, 10)) {
    await sim.startup(a);
    await sim.keepalive(a);
  }
  const lines: { msg?: string; why?: string; look?: string; agents?: number; unchanged?: number; listed?: number; corrected?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const newTap = () => {
    const tap = new Tap({ home, natsUrls: [], prefix: 'wazuh', node: 'light', attach: false, log }, new Lifecycle(quiet));
    const events: AgentEvent[] = [];
    tap.publisher = { publishAgentEvents: (evs: AgentEvent[]) => { events.push(...evs); return evs.map(() => true); } } as unknown as ReliablePublisher;
    // Nothing captured: what changes below changes while the tap is not attached yet.
    tap.capture = { attached: true, settled: async () => true } as unknown as Capture;
    return { tap, events };
  };
  const looks = () => lines.splice(0).filter((l) => l.msg === 'state resynchronised from wazuh-db');
  const { tap, events } = newTap();
  // As the agent starts (parts/state.ts): a complete look seeds the table.
  const first = await initialSync({ home });
  t.ok(first.complete);
  seedTable(tap.state, first.agents);
  tap.fullLookEnded();

  // Between that look and the attach, uncaptured: a shutdown, a start-up, a keepalive, a registration, a removal.
  await sim.shutdown(agents[0]);
  await sim.startup(agents[19]);
  await sim.keepalive(agents[1]);
  const authd = await sim.spawnAuthd();
  await authd.register({ id: 41, name: 'light41', ip: 'any' });
  await authd.remove(30);

  lines.length = 0;
  await tap.resync(ATTACHED_RESYNC);
  const byAgent = events.map((e) => e.event_type === 'status_change' ? `${e.agent_id}:${e.previous_status}>${e.current_status}` : e.event_type).sort();
  t.same(byAgent, ['001:active>disconnected', '020:never_connected>pending', '030:never_connected>unknown', '041:unknown>never_connected'],
    'every change of the gap, once');
  t.match(looks(), [{ look: 'by status', listed: 40, agents: 3, unchanged: 37, corrected: 4 }],
    'rows for 1, 20 and 41 only: the other 37 agents were where the table held them');
  t.match(tap.state.get(41), { name: 'light41', status: 'never_connected' });

  // One for lost records within ten minutes of the last complete look is light too; an attach a minute after
  // it, or one for lost records ten minutes after it, looks at every agent.
  await sim.startup(agents[20]);
  await tap.resync(LOSS_RESYNC);
  t.match(looks(), [{ why: 'records lost', look: 'by status', agents: 1, unchanged: 39, corrected: 1 }]);
  const aged = tap as unknown as { fullLookEndMs: number }; // a test's shortcut to minutes later
  await tap.resync(ATTACHED_RESYNC, 0, true);
  t.match(looks(), [{ look: 'every agent', agents: 40 }], 'wazuh-db (re)appeared: every agent, even after an attach');
  // A light look does not start the clock again: an attach 50 s after that full one, light, then another 15 s later.
  aged.fullLookEndMs -= 50_000;
  await tap.resync(ATTACHED_RESYNC);
  t.match(looks(), [{ look: 'by status' }]);
  aged.fullLookEndMs -= 15_000;
  await tap.resync(ATTACHED_RESYNC);
  t.match(looks(), [{ look: 'every agent', agents: 40, corrected: 0 }], 'a minute after the last complete look, light ones between');
  aged.fullLookEndMs -= LIGHT_LOOK_WITHIN_MS + 1;
  await tap.resync(ATTACHED_RESYNC);
  t.match(looks(), [{ look: 'every agent', agents: 40, corrected: 0 }]);
  aged.fullLookEndMs -= LIGHT_LOSS_LOOK_WITHIN_MS + 1; // that full look ended the clock again: ten minutes on
  await tap.resync(LOSS_RESYNC);
  t.match(looks(), [{ look: 'every agent', agents: 40 }]);
  await tap.resync('wazuh-db socket appeared', 0, true);
  t.match(looks(), [{ look: 'every agent' }], 'wazuh-db (re)appeared: every agent');

  // A tap whose look before attach did not complete (none here) looks at every agent after it.
  const other = newTap();
  await other.tap.resync(ATTACHED_RESYNC);
  t.match(looks(), [{ look: 'every agent', agents: 40, corrected: 40 }]);
});

/** A started manager of agents 1–3 (`<name>1`…, 10.<net>.0.1…) in a home of its own. */
async function threeAgents(t: Tap.Test, name: string, net: number) {
  const home = mkdtempSync(join(tmpdir(), `wnt-light-${name}-`));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const agents = [1, 2, 3].map((id) => ({ id, name: `${name}${id}`, ip: `10.${net}.0.${id}` }));
  const sim = new SimManager({ binDir, home, agents });
  t.teardown(() => sim.stop());
  await sim.start();
  return { home, sim, agents };
}

t.test('a light look reads the row of an agent that moved to another node: a node\'s listing of its active agents is checked against it', async (t) => {
  const { home, sim, agents } = await threeAgents(t, 'n', 8);
  for (const a of agents) {
    await sim.startup(a);
    await sim.keepalive(a);
  }
  await sim.shutdown(agents[2]); // 3: disconnected, on node01
  const lines: { msg?: string; look?: string; agents?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const tap = new Tap({ home, natsUrls: [], prefix: 'wazuh', node: 'light-node', attach: false, log }, new Lifecycle(quiet));
  const events: AgentEvent[] = [];
  tap.publisher = { publishAgentEvents: (evs: AgentEvent[]) => { events.push(...evs); return evs.map(() => true); } } as unknown as ReliablePublisher;
  tap.capture = { attached: true, settled: async () => true } as unknown as Capture;
  const first = await initialSync({ home });
  seedTable(tap.state, first.agents);
  tap.fullLookEnded();
  t.match(tap.state.get(2), { node: 'node01', status: 'active' });
  // Uncaptured: agents 2 and 3 now report through node02 (a master's copy: 2 still active, 3 still disconnected).
  const cluster = await sim.spawnClusterd();
  await cluster.syncSet(agents[1], 'active', 'node02');
  await cluster.syncSet(agents[2], 'disconnected', 'node02');
  await tap.resync(ATTACHED_RESYNC);
  t.match(lines.filter((l) => l.msg === 'state resynchronised from wazuh-db'), [{ look: 'by status', agents: 2 }], 'the rows of 2 and 3 read, not 1\'s');
  t.match(tap.state.get(2), { node: 'node02', status: 'active' }, 'their nodes refreshed');
  t.match(tap.state.get(3), { node: 'node02', status: 'disconnected' });
  t.same(events, [], 'the look itself said nothing: each is as it was');
  // Captured: 3 active again by a write that carries no node (5.x's keepalive, 4.x's lighter one); then remoted on
  // node01 lists its active agents: 1. Agents 2 and 3 are on node02: nothing to say of them.
  const at = process.hrtime.bigint();
  const exchange = (request: string, reply: string, ns: bigint) => tap.state.apply({
    connId: 'c9', request: parseRequest(request), reply: parseReply(reply), tsNs: ns, replyTsNs: ns + 1000n, tgid: 7, comm: 'wazuh-remoted',
  });
  t.match(exchange('global update-keepalive {"id":3,"connection_status":"active","sync_status":"synced"}', 'ok', at),
    [{ agent_id: '003', previous_status: 'disconnected', current_status: 'active' }]);
  t.same(exchange('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1}]', at + 1_000_000n), [],
    'no active > disconnected for agents 2 and 3 (on node01 in the table before the look)');
});

t.test('looks asked for while one runs: one look answers them, the stricter of their kinds', async (t) => {
  const { home, sim } = await threeAgents(t, 'q', 7);
  const lines: { msg?: string; why?: string; look?: string; first_look?: boolean; complete?: boolean }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line)); } });
  const tap = new Tap({ home, natsUrls: [], prefix: 'wazuh', node: 'q', attach: false, log }, new Lifecycle(quiet));
  const events: AgentEvent[] = [];
  tap.publisher = { publishAgentEvents: (evs: AgentEvent[]) => { events.push(...evs); return evs.map(() => true); } } as unknown as ReliablePublisher;
  // The capture holds each look until let go: the later ones are asked for while the first runs.
  let release: () => void = () => {};
  let held = Promise.resolve();
  tap.capture = { attached: true, settled: async () => { await held; return true; } } as unknown as Capture;
  const first = await initialSync({ home });
  seedTable(tap.state, first.agents);
  tap.fullLookEnded();
  const said = () => lines.filter((l) => l.msg === 'state resynchronised from wazuh-db');
  const looks = () => said().map((l) => `${l.why}/${l.look}`);
  /** `running` started and held; `meanwhile` asks for more; let go, `then`, and the two looks' log lines waited for. */
  const whileOneRuns = async (running: () => Promise<void>, meanwhile: () => Promise<void>, then = async () => {}) => {
    lines.length = 0;
    held = new Promise<void>((res) => { release = res; });
    const look = running();
    await sleep(100);
    await meanwhile();
    release();
    await look;
    await then();
    const end = Date.now() + 8000;
    while (looks().length < 2 && Date.now() < end) await sleep(20);
    await sleep(200);
  };
  const inFlight = () => tap.resync('test: a look in flight');

  // A look for lost records and then a re-attach's, while a look runs: one look, for lost records (its spacing).
  await whileOneRuns(inFlight, async () => {
    await tap.resync(LOSS_RESYNC);
    await tap.resync(ATTACHED_RESYNC);
  });
  t.same(looks(), ['test: a look in flight/every agent', 'records lost/by status'], 'the loss\'s look made, once, light within both windows');

  // wazuh-db reappeared, then a re-attach, while a look runs: a first look, of every agent — agent 4, known by
  // name only (client.keys), never told of by this tap and registered meanwhile (uncaptured), adopted silently as at
  // start. (A look that is not a first one tells of it: unknown > never_connected.)
  tap.state.setKnown({ id: 4, name: 'q4' });
  const authd = await sim.spawnAuthd();
  await whileOneRuns(inFlight, async () => {
    await tap.resync('wazuh-db socket appeared', 0, true);
    await tap.resync(ATTACHED_RESYNC);
    await authd.register({ id: 4, name: 'q4', ip: 'any' });
  });
  t.same(looks(), ['test: a look in flight/every agent', 'attached/every agent'], 'the reappearance\'s full look not made light by the attach');
  t.match(said().at(-1), { first_look: true }, 'and a first look still');
  t.same(events, [], 'agent 4 adopted silently');
  t.match(tap.state.get(4), { status: 'never_connected' });

  // Two minutes after the last complete look: a light look for lost records runs; one for lost records and a
  // re-attach's are asked for meanwhile — the re-attach's window (a minute) is the stricter: every agent.
  (tap as unknown as { fullLookEndMs: number }).fullLookEndMs -= 2 * 60_000; // a test's shortcut to two minutes later
  await whileOneRuns(() => tap.resync(LOSS_RESYNC), async () => {
    await tap.resync(LOSS_RESYNC);
    await tap.resync(ATTACHED_RESYNC);
  });
  t.same(looks(), ['records lost/by status', 'records lost/every agent']);

  // wazuh-db's socket gone while a look runs (a restart), the look for its reappearance asked for with its wait for the
  // socket (5 s), and a re-attach's without one: the look made waits all the same, and completes once it is back.
  const socket = join(home, 'queue/db/wdb');
  await whileOneRuns(inFlight, async () => {
    renameSync(socket, `${socket}.away`);
    await tap.resync('wazuh-db socket appeared', 5000, true);
    await tap.resync(ATTACHED_RESYNC);
  }, async () => {
    await sleep(700);
    renameSync(`${socket}.away`, socket);
  });
  t.match(said().at(-1), { why: 'attached', complete: true, first_look: true }, 'the merged look waited for the socket');
});
