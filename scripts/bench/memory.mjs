// SPEC §9 memory: controller RSS ≤ 150 MB while tracking 100,000 agents, at their keepalive rate
// (one keepalive per agent per 10 s: 10,000 frames/s, the load mix with 2 % status changes).
// The tap (core NATS) runs as users run it; /proc/<pid> is read every 500 ms for RSS and CPU time.
// The first 10 s bring every agent in (each one's first keepalive is a status change); the figure is the
// highest RSS over the whole run, CPU is the average over the time after every agent was seen.
import { join } from 'node:path';
import { QUICK, ROOT, procSample, round, sleep, startNats, startSim, startTap } from './lib.mjs';

export async function run({ quick = QUICK } = {}) {
  const AGENTS = 100_000;
  const RATE = 10_000;
  const seconds = quick ? 12 : 25;
  const nats = await startNats();
  const sim = await startSim();
  let tap;
  const t0 = Date.now();
  try {
    tap = await startTap({ home: sim.home, natsUrl: nats.url, label: 'memory', nodeArgs: ['--import', join(ROOT, 'scripts/bench/memstat.mjs')] });
    const idle = procSample(tap.pid);
    const samples = [];
    const loading = sim.load({ agents: AGENTS, rate: RATE, count: RATE * seconds, maxMs: seconds * 1000, threads: 4 });
    let done = false;
    void loading.finally(() => { done = true; });
    const start = performance.now();
    while (!done) {
      await sleep(500);
      const s = procSample(tap.pid);
      samples.push({ t_s: round((s.t - start) / 1000, 1), rss_mb: round(s.rss / 2 ** 20, 1), cpu_s: s.cpu });
    }
    const r = await loading;
    await sleep(1000);
    const st = await tap.status();
    const tracked = Object.values(st.agents ?? {}).reduce((a, b) => a + b, 0);
    // The heap / external / native split, printed by memstat.mjs when the tap gets SIGTERM.
    await tap.stop();
    const m = /BENCH_MEM (\{.*\})/.exec(tap.stderr());
    const split = m ? JSON.parse(m[1]) : null;
    const maxRss = Math.max(...samples.map((s) => s.rss_mb));
    const steady = samples.filter((s) => s.t_s >= AGENTS / RATE);
    const cpu = steady.length > 1
      ? (steady.at(-1).cpu_s - steady[0].cpu_s) / (steady.at(-1).t_s - steady[0].t_s) : null;
    return {
      rows: [{
        measure: `controller RSS, ${tracked} agents tracked at 10k keepalives/s`,
        value: round(maxRss, 1), unit: 'MB', bar: '≤ 150', pass: maxRss <= 150 && tracked >= 0.99 * AGENTS,
        note: `CPU ${cpu === null ? '?' : round(cpu * 100, 0)} % of a core after all agents were in; idle RSS ${round(idle.rss / 2 ** 20, 0)} MB; ${st.counters.lost} records lost`
          + (split ? `; at the end: heap ${split.heap_used_mb}/${split.heap_total_mb} MB, external ${split.external_mb} MB, native ${split.native_mb} MB` : ''),
      }],
      details: {
        agents: AGENTS, rate: RATE, seconds, sent: r.sent, tracked, agents_by_status: st.agents,
        max_rss_mb: maxRss, end_rss_mb: samples.at(-1)?.rss_mb, idle_rss_mb: round(idle.rss / 2 ** 20, 1),
        cpu_cores_steady: round(cpu, 3), kernel_lost_records: st.counters.lost, memory_at_end: split,
        samples: samples.map(({ t_s, rss_mb }) => [t_s, rss_mb]), elapsed_s: round((Date.now() - t0) / 1000, 1),
      },
    };
  } finally {
    await tap?.stop();
    await sim.stop();
    await nats.stop();
  }
}
