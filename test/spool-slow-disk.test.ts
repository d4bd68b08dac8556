// A disk whose fdatasync takes seconds (a busy or throttled volume; here an LD_PRELOAD that holds
// every fdatasync while a file exists, helpers/slow-sync.c): the spool's periodic and rotation syncs
// run on libuv's threads, so the event loop goes on — appends, rotations, timers — while they wait,
// and nothing appended is lost once the disk answers.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../controller/src/publish/spool.js';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { spawnTsChild } from './helpers/ts-child.js';
import { waitFor } from './helpers/wait.js';
import { onLines } from './helpers/lines.js';

/** helpers/spool-sync-child.ts in a process whose every fdatasync waits while `hold` exists (from the start). */
function syncChild(t: Tap.Test) {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-slow-sync-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'spool');
  const hold = join(tmp, 'hold');
  writeFileSync(hold, ''); // every fdatasync waits from the first one on
  const p = spawnTsChild(join(import.meta.dirname, 'helpers/spool-sync-child.ts'), [dir], { env: slowSyncEnv(hold) });
  t.teardown(() => { rmSync(hold, { force: true }); p.kill('SIGKILL'); });
  const lines: Record<string, number | string>[] = [];
  let err = '';
  onLines(p.stdout!, (l) => lines.push(JSON.parse(l)));
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => { if (p.exitCode !== null) r(); else p.once('exit', () => r()); });
  return { dir, hold, p, lines, err: () => err, exited };
}

/** Everything in the spool at `dir`, by event id (the child must have ended). */
function eventIds(t: Tap.Test, dir: string): string[] {
  const s = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 4096 });
  t.teardown(() => s.close());
  return s.read(100_000).map((e) => e.eventId);
}

t.test('a sync that hangs holds neither the appends nor the timers; every record is there after', async (t) => {
  const { dir, hold, p, lines, err, exited } = syncChild(t);

  await waitFor(() => existsSync(`${hold}.entered`), 10_000, `a sync to start: ${err()}`);
  const at = lines.length;
  await new Promise((r) => setTimeout(r, 1000));
  const during = lines.slice(at).filter((l) => l.tick !== undefined);
  t.ok(during.length >= 20, `the event loop ticked while a sync hung (${during.length} ticks in 1 s)`);
  const grew = (during.at(-1)?.appended ?? 0) - (during[0]?.appended ?? 0);
  t.ok(grew >= 20, `appends went on meanwhile, rotations too (${grew} of ~1 KiB into 4 KiB segments)`);

  rmSync(hold); // the disk answers
  const n = lines.length;
  p.stdin!.write('close\n');
  await waitFor(() => lines.slice(n).some((l) => l.closed !== undefined), 10_000, `the child to close: ${err()}`);
  const closed = lines.find((l) => l.closed !== undefined)!;
  t.equal(closed.writeErrors, 0, 'no write or sync failed');
  await exited;

  const got = eventIds(t, dir);
  t.equal(got.length, closed.closed, `every record appended is in the spool (${closed.closed})`);
  t.same(got, Array.from({ length: closed.closed as number }, (_, i) => `ev-${i}`), 'in order');
});

t.test('closed while its sync hangs: close() does not wait, synced() says so after its bound, nothing is lost', async (t) => {
  const { dir, hold, p, lines, err, exited } = syncChild(t);
  await waitFor(() => existsSync(`${hold}.entered`) && lines.length > 10, 10_000, `a sync to start: ${err()}`);
  const t0 = Date.now();
  p.stdin!.write('close-wait\n');
  await waitFor(() => lines.some((l) => l.closed !== undefined), 10_000, `the child to close: ${err()}`);
  const closed = lines.find((l) => l.closed !== undefined)!;
  t.equal(closed.synced, 'timeout', `the last sync did not finish: said after the second it was given (${Date.now() - t0} ms)`);
  await exited; // with its syncs still held: exitNow
  t.ok(existsSync(hold), 'the disk never answered meanwhile');
  rmSync(hold);
  const got = eventIds(t, dir);
  t.same(got, Array.from({ length: closed.closed as number }, (_, i) => `ev-${i}`), `every record appended is there (${closed.closed})`);
});

t.test('a last sync that fails (EIO) is said by synced(), not lost in the close', async (t) => {
  const { hold, p, lines, err, exited } = syncChild(t);
  await waitFor(() => existsSync(`${hold}.entered`) && lines.length > 10, 10_000, `a sync to start: ${err()}`);
  writeFileSync(`${hold}.fail`, ''); // the held syncs fail when the disk answers
  p.stdin!.write('close-wait\n');
  await new Promise((r) => setTimeout(r, 100)); // the last sync is started and held
  rmSync(hold);
  await waitFor(() => lines.some((l) => l.closed !== undefined), 10_000, `the child to close: ${err()}`);
  t.equal(lines.find((l) => l.closed !== undefined)!.synced, 'EIO', 'synced() gives the last sync\'s error');
  await exited;
});
