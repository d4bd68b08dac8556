#!/usr/bin/env node
// `make bench`: every bar of SPEC §9, measured in one run, as a table and as JSON
// (build/bench/results.json, with the machine it ran on).
//
//   make bench                      # everything (under 10 minutes on a 2-core VM)
//   make bench BENCH_QUICK=1        # shorter runs, fewer rounds (~3 minutes): for a first look
//   make bench ONLY=latency,memory  # some measurements only
//   make bench PROFILE=1            # also a V8 CPU profile of the tap in the throughput-style runs
//
// A measurement is a module under scripts/bench/ whose `run({ quick })` resolves to
//   { rows: [{ measure, value, unit, bar, pass: true | false | null, note }], details: {...} }
// (pass null: reported, no bar). Add yours to MEASUREMENTS; rows keep this list's order.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH, QUICK, machineInfo, round } from './lib.mjs';

const MEASUREMENTS = [
  { name: 'overhead', what: 'non-target process: write loop, sendto and recvfrom loops vs empty programs', module: './overhead.mjs' },
  { name: 'roundtrip', what: 'target daemon wdb round trip, attached vs detached', module: './roundtrip.mjs' },
  { name: 'programs', what: 'the BPF programs\' time in the daemons\' syscalls (kernel.bpf_stats_enabled)', module: './bpf-cost.mjs' },
  { name: 'cost', what: 'saturated wazuh-db without / with the tap; the tap\'s CPU per keepalive', module: './cost.mjs' },
  { name: 'throughput', what: 'sustained frames/s with zero loss; loss at 2x', module: './throughput.mjs' },
  { name: 'latency', what: 'sendto → subscriber at 10k frames/s, core and JetStream', module: './latency.mjs' },
  { name: 'memory', what: 'controller RSS and CPU with 100,000 agents', module: './memory.mjs' },
  { name: 'delivery', what: 'events/s published (core, JetStream), spool replay', module: './delivery.mjs' },
  { name: 'batching', what: 'keepalives one per message vs keepalive_batch 500', module: './batching.mjs' },
  { name: 'alerts', what: 'alerts.json append → subscriber latency', module: './alerts-latency.mjs' },
];

const only = (process.env.ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const unknown = only.filter((n) => !MEASUREMENTS.some((m) => m.name === n));
if (unknown.length) {
  console.error(`ONLY: unknown measurement ${unknown.join(', ')}; one of ${MEASUREMENTS.map((m) => m.name).join(', ')}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('make bench attaches eBPF programs: run it as root');
  process.exit(3);
}
const chosen = MEASUREMENTS.filter((m) => !only.length || only.includes(m.name));

const machine = machineInfo();
const started = new Date();
console.log(`wazuh-nats-tap benchmark — ${machine.cpu_model}, ${machine.cores} cores, kernel ${machine.kernel}, node ${machine.node}, ${machine.nats_server}, commit ${machine.git_commit}${machine.git_dirty ? '+' : ''}${QUICK ? ', QUICK' : ''}`);
console.log(`load average at start: ${machine.load_avg_at_start.join(' ')}${machine.load_avg_at_start[0] > 0.5 ? ' (the machine is not idle: expect noise)' : ''}; BPF programs of other processes on tracepoints: ${machine.foreign_tracepoint_programs_at_start}`);
console.log(`the tap's environment, as its systemd unit sets it: ${Object.entries(machine.tap_environment).map(([k, v]) => `${k}=${v}`).join(' ') || 'none (BENCH_UNIT_ENV=0)'}${process.env.BENCH_TAP_NICE ? `; nice ${process.env.BENCH_TAP_NICE} (BENCH_TAP_NICE)` : ''}\n`);

const results = {};
for (const m of chosen) {
  const t0 = Date.now();
  process.stdout.write(`  ${m.name.padEnd(11)} ${m.what} … `);
  try {
    const mod = await import(m.module);
    results[m.name] = await mod.run({ quick: QUICK });
    results[m.name].seconds ??= round((Date.now() - t0) / 1000, 1);
    console.log(`${round((Date.now() - t0) / 1000, 0)} s`);
  } catch (e) {
    results[m.name] = { error: e.stack ?? String(e), rows: [{ measure: m.what, value: null, unit: '', bar: '', pass: false, note: `error: ${e.message}` }] };
    console.log(`failed: ${e.message}`);
  }
}

// The table.
const rows = chosen.flatMap((m) => results[m.name].rows.map((r) => ({ ...r, group: m.name })));
const cell = (r) => [
  r.measure,
  r.value === null || r.value === undefined ? '—' : `${typeof r.value === 'number' ? r.value.toLocaleString('en-US') : r.value} ${r.unit ?? ''}`.trim(),
  r.bar || '—',
  r.pass === true ? 'PASS' : r.pass === false ? 'FAIL' : 'info',
];
const head = ['measure', 'figure', 'bar', 'result'];
const cells = rows.map(cell);
const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
const line = (c) => c.map((x, i) => x.padEnd(w[i])).join('  ').trimEnd();
console.log(`\n${line(head)}\n${w.map((n) => '─'.repeat(n)).join('  ')}`);
for (let i = 0; i < rows.length; i++) {
  console.log(line(cells[i]));
  if (rows[i].note) console.log(`    ${rows[i].note}`);
}
const failed = rows.filter((r) => r.pass === false).length;
console.log(`\n${rows.filter((r) => r.pass === true).length} pass, ${failed} fail, ${rows.filter((r) => r.pass === null).length} informational`);

mkdirSync(BENCH, { recursive: true });
// PROFILE=1: the profiles this run wrote (each tap's), to read with profile-stages.mjs / top-functions.mjs.
const profiles = process.env.PROFILE === '1'
  ? readdirSync(BENCH).filter((f) => f.endsWith('.cpuprofile') && statSync(join(BENCH, f)).mtimeMs >= started.getTime()).map((f) => join(BENCH, f))
  : [];
if (profiles.length) console.log(`CPU profiles: ${profiles.length} in ${BENCH} (node scripts/bench/profile-stages.mjs FILE)`);
const out = join(BENCH, 'results.json');
writeFileSync(out, `${JSON.stringify({
  started: started.toISOString(), finished: new Date().toISOString(), quick: QUICK, only: only.length ? only : null,
  machine, table: rows, results, profiles,
}, null, 2)}\n`);
console.log(`JSON: ${out}`);
