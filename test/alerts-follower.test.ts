// The alerts.json follower on real files: inotify, partial lines, rotation (analysisd's hard
// link), truncation, long lines, a file that does not exist yet, start at the end or the
// beginning, and the saved position across restarts.
import t, { type Test } from 'tap';
import { appendFileSync, linkSync, mkdirSync, mkdtempSync, openSync, closeSync, renameSync, truncateSync, unlinkSync, writeFileSync, writeSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertsFollower, type FollowerOptions } from '../controller/src/alerts/follower.js';
import type { FileLine } from '../controller/src/alerts/line-splitter.js';
import { waitFor } from './helpers/wait.js';
import { gzipSync } from 'node:zlib';

interface Rig {
  home: string;
  dir: string;
  file: string;
  pos: string;
  got: string[];
  follower: AlertsFollower;
}

function rig(t: Test, o: Partial<FollowerOptions> = {}, dir?: string): Rig {
  const home = dir ?? mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const alerts = join(home, 'logs/alerts');
  const got: string[] = [];
  const r: Rig = {
    home, dir: alerts, file: join(alerts, 'alerts.json'), pos: join(home, 'alerts.position'), got,
    follower: null as unknown as AlertsFollower,
  };
  r.follower = new AlertsFollower({
    file: r.file, positionFile: r.pos, fromBeginning: false, pollMs: 5000,
    sink: (lines: FileLine[]) => { got.push(...lines.map((l) => l.text)); return lines.length; },
    ...o,
  });
  t.teardown(() => r.follower.close());
  return r;
}

const L = (n: number) => `{"n":${n}}`;
const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${L(from + i)}\n`).join('');

/** analysisd's layout: the day's file under <year>/<Mon>/, alerts.json a hard link to it. */
function dayFile(dir: string, day: number): string {
  mkdirSync(join(dir, '2026/Nov'), { recursive: true });
  const f = join(dir, '2026/Nov', `ossec-alerts-${String(day).padStart(2, '0')}.json`);
  writeFileSync(f, '');
  try { unlinkSync(join(dir, 'alerts.json')); } catch { /* first day */ }
  linkSync(f, join(dir, 'alerts.json'));
  return f;
}

t.test('appends reach the sink through inotify, lines cut anywhere are joined', async (t) => {
  const r = rig(t);
  mkdirSync(r.dir, { recursive: true });
  const day = dayFile(r.dir, 27);
  r.follower.start();
  // Written through the day's path, like analysisd: only a watch on the inode sees it.
  const fd = openSync(day, 'a');
  t.teardown(() => closeSync(fd));
  const text = lines(0, 50);
  const t0 = Date.now();
  for (let i = 0; i < text.length; i += 7) writeSync(fd, text.slice(i, i + 7));
  await waitFor(() => r.got.length === 50, 3000, '50 lines');
  t.ok(Date.now() - t0 < 1000, `well before the 5 s poll (${Date.now() - t0} ms)`);
  t.same(r.got, text.trim().split('\n'), 'in order, whole');
  writeSync(fd, '{"n":"par');
  await new Promise((res) => setTimeout(res, 150));
  t.equal(r.got.length, 50, 'a partial last line waits for its newline');
  writeSync(fd, 'tial"}\n');
  await waitFor(() => r.got.length === 51, 3000, 'the finished line');
  t.equal(r.got[50], '{"n":"partial"}');
});

t.test('file that does not exist yet, then daily rotation by hard link', async (t) => {
  // logs/alerts itself does not exist yet: nothing to watch, the 1 s poll looks for it.
  const r = rig(t, { pollMs: 1000 });
  r.follower.start();
  await new Promise((res) => setTimeout(res, 100));
  t.equal(r.follower.stats().following, false, 'nothing to follow yet');
  mkdirSync(r.dir, { recursive: true });
  const d1 = dayFile(r.dir, 27);
  // Created after start: read from its first line (it was not there to start at its end).
  appendFileSync(d1, lines(0, 3));
  await waitFor(() => r.got.length === 3, 4000, 'the first day');
  // The last lines of the day land just before the new day's file is linked.
  appendFileSync(d1, lines(3, 6));
  const d2 = dayFile(r.dir, 28);
  appendFileSync(d2, lines(6, 9));
  await waitFor(() => r.got.length === 9, 4000, 'both days');
  t.same(r.got, lines(0, 9).trim().split('\n'), 'the old day to its end, then the new one from its start, in order');
  t.equal(r.follower.stats().rotations, 1);
  appendFileSync(d2, lines(9, 10));
  await waitFor(() => r.got.length === 10, 3000, 'the new file is followed');
});

t.test('the position survives a restart; a rotation while stopped is finished from the old file', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 27);
  appendFileSync(d1, lines(0, 5));
  a.follower.start();
  await waitFor(() => a.got.length === 5, 3000, 'first run');
  a.follower.close();
  const saved = JSON.parse(readFileSync(a.pos, 'utf8'));
  t.equal(saved.offset, lines(0, 5).length, 'position: after the last line taken');

  appendFileSync(d1, lines(5, 8)); // written while the tap is down
  const b = rig(t, { fromBeginning: true }, home);
  b.follower.start();
  await waitFor(() => b.got.length === 3, 3000, 'second run');
  t.same(b.got, lines(5, 8).trim().split('\n'), 'resumes where it stopped: nothing again, nothing missed');
  b.follower.close();

  appendFileSync(d1, lines(8, 10)); // then the day ends while the tap is down
  const d2 = dayFile(a.dir, 28);
  appendFileSync(d2, lines(10, 12));
  const c = rig(t, {}, home);
  c.follower.start();
  await waitFor(() => c.got.length === 4, 3000, 'third run');
  t.same(c.got, lines(8, 12).trim().split('\n'), 'the rest of the rotated day, then the new day');
  c.follower.close();

  // The old day was compressed by monitord while the tap was stopped: finished from the .gz.
  appendFileSync(d2, lines(12, 2000)); // over a KiB: the head identifies it
  const d3 = dayFile(a.dir, 29);
  appendFileSync(d3, lines(2000, 2002));
  writeFileSync(`${d2}.gz`, gzipSync(readFileSync(d2)));
  unlinkSync(d2);
  const d = rig(t, { maxBytesPerTurn: 4096 }, home);
  d.follower.start();
  await waitFor(() => d.got.length === 1990, 5000, 'fourth run');
  t.same(d.got, lines(12, 2002).trim().split('\n'), 'the rest of the compressed day, then the new day');
  t.equal(d.follower.stats().rotated_compressed, 1);
  d.follower.close();

  // Removed (not compressed) while stopped: said and counted, the new file read whole.
  appendFileSync(d3, lines(2002, 2003));
  const d4 = dayFile(a.dir, 30);
  unlinkSync(d3);
  appendFileSync(d4, lines(3000, 3001));
  const e = rig(t, {}, home);
  e.follower.start();
  await waitFor(() => e.got.length === 1, 3000, 'fifth run');
  t.same(e.got, [L(3000)]);
  t.equal(e.follower.stats().rotated_unread, 1, 'the unread rest of a vanished file is counted');
});

t.test('huge existing file: start at its end by default, or at its beginning', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  mkdirSync(join(home, 'logs/alerts'), { recursive: true });
  const file = join(home, 'logs/alerts/alerts.json');
  const big = lines(0, 200_000); // ~2.2 MB
  writeFileSync(file, `${big}{"n":"unfin`);
  const end = rig(t, {}, home);
  end.follower.start();
  appendFileSync(file, 'ished"}\n{"n":"new"}\n');
  await waitFor(() => end.got.length === 2, 3000, 'new lines');
  t.same(end.got, ['{"n":"unfinished"}', '{"n":"new"}'], 'from the end: the line being written, then new lines only');
  end.follower.close();
  rmSync(end.pos);

  const all = rig(t, { fromBeginning: true, maxBytesPerTurn: 256 * 1024 }, home);
  all.follower.start();
  await waitFor(() => all.got.length === 200_002, 20_000, 'every line');
  t.equal(all.got[0], L(0));
  t.equal(all.got[199_999], L(199_999));
});

t.test('truncation, a long line and a re-created file that reuses the position', async (t) => {
  const r = rig(t, { maxLineBytes: 1000, fromBeginning: true });
  mkdirSync(r.dir, { recursive: true });
  writeFileSync(r.file, lines(0, 3));
  r.follower.start();
  await waitFor(() => r.got.length === 3, 3000, 'first lines');
  truncateSync(r.file, 0); // copytruncate, by a person or a tool
  await new Promise((res) => setTimeout(res, 50));
  appendFileSync(r.file, lines(100, 101));
  await waitFor(() => r.got.length === 4, 6000, 'after truncation');
  t.equal(r.got[3], L(100), 'read again from the start');
  t.equal(r.follower.stats().truncations, 1);

  appendFileSync(r.file, `{"big":"${'x'.repeat(5000)}"}\n${L(101)}\n`);
  await waitFor(() => r.got.length === 5, 3000, 'the line after the long one');
  t.equal(r.got[4], L(101), 'the long line is dropped, the next one read');
  t.equal(r.follower.stats().too_long, 1, 'and counted');

  // Replaced by another file (rename over it): followed from its first line.
  writeFileSync(`${r.file}.new`, lines(200, 202));
  renameSync(`${r.file}.new`, r.file);
  await waitFor(() => r.got.length === 7, 4000, 'the replacement');
  t.same(r.got.slice(5), [L(200), L(201)]);
});

t.test('a sink that refuses (spool full): lines are read again, the position stays behind', async (t) => {
  let room = 2;
  const got: string[] = [];
  const r = rig(t, {
    fromBeginning: true, retryMs: 100,
    sink: (ls) => { const k = Math.min(room, ls.length); room -= k; got.push(...ls.slice(0, k).map((l) => l.text)); return k; },
  });
  mkdirSync(r.dir, { recursive: true });
  writeFileSync(r.file, lines(0, 5));
  r.follower.start();
  await waitFor(() => got.length === 2, 3000, 'two taken');
  t.equal(JSON.parse(readFileSync(r.pos, 'utf8')).offset, lines(0, 2).length, 'position after the two taken lines only');
  room = 100;
  await waitFor(() => got.length === 5, 3000, 'the rest after the retry');
  t.same(got, lines(0, 5).trim().split('\n'), 'nothing lost, nothing twice');
  t.ok(r.follower.stats().refused >= 1);
});

t.test('a damaged position file is reported and ignored', async (t) => {
  const warnings: string[] = [];
  const r = rig(t, { log: { info() {}, warn: (_o, m) => { warnings.push(m); } } });
  mkdirSync(r.dir, { recursive: true });
  writeFileSync(r.file, lines(0, 2));
  writeFileSync(r.pos, '{"dev":"x"');
  r.follower.start();
  appendFileSync(r.file, lines(2, 3));
  await waitFor(() => r.got.length === 1, 3000, 'new line');
  t.same(r.got, [L(2)], 'as with no position: from the end');
  t.match(warnings.join('\n'), /position unreadable/);
});
