// Faults at random while agents come and go, then what NATS holds against what wazuh-db holds.
//
// The other tests take one fault at a time. Here they overlap, as they do on a bad day: nats-server
// stopped (SIGSTOP) or restarted, the tap stopped for a moment, killed and started again
// (what systemd does after a crash), detached and attached, sent SIGHUP, its file descriptors used
// up for a moment; the spool's disk (a 2 MB
// tmpfs) filled to the last byte and freed; remoted restarted (a manager reset), wazuh-db restarted
// (a new socket; the daemons reconnect and send again what the stop cut), records lost (a flood of
// keepalives while the tap is stopped: more than the perf buffer holds), monitord's sweeps, authd
// registering and removing agents, analysisd writing alerts and rotating alerts.json — while the
// simulated agents start, keep alive and shut down. Beside it, all along, another manager in another
// home with the same agent ids and a tap of its own (on the same tracepoints, killed and started
// again, detached and attached): none of its traffic may reach this tap's NATS.
// Afterwards three properties must hold, whatever the interleaving was:
//   - the KV bucket holds, for every agent, the status wazuh-db holds (nothing lost for good, no
//     stale event replayed over a newer one — a spool from before a crash included) — or nothing,
//     for an agent the tap never published (see `differences`);
//   - in the stream, each agent's status changes form one chain: every event's previous_status is
//     the current_status of the agent's event before it (nothing out of order, nothing duplicated);
//   - every alert analysisd wrote is in the stream, once.
// The faults come from a seeded generator (CHAOS_SEED replays a sequence; the timing still varies),
// the run lasts CHAOS_SECONDS (30); CHAOS_DISK=0 leaves the disk alone. For whoever reads a failure,
// CHAOS_KEEP=<dir> keeps there the faults with their times (faults.log), every tap's log (tap-N.log;
// CHAOS_LOG_LEVEL=debug logs each event with its id), the stream's status changes (stream.log) and
// the status journal — what it took to find the last three defects below. Both managers have their
// background traffic (SimManager `background`, WAZUH-PROTOCOL §2; CHAOS_BACKGROUND=0: none) at short intervals:
// remoted's and analysisd's polls of the active agents, get-distinct-groups, remoted's 4 worker
// connections, monitord's get-agent-info after each sweep's hits.
import t from 'tap';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startNatsServer } from './helpers/nats-server.js';
import { runTap, startTap, ROOT, type TapProcess } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';
import { prng } from './helpers/prng.js';
import { mountTmpfs, fillDisk } from './helpers/tmpfs.js';

const MARK = bpfMark();
const SEED = Number(process.env.CHAOS_SEED ?? 7);
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 30);
/**
 * The spool's disk filled and freed. With it this test found five defects, each fixed with a test of
 * its own: a refused status change never told (e2e-unseen-changes, owed-statuses), the journal behind
 * the spool (spool-disk-full), a smaller change accepted behind a refused one (delivery-spool), a
 * start that compared wazuh-db with the journal when the spool held a newer change (e2e-delivery);
 * and one more that needs no disk: a removal undone by a resync asked before it (proto-transitions).
 */
const DISK = process.env.CHAOS_DISK !== '0';
/**
 * The managers' background traffic, at 150–200 ms (the real ones: 5 and 10 s): on, as a real manager
 * always has it (since 12-06, after the 54 seeds run with it passed); CHAOS_BACKGROUND=0 turns it off.
 */
const BACKGROUND = process.env.CHAOS_BACKGROUND !== '0' ? { remotedPollMs: 150, groupsMs: 200, analysisdPollMs: 170 } : undefined;
// wazuh-db's restarts found an agent removed and registered again while wazuh-db was away adopted
// silently (e2e-unseen-changes), and the alerts' rotations files skipped when alerts.json rotated
// more than once between two looks (alerts-follower).

const KEEP = process.env.CHAOS_KEEP;
if (KEEP) mkdirSync(KEEP, { recursive: true }); // a new directory, as a keep dir usually is
const LOG_LEVEL = process.env.CHAOS_LOG_LEVEL;
const AGENTS = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, name: `chaos-${i + 1}`, ip: `10.1.0.${i + 1}` }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = AGENTS.map((a) => String(a.id).padStart(3, '0'));
const FLOOD_FIRST_ID = 1001;

/**
 * Lower the soft limit of open files of `pid` to what it holds now; returns what puts the limit back
 * (a no-op once the process is gone: a tap killed meanwhile was started again with its own).
 */
function useUpDescriptors(pid: number): () => void {
  const limits = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  if (!limits) throw new Error(`no open-files limit for ${pid}`);
  const [soft, hard] = [limits[1], limits[2]];
  const set = (n: string) => { try { execFileSync('prlimit', ['--pid', String(pid), `--nofile=${n}:${hard}`], { stdio: 'ignore' }); } catch { /* gone */ } };
  set(String(readdirSync(`/proc/${pid}/fd`).length));
  return () => set(soft);
}

/** Each agent's status in the KV bucket (`none`: no entry). */
async function kvStatuses(jsm: JetStreamManager): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of ids) {
    const m = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: `$KV.wazuh_agents.${id}` }).catch(() => null);
    out.set(id, m ? String((m.json() as { current_status?: unknown }).current_status) : 'none');
  }
  return out;
}

interface StatusMessage { seq: number; msgId: string | undefined; text: string }

/**
 * The stream read once: its status changes in order (checked by chainBreaks, kept by CHAOS_KEEP),
 * and the number the simulated analysisd gave each alert (its `data.srcport`), in order.
 */
async function readStream(jsm: JetStreamManager): Promise<{ changes: StatusMessage[]; alerts: number[] }> {
  const { state } = await jsm.streams.info('WAZUH');
  const changes: StatusMessage[] = [];
  const alerts: number[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && seq > 0; seq++) {
    const m = await jsm.streams.getMessage('WAZUH', { seq }).catch(() => null);
    if (m?.subject.endsWith('.status')) changes.push({ seq, msgId: m.header?.get('Nats-Msg-Id'), text: m.string() });
    else if (m?.subject.startsWith('wazuh.security.alerts.')) alerts.push(Number((m.json() as { alert?: { data?: { srcport?: unknown } } }).alert?.data?.srcport));
  }
  return { changes, alerts };
}

/** Numbers as runs: [1, 2, 3, 7] → ['1-3', '7']. */
function runs(ns: number[]): string[] {
  const out: string[] = [];
  const sorted = [...ns].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

/** Alerts written and not in the stream, and those in it more than once (as runs of numbers). */
function alertDifferences(written: number[], inStream: number[]): { missing: string[]; twice: string[] } {
  const seen = new Map<number, number>();
  for (const a of inStream) seen.set(a, (seen.get(a) ?? 0) + 1);
  return {
    missing: runs(written.filter((a) => !seen.has(a))),
    twice: runs([...seen].filter(([, n]) => n > 1).map(([a]) => a)),
  };
}

/**
 * Every status change whose previous_status is not the agent's status before it, and the agents that
 * had one at all.
 */
function chainBreaks(changes: StatusMessage[]): { breaks: string[]; told: Set<string> } {
  const last = new Map<string, string>();
  const breaks: string[] = [];
  for (const { seq, text } of changes) {
    const b = JSON.parse(text) as { agent_id: string; previous_status: string; current_status: string; reason: string };
    const before = last.get(b.agent_id);
    if (before !== undefined && before !== b.previous_status) {
      breaks.push(`#${seq} agent ${b.agent_id}: was ${before}, event says ${b.previous_status} → ${b.current_status} (${b.reason})`);
    }
    last.set(b.agent_id, b.current_status);
  }
  return { breaks, told: new Set(last.keys()) };
}

/** `attach` or `detach` through a tap's control socket: a refusal fails the test. */
async function control(t: Tap.Test, cmd: 'attach' | 'detach', sock: string, who: string): Promise<void> {
  const o = await runTap([cmd, '--control-socket', sock], 15_000);
  if (o.code !== 0) t.fail(`${who}: ${cmd}: ${o.code} ${o.stderr}`);
}

/**
 * Another manager on the same machine — another home, the same agent ids, its own wazuh-db — and a tap
 * of its own publishing under another prefix (core NATS). `step` makes one of its changes.
 */
async function otherManager(t: Tap.Test, natsUrl: string) {
  const home = mkdtempSync(join(tmpdir(), 'wnt-chaos-other-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, `    <server_url>${natsUrl}</server_url>\n    <subject_prefix>other</subject_prefix>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: AGENTS.slice(0, 30), persistDb: true, background: BACKGROUND });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const args = ['run', '--home', home, '--control-socket', sock, '--node', 'other'];
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  return {
    async step(rnd: () => number, did: (what: string) => void) {
      const r = rnd();
      const a = AGENTS[Math.floor(rnd() * AGENTS.length)];
      if (r < 0.45) await sim.startup(a);
      else if (r < 0.85) await sim.shutdown(a);
      else if (r < 0.90) { did('other manager: wazuh-db restarted'); await sim.restartDb(); }
      else if (r < 0.94) { did('other manager: its tap killed, started again'); await tap.stop('SIGKILL'); tap = await startTap(args); }
      else if (r < 0.98) {
        const c = rnd() < 0.5 ? 'detach' : 'attach';
        did(`other manager: its tap ${c}ed`);
        await control(t, c, sock, 'the other tap');
      } else { did('other manager: reset'); await sim.restartRemoted({ reset: true }); }
    },
    /** Its tap attached at the end, as this one is: both taps' programs are in the kernel. */
    async settle() {
      if (tap.proc.exitCode !== null) t.fail('the other tap exited');
      await control(t, 'attach', sock, 'the other tap');
    },
  };
}

t.test(`faults overlapping while agents change (seed ${SEED}, ${SECONDS} s${BACKGROUND ? ', background traffic' : ''}): NATS ends where wazuh-db is`, async (t) => {
  const rnd = prng(SEED);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const nats = await startNatsServer({ jetstream: true });
  t.teardown(() => nats.stop());
  const spool = mountTmpfs(t, '2m');
  let unfill: (() => void) | null = null;
  const home = mkdtempSync(join(tmpdir(), 'wnt-chaos-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <jetstream>yes</jetstream>\n`
    + `    <spool_dir>${spool}</spool_dir>\n` + '    <create_stream>yes</create_stream>\n    <agents_kv>yes</agents_kv>\n    <reconnect_delay>1</reconnect_delay>\n');
  // 31–40: registered (and removed) on the way. wazuh-db keeps its table when restarted, as global.db does.
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: AGENTS.slice(0, 30), persistDb: true, background: BACKGROUND });
  t.teardown(() => sim.stop());
  await sim.start();
  const monitord = await sim.spawnMonitord();
  const authd = await sim.spawnAuthd();
  const sock = join(home, 'tap.sock');
  const args = ['run', '--home', home, '--control-socket', sock, '--node', 'chaos', ...(LOG_LEVEL ? ['--log-level', LOG_LEVEL] : [])];
  const taps: TapProcess[] = []; // every instance, for CHAOS_KEEP
  const started = async () => { const p = await startTap(args); taps.push(p); return p; };
  let tap: TapProcess = await started();
  t.teardown(() => tap.stop('SIGKILL'));

  const done: Record<string, number> = {};
  const did = (what: string) => {
    done[what] = (done[what] ?? 0) + 1;
    if (KEEP) appendFileSync(join(KEEP, 'faults.log'), `${new Date().toISOString()} ${what}\n`);
  };
  let natsHeld = false;
  let tapHeld = false;
  let flooding: Promise<void> | null = null;
  /** Gives the tap its descriptors back, while they are used up. */
  let fdsHeld: (() => void) | null = null;
  const alertsWritten: number[] = []; // the number analysisd gave each alert it wrote
  const inDb = new Set(AGENTS.slice(0, 30).map((x) => x.id)); // the agents wazuh-db has a row for, as far as the loop knows
  const remove = async (a: { id: number }) => { did('remove'); await authd.remove(a.id).then(() => inDb.delete(a.id), () => did('remove refused')); };
  const flooder = await sim.spawnClient('wazuh-remoted'); // a second remoted: its agents are 1001–1200
  const other = await otherManager(t, nats.url);
  const rnd2 = prng(SEED + 1000); // the other manager's own sequence: this one's faults stay what the seed gave
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, f: () => void) => { const h = setTimeout(() => { timers.delete(h); f(); }, ms); timers.add(h); };
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end && tap.proc.exitCode === null) {
    const r = rnd();
    const a = pick(AGENTS);
    if (r < 0.35) await sim.keepalive(a);
    else if (r < 0.55) { await sim.startup(a); inDb.add(a.id); }
    else if (r < 0.70) await sim.shutdown(a);
    else if (r < 0.73) { did('monitord sweep'); await monitord.disconnect(Math.floor(Date.now() / 1000) - Math.floor(rnd() * 3)); }
    else if (r < 0.75) { did('manager reset'); await sim.restartRemoted({ reset: true }); }
    else if (r < 0.78 && !natsHeld) {
      did('nats-server stopped'); const p = nats.proc; p.kill('SIGSTOP'); natsHeld = true;
      later(500 + rnd() * 8000, () => { p.kill('SIGCONT'); natsHeld = false; });
    } else if (r < 0.80 && !natsHeld) {
      // Stopped, not killed: nats-server 2.9 acknowledges a JetStream message before its store has
      // written it (no sync_always), so a SIGKILL can lose what it acknowledged — the KV included.
      did('nats-server restarted'); await nats.stop(); await sleep(rnd() * 2000); await nats.restart();
    }
    else if (r < 0.83 && !tapHeld && !fdsHeld) { // the control socket takes no connection without a descriptor
      const c = pick(['detach', 'attach']);
      did(c);
      await control(t, c, sock, 'the tap');
    } else if (r < 0.85) { did('SIGHUP'); tap.proc.kill('SIGHUP'); }
    else if (r < 0.87 && !tapHeld) { did('tap killed, started again'); await tap.stop('SIGKILL'); await sleep(rnd() * 1000); tap = await started(); }
    else if (r < 0.90 && !tapHeld) {
      did('tap stopped'); tapHeld = true;
      const p = tap.proc; p.kill('SIGSTOP');
      later(200 + rnd() * 3000, () => { p.kill('SIGCONT'); tapHeld = false; });
    } else if (r < 0.92) {
      // An agent wazuh-db has no row for (a start-up of an unknown agent makes its row, as the simulator
      // does): a registration of an agent still there is refused, and tests nothing. None: one removed.
      const free = AGENTS.filter((x) => !inDb.has(x.id));
      if (free.length) {
        const b = free[AGENTS.indexOf(a) % free.length];
        did('register');
        await authd.register(b).catch(() => did('register refused'));
        inDb.add(b.id);
      } else await remove(a);
    } else if (r < 0.94) await remove(a);
    else if (r < 0.955 && DISK) { if (unfill) { did('disk freed'); unfill(); unfill = null; } else { did('disk full'); unfill = fillDisk(spool); } }
    else if (r < 0.965) { did('wazuh-db restarted'); await sim.restartDb(); }
    else if (r < 0.975 && !tapHeld && !flooding) {
      // More records than the perf buffer holds while the tap is stopped: the kernel drops them,
      // those of the chaos agents' changes the loop makes meanwhile included.
      did('records lost'); tapHeld = true;
      const p = tap.proc; p.kill('SIGSTOP');
      flooding = flooder.proc.command(`load 200 30000 40000 5000 2 0 ${FLOOD_FIRST_ID} -`, 40_000).then(() => {}, () => {})
        .finally(() => { p.kill('SIGCONT'); tapHeld = false; flooding = null; });
    } else if (r < 0.985) {
      did('alerts');
      const w = await sim.writeAlerts(1 + Math.floor(rnd() * 20), Math.floor(rnd() * 16));
      for (let n = w.first; n <= w.last; n++) alertsWritten.push(n);
      if (KEEP) appendFileSync(join(KEEP, 'faults.log'), `${new Date().toISOString()}   alerts ${w.first}-${w.last}\n`);
    } else if (r < 0.987) { did('alerts rotated (a new day)'); await sim.rotateAlerts(); }
    else if (r < 0.995 && !fdsHeld) {
      // The tap's descriptors used up (its soft limit lowered to what it holds): every open, socket
      // and accept fails with EMFILE for a while — the spool's next segment, NATS's reconnection,
      // the alerts file, the journal's compaction.
      did('descriptors used up');
      fdsHeld = useUpDescriptors(tap.proc.pid!);
      later(200 + rnd() * 3000, () => { fdsHeld?.(); fdsHeld = null; });
    }
    else await sleep(Math.floor(rnd() * 300));
    if (rnd2() < 0.3) await other.step(rnd2, did);
  }
  await flooding;
  await other.settle();
  for (const h of timers) clearTimeout(h);
  fdsHeld?.();
  nats.proc.kill('SIGCONT');
  if (unfill) unfill();
  tap.proc.kill('SIGCONT');
  t.comment(JSON.stringify(done));
  t.equal(tap.proc.exitCode, null, 'the tap runs after the faults');
  t.equal((await runTap(['attach', '--control-socket', sock], 15_000)).code, 0, 'and attaches');

  const truth = new Map<string, string>();
  for (const [i, a] of AGENTS.entries()) {
    const reply = await monitord.agentInfo(a.id);
    const status = /"connection_status":"(\w+)"/.exec(reply);
    truth.set(ids[i], status ? status[1] : /^ok \[\]/.test(reply) ? 'unknown' : `unreadable: ${reply}`); // no row: not an agent
  }
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  /** Agents whose KV entry is not wazuh-db's status; `told`: those with a status change in the stream. */
  const differences = async (told: Set<string> | null) => {
    const kv = await kvStatuses(jsm);
    const agrees = (id: string, s: string) => kv.get(id) === s
      // No row in wazuh-db: removed (the KV says `unknown`), or never registered (no entry).
      || (s === 'unknown' && kv.get(id) === 'none')
      // Never published at all: every change of the agent was refused by the full disk, then the tap
      // was killed. The next start adopts an agent it never published silently, as a first start does
      // with every agent: the KV has no entry for it, as for an agent that has not changed since.
      || (told !== null && kv.get(id) === 'none' && !told.has(id));
    return [...truth].filter(([id, s]) => !agrees(id, s)).map(([id, s]) => `${id}: wazuh-db ${s}, KV ${kv.get(id)}`);
  };
  await waitFor(async () => (await differences(null)).length === 0, 30_000, 'the KV to reach wazuh-db').catch(() => {});
  const alertsInStream = async () => Object.values((await jsm.streams.info('WAZUH', { subjects_filter: 'wazuh.security.alerts.>' })).state.subjects ?? {})
    .reduce((a, b) => a + b, 0);
  await waitFor(async () => await alertsInStream() >= alertsWritten.length, 30_000, 'the alerts to reach the stream').catch(() => {});
  const { changes, alerts } = await readStream(jsm);
  const events = changes.length;
  const { breaks, told } = chainBreaks(changes);
  if ((await differences(told)).length) { // what the tap says of itself, for whoever reads a failure
    const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout || '{}');
    t.comment(JSON.stringify({ nats: st.nats, spool: st.spool, agents: st.agents, uptime_s: st.uptime_s }));
    t.comment(JSON.stringify(tap.logs.filter((l) => Number(l.level) >= 40).slice(-20)));
  }
  t.same(await differences(told), [], `every agent's status in the KV is wazuh-db's (${JSON.stringify(Object.fromEntries(
    [...new Set(truth.values())].map((s) => [s, [...truth.values()].filter((x) => x === s).length])))}; ${told.size} agents told)`);
  t.ok(events > 0, `${events} status changes in the stream`);
  t.same(breaks, [], 'each agent\'s status changes form one chain');
  // An alert waits in alerts.json while the spool cannot take it, and one read again after a kill
  // (its position not yet saved) has the same event_id: JetStream keeps it once.
  const alertsDiffer = alertDifferences(alertsWritten, alerts);
  if (alertsDiffer.missing.length || alertsDiffer.twice.length) { // the follower's and the spool's view, for whoever reads a failure
    const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout || '{}');
    t.comment(JSON.stringify({ alerts: st.alerts, spool: st.spool, nats: st.nats }));
    t.comment(JSON.stringify(tap.logs.filter((l) => Number(l.level) >= 40).slice(-20)));
  }
  t.same(alertsDiffer, { missing: [], twice: [] }, `every alert in the stream once (${alertsWritten.length} written)`);
  if (KEEP) {
    taps.forEach((p, i) => writeFileSync(join(KEEP, `tap-${i}.log`), p.logs.map((l) => JSON.stringify(l)).join('\n')));
    writeFileSync(join(KEEP, 'stream.log'), changes.map((c) => `${c.seq} ${c.msgId} ${c.text}`).join('\n'));
    writeFileSync(join(KEEP, 'alerts.log'), `written ${runs(alertsWritten).join(' ')}\nin the stream, in order ${alerts.join(' ')}\n`);
    copyFileSync(join(spool, 'agents.status'), join(KEEP, 'agents.status'));
  }
  await tap.stop('SIGTERM');
  t.same(await leftBehind(MARK), [], 'no program of the tap left in the kernel');
});
