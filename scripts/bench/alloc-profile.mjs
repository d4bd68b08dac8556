// Loaded into the tap with `node --import` (BENCH_NODE_ARGS="--import $PWD/scripts/bench/alloc-profile.mjs"):
// V8's sampling heap profiler with the objects every GC collected kept in the sample, so it shows where
// the garbage is allocated, not only what survives. Started BENCH_ALLOC_DELAY_MS (3 s) after the tap
// starts, written at SIGTERM to build/bench/alloc-<pid>.heapprofile; `node scripts/bench/top-allocations.mjs
// FILE` reads it. A sample every 32 KiB by default (BENCH_ALLOC_INTERVAL): allocation rates, not sizes.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(root, 'build/bench', `alloc-${process.pid}.heapprofile`);
const s = new Session();
s.connect();
let started = false;
const t = setTimeout(() => {
  s.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.BENCH_ALLOC_INTERVAL ?? 32768),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  }, (err) => { started = !err; });
}, Number(process.env.BENCH_ALLOC_DELAY_MS ?? 3000));
t.unref();
// The tap's own SIGTERM listener stays: the profile covers the run, not the stop.
process.once('SIGTERM', () => {
  if (!started) return;
  started = false;
  s.post('HeapProfiler.stopSampling', (err, r) => {
    if (err) return;
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(r.profile));
  });
});
