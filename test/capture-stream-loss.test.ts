// A record lost on its way to the controller leaves a mark on its stream: the stream's next record
// carries F_GAP (and where its first frame starts), so the reassembler drops the partial frame the lost
// record belonged to instead of appending the next writes to it. Without it, the second half of a split
// frame lost took the requests after it into a bogus frame (review #3): lost in the kernel (its perf ring
// refused the sample), or in the shim (its queue full: the controller late).
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { StreamReassembler } from '../controller/src/decode/reassembler.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function frame(text: string): Buffer {
  const b = Buffer.alloc(4 + text.length);
  b.writeUInt32LE(text.length, 0);
  b.write(text, 4, 'latin1');
  return b;
}
const keepalive = (id: number, pad = 0) =>
  `global update-keepalive {"id":${id},"connection_status":"active","x":"${'A'.repeat(pad)}"}`;

/** The request frames of remoted's long-lived connection, as the reassembler makes them of its records. */
function requests(records: CaptureRecord[], pid: number, conn: number) {
  const reasm = new StreamReassembler();
  return records.filter((r) => r.tgid === pid && r.direction === 'request' && r.localIno === conn)
    .flatMap((r) => reasm.push(r)).map((f) => f.payload);
}

t.test('lost in the kernel: a perf ring too small for the write', async (t) => {
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-slost-')) });
  // One page a CPU: a record of more than ~4 KiB can never be written into it.
  const capture = Capture.open({ ...artefacts(), home: sim.home, perfPages: 1 });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const pid = sim.pids()['wazuh-remoted'];
  const split = frame(keepalive(5, 6000));
  await sim.raw(split.subarray(0, 2000)); // sent: 2,088 bytes of record
  await waitFor(() => records.some((r) => r.tgid === pid && r.syscallBytes === 2000), 3000, 'the first half');
  const failed = capture.counters().output_failures;
  await sim.raw(split.subarray(2000)); // lost: larger than the ring
  t.match(await sim.recv(), /^ok/);
  t.ok(capture.counters().output_failures > failed, 'the second half was refused by the ring');
  const after = keepalive(6);
  t.match(await sim.rawreq(after), /^ok/);
  await waitFor(() => records.some((r) => r.tgid === pid && Buffer.from(r.data).includes('"id":6')), 3000, 'the next request');
  const conn = records.find((r) => r.tgid === pid && r.syscallBytes === 2000)!.localIno;
  const next = records.find((r) => r.tgid === pid && Buffer.from(r.data).includes('"id":6'))!;
  t.ok(next.gap, 'its record says the stream lost bytes');
  t.same(requests(records, pid, conn), [after], 'it decodes; the split frame is dropped');
});

t.test('lost in the shim: its queue full while the controller takes nothing', async (t) => {
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-slost-')) });
  // The queue's bound, lowered for this capture (read at open): a few requests fill it.
  process.env.WDBTAP_QUEUE_LIMIT = String(64 << 10);
  let capture: Capture;
  try {
    capture = Capture.open({ ...artefacts(), home: sim.home });
  } finally {
    delete process.env.WDBTAP_QUEUE_LIMIT;
  }
  const records: CaptureRecord[] = [];
  const take = () => capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  take();
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const pid = sim.pids()['wazuh-remoted'];
  const split = frame(keepalive(5, 6000));
  await sim.raw(split.subarray(0, 2000));
  await waitFor(() => records.some((r) => r.tgid === pid && r.syscallBytes === 2000), 3000, 'the first half');

  // The controller stops taking (a long pause of its event loop); another daemon's big requests fill
  // the shim's queue, moved there by its reader thread.
  await capture.stop();
  // Each filler record is a little smaller than the lost half's: once one is refused, that one is too.
  const filler = await sim.spawnClient('wazuh-authd');
  const small = frame(keepalive(9, 3800));
  for (let i = 0; i < 24; i++) await filler.raw(small);
  await waitFor(() => capture.counters().queue_drops > 0, 3000, 'the queue full');
  let drops = -1;
  await waitFor(() => { const d = drops; drops = capture.counters().queue_drops; return d === drops; }, 3000, 'the filler all in', 300);
  await sim.raw(split.subarray(2000)); // its record finds the queue full
  t.match(await sim.recv(), /^ok/);
  await waitFor(() => capture.counters().queue_drops > drops, 3000, 'the second half dropped');

  take();
  const after = keepalive(6);
  t.match(await sim.rawreq(after), /^ok/);
  await waitFor(() => records.some((r) => r.tgid === pid && Buffer.from(r.data).includes('"id":6')), 3000, 'the next request');
  const conn = records.find((r) => r.tgid === pid && r.syscallBytes === 2000)!.localIno;
  t.notOk(records.some((r) => r.tgid === pid && r.syscallBytes === split.length - 2000), 'the second half was not delivered');
  const next = records.find((r) => r.tgid === pid && Buffer.from(r.data).includes('"id":6'))!;
  t.ok(next.gap, 'the next record of the stream says it lost bytes');
  t.same(requests(records, pid, conn), [after], 'it decodes; the split frame is dropped');
});
