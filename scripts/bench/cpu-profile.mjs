// Loaded into the tap with `node --import` by `make bench PROFILE=1`: a V8 CPU profile of
// the controller, started once the BPF programs are loaded. `node --cpu-prof` cannot be
// used: its SIGPROF interrupts the kernel's verifier, and the load fails with EAGAIN.
// BENCH_PROFILE_OUT names the .cpuprofile written at exit (open it in Chrome DevTools,
// or `node scripts/bench/top-functions.mjs FILE`).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_PROFILE_OUT;
const delay = Number(process.env.BENCH_PROFILE_DELAY_MS ?? 3000);
if (out) {
  const s = new Session();
  s.connect();
  let started = false;
  const t = setTimeout(() => {
    s.post('Profiler.enable');
    s.post('Profiler.setSamplingInterval', { interval: 200 }, () => {
      s.post('Profiler.start', () => { started = true; });
    });
  }, delay);
  t.unref();
  // SIGTERM starts the tap's shutdown (its own listener stays): the profile covers the run, not the stop.
  process.once('SIGTERM', () => {
    if (!started) return;
    started = false;
    s.post('Profiler.stop', (err, r) => { if (!err) writeFileSync(out, JSON.stringify(r.profile)); });
  });
}
