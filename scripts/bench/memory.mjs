// SPEC §9 memory: controller RSS ≤ 150 MB while tracking 100,000 agents, at their keepalive rate
// (one keepalive per agent per 10 s: 10,000 frames/s, the load mix with 2 % status changes; each
// keepalive frame is the real pair, select-agent-group + update-agent-data), and ≤ 80 MB idle.
// The tap (core NATS) runs as users run it; /proc/<pid> is read every 500 ms for RSS and CPU time.
// Idle first: the tap attached to a manager with 3 agents (each started, then one keepalive) and
// nothing else happening for a few seconds; the figure is its RSS at the end of that time.
// Then a manager of 100,000 registered agents (etc/client.keys, wazuh-db's rows: never_connected), with
// a tap of its own that lists them at its start, and the load: the first 10 s bring every agent in (each
// one's first keepalive is a status change); the figure is the highest RSS from the tap's start (its
// listing included) to the end, CPU is the average over the time after every agent was seen. (Agents
// wazuh-db's listing lacked would be asked about one by one, their UPDATEs held meanwhile: not a
// manager's load — bench/lib.mjs startSim `registered`.)
import { join } from 'node:path';
import { QUICK, ROOT, procSample, round, sleep, startNats, startSim, startTap, until } from './lib.mjs';

export async function run({ quick = QUICK } = {}) {
  const AGENTS = 100_000;
  const RATE = 10_000;
  const seconds = quick ? 12 : 25;
  const idleSeconds = quick ? 4 : 10;
  const nats = await startNats();
  let sim = await startSim();
  let tap;
  const t0 = Date.now();
  try {
    tap = await startTap({ home: sim.home, natsUrl: nats.url, label: 'memory-idle' });
    // Idle: three agents, then nothing for idleSeconds.
    for (let i = 1; i <= 3; i++) {
      const a = { id: i, name: `idle${i}`, ip: `192.168.56.${20 + i}` };
      await sim.sim.startup(a);
      await sim.sim.keepalive(a);
    }
    const idleSamples = [];
    for (let i = 0; i < idleSeconds * 2; i++) { await sleep(500); idleSamples.push(procSample(tap.pid)); }
    const idle = idleSamples.at(-1);
    const idleMax = Math.max(...idleSamples.map((x) => x.rss));
    const idleCpu = (idle.cpu - idleSamples[0].cpu) / ((idle.t - idleSamples[0].t) / 1000);
    await tap.stop();
    tap = undefined;
    await sim.stop();

    // 100,000 registered agents: a tap that lists them at its start, then their keepalives.
    sim = await startSim({ registered: AGENTS });
    const samples = [];
    const starting = performance.now();
    tap = await startTap({ home: sim.home, natsUrl: nats.url, label: 'memory', nodeArgs: ['--expose-gc', '--import', join(ROOT, 'scripts/bench/memstat.mjs')] });
    // Listed: every agent's status known (client.keys alone gives their names, status unknown). The tap
    // says it is ready once its start's listing is done: this waits only if it was not.
    await until(async () => ((await tap.status()).agents?.never_connected ?? 0) >= AGENTS, 60_000, 200);
    const listingS = (performance.now() - starting) / 1000;
    const listingPeak = round(procSample(tap.pid).rss / 2 ** 20, 1);
    let sampling = true;
    const start = performance.now();
    const sampler = (async () => {
      while (sampling) {
        await sleep(500);
        let s;
        try {
          s = procSample(tap.pid);
        } catch {
          return; // the tap is gone: the status below says so
        }
        samples.push({ t_s: round((s.t - start) / 1000, 1), rss_mb: round(s.rss / 2 ** 20, 1), cpu_s: s.cpu });
      }
    })();
    const loading = sim.load({ agents: AGENTS, rate: RATE, count: RATE * seconds, maxMs: seconds * 1000, threads: 4, ipByAgent: true });
    await loading.finally(() => { sampling = false; });
    await sampler;
    const r = await loading;
    await sleep(1000);
    const st = await tap.status();
    // Tracked through the load: every agent whose keepalive came (the listing alone leaves them never_connected).
    const tracked = Object.values(st.agents ?? {}).reduce((a, b) => a + b, 0) - (st.agents?.never_connected ?? 0);
    // The heap / external / native split, printed by memstat.mjs when the tap gets SIGTERM.
    await tap.stop();
    const m = /BENCH_MEM (\{.*\})/.exec(tap.stderr());
    const split = m ? JSON.parse(m[1]) : null;
    const maxRss = Math.max(listingPeak, ...samples.map((s) => s.rss_mb));
    const steady = samples.filter((s) => s.t_s >= AGENTS / RATE);
    const cpu = steady.length > 1
      ? (steady.at(-1).cpu_s - steady[0].cpu_s) / (steady.at(-1).t_s - steady[0].t_s) : null;
    // While the agents come in (each one's first keepalive: a new agent, the slow path), from the start.
    const ramp = samples.filter((s) => s.t_s <= AGENTS / RATE);
    const rampCpu = ramp.length > 1 ? (ramp.at(-1).cpu_s - ramp[0].cpu_s) / (ramp.at(-1).t_s - ramp[0].t_s) : null;
    const idleMb = round(idle.rss / 2 ** 20, 1);
    return {
      rows: [{
        measure: 'controller RSS idle (attached, 3 agents, no traffic)',
        value: idleMb, unit: 'MB', bar: '≤ 80', pass: idleMb <= 80,
        note: `after ${idleSeconds} s without traffic (highest in that time ${round(idleMax / 2 ** 20, 1)} MB); CPU ${round(idleCpu * 100, 1)} % of a core`,
      }, {
        measure: `controller RSS, ${tracked} agents tracked at 10k keepalives/s`,
        value: round(maxRss, 1), unit: 'MB', bar: '≤ 150', pass: maxRss <= 150 && tracked >= 0.99 * AGENTS,
        note: `${Math.round(r.sent / (r.elapsed_ns / 1e9)).toLocaleString('en-US')} frames/s sent (a keepalive is select-agent-group + update-agent-data); `
          + `the tap's start, its listing of the ${AGENTS.toLocaleString('en-US')} registered agents included, took ${round(listingS, 1)} s (RSS ${listingPeak} MB after it); `
          + `CPU ${cpu === null ? '?' : round(cpu * 100, 0)} % of a core after all agents were in (${rampCpu === null ? '?' : round(rampCpu * 100, 0)} % while they came in); ${st.counters.lost} records lost`
          + (split ? `; at the end: heap ${split.heap_used_mb}/${split.heap_total_mb} MB, external ${split.external_mb} MB, native ${split.native_mb} MB` : '')
          + (split?.live_heap_mb !== undefined ? `; live after a full GC ${split.live_heap_mb} MB (within ~1 MB from run to run: compare versions by it)` : ''),
      }],
      details: {
        agents: AGENTS, rate: RATE, seconds, sent: r.sent, achieved_rate: Math.round(r.sent / (r.elapsed_ns / 1e9)), requests: r.requests, sim_errors: r.errors, tracked, agents_by_status: st.agents,
        max_rss_mb: maxRss, listing_s: round(listingS, 1), listing_max_rss_mb: listingPeak, end_rss_mb: samples.at(-1)?.rss_mb, idle_rss_mb: idleMb, idle_max_rss_mb: round(idleMax / 2 ** 20, 1),
        idle_seconds: idleSeconds, idle_cpu_cores: round(idleCpu, 3),
        cpu_cores_steady: round(cpu, 3), cpu_cores_ramp: round(rampCpu, 3), kernel_lost_records: st.counters.lost, memory_at_end: split,
        samples: samples.map(({ t_s, rss_mb }) => [t_s, rss_mb]), elapsed_s: round((Date.now() - t0) / 1000, 1),
      },
    };
  } finally {
    await tap?.stop();
    await sim.stop();
    await nats.stop();
  }
}
