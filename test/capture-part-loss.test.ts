// Records lost before the decoder are reported and followed by a resynchronisation (SPEC §5), wherever
// they were lost: in the perf ring (`lost`), in the shim's queue or reorder heap (`queue_drops`: the
// controller did not take them in time), or in the kernel before a record was made (`scratch_failures`,
// `inflight_full`). The capture part watched `lost` only: a dropped disconnect-agents reply left its
// agents' statuses wrong until something else asked wazuh-db again. Here the part runs over a capture
// whose counters the test raises (a real overflow of the shim's 64 MiB queue is test/capture-loss's
// stall made much longer); capture-loss.test.ts has the perf ring overflow for real.
import t from 'tap';
import { Capture } from '../controller/src/capture/capture.js';
import { COUNTER_NAMES, type CaptureCounters } from '../controller/src/capture/record-layout.js';
import { capturePart } from '../controller/src/agent/parts/capture.js';
import { LOSS_RESYNC, type Tap } from '../controller/src/agent/tap.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('queue_drops, scratch_failures, inflight_full and truncated rising: records_lost and a resynchronisation, as for lost', async (t) => {
  const counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as CaptureCounters;
  const fake = {
    verifier: null, attached: false,
    start() {}, counters: () => ({ ...counters }), detach() {}, async detachAsync() {}, whenDetached: async () => {}, async close() {},
  };
  const open = Capture.open;
  (Capture as unknown as { open: () => unknown }).open = () => fake;
  t.teardown(() => { (Capture as unknown as { open: typeof open }).open = open; });

  const warned: { fields: Record<string, unknown>; msg: string }[] = [];
  const published: { action: string; details: Record<string, unknown> }[] = [];
  const resyncs: string[] = [];
  const tap = {
    log: { warn: (fields: Record<string, unknown>, msg: string) => warned.push({ fields, msg }), info() {}, debug() {} },
    opts: { home: '/nonexistent', attach: false, captureIntervalMs: 5 },
    publisher: { publishLifecycle: (action: string, details: Record<string, unknown>) => published.push({ action, details }) },
    pipeline: { push() {}, release() {} },
    life: { requestStop() {} },
    mayResyncForLoss: () => true,
    resync: async (why: string) => { resyncs.push(why); },
    capture: null,
  };
  const part = capturePart(tap as unknown as Tap);
  await part.start();
  t.teardown(() => part.stop());

  await sleep(1200);
  t.same(published, [], 'nothing lost: nothing said');

  // truncated: the frames past the kernel's cut of a write never reached the decoder either (review #4).
  for (const [name, rise] of [['queue_drops', 3], ['scratch_failures', 1], ['inflight_full', 2], ['truncated', 1]] as const) {
    const before = published.length;
    counters[name] += rise;
    await waitFor(() => published.length > before, 3000, `records_lost after ${name} rose`);
    t.same(published.slice(before), [{ action: 'records_lost', details: { lost: rise } }], `${name}: records_lost with what was lost`);
    t.match(warned.at(-1), { fields: { [name]: rise } }, `${name}: said`);
    await waitFor(() => resyncs.length === published.length, 3000, `a resynchronisation after ${name} rose`);
    t.equal(resyncs.at(-1), LOSS_RESYNC, 'the loss resynchronisation');
  }

  // Several at once: one report of their sum, one resynchronisation.
  const before = published.length;
  counters.lost += 5;
  counters.queue_drops += 7;
  await waitFor(() => published.length > before, 3000, 'records_lost after lost and queue_drops rose');
  await sleep(300);
  t.same(published.slice(before), [{ action: 'records_lost', details: { lost: 12 } }], 'one report, their sum');
  t.equal(resyncs.length, published.length, 'one resynchronisation');

  // output_failures: every sample the ring refused is in `lost` too; no report of its own.
  counters.output_failures += 4;
  await sleep(1300);
  t.equal(published.length, before + 1, 'output_failures alone: not counted twice');
});
