// A full disk under the spool and the status journal (issue 14, item 2), on a real 1 MB tmpfs:
// no write ever throws; the spool stops accepting (keepalives first, refusals counted, alerts
// kept by the caller), keeps draining, saves its ack cursor when it can, and accepts again as
// soon as there is room, without a restart; a reopen after a fill finds every accepted record.
import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { Spool, type MessageKind, type SpoolMessage } from '../controller/src/publish/spool.js';
import { Delivery, ioCause } from '../controller/src/publish/delivery.js';
import { metricsRegistry } from '../controller/src/metrics.js';
import { deliveryMetrics } from '../controller/src/agent/parts/metrics.js';
import { parseJournal, StatusJournal } from '../controller/src/state/sources/status-journal.js';
import { freePort, startNatsServer } from './helpers/nats-server.js';
import { readStream, testEvent } from './helpers/delivery-events.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: process.env.DEBUG_DELIVERY ? 'debug' : 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (i: number, kind: MessageKind, pad = 300): SpoolMessage => ({
  subject: `wazuh.agent.${String(i % 7).padStart(3, '0')}.${kind === 'keepalive' ? 'keepalive' : 'status'}`,
  headers: { 'Wazuh-Agent-Id': String(i % 7).padStart(3, '0') },
  body: JSON.stringify({ i, pad: 'x'.repeat(pad) }), kind, eventId: `ev-${i}`,
});
const ids = (es: { eventId: string }[]) => es.map((e) => e.eventId);

/** A turn of the event loop, as between two of the tap's batches: the spool's background syncs end there. */
const turn = () => new Promise((r) => setImmediate(r));

/**
 * Append rounds of 3 keepalives and a status change until `stop()`, then `extra` rounds more, a turn
 * of the event loop each (a rotated segment is closed once its sync, on libuv's threads, is done); what
 * was accepted, in order, and the first round each kind was refused in.
 */
async function load(s: Spool, stop: () => boolean, start = 0, extra = 0) {
  const accepted: SpoolMessage[] = [];
  const firstShed: Partial<Record<MessageKind, number>> = {};
  let i = start;
  let left = extra;
  for (let r = 0; r < 5000 && (!stop() || left-- > 0); r++) {
    const batch = [msg(i++, 'keepalive'), msg(i++, 'keepalive'), msg(i++, 'status'), msg(i++, 'keepalive')];
    const seqs = s.append(batch);
    seqs.forEach((q, k) => {
      if (q) accepted.push(batch[k]);
      else firstShed[batch[k].kind] ??= r;
    });
    await turn();
  }
  return { accepted, next: i, firstShed };
}

const freeOn = (dir: string) => { const st = statfsSync(dir); return st.bavail * st.bsize; };

t.test('the spool fills the disk: it stops short of it (a reserve stays free), keepalives first, refusals counted; a reopen finds every record', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const disk: boolean[] = [];
  const s = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 64 * 1024, onDisk: (full) => disk.push(full) });
  t.teardown(() => s.close());
  const { accepted, next, firstShed } = await load(s, () => s.stats().diskFull, 0, 50);
  t.same(disk, [true], 'said once');
  t.ok(firstShed.keepalive !== undefined && firstShed.status === undefined, 'keepalives refused, status changes still accepted');
  // Status changes only, until one is refused: unsent keepalives are compacted out of the spool first.
  let i = next;
  while (i < next + 5000 && s.append([msg(i, 'status')])[0] > 0) {
    accepted.push(msg(i++, 'status'));
    await turn();
  }
  i++;
  const st = s.stats();
  t.ok(st.compactions > 0, `keepalives compacted out to make room (${st.compactions} compactions)`);
  t.ok(st.shed.status === 1, 'then a status change refused, counted');
  t.ok(st.boundBytes < 1 << 20, `the bound in force is what the disk holds (${st.boundBytes})`);
  t.equal(st.writeErrors, 0, 'no write failed: the spool stopped before the disk did');
  t.ok(freeOn(mnt) >= 60 * 1024, `a reserve stays free on the disk (${freeOn(mnt)} bytes) for the cursor and the other small files`);
  t.ok(accepted.length > 1000, `${accepted.length} records accepted before the disk was full`);

  // Full: everything refused, alerts deferred (their caller keeps them).
  const before = s.stats();
  let got: number[] = [];
  t.doesNotThrow(() => { got = s.append([msg(i, 'keepalive'), msg(i + 1, 'status'), msg(i + 2, 'tap')]); });
  t.same(got, [0, 0, 0], 'refused');
  t.doesNotThrow(() => { got = s.append([msg(i + 3, 'alert')], true); });
  t.same(got, [0], 'an alert refused too');
  const after = s.stats();
  t.same(after.shed, { ...before.shed, keepalive: before.shed.keepalive + 1, status: before.shed.status + 1, tap: before.shed.tap + 1 }, 'shed, counted by kind');
  t.equal(after.deferred, before.deferred + 1, 'the alert counted as deferred');

  // A reopen (as after a crash: the first one still open) finds every record the spool holds:
  // the accepted ones, less the keepalives compacted out (counted as shed), in order.
  const s2 = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 64 * 1024 });
  t.equal(s2.stats().torn, 0, 'no torn record');
  t.equal(s2.stats().records, after.records, 'every record');
  const back = ids(s2.read(1e6));
  const statuses = accepted.filter((m) => m.kind === 'status').map((m) => m.eventId);
  t.same(back.filter((id) => statuses.includes(id)), statuses, 'every accepted status change, in order');
  const order = new Map(ids(accepted).map((id, k) => [id, k]));
  t.ok(back.every((id, k) => order.has(id) && (k === 0 || order.get(id)! > order.get(back[k - 1])!)), 'nothing else, in the order accepted');
  t.doesNotThrow(() => s2.close());

  // Delivering the oldest records frees room: a status change gets it, a keepalive not yet (keepalives
  // only below 90 % of the bound in force).
  for (const e of s.read(150)) s.ack(e.seq);
  await turn();
  t.same(s.append([msg(i + 4, 'keepalive')]), [0], 'a keepalive still refused');
  t.ok(s.append([msg(i + 5, 'status')])[0] > 0, 'a status change accepted');
  t.doesNotThrow(() => s.close(), 'close on a full disk does not throw');
});

t.test('a write that fails all the same (the disk filled faster than the spool looked): whole records kept, the torn one cut back, never thrown', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const errors: string[] = [];
  // A bound the disk holds: the spool looks at the free space once a second only.
  const s = Spool.open({ dir, maxBytes: 600 * 1024, segmentBytes: 256 * 1024, retryMs: 200, onIoError: (e, op) => errors.push(`${op}:${e.code}`) });
  t.teardown(() => s.close());
  t.ok(s.append([msg(0, 'status')])[0] > 0, 'the disk looked at: room');
  const free = fillDisk(mnt); // somebody else fills it, faster than the spool looks again
  const batch = Array.from({ length: 400 }, (_, i) => msg(1 + i, i % 2 ? 'keepalive' : 'status'));
  let got: number[] = [];
  t.doesNotThrow(() => { got = s.append(batch); });
  t.same(errors, ['append:ENOSPC'], 'the failure reported');
  const kept = got.filter((q) => q > 0).length;
  t.same(got, [...got.slice(0, kept), ...new Array(400 - kept).fill(0)], `a prefix of the batch kept (${kept}), the rest refused`);
  t.ok(s.stats().diskFull && s.stats().writeErrors === 1);
  t.same(s.append([msg(500, 'status')]), [0], 'then refused without another failing write');
  t.same(errors, ['append:ENOSPC'], 'no other failure');
  const s2 = Spool.open({ dir, maxBytes: 600 * 1024 });
  t.equal(s2.stats().torn, 0, 'the torn record was cut back: none at reopen');
  t.same(ids(s2.read(1e6)), ['ev-0', ...ids(batch.slice(0, kept))], 'every accepted record');
  s2.close();
  free();
  await sleep(300);
  t.ok(s.append([msg(501, 'status')])[0] > 0, 'accepted again once the disk has room, no restart');
});

t.test('the disk\'s faults in the delivery statistics and on /metrics: a failed write, the disk full, the bound in force; cleared without a restart', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const port = await freePort(); // NATS away: what is accepted stays in the spool
  const d = new Delivery({
    servers: [`nats://127.0.0.1:${port}`], mode: 'core', log, reconnectDelayMs: 200,
    spool: { dir, maxBytes: 600 * 1024, segmentBytes: 256 * 1024, retryMs: 200 },
  });
  d.start();
  t.teardown(() => d.close(200));
  // The tap's /metrics, fed from these statistics as the metrics part feeds it.
  const scrape = () => metricsRegistry({
    capture: () => ({}), decoder: () => ({ frames: 0, malformed: 0 }), events: () => ({}),
    delivery: () => deliveryMetrics(d.stats()), natsConnected: () => d.connected, attached: () => false, agents: () => ({}),
  }).metrics();
  const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  const spoolMetrics = async () => {
    const text = await scrape();
    return {
      bound: metric(text, 'wazuh_nats_tap_spool_bound_bytes'), full: metric(text, 'wazuh_nats_tap_spool_disk_full'),
      write: metric(text, 'wazuh_nats_tap_spool_errors_total{op="write"}'), read: metric(text, 'wazuh_nats_tap_spool_errors_total{op="read"}'),
    };
  };
  t.ok(d.enqueue(msg(0, 'status')), 'the disk looked at: room');
  t.match(d.stats(), { writeErrors: 0, readErrors: 0, diskFull: false, spoolBoundBytes: 600 * 1024 });
  t.same(await spoolMetrics(), { bound: 600 * 1024, full: 0, write: 0, read: 0 }, 'healthy on /metrics');

  const free = fillDisk(mnt); // somebody else fills it, faster than the spool looks again
  d.enqueueMany(Array.from({ length: 400 }, (_, i) => msg(1 + i, 'status')));
  const st = d.stats();
  t.match(st, { writeErrors: 1, diskFull: true }, 'the failed write and the full disk in the statistics');
  t.ok(st.spoolBoundBytes < 600 * 1024 && st.spoolBoundBytes === st.spoolBytes, `the bound in force is what the spool holds (${st.spoolBoundBytes})`);
  t.same(await spoolMetrics(), { bound: st.spoolBoundBytes, full: 1, write: 1, read: 0 }, 'and on /metrics');

  free();
  await sleep(300);
  t.ok(d.enqueue(msg(500, 'status')), 'accepted again once the disk has room');
  t.match(d.stats(), { writeErrors: 1, diskFull: false, spoolBoundBytes: 600 * 1024 }, 'not full any more; the failure stays counted');
  t.same(await spoolMetrics(), { bound: 600 * 1024, full: 0, write: 1, read: 0 });
});

t.test('draining a full spool frees room that is used at once; the ack cursor is saved when it can be, never thrown', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const s = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 256 * 1024, ackPersistMs: 50 });
  t.teardown(() => s.close());
  const { accepted, next } = await load(s, () => s.stats().diskFull);
  const cursor = () => (existsSync(join(dir, 'ack')) ? readFileSync(join(dir, 'ack'), 'utf8').trim() : '');
  const free = fillDisk(mnt); // the reserve taken by somebody else: not a byte left, not even for the ack cursor
  // Acknowledge a few records of the first segment (not deleted): the cursor cannot be saved.
  const segments = s.stats().segments;
  const some = s.read(10);
  for (const e of some) s.ack(e.seq);
  t.equal(s.stats().segments, segments, 'no segment deleted');
  await sleep(300); // several ack timer ticks: each fails, none throws
  t.ok(s.stats().writeErrors > 0, 'saving the cursor failed, counted');
  t.notOk(existsSync(join(dir, 'ack.tmp')), 'no half-written ack.tmp left');
  t.not(cursor(), String(some[9].seq), 'not saved yet');
  free();
  await waitFor(() => cursor() === String(some[9].seq), 2000, 'the cursor saved once there is room');

  // Full again, then drain half: deleted segments are room the spool uses at once (no restart).
  const refill = fillDisk(mnt, 'filler2');
  t.same(s.append([msg(next, 'status')]), [0], 'full again');
  for (const e of s.read(Math.floor(accepted.length / 2))) s.ack(e.seq);
  const r = s.append([msg(next + 1, 'status'), msg(next + 2, 'status')]);
  t.ok(r.every((q) => q > 0), 'accepted again while the disk is otherwise full');
  refill();
});

t.test('room returns while statuses keep coming: the bound a failed write lowered lifts all the same (chaos seed 349)', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const s = Spool.open({ dir, maxBytes: 600 * 1024, segmentBytes: 256 * 1024, retryMs: 200 });
  t.teardown(() => s.close());
  t.ok(s.append([msg(0, 'status')])[0] > 0, 'room at first');
  const free = fillDisk(mnt);
  s.append(Array.from({ length: 400 }, (_, i) => msg(1 + i, 'status'))); // a write fails: the bound drops to what the spool holds
  t.equal(s.stats().writeErrors, 1, 'the write failed');
  // A status every 50 ms, as a manager's changes come: each one that does not fit tries a compaction,
  // which reads the disk. Those readings kept the spool from ever taking its own look, the only one
  // that lifted the bound: a tap refused every event for good once the disk had been full.
  let i = 1000;
  const until = async (ms: number) => {
    for (const end = performance.now() + ms; performance.now() < end;) {
      if (s.append([msg(i++, 'status')])[0] > 0) return true;
      await sleep(50);
    }
    return false;
  };
  t.notOk(await until(1000), 'refused while the disk is full');
  free();
  t.ok(await until(3000), 'accepted again once the disk has room, though refused statuses kept coming');
  t.equal(s.stats().boundBytes, 600 * 1024, 'the whole bound back');
});

t.test('room returns from elsewhere: accepted again without a restart; the whole bound once the disk holds it', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const free = fillDisk(mnt); // somebody else filled the disk
  const disk: boolean[] = [];
  const s = Spool.open({ dir, maxBytes: 600 * 1024, segmentBytes: 64 * 1024, onDisk: (full) => disk.push(full) });
  t.teardown(() => s.close());
  t.same(s.append([msg(1, 'status')]), [0], 'refused: no room');
  t.ok(s.stats().diskFull);
  free();
  await sleep(300);
  t.ok(s.append([msg(2, 'status')])[0] > 0, 'accepted once the disk has room');
  t.notOk(s.stats().diskFull, 'the whole bound back');
  t.equal(s.stats().boundBytes, 600 * 1024);
  t.same(disk, [true, false], 'said when full, and when not any more');
  // And the spool bound applies again as usual: keepalives shed at 90 %, the rest fits.
  const { accepted } = await load(s, () => s.stats().shed.keepalive > 0, 10);
  t.ok(accepted.length > 0);
  t.notOk(s.stats().diskFull, 'the spool\'s own bound, not the disk');
  t.equal(s.stats().writeErrors, 0, 'no write failed');
});

t.test('the status journal on a full disk: never throws, says it once, writes what waited when room returns', async (t) => {
  const mnt = mountTmpfs(t);
  const path = join(mnt, 'agents.status');
  const errors: string[] = [];
  let recovered = 0;
  // Exactly one page of journal lines (334 × 12 + 8 × 11 bytes), so that any append needs a new one.
  writeFileSync(path, `${'1 pending 0\n'.repeat(334)}${'1 active 0\n'.repeat(8)}`);
  const free = fillDisk(mnt);
  const j = new StatusJournal(path, { onError: (e, op) => errors.push(`${op}:${(e as NodeJS.ErrnoException).code}`), onRecovered: () => recovered++, retryMs: 100 });
  let known = new Map();
  t.doesNotThrow(() => { known = j.open(); }, 'open (a compaction) on a full disk');
  t.same([...known.keys()], [1], 'the old file is read');
  t.same(errors, ['compact:ENOSPC']);
  const statuses = ['pending', 'active', 'disconnected'] as const;
  t.doesNotThrow(() => {
    for (let i = 0; i < 300; i++) j.recordMany([{ agentId: String(1 + (i % 50)).padStart(3, '0'), status: statuses[i % 3], statusCode: i % 3 }]);
  }, '300 writes on a full disk');
  t.equal(errors.length, 1, 'reported once (rate-limited), not 300 times');
  t.ok(j.writeFailures > 1, 'but counted');
  t.equal(parseJournal(readFileSync(path, 'utf8')).get(1)?.status, 'active', 'no torn line: the old file still parses');
  free();
  await sleep(150);
  j.recordMany([{ agentId: '099', status: 'active', statusCode: 0 }]);
  t.equal(recovered, 1, 'writing again, said');
  const want = new Map<number, string>();
  for (let i = 0; i < 300; i++) want.set(1 + (i % 50), statuses[i % 3]);
  want.set(99, 'active');
  const got = parseJournal(readFileSync(path, 'utf8'));
  t.same([...want].map(([id, st]) => [id, got.get(id)?.status]), [...want], 'the latest status of every agent is in the file');
  t.doesNotThrow(() => j.close(new Map([[1, { status: 'active', status_code: 0 }]])));
});

t.test('the status journal: what a full disk held back is written once there is room, without waiting for a next status', async (t) => {
  // Waiting for the next status made a stale journal: the events delivered meanwhile, then a crash,
  // and the next start compared wazuh-db with statuses older than the consumers had (chaos-e2e).
  const mnt = mountTmpfs(t);
  /** A journal on the full disk, its file one full page (any append needs another; the compaction at open fails). */
  const onFullDisk = (name: string) => {
    const path = join(mnt, name);
    writeFileSync(path, `${'1 pending 0\n'.repeat(334)}${'1 active 0\n'.repeat(8)}`); // 4096 bytes of journal lines
    const free = fillDisk(mnt, `filler-${name}`);
    const j = new StatusJournal(path, { retryMs: 100 });
    j.open();
    t.teardown(() => j.close());
    return { j, free, read: () => parseJournal(readFileSync(path, 'utf8')) };
  };
  const a = onFullDisk('a.status');
  a.j.recordMany([{ agentId: '001', status: 'disconnected', statusCode: 3 }]);
  t.ok(a.j.writeFailures > 0, 'the write failed');
  a.free();
  await sleep(400);
  t.equal(a.read().get(1)?.status, 'disconnected', 'written by the retry alone');
  t.equal(a.j.writeFailures, 0, 'no failure left');

  // A status right after room returns is written at once, with what waited: not a retry period later.
  const b = onFullDisk('b.status');
  b.j.recordMany([{ agentId: '002', status: 'active', statusCode: 0 }]);
  t.ok(b.j.writeFailures > 0, 'the write failed');
  b.free();
  b.j.recordMany([{ agentId: '003', status: 'pending', statusCode: 0 }]);
  t.same([b.read().get(2)?.status, b.read().get(3)?.status], ['active', 'pending'], 'both written by the next status');
});

t.test('the status journal keeps room of its own: lines after the disk filled to the last byte are still written', async (t) => {
  // A line follows a status the spool accepted a moment before (it may still append into its
  // segment's last block): the journal must not fall behind it for want of a block of its own.
  const mnt = mountTmpfs(t);
  const path = join(mnt, 'agents.status');
  const j = new StatusJournal(path, { retryMs: 100 });
  j.open();
  t.teardown(() => j.close());
  t.ok(statSync(path).blocks * 512 >= 64 * 1024, `64 KiB kept beyond its end (${statSync(path).blocks * 512} bytes allocated, size ${statSync(path).size})`);
  const free = fillDisk(mnt);
  t.teardown(free);
  // More than a page of lines: a block the file did not have before the disk filled.
  const lines = Array.from({ length: 300 }, (_, i) => ({ agentId: String(i + 1), status: 'active' as const, statusCode: 0 }));
  j.recordMany(lines);
  t.equal(j.writeFailures, 0, `${statSync(path).size} bytes written on a disk with no byte free`);
  t.equal(parseJournal(readFileSync(path, 'utf8')).size, 300, 'every line there');
});

t.test('Delivery on a full disk, NATS down then up: nothing thrown, shed counted, everything accepted is delivered once, accepting again after the drain', async (t) => {
  const mnt = mountTmpfs(t);
  const dir = join(mnt, 'spool');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`; // nobody there yet
  const open = () => new Delivery({
    servers: [url], mode: 'jetstream', log, spool: { dir, maxBytes: 16 << 20, segmentBytes: 64 * 1024 },
    reconnectDelayMs: 200, maxReconnects: 2, window: 64, ackTimeoutMs: 2000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true },
  });
  const d = open();
  d.start();
  const accepted: string[] = [];
  const kinds = new Map<string, string>();
  let deferred = 0;
  let i = 0;
  const offer = (dl: Delivery) => {
    const batch = [testEvent(i++, 20, 'keepalive'), testEvent(i++, 20, 'keepalive'), testEvent(i++, 20, 'status'), testEvent(i++, 20, 'tap')];
    for (const m of batch) kinds.set(m.eventId, m.kind);
    dl.enqueueMany(batch).forEach((ok, k) => { if (ok) accepted.push(batch[k].eventId); });
    const alert = testEvent(i++, 20, 'alert');
    kinds.set(alert.eventId, 'alert');
    if (dl.enqueueMany([alert], true)[0]) accepted.push(alert.eventId);
    else deferred++;
  };
  const t0 = Date.now();
  for (let r = 0; r < 3000 && !d.stats().diskFull; r++) offer(d);
  for (let r = 0; r < 200; r++) offer(d); // more load on the full disk
  const st = d.stats();
  t.ok(st.diskFull, 'the disk filled');
  t.ok(st.shed.keepalive > 0 && st.shed.status > 0 && st.shed.tap > 0, `shed, counted (${JSON.stringify(st.shed)})`);
  t.ok(st.deferred > 0 && st.deferred === deferred, 'alerts refused, deferred');
  t.equal(st.spooled, accepted.length, 'spooled = accepted');
  const held = st.spoolRecords; // accepted, less the keepalives compacted out (shed)
  t.comment(`loaded in ${Date.now() - t0} ms`);
  await d.close(200);

  // Restarted with NATS still down: the spool opens as it was left.
  const d2 = open();
  t.teardown(() => d2.close(1000));
  t.equal(d2.stats().spoolRecords, held, 'reopened: every record');
  t.equal(d2.stats().spoolTorn, 0);
  d2.start();
  const nats = await startNatsServer({ port, jetstream: true });
  t.teardown(() => nats.stop());
  const t1 = Date.now();
  t.ok(await d2.flush(60_000), 'drained once NATS is there');
  t.comment(`drained in ${Date.now() - t1} ms`);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const stored = (await readStream(nc, 'WAZUH')).map((m) => m.event_id);
  t.equal(new Set(stored).size, stored.length, 'no duplicate');
  t.equal(stored.length, held, 'every record of the spool stored');
  const ok = new Set(accepted);
  t.ok(stored.every((id) => ok.has(id)), 'nothing that was not accepted');
  const wanted = accepted.filter((id) => !/keepalive/.test(kinds.get(id) ?? ''));
  const got = new Set(stored);
  t.same(wanted.filter((id) => !got.has(id)), [], 'every accepted status change, alert and tap event stored');

  // Accepting again after the drain, without a restart.
  const more = [testEvent(i++, 20, 'status'), testEvent(i++, 20, 'keepalive')];
  t.same(d2.enqueueMany(more), [true, true], 'accepted again');
  t.ok(await d2.flush(10_000), 'and delivered');
  t.ok(readdirSync(dir).every((f) => f !== 'ack.tmp'), 'no ack.tmp left behind');
});

t.test('a spool failure is said with its cause: out of descriptors is not "disk full"', async (t) => {
  // The ack cursor's save failing with EMFILE was logged "(disk full?)", sending an administrator to
  // the wrong place. This process's descriptors are used up around one synchronous save (nothing else
  // runs meanwhile), then given back.
  const { closeSync, openSync } = await import('node:fs');
  const lines: { msg: string; err?: string }[] = [];
  const capture = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  const dir = join(mountTmpfs(t), 'spool');
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  const port = await freePort();
  const d = new Delivery({ servers: [`nats://127.0.0.1:${port}`], mode: 'core', log: capture, spool: s });
  t.teardown(() => d.close(200));
  s.append([msg(1, 'status')]);
  for (const e of s.read(10)) s.ack(e.seq);
  const held: number[] = [];
  let code: string | null;
  try {
    for (let i = 0; i < 1_000_000; i++) held.push(openSync('/dev/null', 'r'));
  } catch { /* EMFILE: every descriptor is in use */ }
  try {
    code = s.persistAck();
  } finally {
    for (const fd of held) closeSync(fd);
  }
  t.ok(held.length > 0, `descriptors used up (${held.length})`);
  t.equal(code, 'EMFILE', 'the save failed for want of a descriptor');
  const said = lines.filter((l) => /ack cursor/.test(l.msg));
  t.equal(said.length, 1, 'said');
  t.match(said[0], { err: 'EMFILE', msg: /\(out of file descriptors\)/ });
  t.notMatch(said[0].msg, /disk full/, 'not blamed on the disk');
  t.equal(s.persistAck(), null, 'saved once descriptors are back');
  // The words for each cause (the disk's own refusals are said by spoolDisk, tested above).
  t.same(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'EROFS', 'EIO', 'EXDEV', undefined].map(ioCause),
    ['disk full', 'disk full', 'out of file descriptors', 'out of file descriptors', 'read-only file system', 'I/O error', 'error EXDEV', 'unknown error']);
});
