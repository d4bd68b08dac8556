// What the benchmark modules share: the machine, nats-server, the simulated
// manager, the tap as users run it (`wazuh-nats-tap run` in a child process),
// a subscriber, /proc sampling and statistics. Everything started here is
// stopped by the caller, and killed if this process exits first.
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT, BUILD } from '../build.mjs';
import { unitEnvironment } from '../unit-environment.mjs';

export { ROOT, BUILD };
export const BENCH = join(BUILD, 'bench');
export const QUICK = process.env.BENCH_QUICK === '1';
/** Every tap runs as its systemd unit runs it: with the unit's `Environment=` (BENCH_UNIT_ENV=0: without). */
const TAP_ENV = process.env.BENCH_UNIT_ENV === '0' ? {}
  : unitEnvironment(readFileSync(join(ROOT, 'packaging/wazuh-nats-tap.service'), 'utf8'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });
function track(p) { live.add(p); p.once('exit', () => live.delete(p)); return p; }

// ---------------------------------------------------------------- statistics

export const median = (xs) => quantile(xs, 0.5);
export function quantile(xs, q) {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
export const round = (x, d = 2) => (Number.isFinite(x) ? +x.toFixed(d) : x);

// ---------------------------------------------------------------- machine

export function machineInfo() {
  const sh = (cmd, args) => { try { return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return null; } };
  return {
    kernel: sh('uname', ['-r']),
    cpu_model: cpus()[0]?.model ?? null,
    cores: cpus().length,
    memory_mb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    nats_server: sh('nats-server', ['--version']),
    git_commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    git_dirty: !!sh('git', ['-C', ROOT, 'status', '--porcelain']),
    load_avg_at_start: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
    // BPF programs other processes hold on tracepoints when the run starts (other taps, tests): they
    // share the cost measured by `overhead` and the CPU.
    foreign_tracepoint_programs_at_start: (sh('bpftool', ['perf', 'list']) ?? '').split('\n').filter((l) => /tracepoint/.test(l)).length,
    tap_environment: TAP_ENV,
  };
}

// ---------------------------------------------------------------- /proc

const TICK = 100; // USER_HZ; sysconf(_SC_CLK_TCK) is 100 on Linux
/** RSS (bytes) and CPU time (s, user + system) of a process. */
export function procSample(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { rss: rssKb * 1024, cpu, t: performance.now() };
}

// ---------------------------------------------------------------- helpers in C

/** Builds the C helpers of the benchmark once (empty BPF programs, their loader, the syscall loops). */
export function buildHelpers() {
  mkdirSync(BENCH, { recursive: true });
  const src = (f) => join(ROOT, 'scripts/bench', f);
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I', BUILD, '-c', src('empty.bpf.c'), '-o', join(BENCH, 'empty.bpf.o')]);
  execFileSync('gcc', ['-O2', '-Wall', '-o', join(BENCH, 'attach-empty'), src('attach-empty.c'), '-lbpf']);
  execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', join(BENCH, 'sendto-loop'), src('sendto-loop.c')]);
}

// ---------------------------------------------------------------- nats-server

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** A nats-server on loopback (JetStream with a store in a temp dir when asked). */
export async function startNats({ jetstream = false, port } = {}) {
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-nats-'));
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, `listen: 127.0.0.1:${port}\n${jetstream ? `jetstream { store_dir: "${join(dir, 'js')}" }\n` : ''}`);
  const start = async () => {
    const p = track(spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let log = '';
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 10_000);
      const on = (d) => { log += d; if (log.includes('Server is ready')) { clearTimeout(t); resolve(); } };
      p.stdout.on('data', on); p.stderr.on('data', on);
      p.once('exit', (c) => { clearTimeout(t); reject(new Error(`nats-server exited ${c}: ${log}`)); });
    });
    return p;
  };
  const stopProc = async (p) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await done; clearTimeout(t);
  };
  let proc = await start();
  return {
    url: `nats://127.0.0.1:${port}`, port, get pid() { return proc.pid; },
    async stop({ keep = false } = {}) { await stopProc(proc); if (!keep) rmSync(dir, { recursive: true, force: true }); },
    async restart() {
      await stopProc(proc);
      for (let i = 0; ; i++) {
        try { proc = await start(); return; } catch (e) { if (i > 20) throw e; await sleep(200); }
      }
    },
  };
}

export async function natsConnect(url) {
  const { connect } = await import('@nats-io/transport-node');
  return connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
}

// ---------------------------------------------------------------- the simulated manager

/**
 * wazuh-db, analysisd and remoted of the simulator, in a fresh home. cpuPerRequestUs: the CPU wazuh-db
 * spends on each request, one at a time, as the real one's global.db (~33 µs on 4.7.5, SPEC §9); 0: none.
 * registered: agents 1…N registered before the manager starts (`etc/client.keys`, from which the
 * simulated wazuh-db seeds its table, never_connected), as a manager's agents are: the tap lists them
 * at its start. Without, the load's agents are ones wazuh-db's listing lacked — the simulator takes
 * their UPDATEs where a real wazuh-db's `UPDATE … WHERE id = ?` touches no row — and the tap asks
 * wazuh-db about each (state/agents.ts `holds`), at most 4,096 at a time: not a manager's steady load.
 */
export async function startSim({ version = 4, cpuPerRequestUs = 0, registered = 0 } = {}) {
  const { SimManager } = await import(join(ROOT, 'scripts/sim/manager.mjs'));
  const home = mkdtempSync(join(tmpdir(), 'bench-home-'));
  const sim = new SimManager({ binDir: join(BUILD, 'sim/bin'), home, version, cpuPerRequestUs });
  if (registered > 0) {
    mkdirSync(join(home, 'etc'), { recursive: true });
    const lines = [];
    for (let id = 1; id <= registered; id++) {
      lines.push(`${String(id).padStart(3, '0')} agent-${id} any ${createHash('sha256').update(`bench-${id}`).digest('hex')}\n`);
    }
    writeFileSync(join(home, 'etc/client.keys'), lines.join(''), { mode: 0o640 });
  }
  await sim.start();
  return {
    sim, home,
    /**
     * The load generator (wazuh-sim.c `load`). A frame is one agent message of remoted: a keepalive is the
     * real pair (`select-agent-group`, then `update-agent-data`: two requests, two replies), a status frame
     * one request. Returns its counters (sent = frames, keepalives, status, requests, errors, elapsed_ns)
     * and, with stamps, per frame k: stamps[2k] the CLOCK_MONOTONIC ns before the write of the request its
     * event comes from, stamps[2k+1] the frame's time on the wire (ns, all its round trips; 0: not sent).
     */
    /** ipByAgent: each agent's keepalive carries its own address (the same bytes every time, as a real agent's). */
    async load({ agents, rate, count, maxMs, threads = 4, statusPermille = 20, firstId = 1, stamps = false, ipByAgent = false }) {
      const file = stamps ? join(home, `stamps-${Date.now()}.bin`) : '-';
      const line = `load ${agents} ${rate} ${count} ${Math.round(maxMs)} ${threads} ${statusPermille} ${firstId} ${file}${ipByAgent ? ' agent' : ''}`;
      const out = await sim.remoted.proc.command(line, maxMs + 30_000);
      const r = Object.fromEntries(out.split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
      if (stamps) {
        const b = readFileSync(file);
        r.stamps = new BigUint64Array(b.buffer, b.byteOffset, b.length / 8);
        rmSync(file, { force: true });
      }
      return r;
    },
    async stop() { await sim.stop(); rmSync(home, { recursive: true, force: true }); },
  };
}

/**
 * Whether frame k of a load is a status frame (wazuh-sim.c load_worker's rule): in each thousand frames
 * 1000j … 1000j+999, those whose (k % 1000 + 7j) % 1000 < statusPermille.
 */
export const isStatusFrame = (k, statusPermille = 20) => (k % 1000 + 7 * (Math.floor(k / 1000) % 1000)) % 1000 < statusPermille;

/** Requests frame k of a load is made of: 1 for a status frame, 2 for a keepalive (the pair). */
export const requestsOfFrame = (k, statusPermille = 20) => (isStatusFrame(k, statusPermille) ? 1 : 2);

/** The frame a keepalive event came from: the load generator puts it in the address's low 24 bits. */
export function frameOfIp(ip) {
  const m = /^10\.(\d+)\.(\d+)\.(\d+)$/.exec(ip ?? '');
  return m ? (Number(m[1]) << 16) | (Number(m[2]) << 8) | Number(m[3]) : -1;
}

// ---------------------------------------------------------------- the tap

/**
 * `wazuh-nats-tap run` on the home, as users run it, with its control socket.
 * Resolves once it logged `attached` (or `started detached`).
 */
export async function startTap(o) {
  // The kernel can refuse a load with EAGAIN while other BPF programs load (shared machine): retry, bounded.
  for (let i = 0; ; i++) {
    try { return await startTapOnce(o); } catch (e) {
      if (i >= 3 || !/temporarily unavailable/.test(e.message)) throw e;
      await sleep(500);
    }
  }
}

/**
 * root: the tree whose tap runs (another checkout, for an A/B in one run: ab.mjs); beside the first, a
 * tap with `own` has its own configuration file, control socket, spool and lock (two taps on one home).
 */
async function startTapOnce({ home, natsUrl, jetstream = false, attach = true, extra = '', nodeArgs = [], logLevel = 'info', label = 'tap', root = ROOT, own = false }) {
  mkdirSync(join(home, 'etc'), { recursive: true });
  const conf = join(home, own ? `etc/ossec-${label}.conf` : 'etc/ossec.conf');
  const writeConf = (more) => writeFileSync(conf, '<ossec_config>\n  <cluster><node_name>node01</node_name><disabled>yes</disabled></cluster>\n</ossec_config>\n'
    + `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n    <metrics>no</metrics>\n    <server_url>${natsUrl}</server_url>\n`
    + (jetstream ? '    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n' : '')
    + (own ? `    <spool_dir>${join(home, `var/nats-tap-${label}`)}</spool_dir>\n` : '')
    + `${more}${process.env.BENCH_TAP_CONF ?? ''}  </nats>\n</ossec_config>\n`); // BENCH_TAP_CONF: <nats> elements for every tap (an A/B)
  writeConf(extra);
  const sock = join(home, own ? `tap-${label}.sock` : 'tap.sock');
  // BENCH_NODE_ARGS: node/V8 flags for every tap a measurement starts (trying a GC setting, say).
  const fromEnv = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = [...fromEnv, ...nodeArgs, join(root, 'bin/wazuh-nats-tap.js'), 'run', '--config', conf, '--home', home,
    '--control-socket', sock, '--log-level', logLevel, ...(attach ? [] : ['--no-attach'])];
  // PROFILE=1: a V8 CPU profile of each tap (cpu-profile.mjs), in build/bench/profile-*.cpuprofile.
  // The spool's note (agent/spool-note.ts) and the home's lock in the bench's home, never the machine's
  // /var/lib and /run (a lock file is left for each home a tap ever ran on: 2 a memory step).
  const env = {
    ...process.env, ...TAP_ENV, WAZUH_NATS_TAP_STATE_DIR: join(home, own ? `state-${label}` : 'state'),
    WAZUH_NATS_TAP_LOCK_DIR: join(home, own ? `lock-${label}` : 'lock'),
  };
  if (process.env.PROFILE === '1') {
    mkdirSync(BENCH, { recursive: true });
    args.unshift('--import', join(ROOT, 'scripts/bench/cpu-profile.mjs'));
    env.BENCH_PROFILE_OUT = join(BENCH, `profile-${label}-${Date.now()}.cpuprofile`);
  }
  // BENCH_TAP_NICE: every tap at that nice value (an A/B of the unit's Nice=).
  const nice = process.env.BENCH_TAP_NICE;
  const [cmd, argv] = nice ? ['nice', ['-n', nice, process.execPath, ...args]] : [process.execPath, args];
  const proc = track(spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: home, env }));
  const logs = [];
  const waiters = new Set();
  let partial = '';
  let stderr = '';
  proc.stdout.on('data', (d) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) {
      let o;
      try { o = JSON.parse(l); } catch { o = { msg: l }; }
      logs.push(o);
      for (const w of waiters) w(o);
    }
    if (logs.length > 10_000) logs.splice(0, 5_000);
  });
  /** The next log line whose msg matches re, from now on; null after ms. */
  const nextLog = (re, ms) => new Promise((resolve) => {
    const w = (o) => { if (re.test(String(o.msg))) { clearTimeout(t); waiters.delete(w); resolve(o); } };
    const t = setTimeout(() => { waiters.delete(w); resolve(null); }, ms);
    waiters.add(w);
  });
  proc.stderr.on('data', (d) => { if (stderr.length < 65536) stderr += d; });
  const ready = attach ? /^attached/ : /started detached/;
  const end = Date.now() + 30_000;
  while (!logs.some((l) => ready.test(String(l.msg)))) {
    if (proc.exitCode !== null) throw new Error(`the tap exited ${proc.exitCode}: ${stderr}`);
    if (Date.now() > end) { proc.kill('SIGKILL'); throw new Error(`the tap did not start: ${stderr}`); }
    await sleep(50);
  }
  const { sendControl } = await import(join(ROOT, 'dist/control/client.js'));
  const control = async (cmd) => {
    const r = await sendControl(sock, cmd);
    if (!r.ok) throw new Error(`tap ${cmd}: ${JSON.stringify(r)}`);
    return r.result ?? r.status ?? r;
  };
  return {
    proc, pid: proc.pid, logs, stderr: () => stderr, nextLog,
    status: () => control('status'),
    /** The configuration with `more` <nats> elements instead of `extra`, read again (SIGHUP) by the running tap. */
    async reconfigure(more) {
      writeConf(more);
      const reloaded = nextLog(/^configuration reload/, 10_000);
      proc.kill('SIGHUP');
      const o = await reloaded;
      if (o?.msg !== 'configuration reloaded') throw new Error(`the tap did not reload its configuration: ${o ? JSON.stringify(o) : 'no log within 10 s'}`);
      return o;
    },
    attach: () => control('attach'),
    detach: () => control('detach'),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await done; clearTimeout(t);
    },
  };
}

/** Waits until fn() is true (polling), bounded; returns whether it became true. */
export async function until(fn, ms, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(every);
  }
}
