// How long messages take (publish/timing.ts): recent durations and their quantiles, and the capture
// times of spooled messages found again by seq when they are published.
import t from 'tap';
import { CaptureTimes, RecentTimes, SpoolAges } from '../controller/src/publish/timing.js';
import { monotonicMs } from '../controller/src/util/clock.js';
import { Pipeline } from '../controller/src/pipeline.js';
import type { CaptureRecord } from '../controller/src/types.js';

t.test('RecentTimes: quantiles of the last samples, the largest since the start', async (t) => {
  const r = new RecentTimes(100, { minIntervalMs: 0 });
  t.same(r.summary(), { count: 0, p50: 0, p99: 0, max: 0 }, 'nothing yet');
  for (let i = 100; i >= 1; i--) r.add(i); // added in decreasing order: the quantiles sort
  t.same(r.summary(), { count: 100, p50: 51, p99: 100, max: 100 });
  for (let i = 0; i < 100; i++) r.add(2); // the ring forgets the old samples, not the maximum
  t.same(r.summary(), { count: 200, p50: 2, p99: 2, max: 100 });
  r.add(-0.01); // a clock read a hair before the capture
  r.add(NaN);
  t.equal(r.summary().count, 202);
  t.ok(r.summary().p50 >= 0, 'never a negative figure');
});

t.test('RecentTimes: the quantiles are sorted again only when samples came, and at most once an interval', async (t) => {
  // Read by every scrape of /metrics, which any local user can make as often as they like: each
  // summary sorted a copy of the 4,096 samples (~0.3 ms), twice a DeliveryStats, seven of them a scrape.
  let now = 0;
  const r = new RecentTimes(4096, { minIntervalMs: 1000, now: () => now });
  for (let i = 0; i < 5000; i++) r.add(i % 100);
  const first = r.summary();
  t.equal(r.sorts, 1);
  for (let i = 0; i < 1000; i++) t.same(r.summary(), first, 'no new sample: the same figures');
  t.equal(r.sorts, 1, 'no new sample: not sorted again, however often asked');
  for (let i = 0; i < 1000; i++) {
    r.add(500); // samples keep coming
    r.summary();
    now += 0.5;
  }
  t.equal(r.sorts, 1, 'samples coming, within the interval: not sorted again');
  t.equal(r.summary().count, 6000, 'the count is the current one');
  t.equal(r.summary().max, 500, 'and so is the largest');
  now += 1000;
  const later = r.summary();
  t.equal(r.sorts, 2, 'an interval later: sorted again');
  t.ok(later.p99 === 500 && later.p50 < 500, `with the new samples (${JSON.stringify(later)})`);
  const fresh = new RecentTimes(10, { minIntervalMs: 1000, now: () => now });
  t.equal(fresh.summary().p50, 0);
  fresh.add(7);
  t.equal(fresh.summary().p50, 7, 'the first sample is shown at once, whatever the interval');
});

t.test('SpoolAges: the age of the oldest message not acknowledged, from coarse marks', async (t) => {
  const a = new SpoolAges(1000, 4, 100);
  t.equal(a.ageMs(1, 1500), 500, 'a seq older than every mark (an earlier run\'s): from the start');
  a.note(10, 2000);
  a.note(11, 2050); // within 100 ms of the mark: counted from it
  a.note(20, 2200);
  t.equal(a.ageMs(10, 3000), 1000);
  t.equal(a.ageMs(11, 3000), 1000, 'never younger than it is');
  t.equal(a.ageMs(20, 3000), 800);
  t.equal(a.ageMs(25, 3000), 800, 'between marks: from the one before');
  const b = new SpoolAges(0, 2, 100);
  b.note(10, 2000);
  b.note(20, 2200);
  b.note(30, 2400); // past the bound of 2 marks: the last one kept stands for it
  t.equal(b.ageMs(30, 3000), 800, 'bounded: counted from the last mark kept (older, never younger)');
});

t.test('CaptureTimes: a published seq finds its capture time; the older ones are dropped; bounded', async (t) => {
  const c = new CaptureTimes(4);
  c.note(3, 30);
  c.note(5, 50);
  c.note(9, 90);
  t.equal(c.waiting, 3);
  t.ok(Number.isNaN(c.take(2)), 'a seq noted without a capture time (a lifecycle event, an alert) has none');
  t.equal(c.take(5), 50, 'seq 5: its time; seq 3 before it was shed or resent: dropped');
  t.equal(c.waiting, 1);
  t.ok(Number.isNaN(c.take(5)), 'a resend of seq 5 is not timed again');
  c.note(8, 80); // out of order (cannot happen: seqs are handed out in order) → ignored
  t.equal(c.waiting, 1);
  for (const s of [10, 11, 12, 13, 14]) c.note(s, s * 10); // 9 and 10 .. 14: past the bound, the oldest go
  t.equal(c.waiting, 4);
  t.ok(Number.isNaN(c.take(9)), 'the oldest was forgotten');
  t.equal(c.take(12), 120);
  t.equal(c.take(14), 140);
  t.equal(c.waiting, 0);
});

t.test('monotonicMs reads the clock of the kernel\'s capture times (CLOCK_MONOTONIC, as process.hrtime)', async (t) => {
  const a = Number(process.hrtime.bigint()) / 1e6;
  const m = monotonicMs();
  const b = Number(process.hrtime.bigint()) / 1e6;
  t.ok(m >= a - 1 && m <= b + 1, `${a} ≤ ${m} ≤ ${b} (within the rounding of performance.now)`);
});

t.test('the pipeline tells its sink the capture time of the earliest record of each batch', async (t) => {
  const flushed: number[] = [];
  const decoder = { push: () => [] } as never;
  const state = { apply: () => [] } as never;
  const p = new Pipeline(decoder, state, { event: () => {}, flush: (ms) => flushed.push(ms) });
  const rec = (tsNs: bigint) => ({ tsNs }) as unknown as CaptureRecord;
  p.push([rec(5_000_000n), rec(3_000_000n), rec(9_000_000n)]); // not first: the earliest is looked for
  p.push([]);
  t.equal(flushed[0], 3, 'ms of the earliest record');
  t.ok(Number.isNaN(flushed[1]), 'an empty batch: none');
});
