// The alerts position made durable (SPEC §5): after a power loss it must be neither empty (a rename
// the disk has, of a copy whose data it has not: the follower then starts at the end of alerts.json)
// nor ahead of the spool (saying read alerts whose events the spool lost). So it is written only
// once the spool synced the alerts behind it, its copy fdatasynced before the rename, off the event
// loop. The power loss itself cannot be had here: what is checked is the order of what reaches the
// disk — the position file between the spool's syncs, and a trace of the child's fdatasync and rename
// calls (LD_PRELOAD helpers/slow-sync.c), which also holds or fails the position's sync.
import t, { type Test } from 'tap';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AlertsFollower } from '../controller/src/alerts/follower.js';
import { hashOf } from '../controller/src/alerts/position.js';
import type { FileLine } from '../controller/src/alerts/line-splitter.js';
import { Spool } from '../controller/src/publish/spool.js';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { spawnTsChild } from './helpers/ts-child.js';
import { waitFor } from './helpers/wait.js';
import { onLines } from './helpers/lines.js';

const L = (n: number) => `{"rule":{"level":5},"n":${n}}`;
const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${L(from + i)}\n`).join('');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The offset the position file holds; null when there is none. */
function offsetOf(pos: string): number | null {
  try {
    return (JSON.parse(readFileSync(pos, 'utf8')) as { offset: number }).offset;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e; // a file there that is not a whole position: never
  }
}

function home(t: Test): { file: string; dir: string; pos: string; tmp: string } {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-position-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'spool');
  return { file: join(tmp, 'alerts.json'), dir, pos: join(dir, 'alerts.position'), tmp };
}

/** Each line spooled as an alert, as AlertSink and the publisher do; how many (a prefix) were accepted. */
const spooled = (spool: Spool) => (ls: FileLine[]) => spool.append(ls.map((l) => ({
  subject: 'wazuh.alert.low', headers: {}, body: l.text, kind: 'alert' as const, eventId: `alert-${l.end}`,
})), true).filter((seq) => seq > 0).length;

t.test('the position on disk never holds an offset whose alerts the spool has not synced; the stop writes the last one', async (t) => {
  const h = home(t);
  writeFileSync(h.file, lines(0, 5));
  const t0 = performance.now();
  // Syncs every 1.5 s: its timer cannot fire before t0 + 1500 ms, nor the next before t0 + 3000 ms.
  const spool = Spool.open({ dir: h.dir, maxBytes: 16 << 20, fsync: 'interval', fsyncIntervalMs: 1500 });
  t.teardown(() => spool.close());
  const follower = new AlertsFollower({
    file: h.file, positionFile: h.pos, fromBeginning: true, pollMs: 50, sink: spooled(spool),
    afterSync: (now) => spool.afterSync(now),
  });
  t.teardown(() => follower.close());
  follower.start();

  /** The offsets the file held from now until `until` ms after t0 (each read then, no sync started before it). */
  const watch = async (until: number) => {
    const seen = new Set<number | null>();
    for (;;) {
      const off = offsetOf(h.pos);
      if (performance.now() - t0 >= until) return seen;
      seen.add(off);
      await sleep(5);
    }
  };

  await waitFor(() => follower.stats().lines === 5, 1000, 'the first lines spooled');
  t.ok(performance.now() - t0 < 1200, 'spooled well before the first sync');
  const before = await watch(1490);
  t.same([...before].filter((o) => o !== null && o > 0), [], `before the spool's first sync: no offset past a line (seen ${[...before].map((o) => o ?? 'none').join(', ')})`);
  await waitFor(() => offsetOf(h.pos) === lines(0, 5).length, 3000, 'the position once the spool synced');

  // The next lines come after that sync: the file keeps the old offset until the next one.
  appendFileSync(h.file, lines(5, 10));
  await waitFor(() => follower.stats().lines === 10, 1000, 'more lines spooled');
  t.ok(performance.now() - t0 < 2800, 'spooled well before the second sync');
  const between = await watch(2990);
  t.same([...between], [lines(0, 5).length], `between the syncs: the offset of what the first one covered (seen ${[...between].join(', ')})`);
  await waitFor(() => offsetOf(h.pos) === lines(0, 10).length, 3000, 'the position once the spool synced again');

  // The stop: the spool's sync started at once (not at its next tick, 1.5 s away), then the position.
  appendFileSync(h.file, lines(10, 12));
  await waitFor(() => follower.stats().lines === 12, 1000, 'the last lines spooled');
  const c0 = performance.now();
  await follower.close();
  t.equal(offsetOf(h.pos), lines(0, 12).length, `the last position written by the stop (in ${Math.round(performance.now() - c0)} ms)`);
  t.equal(follower.stats().position_errors, 0);
});

/** helpers/alerts-position-child.ts with fdatasync and rename traced to `trace`; the position's fdatasync held while `hold` exists. */
function child(t: Test, h: ReturnType<typeof home>, o: { intervalMs?: number; stopWaitMs?: number } = {}) {
  const hold = join(h.tmp, 'hold');
  const trace = join(h.tmp, 'trace');
  const p = spawnTsChild(join(import.meta.dirname, 'helpers/alerts-position-child.ts'),
    [h.file, h.dir, String(o.intervalMs ?? 100), String(o.stopWaitMs ?? 1000)],
    { env: slowSyncEnv(hold, { match: 'alerts.position', log: trace }) });
  t.teardown(() => { rmSync(hold, { force: true }); p.kill('SIGKILL'); });
  const out: Record<string, unknown>[] = [];
  let err = '';
  onLines(p.stdout!, (l) => out.push(JSON.parse(l)));
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => { if (p.exitCode !== null) r(); else p.once('exit', () => r()); });
  const last = () => out.filter((l) => l.tick !== undefined).at(-1) as { tick: number; lines: number; position_errors: number } | undefined;
  const traced = () => (existsSync(trace) ? readFileSync(trace, 'utf8').trim().split('\n') : []);
  return { p, hold, out, err: () => err, exited, last, traced };
}

t.test('the copy is fdatasynced before its rename, after the spool synced the alerts behind it', async (t) => {
  const h = home(t);
  writeFileSync(h.file, lines(0, 20));
  const c = child(t, h);
  await waitFor(() => (c.last()?.lines ?? 0) === 20, 10_000, `the first lines: ${c.err()}`);
  for (let i = 1; i <= 5; i++) {
    appendFileSync(h.file, lines(20 * i, 20 * (i + 1)));
    await sleep(150);
  }
  await waitFor(() => offsetOf(h.pos) === lines(0, 120).length, 5000, `the last position written: ${c.err()}`);
  c.p.stdin!.write('close\n');
  await c.exited;

  const trace = c.traced();
  const renames = trace.map((l, i) => ({ l, i })).filter(({ l }) => l === `rename ${h.pos}.tmp ${h.pos}`);
  t.ok(renames.length >= 2, `the position was written more than once (${renames.length} renames)`);
  for (const { i } of renames) {
    const ofTmp = trace.slice(0, i).filter((l) => l.endsWith(`${h.pos}.tmp`));
    t.equal(ofTmp.at(-1), `fdatasync 0 ${h.pos}.tmp`, `rename at trace line ${i}: its copy synced just before`);
    // Then its directory, or the rename itself may not outlive a power loss (the first one: no file at all).
    const next = trace.findIndex((l, j) => j > i && l.startsWith(`rename ${h.pos}.tmp`));
    t.ok(trace.slice(i + 1, next < 0 ? undefined : next).includes(`fsync 0 ${dirname(h.pos)}`),
      `rename at trace line ${i}: the directory fsynced after it, before the next`);
  }
  // The first position past offset 0 (the lines' alerts spooled) comes after a sync of the segment they are in.
  const firstSeg = trace.findIndex((l) => /^fdatasync 0 .*\/seg-\d+\.log$/.test(l));
  t.ok(firstSeg >= 0 && firstSeg < renames[1].i, `a segment synced (trace line ${firstSeg}) before the position of its alerts (${renames[1].i})`);
  t.same(trace.filter((l) => / ERR | EIO /.test(l)), [], 'no sync failed');
});

t.test('a position sync that hangs holds neither the event loop nor the reading; one write out, the newest written once the disk answers', async (t) => {
  const h = home(t);
  writeFileSync(h.file, lines(0, 5));
  const hold = join(h.tmp, 'hold');
  writeFileSync(hold, ''); // every fdatasync of alerts.position.tmp waits from the first one on
  const c = child(t, h);
  await waitFor(() => existsSync(`${hold}.entered`), 10_000, `the position's sync to start: ${c.err()}`);
  const t1 = c.last()?.tick ?? 0;
  for (let i = 1; i <= 10; i++) {
    appendFileSync(h.file, lines(5 * i, 5 * (i + 1)));
    await sleep(100);
  }
  await waitFor(() => (c.last()?.lines ?? 0) === 55, 5000, `every line spooled meanwhile: ${c.err()}`);
  const ticks = (c.last()?.tick ?? 0) - t1;
  t.ok(ticks >= 40, `the event loop ticked while the position's sync hung (${ticks} ticks of 10 ms in ~1 s)`);
  t.equal(offsetOf(h.pos), null, 'no position renamed into place while its copy is not synced');
  t.same(readdirSync(h.dir).filter((f) => f.startsWith('alerts.position')), ['alerts.position.tmp'], 'one copy being written, no more');

  rmSync(hold); // the disk answers
  await waitFor(() => offsetOf(h.pos) === lines(0, 55).length, 5000, `the newest position written: ${c.err()}`);
  const writes = c.traced().filter((l) => l === `rename ${h.pos}.tmp ${h.pos}`).length;
  t.ok(writes <= 3, `the positions that came meanwhile were not written one by one, the newest replaced the others (${writes} writes)`);
  t.equal(c.last()?.position_errors, 0);
});

t.test('stopped while the position\'s sync hangs: the stop waits a bounded time, the file on disk stays the old one, whole', async (t) => {
  const h = home(t);
  writeFileSync(h.file, lines(0, 5));
  // A position saved by an earlier run: after the first two lines.
  mkdirSync(h.dir, { recursive: true, mode: 0o700 });
  const st = statSync(h.file);
  const head = readFileSync(h.file);
  const old = { dev: st.dev, ino: st.ino, offset: lines(0, 2).length, headLen: head.length, head: hashOf(head) };
  writeFileSync(h.pos, `${JSON.stringify(old)}\n`, { mode: 0o600 });
  const hold = join(h.tmp, 'hold');
  writeFileSync(hold, '');
  const c = child(t, h, { stopWaitMs: 300 });
  await waitFor(() => (c.last()?.lines ?? 0) === 3 && existsSync(`${hold}.entered`), 10_000, `the rest read, its position's sync held: ${c.err()}`);
  c.p.stdin!.write('close\n');
  await waitFor(() => c.out.some((l) => l.closed !== undefined), 5000, `the stop: ${c.err()}`);
  const closed = c.out.find((l) => l.closed !== undefined)! as { closed: number };
  t.ok(closed.closed >= 250 && closed.closed < 1500, `the follower's stop waited its bound, no more (${closed.closed} ms)`);
  t.ok(c.out.some((l) => l.log === 'warn' && /not written yet/.test(String(l.msg))), 'and said so');
  await c.exited; // with the sync still held: the process ends all the same
  t.ok(existsSync(hold), 'the disk never answered meanwhile');
  t.same(JSON.parse(readFileSync(h.pos, 'utf8')), old, 'the earlier position, whole');
});

t.test('a position sync that fails is counted and said, never thrown; the next save writes it', async (t) => {
  const h = home(t);
  writeFileSync(h.file, lines(0, 5));
  const hold = join(h.tmp, 'hold');
  writeFileSync(hold, '');
  writeFileSync(`${hold}.fail`, ''); // the held sync fails (EIO) when the disk answers
  const c = child(t, h);
  await waitFor(() => existsSync(`${hold}.entered`) && (c.last()?.lines ?? 0) === 5, 10_000, `the position's sync held: ${c.err()}`);
  rmSync(hold); // it fails now; the next ones are the disk's own
  await waitFor(() => (c.last()?.position_errors ?? 0) >= 1, 5000, `the failure counted: ${c.err()}`);
  await waitFor(() => offsetOf(h.pos) === lines(0, 5).length, 5000, `written by a later save: ${c.err()}`);
  t.ok(c.traced().includes(`fdatasync EIO ${h.pos}.tmp`), 'the sync failed (EIO)');
  t.equal(c.out.filter((l) => l.log === 'warn' && /cannot save the alerts position/.test(String(l.msg))).length, 1, 'said once');
  appendFileSync(h.file, lines(5, 6));
  await waitFor(() => (c.last()?.lines ?? 0) === 6, 5000, `the follower goes on: ${c.err()}`);
  t.equal(c.p.exitCode, null, 'the process lives');
});

t.test('alerts turned off and on while the last position waits for the spool: the next follower resumes where the last stopped, not from the older file', async (t) => {
  const h = home(t);
  mkdirSync(h.dir);
  writeFileSync(h.file, lines(0, 2));
  let slow = false;
  // A spool sync that waits (a slow disk, a failed sync waiting for NATS's acknowledgements).
  const afterSync = () => new Promise<boolean>((r) => setTimeout(() => r(true), slow ? 3000 : 5));
  const follower = (seen: string[], resumeFrom: ReturnType<AlertsFollower['lastPosition']> = null) => new AlertsFollower({
    file: h.file, positionFile: h.pos, fromBeginning: true, pollMs: 50, stopWaitMs: 300, afterSync, resumeFrom,
    sink: (ls) => { for (const l of ls) seen.push(l.text); return ls.length; },
  });
  const a: string[] = [];
  const A = follower(a);
  A.start();
  await waitFor(() => a.length === 2 && existsSync(h.pos), 5000, 'A reads the first two, its position written');
  slow = true;
  appendFileSync(h.file, lines(2, 5));
  await waitFor(() => a.length === 5, 5000, 'A reads three more (their position waits for the sync)');
  await A.close(); // a reload: alerts off; the stop gives up on the write after 300 ms
  t.equal(offsetOf(h.pos), L(0).length + L(1).length + 2, 'the file still holds the older position');
  slow = false; // the spool's syncs answer at once again; A's, asked for before, still waits
  const b: string[] = [];
  const B = follower(b, A.lastPosition()); // the next reload: alerts on
  B.start();
  appendFileSync(h.file, lines(5, 6));
  await waitFor(() => b.length >= 1, 5000, 'B reads what came after');
  await sleep(300);
  t.same(b.map((x) => JSON.parse(x).n), [5], 'B reads only what A had not: nothing published twice');
  await waitFor(() => offsetOf(h.pos) === lines(0, 6).length, 5000, 'B\'s position written');
  await sleep(3200); // A's sync answers: its abandoned write is not made over B's
  await B.close();
  t.equal(offsetOf(h.pos), lines(0, 6).length, 'the file ends at B\'s position');
});
