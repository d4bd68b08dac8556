#!/usr/bin/env node
// `make demo`: a local nats-server on loopback, the simulated Wazuh manager, the
// tap (real eBPF), and a live view of the events on NATS. About 30 s, or until
// Ctrl-C; everything started here is stopped here.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { SimManager } from './sim/manager.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = process.env.DEMO_SECONDS ?? '30';
if (!/^\d+(\.\d+)?$/.test(SECONDS) || !(Number(SECONDS) > 0)) {
  console.error(`demo: DEMO_SECONDS must be a number of seconds > 0 (got '${SECONDS}')`);
  process.exit(2);
}
const DURATION_MS = Number(SECONDS) * 1000;
if (process.getuid?.() !== 0) {
  console.error('demo: the tap needs root (eBPF): sudo make demo');
  process.exit(3);
}
const tty = process.stdout.isTTY;
const paint = (code, s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const ALERT_COLOR = { low: 90, medium: 33, high: 31, critical: 41 };
const STATUS_COLOR = { active: 32, pending: 33, disconnected: 31, never_connected: 90, unknown: 90 };
const children = [];
const cleanups = []; // run in order after the simulator and the tap have stopped

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

function start(cmd, args, name, ready, env = process.env) {
  // A process group of its own: a Ctrl-C at the terminal reaches the demo alone, which stops the
  // simulator, then the tap (its last word still reaches NATS), then nats-server — in that order.
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  children.push(p);
  let log = '';
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start:\n${log}`)), 20_000);
    const on = (d) => {
      log += d.toString();
      if (ready.test(log)) { clearTimeout(timer); res(p); }
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.once('exit', (c) => { clearTimeout(timer); rej(new Error(`${name} exited (${c}):\n${lastWords(log)}`)); });
  });
}

/** What a child said last, its JSON log lines reduced to their message (a fatal one has a stack). */
function lastWords(log) {
  return log.trim().split('\n').slice(-5).map((l) => {
    try { return JSON.parse(l).msg ?? l; } catch { return l; }
  }).filter((l, i, all) => all.indexOf(l) === i).join('\n');
}

const resets = new Set(); // agents whose manager_reset the live view has shown

function show(subject, ev) {
  if (ev.reason === 'manager_reset') resets.add(ev.agent_id);
  const t = (ev.time ?? '').slice(11, 23);
  if (ev.event_type === 'status_change') {
    const from = paint(STATUS_COLOR[ev.previous_status] ?? 0, ev.previous_status.padEnd(15));
    const to = paint(STATUS_COLOR[ev.current_status] ?? 0, ev.current_status.padEnd(15));
    console.log(`${t}  ${paint(1, 'STATUS   ')} agent ${ev.agent_id} ${(ev.agent_name ?? '?').padEnd(14)} ${from} → ${to} ${ev.reason.padEnd(15)} code ${ev.status_code}  ip ${ev.ip_address ?? '-'}  via ${ev.source}   ${paint(90, subject)}`);
  } else if (ev.event_type === 'keepalive') {
    console.log(`${t}  ${paint(36, 'KEEPALIVE')} agent ${ev.agent_id} ${(ev.agent_name ?? '?').padEnd(14)} ${ev.status.padEnd(12)} ${(ev.version ?? '').padEnd(14)} ${ev.os?.name ?? ''}  ip ${ev.ip_address ?? '-'}   ${paint(90, subject)}`);
  } else if (ev.event_type === 'keepalive_batch') {
    // The default: one message per batch of keepalives (SPEC §4), each agent's line inside it.
    const agents = (ev.events ?? []).map((k) => `${k.agent_id} ${k.status}`).join(', ');
    console.log(`${t}  ${paint(36, 'KEEPALIVE')} ${String(ev.count).padStart(3)} in a batch: ${agents}   ${paint(90, subject)}`);
  } else if (ev.event_type === 'alert') {
    const sev = paint(ALERT_COLOR[ev.severity] ?? 0, (ev.severity ?? '').padEnd(8));
    console.log(`${t}  ${paint(1, 'ALERT    ')} agent ${ev.agent_id ?? '-'} ${(ev.agent_name ?? '?').padEnd(14)} ${sev} rule ${ev.rule_id} level ${ev.level}: ${ev.description ?? ''}   ${paint(90, subject)}`);
  } else {
    console.log(`${t}  ${paint(35, 'TAP      ')} ${ev.action}   ${paint(90, subject)}`);
  }
}

async function main() {
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), 'wazuh-nats-tap-demo-'));
  workDir = work;
  const home = join(work, 'ossec');
  mkdirSync(join(home, 'etc'), { recursive: true });
  // The manager's ossec.conf names the node; the tap's own nats-tap.conf beside it holds the <nats>
  // section (docs/configuration.md): Wazuh would refuse an element it does not know in ossec.conf.
  writeFileSync(join(home, 'etc/ossec.conf'), `<ossec_config>
  <cluster><node_name>demo-manager</node_name><disabled>yes</disabled></cluster>
</ossec_config>
`);
  writeFileSync(join(home, 'etc/nats-tap.conf'), `<ossec_config>
  <nats>
    <enabled>yes</enabled>
    <server_url>nats://127.0.0.1:${port}</server_url>
    <metrics>no</metrics>
  </nats>
</ossec_config>
`);
  writeFileSync(join(work, 'nats.conf'), `listen: 127.0.0.1:${port}\n`);
  const sock = join(work, 'tap.sock');
  console.log(paint(1, `wazuh-nats-tap demo — nats-server on 127.0.0.1:${port}, simulated manager in ${home} (with its background polls)`));
  console.log(paint(90, `try from another terminal: npx wazuh-nats-tap status --control-socket ${sock}`));
  console.log(paint(90, `                           npx wazuh-nats-tap tail --nats-url nats://127.0.0.1:${port}   (detach, attach: as status)\n`));

  await start('nats-server', ['-c', join(work, 'nats.conf')], 'nats-server', /Server is ready/);
  const nc = await connect({ servers: `127.0.0.1:${port}` });
  // After the tap's last word; bounded: a nats-server already gone would hold a drain for seconds.
  cleanups.push(async () => { await Promise.race([nc.drain(), new Promise((r) => setTimeout(r, 1000))]); await nc.close(); });
  const sub = nc.subscribe('wazuh.>');
  (async () => { for await (const m of sub) show(m.subject, m.json()); })().catch(() => {});

  // The manager first (agents registered, never connected), then the tap: it learns their
  // names from client.keys and their status from wazuh-db before it attaches.
  const agents = [
    // The addresses the simulator's reconnect (below) gives agents 1 to 3: an agent keeps its own.
    { id: 1, name: 'web-server-01', ip: '10.0.0.1' },
    { id: 2, name: 'db-server-01', ip: '10.0.0.2' },
    { id: 3, name: 'mail-01', ip: '10.0.0.3' },
  ];
  // With the manager's own traffic on the wazuh-db socket at a real manager's intervals (WAZUH-PROTOCOL
  // §2): remoted's and analysisd's polls of the active agents every 5 s, remoted's get-distinct-groups
  // every 10 s, the agents' messages from remoted's 4 worker connections. The tap reads every one of
  // them and publishes nothing for them while it agrees with wazuh-db.
  sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents, background: true });
  await sim.start();
  tap = await start(process.execPath, [join(ROOT, 'bin/wazuh-nats-tap.js'), 'run', '--home', home,
    '--control-socket', sock], 'the tap', /"msg":"attached/,
  // The home's lock and its spool's note in the demo's directory, removed with it: not in /run and /var/lib.
  { ...process.env, WAZUH_NATS_TAP_LOCK_DIR: join(work, 'run'), WAZUH_NATS_TAP_STATE_DIR: join(work, 'state') });

  const end = Date.now() + DURATION_MS;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // Each agent: start, a few keepalives, shut down, come back later — staggered.
  let round = 0;
  while (Date.now() < end && !stopping) {
    for (const a of agents) {
      if (Date.now() >= end || stopping) break;
      const step = round - (a.id - 1); // staggered: agent n starts n-1 rounds late
      if (step < 0) continue;
      const phase = step % 6;
      if (phase === 0) await sim.startup(a);
      else if (phase < 5) await sim.keepalive(a);
      else await sim.shutdown(a);
      // wazuh-analysisd appends an alert to logs/alerts/alerts.json now and then (levels 5, 10, 13).
      if (phase === 3) await sim.writeAlerts(1, [5, 10, 13][(round + a.id) % 3]);
      await sleep(400);
    }
    round++;
    // A manager restart: remoted's reset-agents-connection disconnects every agent (code 5).
    if (round === 9 && !stopping && Date.now() < end) {
      console.log(paint(1, '--- wazuh-remoted restarts (manager restart) ---'));
      resets.clear();
      await sim.restartRemoted();
      // Its manager_reset events shown first (through the tap and NATS), for a second at most.
      for (let i = 0; i < 50 && resets.size < agents.length && !stopping; i++) await sleep(20);
      // The agents come back as they do on a real manager: each one's `pending` from one remoted
      // thread and, 2 ms later, its `active` from another, on two connections and two CPUs.
      console.log(paint(1, '--- the agents reconnect: pending and active from two remoted threads, 2 ms apart ---'));
      await sim.reconnect(agents.length, 1, 2000);
    }
  }
}

let stopping = false;
let workDir = null;
let sim = null;
let tap = null;
async function stopChild(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  await new Promise((r) => { const t = setTimeout(() => { p.kill('SIGKILL'); r(); }, 5000); p.once('exit', () => { clearTimeout(t); r(); }); });
}
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  try { await sim?.stop(); } catch { /* best effort */ }
  await stopChild(tap); // the tap flushes and says 'stopped' while NATS is still up
  for (const c of cleanups) { try { await c(); } catch { /* best effort */ } }
  for (const p of children.reverse()) await stopChild(p);
  if (workDir) rmSync(workDir, { recursive: true, force: true }); // last: made before anything started
  console.log(paint(1, '\ndemo stopped: nats-server, simulator and tap are gone'));
  process.exit(code);
}
// However the demo ends — Ctrl-C, a closed pipe (`make demo | head`), an error — nothing it started stays.
process.stdout.on('error', () => void shutdown(0));
process.on('exit', () => { for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM'); });
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
// The terminal hung up (an ssh session gone): its children have groups of their own and would stay.
process.on('SIGHUP', () => void shutdown(0));
main().then(() => shutdown(0), (e) => { console.error(`demo failed: ${e.message}`); return shutdown(1); });
