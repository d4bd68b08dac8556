// Writes the kernel does not send whole: past its three chunks of 32 KiB (bpf/wdbtap.h), or past the
// iovecs it follows. What it did capture must reach the controller usable, the cut must be said on the
// record that ends what was sent, and the connection's next writes must decode as before.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { StreamReassembler, type ResetReason } from '../controller/src/decode/reassembler.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');

function frame(text: string): Buffer {
  const b = Buffer.alloc(4 + text.length);
  b.writeUInt32LE(text.length, 0);
  b.write(text, 4, 'latin1');
  return b;
}

t.test('a write longer than the chunks: the frames sent whole are kept, the cut is on the last record', async (t) => {
  // Two 64 KiB frames in one sendto (131,080 bytes): the kernel sends 98,304 of them, the first frame
  // whole. F_TRUNCATED rode on the first chunk: the reassembler threw that frame away, took each later
  // chunk for a gap, and the next write for another (review #8).
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-cut-')) });
  const capture = Capture.open({ ...artefacts(), home: sim.home });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const big = (id: number) => frame(`global update-keepalive {"id":${id},"x":"${'B'.repeat(65536 - 40)}"}`);
  t.equal(big(30).length, 65540);
  await sim.raw(Buffer.concat([big(30), big(31)]));
  await sim.recv();
  await sim.recv();
  const after = 'global get-agent-info 40';
  await sim.rawreq(after);
  const remoted = sim.pids()['wazuh-remoted'];
  const mine = () => records.filter((r) => r.tgid === remoted && r.direction === 'request');
  await waitFor(() => mine().some((r) => Buffer.from(r.data).includes(after)), 5000, 'the request after the cut write');

  const cut = mine().filter((r) => r.syscallBytes === 131_080);
  t.same(cut.map((r) => [r.offset, r.data.length, r.truncated]), [[0, 32768, false], [32768, 32768, false], [65536, 32768, true]],
    'three chunks; the cut said on the last, where the bytes sent end');
  const resets: ResetReason[] = [];
  const reasm = new StreamReassembler({ onReset: (_c, _d, why) => resets.push(why) });
  const frames = [...mine()].sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1)).flatMap((r) => reasm.push(r)).map((f) => f.payload);
  t.ok(frames.some((p) => p.startsWith('global update-keepalive {"id":30,') && p.length === 65536), 'the frame captured whole is kept');
  t.notOk(frames.some((p) => p.includes('"id":31')), 'the cut one is not');
  t.equal(frames.at(-1), after, 'the next request decodes');
  t.equal(reasm.stats().gaps, 0, 'no chunk taken for a gap');
  t.same(resets, ['truncated'], 'one reset, for the cut');
  t.equal(capture.counters().truncated, 1, 'counted');
});

t.test('a writev of more iovecs than the kernel followed: every piece captured, the next request and its reply too', async (t) => {
  // The kernel followed 8 iovecs and dropped the rest without a flag; its framing stopped mid-frame, so
  // the next request was mis-walked and wazuh-db's reply to it dropped as unwanted (review #4).
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-iov-')) });
  const capture = Capture.open({ ...artefacts(), home: sim.home, hooks: ['sendto', 'writev'] });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const client = await sim.spawnClient('wazuh-authd');
  const pid = client.pid!;
  const keepalive = (id: number) => `global update-keepalive {"id":${id},"connection_status":"active","sync_status":"synced"}`;
  const w = frame(keepalive(7));
  await client.proc.command(`rawv 12 ${w.toString('hex')}`);
  t.match(await client.recv(), /^ok/);
  t.match(await client.rawreq(keepalive(8)), /^ok/);
  await waitFor(() => records.some((r) => r.tgid === pid && r.syscall === 'writev'), 5000, 'the writev');
  const conn = records.find((r) => r.tgid === pid && r.syscall === 'writev')!.localIno;
  // That connection's records, both ways (the client's start-up queries went on others).
  const mine = () => records.filter((r) => (r.direction === 'request' ? r.localIno : r.peerIno) === conn);
  await waitFor(() => mine().filter((r) => r.direction === 'reply').length >= 2, 5000, 'both replies');
  const pieces = mine().filter((r) => r.syscall === 'writev');
  t.equal(pieces.length, 12, 'one record per iovec');
  t.same(pieces.map((r) => r.offset), pieces.map((_, i) => pieces.slice(0, i).reduce((n, r) => n + r.data.length, 0)), 'contiguous');
  t.equal(pieces.reduce((n, r) => n + r.data.length, 0), w.length, 'every byte');
  t.notOk(pieces.some((r) => r.truncated), 'nothing cut');
  const reasm = new StreamReassembler();
  const frames = [...mine()].sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1)).flatMap((r) => reasm.push(r)).map((f) => `${f.direction} ${f.payload}`);
  t.same(frames, [`request ${keepalive(7)}`, 'reply ok', `request ${keepalive(8)}`, 'reply ok'], 'both requests and both replies decode');
  t.equal(capture.counters().truncated, 0);
});
