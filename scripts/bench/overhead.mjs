#!/usr/bin/env node
// Overhead of the capture on a process that is not a target (SPEC §9):
// the same sendto loop with nothing attached, with empty programs on the same
// tracepoints (the floor of a syscall-tracepoint design), and with the tap.
// Rounds alternate the three so drift on a shared machine hits them alike;
// the median of each is reported.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, BUILD } from '../build.mjs';

const N = Number(process.env.BENCH_CALLS ?? 2_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const out = join(BUILD, 'bench');
mkdirSync(out, { recursive: true });

execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I', BUILD, '-c', join(ROOT, 'scripts/bench/empty.bpf.c'), '-o', join(out, 'empty.bpf.o')]);
execFileSync('gcc', ['-O2', '-o', join(out, 'attach-empty'), join(ROOT, 'scripts/bench/attach-empty.c'), '-lbpf']);
execFileSync('gcc', ['-O2', '-pthread', '-o', join(out, 'sendto-loop'), join(ROOT, 'scripts/bench/sendto-loop.c')]);

const loop = () => Number(execFileSync(join(out, 'sendto-loop'), [String(N)]).toString());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function holding(cmd, args, ready, fn) {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise((res, rej) => {
    let buf = '';
    p.stdout.on('data', (d) => { buf += d; if (ready.test(buf)) res(); });
    p.once('exit', (c) => rej(new Error(`${cmd} exited ${c}`)));
  });
  try { return fn(); } finally { p.stdin.end(); p.kill('SIGTERM'); await new Promise((r) => p.once('exit', r)); }
}

const { Capture } = await import(join(ROOT, 'dist/capture/capture.js'));
const { artefacts } = await import(join(ROOT, 'dist/paths.js'));
const cap = Capture.open(artefacts());
const res = { none: [], empty: [], tap: [] };
for (let r = 0; r < ROUNDS; r++) {
  res.none.push(loop());
  res.empty.push(await holding(join(out, 'attach-empty'), [join(out, 'empty.bpf.o')], /attached/, loop));
  cap.attach();
  res.tap.push(loop());
  cap.detach();
}
await cap.close();
const none = median(res.none);
const empty = median(res.empty);
const tap = median(res.tap);
const emptyCost = empty - none;
const tapCost = tap - none;
const report = {
  calls: N, rounds: ROUNDS,
  ns_per_sendto: { detached: none, empty_programs: empty, tap_attached: tap },
  added_ns: { empty_programs: +emptyCost.toFixed(1), tap: +tapCost.toFixed(1) },
  tap_vs_empty: +(tapCost / emptyCost).toFixed(2),
  bar: 'tap_vs_empty <= 1.2 (SPEC §9)',
};
console.log(JSON.stringify(report, null, 2));
