// Keepalive batching (issue 5 item 5): the same keepalives published one per message and with
// `keepalive_batch` 500, side by side, core NATS and JetStream. The tap's publisher runs in this
// process (as in delivery.mjs); a subscriber (core) or the stream (JetStream) must hold every
// keepalive. Figures: keepalives/s delivered, NATS messages, and the publisher's CPU per keepalive
// (this process's user + system time over the run).
import { QUICK, round, startNats, until } from './lib.mjs';
import { enqueueAll, publisher } from './delivery.mjs';

const BATCH = 500;

async function once(jetstream, batch, n) {
  const nats = await startNats({ jetstream });
  const { p, close } = await publisher(nats.url, jetstream, batch ? { maxEvents: BATCH, intervalMs: 1000 } : undefined);
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
      mode: jetstream ? 'jetstream' : 'core', batch: batch ? BATCH : 1, keepalives: n, messages: st.acknowledged, complete: ok,
      seconds: round(s, 2), keepalives_per_s: Math.round(n / s), cpu_us_per_keepalive: round((cpu.user + cpu.system) / n, 2),
    };
  } finally {
    await close();
    await nats.stop();
  }
}

export async function run({ quick = QUICK } = {}) {
  const n = quick ? 30_000 : 100_000;
  const res = {};
  for (const js of [false, true]) {
    for (const batch of [false, true]) res[`${js ? 'jetstream' : 'core'}_${batch ? 'batched' : 'single'}`] = await once(js, batch, n);
  }
  const rows = [];
  for (const mode of ['core', 'jetstream']) {
    const a = res[`${mode}_single`];
    const b = res[`${mode}_batched`];
    rows.push({
      measure: `keepalives/s published, ${mode === 'core' ? 'core NATS' : 'JetStream'}: one per message → keepalive_batch ${BATCH}`,
      value: `${a.keepalives_per_s.toLocaleString('en-US')} → ${b.keepalives_per_s.toLocaleString('en-US')}`, unit: 'keepalives/s', bar: '—',
      pass: a.complete && b.complete ? null : false,
      note: `${round(b.keepalives_per_s / a.keepalives_per_s, 1)}× ; CPU ${a.cpu_us_per_keepalive} → ${b.cpu_us_per_keepalive} µs per keepalive; ${a.messages} → ${b.messages} messages`,
    });
  }
  return { rows, details: { method: `the publisher in the benchmark process, ${n} keepalive events of the real shape, batches of 500 handed over as the pipeline does`, ...res } };
}
