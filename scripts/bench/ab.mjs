// An A/B of the tap's CPU per keepalive between two trees, in one run: both taps attached to the same
// simulated manager at once, so each window's keepalives, and whatever else the machine does meanwhile,
// are the same for both. Two runs of `make bench ONLY=cost` a few minutes apart differ by ±1.5 µs on this
// VM; two taps measured over the same windows differ by much less (an A/A says how much: run it with
// this tree as the other).
//
//   node scripts/bench/ab.mjs <other tree> [windows]      # e.g. a clone at another commit, built
//
// The load is cost.mjs's: wazuh-db spending 33 µs of CPU a request, keepalives only (the real pair) for
// 10,000 agents on 4 connections, unpaced, 5 s windows after one of warm-up. Each tap has its own
// configuration file, control socket, spool and lock (lib.mjs startTap `own`); each window ends when both
// have published what it produced. Both taps' BPF programs run in wazuh-db's sendto, so its throughput
// here is not cost.mjs's: only the taps' figures compare.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, median, procSample, round, sleep, startNats, startSim, startTap } from './lib.mjs';

const AGENTS = 10_000;
const THREADS = 4;
const SECONDS = 5;

const cpuOf = (pid) => procSample(pid).cpu;

/** The BPF programs a process holds (its descriptors' fdinfo `prog_id`). */
function progIdsOf(pid) {
  const ids = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch { /* closed meanwhile */ }
  }
  return [...ids];
}

/** name → { ns, runs } of the programs (kernel.bpf_stats_enabled must be 1 for them to count). */
function progStats(ids) {
  const out = {};
  for (const id of ids) {
    try {
      const p = JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', String(id), '--json']).toString());
      const o = (out[p.name] ??= { ns: 0, runs: 0 });
      o.ns += p.run_time_ns ?? 0;
      o.runs += p.run_cnt ?? 0;
    } catch { /* gone */ }
  }
  return out;
}

const STATS = '/proc/sys/kernel/bpf_stats_enabled';

/** The CPU sample of a tap when what it publishes has stopped moving for 1.5 s (bounded). */
async function drained(tap, maxMs = 60_000) {
  const t0 = performance.now();
  let last = -2;
  let at = null;
  for (;;) {
    const published = (await tap.status().catch(() => null))?.nats?.acknowledged ?? -1; // delivered (published counts resends too)
    const now = { t: performance.now(), cpu: cpuOf(tap.pid) };
    if (published !== last) { at = now; last = published; }
    if (now.t - at.t >= 1500 || now.t - t0 >= maxMs) return at.cpu;
    await sleep(200);
  }
}

async function main() {
  const other = resolve(process.argv[2] ?? '');
  const windows = Number(process.argv[3] ?? 6);
  if (!process.argv[2] || !existsSync(join(other, 'dist/cli.js')) || !existsSync(join(other, 'build/lib/libwdbtap.so'))) {
    console.error('usage: node scripts/bench/ab.mjs <other tree, built (node scripts/build.mjs)> [windows]');
    process.exit(2);
  }
  const nats = await startNats();
  let sim;
  const taps = [];
  try {
    sim = await startSim({ cpuPerRequestUs: 33 });
    // Started one after the other, each attached and resynchronised before the next.
    // The tap attached first runs its programs first in each syscall and pays the cache misses for both
    // (an A/A: ~25 % more ns a run for the first): BENCH_AB_FIRST=b starts the other first, to swap.
    const order = process.env.BENCH_AB_FIRST === 'b' ? [['b', other, 1], ['a', ROOT, 0]] : [['a', ROOT, 0], ['b', other, 1]];
    for (const [label, root, k] of order) {
      const tap = await startTap({ home: sim.home, natsUrl: nats.url, label, root, own: true });
      taps[k] = tap;
      await tap.nextLog(/state resynchronised|resynchroni[sz]ation failed/, 30_000);
    }
    const load = () => sim.load({ agents: AGENTS, rate: 0, count: 1 << 24, maxMs: SECONDS * 1000, threads: THREADS, statusPermille: 0, ipByAgent: true });
    // Every agent active to wazuh-db and both taps; then a window not counted (V8's warm-up).
    await sim.load({ agents: AGENTS, rate: 0, count: AGENTS, maxMs: 60_000, threads: THREADS, statusPermille: 0, ipByAgent: true });
    await Promise.all(taps.map((t) => drained(t)));
    await load();
    await Promise.all(taps.map((t) => drained(t)));
    // The programs' own cost, in the daemons' syscalls (not in the taps' CPU): the kernel's run time
    // statistics, on for the windows only (they cost a clock read a run).
    const stats0 = readFileSync(STATS, 'utf8').trim();
    writeFileSync(STATS, '1');
    const ids = taps.map((t) => progIdsOf(t.pid));
    const bpf0 = ids.map(progStats);
    const rows = [];
    for (let i = 0; i < windows; i++) {
      const before = taps.map((t) => cpuOf(t.pid));
      const st0 = await Promise.all(taps.map((t) => t.status()));
      const r = await load();
      const after = await Promise.all(taps.map((t) => drained(t)));
      const st1 = await Promise.all(taps.map((t) => t.status()));
      const us = after.map((c, k) => ((c - before[k]) * 1e6) / r.keepalives);
      const lost = st1.map((s, k) => s.counters.lost - st0[k].counters.lost);
      rows.push({ keepalives: r.keepalives, a: round(us[0], 2), b: round(us[1], 2), ratio: round(us[1] / us[0], 3), lost });
      console.log(`window ${i + 1}: ${r.keepalives} keepalives  a ${round(us[0], 2)} µs  b ${round(us[1], 2)} µs  b/a ${round(us[1] / us[0], 3)}${lost.some(Boolean) ? `  lost ${lost}` : ''}`);
    }
    const bpf1 = ids.map(progStats);
    writeFileSync(STATS, stats0);
    for (const name of Object.keys(bpf1[0]).sort()) {
      const per = bpf1.map((b, k) => {
        const d = { ns: b[name]?.ns - (bpf0[k][name]?.ns ?? 0), runs: b[name]?.runs - (bpf0[k][name]?.runs ?? 0) };
        return d.runs > 0 ? `${round(d.ns / d.runs, 0)} ns × ${d.runs}` : '—';
      });
      console.log(`  ${name.padEnd(18)} a ${per[0].padEnd(22)} b ${per[1]}`);
    }
    const sum = (k) => rows.reduce((s, x) => s + x[k] * x.keepalives, 0) / rows.reduce((s, x) => s + x.keepalives, 0);
    console.log(`a (${ROOT}): ${round(sum('a'), 2)} µs/keepalive; b (${other}): ${round(sum('b'), 2)} µs/keepalive; `
      + `b/a median of windows ${round(median(rows.map((x) => x.ratio)), 3)} (min ${Math.min(...rows.map((x) => x.ratio))}, max ${Math.max(...rows.map((x) => x.ratio))})`);
  } finally {
    try { writeFileSync(STATS, '0'); } catch { /* not root */ }
    for (const t of taps) await t.stop();
    await sim?.stop();
    await nats.stop();
  }
}

await main();
