// The event loop takes records itself while they flow (capture.ts rounds); when it is held up — a long
// GC, a burst of spool work, here a busy loop of 800 ms — the shim's reader thread empties the rings as
// they fill (the perf buffer's watermark) into its queue. Real eBPF and the simulated manager: a pause
// costs latency, not records; then the loop rests, and the next record wakes it.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');

t.test('a controller held up 800 ms while 20,000 frames come: nothing lost, all in order; then it rests and wakes', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-stall-'));
  const sim = new SimManager({ binDir, home });
  // The default rings (1 MiB a CPU) hold ~8,000 records each: 800 ms of this load is ~10 times that.
  const capture = Capture.open({ ...artefacts(), home });
  const records: CaptureRecord[] = [];
  let held = false;
  capture.start((b) => {
    records.push(...b);
    if (!held && records.length > 100) {
      held = true;
      const until = Date.now() + 800;
      while (Date.now() < until) { /* the event loop is held up */ }
    }
  }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); rmSync(home, { recursive: true, force: true }); });
  await sim.start();
  const remoted = sim.pids()['wazuh-remoted'];

  const before = capture.batches;
  const r = await sim.remoted!.proc.command('load 2000 25000 20000 5000 4 0 1 -', 40_000);
  const sent = Number(/requests=(\d+)/.exec(r)![1]);
  // The load's requests (remoted's own at start-up are not counted): its pairs' select-agent-group and update-agent-data.
  const isLoad = (x: CaptureRecord) => /global (select-agent-group|update-agent-data)/.test(Buffer.from(x.data.subarray(0, 64)).toString('latin1'));
  const mine = () => records.filter((x) => x.tgid === remoted && x.direction === 'request' && isLoad(x)).length;
  await waitFor(() => mine() >= sent, 15_000, `all ${sent} requests`).catch((e) => { t.comment(JSON.stringify({ got: mine(), r, c: capture.counters() })); throw e; });
  t.ok(held, 'the event loop was held up while the load ran');
  t.equal(mine(), sent, 'every request captured');
  const c = capture.counters();
  t.equal(c.lost, 0, 'no record lost in the kernel');
  t.equal(c.queue_drops, 0, 'none dropped by the shim');
  const ts = records.map((x) => x.tsNs);
  t.ok(ts.every((v, i) => i === 0 || v >= ts[i - 1]), 'in the order the writes began');
  t.ok(capture.batches > before, 'taken in batches');

  // Quiet: the loop rests. The next record rings the pipe and is taken.
  await new Promise((res) => setTimeout(res, 300));
  const n = records.length;
  await sim.startup({ id: 3, name: 'late', ip: '10.0.0.3' });
  await waitFor(() => records.length > n, 3000, 'the record after the rest');
  t.pass('woken after resting');
});

t.test('a backlog is taken in slices: the event loop runs its timers between them', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-slices-'));
  const sim = new SimManager({ binDir, home });
  const capture = Capture.open({ ...artefacts(), home });
  // A consumer slower than the load (50 µs a record against 20,000 frames/s of two or more records):
  // the queue does not empty until the load is over, so the records are one long backlog.
  let records = 0;
  let batches = 0;
  capture.start((b) => {
    records += b.length;
    batches++;
    const until = performance.now() + 0.05 * b.length;
    while (performance.now() < until) { /* the consumer's work */ }
  }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); rmSync(home, { recursive: true, force: true }); });
  await sim.start();

  // A timer every 10 ms: the ticks that came between the backlog's first batch and its last.
  const ticksAt: number[] = [];
  const timer = setInterval(() => ticksAt.push(batches), 10);
  t.teardown(() => clearInterval(timer));
  const start = batches;
  const r = await sim.remoted!.proc.command('load 2000 20000 20000 5000 2 0 1 -', 40_000);
  const sent = Number(/requests=(\d+)/.exec(r)![1]);
  await waitFor(() => records >= sent, 30_000, `${sent} requests taken`);
  // Quiet for a while: the last batch is in.
  let last = -1;
  await waitFor(() => { const same = last === batches; last = batches; return same; }, 10_000, 'the backlog taken');
  const end = batches;
  const during = ticksAt.filter((b) => b > start + 1 && b < end - 1).length;
  t.ok(end - start > 10, `the backlog came in batches (${end - start})`);
  t.ok(during >= 20, `timers ran while the backlog was taken (${during} ticks between its batches)`);
});
