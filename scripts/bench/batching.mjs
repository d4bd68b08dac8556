// Keepalive batching (issue 5 item 5): the same keepalives published one per message and with
// `keepalive_batch` 500, side by side, core NATS and JetStream, by delivery.mjs's live run (the
// tap's publisher in this process, until every message is acknowledged). Figures: keepalives/s,
// NATS messages, and the publisher's CPU per keepalive (this process's user + system time).
import { QUICK, round } from './lib.mjs';
import { live } from './delivery.mjs';

const BATCH = 500;

export async function run({ quick = QUICK } = {}) {
  const n = quick ? 30_000 : 100_000;
  const res = {};
  for (const js of [false, true]) {
    for (const batch of [false, true]) {
      res[`${js ? 'jetstream' : 'core'}_${batch ? 'batched' : 'single'}`] = await live(js, n, batch ? { maxEvents: BATCH, intervalMs: 1000 } : undefined);
    }
  }
  const rows = [];
  for (const mode of ['core', 'jetstream']) {
    const a = res[`${mode}_single`];
    const b = res[`${mode}_batched`];
    rows.push({
      measure: `keepalives/s published, ${mode === 'core' ? 'core NATS' : 'JetStream'}: one per message → keepalive_batch ${BATCH}`,
      value: `${a.events_per_s.toLocaleString('en-US')} → ${b.events_per_s.toLocaleString('en-US')}`, unit: 'keepalives/s', bar: '—',
      pass: a.complete && b.complete ? null : false,
      note: `${round(b.events_per_s / a.events_per_s, 1)}× ; CPU ${a.cpu_us_per_event} → ${b.cpu_us_per_event} µs per keepalive; ${a.messages} → ${b.messages} messages`,
    });
  }
  return { rows, details: { method: `the publisher in the benchmark process, ${n} keepalive events of the real shape, batches of 500 handed over as the pipeline does`, ...res } };
}
