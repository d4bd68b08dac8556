// Spool.afterSync(): when what was written so far is as durable as the fsync policy makes it —
// what the alerts position waits for before it is saved (alerts-position.test.ts). Under 'interval'
// only once a sync started after the call is done (or NATS acknowledged the records); a sync that
// failed leaves its records to NATS's acknowledgement; 'always' and 'never' at once. And 'always'
// syncs a segment an append rotated away from (it wrote there first). The failing and traced syncs
// run in a child (LD_PRELOAD helpers/slow-sync.c).
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool, type SpoolOptions } from '../controller/src/publish/spool.js';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { spawnTsChild } from './helpers/ts-child.js';
import { waitFor } from './helpers/wait.js';
import { onLines } from './helpers/lines.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const msg = (i: number) => ({
  subject: 'wazuh.alert.low', headers: {}, body: JSON.stringify({ i }), kind: 'alert' as const, eventId: `a-${i}`,
});

function open(t: Test, o: Partial<SpoolOptions>): Spool {
  // The spool's timers are unref()ed: something must keep the test's process up while it waits.
  const alive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(alive));
  const dir = mkdtempSync(join(tmpdir(), 'wnt-after-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = Spool.open({ dir: join(dir, 'spool'), maxBytes: 16 << 20, ...o });
  t.teardown(() => s.close());
  return s;
}

/** The child's trace so far ('' before its first line). */
const traced = (trace: string) => (existsSync(trace) ? readFileSync(trace, 'utf8') : '');

/** The promise with a flag that says whether it resolved. */
function watched<T>(p: Promise<T>): { p: Promise<T>; done: () => boolean } {
  let done = false;
  return { p: p.then((v) => { done = true; return v; }), done: () => done };
}

t.test('interval: once a sync started after the call is done; at once with nothing written; `now` starts that sync', async (t) => {
  const t0 = performance.now();
  const s = open(t, { fsync: 'interval', fsyncIntervalMs: 1500 });
  t.equal(await s.afterSync(), true, 'nothing written: at once');
  s.append([msg(1), msg(2)]);
  const w = watched(s.afterSync());
  await sleep(300);
  t.notOk(w.done(), 'written, not synced: waits');
  t.equal(await w.p, true, 'synced');
  t.ok(performance.now() - t0 >= 1500, `by the first periodic sync (${Math.round(performance.now() - t0)} ms after the open)`);
  t.equal(await s.afterSync(), true, 'nothing written since: at once');
  s.append([msg(3)]);
  const c0 = performance.now();
  t.equal(await s.afterSync(true), true, 'now');
  t.ok(performance.now() - c0 < 1000, `its sync started at once, not at the next tick (${Math.round(performance.now() - c0)} ms)`);
});

t.test('interval: records NATS acknowledged need no sync; the close\'s last sync resolves what waits', async (t) => {
  const s = open(t, { fsync: 'interval', fsyncIntervalMs: 60_000 });
  s.append([msg(1), msg(2)]);
  const w = watched(s.afterSync());
  await sleep(100);
  t.notOk(w.done(), 'waits for a sync a minute away');
  for (const e of s.read(10)) s.ack(e.seq);
  t.equal(await w.p, true, 'acknowledged: their copy on disk no longer matters');
  s.append([msg(3)]);
  const v = watched(s.afterSync());
  await sleep(100);
  t.notOk(v.done());
  s.close();
  t.equal(await v.p, true, 'the last sync, started by close()');
});

t.test('always and never: at once', async (t) => {
  for (const fsync of ['always', 'never'] as const) {
    const s = open(t, { fsync, fsyncIntervalMs: 60_000 });
    s.append([msg(1)]);
    const w = watched(s.afterSync());
    await sleep(0);
    t.ok(w.done(), `${fsync}: resolved at once`);
    t.equal(await w.p, true);
  }
});

/** helpers/spool-after-sync-child.ts; fdatasyncs of the segments held while `hold` exists (failed with `hold`.fail), every one traced. */
function child(t: Test, fsync: string, segmentBytes: number, intervalMs: number) {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-after-sync-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'spool');
  const hold = join(tmp, 'hold');
  const trace = join(tmp, 'trace');
  const p = spawnTsChild(join(import.meta.dirname, 'helpers/spool-after-sync-child.ts'), [dir, fsync, String(segmentBytes), String(intervalMs)],
    { env: slowSyncEnv(hold, { match: '/seg-', log: trace }) });
  t.teardown(() => { rmSync(hold, { force: true }); p.kill('SIGKILL'); });
  const out: Record<string, unknown>[] = [];
  let err = '';
  onLines(p.stdout!, (l) => out.push(JSON.parse(l)));
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => { if (p.exitCode !== null) r(); else p.once('exit', () => r()); });
  const send = (cmd: string) => p.stdin!.write(`${cmd}\n`);
  const after = (id: string) => out.find((l) => l.after === id) as { durable: boolean } | undefined;
  return { dir, hold, trace, out, send, after, exited, err: () => err };
}

t.test('interval: a sync that failed leaves its records to NATS\'s acknowledgement — later syncs do not bring them back', async (t) => {
  const c = child(t, 'interval', 1 << 20, 50);
  writeFileSync(c.hold, '');
  writeFileSync(`${c.hold}.fail`, '');
  c.send('append 3');
  c.send('after 1');
  await waitFor(() => existsSync(`${c.hold}.entered`), 10_000, `the segment's sync to start: ${c.err()}`);
  rmSync(c.hold); // that sync fails (EIO); the next ones are the disk's own
  await waitFor(() => traced(c.trace).includes('fdatasync EIO'), 5000, `the sync to fail: ${c.err()}`);
  // A failed sync is a write failure: the spool accepts nothing more until it looked at the disk again (retryMs).
  for (let tries = 0; ; tries++) {
    const n = c.out.filter((l) => l.appended).length;
    c.send('append 1');
    await waitFor(() => c.out.filter((l) => l.appended).length > n, 5000, `the append: ${c.err()}`);
    if ((c.out.filter((l) => l.appended).at(-1)!.appended as number[])[0] > 0) break;
    if (tries > 50) throw new Error('the spool refused for good');
    await sleep(100);
  }
  c.send('after 2');
  await waitFor(() => /fdatasync 0 /.test(traced(c.trace)), 5000, `a later sync: ${c.err()}`);
  await sleep(300); // several periodic syncs more
  t.equal(c.after('1'), undefined, 'what the failed sync covered: not durable');
  t.equal(c.after('2'), undefined, 'nor what came after it (a later sync does not write what the failed one lost)');
  c.send('ack');
  await waitFor(() => c.after('2') !== undefined, 5000, `after the acknowledgement: ${c.err()}`);
  t.equal(c.after('1')?.durable, true, 'acknowledged by NATS: durable there');
  t.equal(c.after('2')?.durable, true);
  c.send('close');
  await c.exited;
});

t.test('interval: closed with a failed sync nobody acknowledged: resolves false, never hangs', async (t) => {
  const c = child(t, 'interval', 1 << 20, 50);
  writeFileSync(c.hold, '');
  writeFileSync(`${c.hold}.fail`, '');
  c.send('append 2');
  c.send('after 1');
  await waitFor(() => existsSync(`${c.hold}.entered`), 10_000, `the segment's sync to start: ${c.err()}`);
  rmSync(c.hold);
  await waitFor(() => traced(c.trace).includes('fdatasync EIO'), 5000, `the sync to fail: ${c.err()}`);
  c.send('close');
  await waitFor(() => c.out.some((l) => l.closed), 5000, `the close: ${c.err()}`);
  t.equal(c.after('1')?.durable, false, 'said not durable when the spool closed');
  await c.exited;
});

t.test('always: an append that rotates syncs the segment it wrote to before the rotation', async (t) => {
  const c = child(t, 'always', 4096, 60_000);
  c.send('append 12'); // ~1 KiB each into 4 KiB segments: three or four of them, in one call
  await waitFor(() => c.out.some((l) => l.appended), 10_000, `the append: ${c.err()}`);
  c.send('close');
  await c.exited;
  const segs = readdirSync(c.dir).filter((f) => f.startsWith('seg-'));
  t.ok(segs.length >= 3, `the append rotated (${segs.join(' ')})`);
  const synced = readFileSync(c.trace, 'utf8');
  t.same(segs.filter((f) => !synced.includes(`fdatasync 0 ${join(c.dir, f)}\n`)), [], 'every segment written was synced');
});
