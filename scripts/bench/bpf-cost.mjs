#!/usr/bin/env node
// What the tap's BPF programs cost inside the daemons' own syscalls, program by program: the kernel's own
// accounting (kernel.bpf_stats_enabled: run_cnt and run_time_ns of each program, read from the tap's
// descriptors' fdinfo), over a load of the simulator's remoted (the real keepalive pair, 2 % status
// changes) against its wazuh-db, the tap attached and publishing to a local nats-server. Every hooked
// syscall of every process runs the programs, so the load is the only sendto traffic of the run: the
// figures are the targets' calls. Unlike a round trip's wall clock, they do not move with this VM's
// bimodal scheduling: a change to the programs shows here first (A/B: WAZUH_NATS_TAP_LIBDIR=<a build/>).
// `node scripts/bench/bpf-cost.mjs` (BENCH_BPF_RUNS, BENCH_BPF_FRAMES), or `make bench ONLY=programs`.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { QUICK, median, round, sleep, startNats, startSim, startTap } from './lib.mjs';

const RATE = 5000; // frames/s: a busy manager, well below what wazuh-db answers
const STATS = '/proc/sys/kernel/bpf_stats_enabled';

/** run_cnt and run_time_ns of every BPF program pid holds, by program name. */
function programStats(pid, names) {
  const out = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link;
    try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    if (link !== 'anon_inode:bpf-prog') continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const id = /prog_id:\s+(\d+)/.exec(info)?.[1];
    if (!id) continue;
    if (!names.has(id)) names.set(id, JSON.parse(execFileSync('bpftool', ['prog', 'show', 'id', id, '--json']).toString()).name ?? id);
    out[names.get(id)] = { cnt: Number(/run_cnt:\s+(\d+)/.exec(info)?.[1] ?? 0), ns: Number(/run_time_ns:\s+(\d+)/.exec(info)?.[1] ?? 0) };
  }
  return out;
}

export async function run({ quick = QUICK } = {}) {
  const RUNS = Number(process.env.BENCH_BPF_RUNS ?? (quick ? 2 : 5));
  const FRAMES = Number(process.env.BENCH_BPF_FRAMES ?? (quick ? 10_000 : 20_000));
  const before = readFileSync(STATS, 'utf8').trim();
  const names = new Map();
  const nats = await startNats();
  const sim = await startSim({});
  const t0 = Date.now();
  let tap;
  const runs = [];
  try {
    tap = await startTap({ home: sim.home, natsUrl: nats.url });
    writeFileSync(STATS, '1');
    await sim.load({ agents: 1000, rate: RATE, count: 2000, maxMs: 5000, ipByAgent: true }); // warm-up: rows, kept ticks
    for (let i = 0; i < RUNS; i++) {
      await sleep(300);
      const a = programStats(tap.pid, names);
      const r = await sim.load({ agents: 1000, rate: RATE, count: FRAMES, maxMs: (FRAMES / RATE) * 1000 + 5000, ipByAgent: true });
      await sleep(300);
      const b = programStats(tap.pid, names);
      const programs = {};
      let ns = 0;
      for (const [name, v] of Object.entries(b)) {
        const calls = v.cnt - (a[name]?.cnt ?? 0);
        const spent = v.ns - (a[name]?.ns ?? 0);
        if (!calls) continue;
        programs[name] = { calls, ns_per_call: round(spent / calls, 0) };
        ns += spent;
      }
      runs.push({ frames: r.sent, requests: r.requests, ns_per_request: round(ns / r.requests, 0), programs });
    }
  } finally {
    writeFileSync(STATS, before);
    await tap?.stop();
    await sim.stop();
    await nats.stop();
  }
  const perRequest = median(runs.map((r) => r.ns_per_request));
  const of = (name) => median(runs.map((r) => r.programs[name]?.ns_per_call).filter((x) => x !== undefined));
  return {
    rows: [{
      measure: 'the tap\'s BPF programs in the daemons\' syscalls, per request (request and reply)',
      value: round(perRequest / 1000, 2), unit: 'µs', bar: '', pass: null,
      note: `sendto: enter ${of('tp_enter_sendto')} ns, exit ${of('tp_exit_sendto')} ns a call (kernel.bpf_stats_enabled); a keepalive is two requests`,
    }],
    details: {
      method: `${RUNS} runs of ${FRAMES} frames at ${RATE}/s (the real keepalive pair, 2 % status changes) on the simulator, the tap attached and publishing; each program's run_time_ns / run_cnt over the run; figure = median over runs of all programs' time / requests`,
      seconds: round((Date.now() - t0) / 1000, 1), runs,
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await run();
  console.log(r.rows[0].measure, r.rows[0].value, r.rows[0].unit, `(${r.rows[0].note})`);
  for (const x of r.details.runs) {
    console.log(`${x.frames} frames, ${x.requests} requests: ${x.ns_per_request} ns a request`);
    for (const [name, v] of Object.entries(x.programs).sort()) console.log(`  ${name.padEnd(16)} ${String(v.calls).padStart(8)} calls ${String(v.ns_per_call).padStart(6)} ns`);
  }
}
