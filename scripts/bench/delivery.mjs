// Delivery (issue 5 item 7): events/s published by the tap's publisher (ReliablePublisher: every event
// through the disk spool, then core NATS or JetStream), and the spool's replay rate after an outage.
// The publisher runs in this process on realistic keepalive events (the JSON a keepalive event has,
// ~500 bytes), handed over in batches of 500 as the pipeline does. "Published" means acknowledged:
// a core flush, or a JetStream PubAck. Replay: NATS is down while the events are spooled, then it starts
// and the time until the last acknowledgement gives the rate.
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUICK, ROOT, freePort, round, sleep, startNats, until } from './lib.mjs';

export function keepalive(i, agents) {
  const id = String(1 + (i % agents)).padStart(3, '0');
  const now = Date.now();
  return {
    event_id: `bench-${process.pid}-${i}`, event_type: 'keepalive', agent_id: id, agent_name: `agent-${id}`,
    ip_address: `10.0.${(i >> 8) & 255}.${i & 255}`, status: 'active', version: 'Wazuh v4.7.5',
    os: { name: 'Debian GNU/Linux', version: '12', major: '12', codename: 'bookworm', platform: 'debian', uname: 'Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64', arch: 'x86_64' },
    group_config_status: 'synced', sync_status: 'synced', timestamp: Math.floor(now / 1000), time: new Date(now).toISOString(),
    manager_node: 'node01', source: 'remoted',
  };
}

/** The tap's publisher on a fresh spool; `keepaliveBatch`: { maxEvents, intervalMs } (keepalive_batch). */
export async function publisher(url, jetstream, keepaliveBatch) {
  const { ReliablePublisher } = await import(join(ROOT, 'dist/publish/reliable.js'));
  const { pino } = await import('pino');
  const dir = mkdtempSync(join(tmpdir(), 'bench-spool-'));
  const p = new ReliablePublisher({
    servers: [url], prefix: 'wazuh', node: 'node01', log: pino({ level: 'silent' }), spoolDir: dir,
    spoolMaxBytes: 1024 * 2 ** 20, jetstream, createStream: jetstream, maxReconnects: -1, reconnectDelayMs: 200, keepaliveBatch,
  });
  await p.connect();
  return { p, close: async () => { await p.close(2000); rmSync(dir, { recursive: true, force: true }); } };
}

export async function enqueueAll(p, n) {
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push(keepalive(j, 10_000));
    p.publishAgentEvents(batch);
    if (i % 5000 === 0) await sleep(0); // let the delivery run between batches, as between poll cycles
  }
}

/**
 * Live publishing: events handed over as fast as they come, until every message is acknowledged.
 * `keepaliveBatch` as publisher()'s (the batching comparison); the CPU is this process's.
 */
export async function live(jetstream, n, keepaliveBatch) {
  const nats = await startNats({ jetstream });
  const { p, close } = await publisher(nats.url, jetstream, keepaliveBatch);
  try {
    await until(() => p.connected && (!jetstream || p.stats().streamReady), 10_000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await enqueueAll(p, n);
    p.flushBatch();
    // Done when everything spooled was acknowledged (a core flush, or a PubAck per message).
    const ok = await until(() => p.stats().spoolRecords === 0 && p.stats().acknowledged === p.stats().spooled, 120_000, 5);
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const st = p.stats();
    return {
      mode: jetstream ? 'jetstream' : 'core', batch: keepaliveBatch?.maxEvents ?? 1, events: n, messages: st.acknowledged, complete: ok,
      seconds: round(s, 2), events_per_s: Math.round(n / s), cpu_us_per_event: round((cpu.user + cpu.system) / n, 2), ack_latency_ms: st.latencyMs,
    };
  } finally {
    await close();
    await nats.stop();
  }
}

/** Replay: spooled while NATS is down, then drained when it comes up. */
async function replay(jetstream, n) {
  const port = await freePort();
  const { p, close } = await publisher(`nats://127.0.0.1:${port}`, jetstream);
  let nats;
  try {
    await enqueueAll(p, n);
    await until(() => p.stats().spoolRecords >= n, 30_000);
    const spooled = p.stats().spoolRecords;
    nats = await startNats({ jetstream, port });
    const t0 = performance.now();
    await until(() => p.connected, 20_000, 5);
    // How long the event loop was held at a time while the spool drained (the tap's capture rounds,
    // timers and control socket wait that long): its delay, sampled every millisecond.
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    // And the garbage collector's pauses meanwhile: what of that delay is V8's, not the pump's.
    const gcs = [];
    const gcObs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e); });
    gcObs.observe({ entryTypes: ['gc'] });
    const tUp = performance.now();
    const ok = await until(() => p.stats().acknowledged >= n, 120_000, 5);
    const t1 = performance.now();
    lag.disable();
    gcObs.disconnect();
    const longest = gcs.reduce((m, e) => (e.duration > (m?.duration ?? -1) ? e : m), null);
    const major = (e) => e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
    const st = p.stats();
    return {
      mode: jetstream ? 'jetstream' : 'core', events: n, spooled, acknowledged: st.acknowledged, replayed: st.replayed, complete: ok,
      reconnect_ms: Math.round(tUp - t0), drain_seconds: round((t1 - tUp) / 1000, 2), events_per_s: Math.round(st.acknowledged / ((t1 - tUp) / 1000)),
      loop_delay_ms: { p50: round(lag.percentile(50) / 1e6, 1), p99: round(lag.percentile(99) / 1e6, 1), max: round(lag.max / 1e6, 1) },
      gc: {
        pauses: gcs.length, total_ms: round(gcs.reduce((a, e) => a + e.duration, 0), 1),
        longest_ms: round(longest?.duration ?? 0, 1), longest_kind: longest ? (major(longest) ? 'mark-compact' : 'scavenge') : null,
        over_10ms: gcs.filter((e) => e.duration > 10).length,
      },
    };
  } finally {
    await close();
    await nats?.stop();
  }
}

export async function run({ quick = QUICK } = {}) {
  const n = quick ? 30_000 : 100_000;
  const t0 = Date.now();
  const res = {
    core: await live(false, n), jetstream: await live(true, n),
    replay_core: await replay(false, n), replay_jetstream: await replay(true, n),
  };
  const lagNote = (r) => `event loop held p50 / p99 / max ${r.loop_delay_ms.p50} / ${r.loop_delay_ms.p99} / ${r.loop_delay_ms.max} ms at a time meanwhile; `
    + `GC ${r.gc.pauses} pauses, ${r.gc.total_ms} ms, the longest ${r.gc.longest_ms} ms (${r.gc.longest_kind}), ${r.gc.over_10ms} over 10 ms`;
  const row = (label, r, note) => ({ measure: label, value: r.events_per_s, unit: 'events/s', bar: '—', pass: r.complete ? null : false, note });
  return {
    rows: [
      row('published, core NATS (spool → publish → flush ack)', res.core, `${res.core.messages}/${n} in ${res.core.seconds} s`),
      row('published, JetStream (PubAck, 256 in flight)', res.jetstream, `ack p50 ${round(res.jetstream.ack_latency_ms.p50, 1)} ms, p99 ${round(res.jetstream.ack_latency_ms.p99, 1)} ms`),
      row('spool replay after an outage, core NATS', res.replay_core, `${res.replay_core.spooled} spooled, drained in ${res.replay_core.drain_seconds} s; ${lagNote(res.replay_core)}`),
      row('spool replay after an outage, JetStream', res.replay_jetstream, `${res.replay_jetstream.spooled} spooled, drained in ${res.replay_jetstream.drain_seconds} s; ${lagNote(res.replay_jetstream)}`),
    ],
    details: { method: 'ReliablePublisher in the benchmark process, keepalive events in batches of 500; rate = acknowledged / time', seconds: round((Date.now() - t0) / 1000, 1), ...res },
  };
}
