// The alerts.json follower on real files: inotify, partial lines, rotation (analysisd's hard
// link), truncation, long lines, a file that does not exist yet, start at the end or the
// beginning, the saved position across restarts, and files that are not Wazuh's (a symlink,
// a FIFO, another user's file) refused.
import t, { type Test } from 'tap';
import { appendFileSync, chownSync, existsSync, statSync, linkSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readlinkSync, renameSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync, rmSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertsFollower, type FollowerOptions } from '../controller/src/alerts/follower.js';
import type { FileLine } from '../controller/src/alerts/line-splitter.js';
import { wazuhUid } from '../controller/src/alerts/trusted-open.js';
import { waitFor } from './helpers/wait.js';
import { startFdChild } from './helpers/fd-child-process.js';
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
  await a.follower.close();
  const saved = JSON.parse(readFileSync(a.pos, 'utf8'));
  t.equal(saved.offset, lines(0, 5).length, 'position: after the last line taken');

  appendFileSync(d1, lines(5, 8)); // written while the tap is down
  const b = rig(t, { fromBeginning: true }, home);
  b.follower.start();
  await waitFor(() => b.got.length === 3, 3000, 'second run');
  t.same(b.got, lines(5, 8).trim().split('\n'), 'resumes where it stopped: nothing again, nothing missed');
  await b.follower.close();

  appendFileSync(d1, lines(8, 10)); // then the day ends while the tap is down
  const d2 = dayFile(a.dir, 28);
  appendFileSync(d2, lines(10, 12));
  const c = rig(t, {}, home);
  c.follower.start();
  await waitFor(() => c.got.length === 4, 3000, 'third run');
  t.same(c.got, lines(8, 12).trim().split('\n'), 'the rest of the rotated day, then the new day');
  await c.follower.close();

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
  await d.follower.close();

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

/** This process's descriptors open on `path` (the links of /proc/self/fd). */
function openDescriptors(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // the directory's own descriptor, closed since
    }
  }).length;
}

t.test('closed while finishing a compressed day: the .gz descriptor is closed too', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  let accept = true;
  const mk = () => rig(t, { fromBeginning: true, retryMs: 100, sink: (ls) => (accept ? ls.length : 0) }, home);
  const a = mk();
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 5);
  appendFileSync(d1, lines(0, 200)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.follower.stats().lines === 200, 3000, 'first run');
  await a.follower.close();
  // While stopped: the day goes on (incompressible, so the .gz is more than one read of its stream:
  // the reader is still open when the follower stops), ends, and is compressed.
  appendFileSync(d1, Array.from({ length: 3000 }, (_, i) => `{"n":${i},"r":"${randomBytes(48).toString('hex')}"}\n`).join(''));
  dayFile(a.dir, 6);
  writeFileSync(`${d1}.gz`, gzipSync(readFileSync(d1)));
  unlinkSync(d1);
  accept = false; // the spool is full: the .gz is being finished when the follower is closed
  const b = mk();
  b.follower.start();
  await waitFor(() => b.follower.stats().refused >= 1, 3000, 'the .gz being read, refused');
  t.equal(openDescriptors(`${d1}.gz`), 1, 'the .gz is open while it is finished');
  await b.follower.close(); // a stop, or alerts turned off by a reload
  await new Promise((res) => setTimeout(res, 400)); // past the refusal's pause, when finishing stops
  t.equal(openDescriptors(`${d1}.gz`), 0, 'its descriptor closed');
});

/** A rotation within the day (`rotate_interval`, `max_output_size`): `ossec-alerts-<dd>-<nnn>.json`. */
function rotatedFile(dir: string, day: number, n: number): string {
  const f = join(dir, '2026/Nov', `ossec-alerts-${String(day).padStart(2, '0')}-${String(n).padStart(3, '0')}.json`);
  writeFileSync(f, '');
  unlinkSync(join(dir, 'alerts.json'));
  linkSync(f, join(dir, 'alerts.json'));
  return f;
}

t.test('several rotations between two looks: every file read, in the order analysisd wrote them', async (t) => {
  // Live: three rotations (a day, then two within the next: rotate_interval) before the follower's
  // next turn — the poll is 5 s and inotify on the old inode says nothing of the new files.
  const r = rig(t, { fromBeginning: true });
  mkdirSync(r.dir, { recursive: true });
  const d1 = dayFile(r.dir, 5);
  appendFileSync(d1, lines(0, 2));
  r.follower.start();
  await waitFor(() => r.got.length === 2, 3000, 'the first file');
  await r.follower.close(); // …as if busy: nothing read while analysisd rotates
  const home = r.home;
  appendFileSync(d1, lines(2, 3));
  const d2 = dayFile(r.dir, 6);
  appendFileSync(d2, lines(3, 5));
  const d2b = rotatedFile(r.dir, 6, 1);
  appendFileSync(d2b, lines(5, 7));
  // Compressed by monitord meanwhile: read from its .gz.
  const d2c = rotatedFile(r.dir, 6, 2);
  appendFileSync(d2c, lines(7, 9));
  const d3 = dayFile(r.dir, 7);
  appendFileSync(d3, lines(9, 11));
  writeFileSync(`${d2b}.gz`, gzipSync(readFileSync(d2b)));
  unlinkSync(d2b);
  // Names that are no rotation of analysisd's, and files older than the saved one, are left alone.
  writeFileSync(join(r.dir, '2026/Nov', 'notes.json'), lines(900, 901));
  writeFileSync(join(r.dir, '2026/Nov', 'ossec-alerts-04.json'), lines(800, 801));
  const b = rig(t, {}, home);
  b.follower.start();
  await waitFor(() => b.got.length === 9, 5000, 'every file since').catch(() => {});
  t.same(b.got, lines(2, 11).trim().split('\n'), 'the rest of the 5th, the 6th, its -001 (compressed) and -002, then the live 7th');
  t.match(b.follower.stats(), { rotated_between: 3, rotated_unread: 0 });
  appendFileSync(d3, lines(11, 12));
  await waitFor(() => b.got.length === 10, 3000, 'the live file followed');

  // While running: two rotations between two turns (the turn after a rotation reads the old file
  // to its end, then looks for what came after it).
  const d4 = dayFile(r.dir, 8);
  appendFileSync(d4, lines(12, 13));
  const d5 = dayFile(r.dir, 9);
  appendFileSync(d5, lines(13, 14));
  await waitFor(() => b.got.length === 12, 5000, 'both rotations').catch(() => {});
  t.same(b.got.slice(10), lines(12, 14).trim().split('\n'), 'the 8th, then the live 9th');
  t.equal(b.follower.stats().rotated_between, 4);
  await b.follower.close();

  // Killed in the middle of a file rotated between: the next start resumes in it, then goes on.
  appendFileSync(d5, lines(14, 15));
  const d6 = dayFile(r.dir, 10);
  appendFileSync(d6, lines(15, 2000)); // over a KiB: its head identifies it
  const d7 = dayFile(r.dir, 11);
  appendFileSync(d7, lines(2000, 2001));
  const c = rig(t, { sink: (ls: FileLine[]) => { const k = Math.min(ls.length, 3); c.got.push(...ls.slice(0, k).map((l) => l.text)); return k; }, retryMs: 5000 }, home);
  c.follower.start();
  await waitFor(() => c.got.length >= 4, 3000, 'into the 10th');
  await c.follower.close();
  const d = rig(t, {}, home);
  d.follower.start();
  await waitFor(() => d.got.at(-1) === L(2000), 5000, 'to the live 11th').catch(() => {});
  t.same([...c.got, ...d.got], lines(14, 2001).trim().split('\n'), 'the rest of the 9th, the 10th across the restart, the 11th: each once');
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
  await end.follower.close();
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
  await waitFor(() => existsSync(r.pos) && JSON.parse(readFileSync(r.pos, 'utf8')).offset === lines(0, 2).length, 3000, 'the position written'); // off the event loop
  await new Promise((res) => setTimeout(res, 50));
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

/** A follower's log, whole: what it says and every field it logs (to look for leaked content). */
function logRecorder() {
  const all: { level: string; o: object; msg: string }[] = [];
  return {
    all,
    log: {
      info: (o: object, msg: string) => { all.push({ level: 'info', o, msg }); },
      warn: (o: object, msg: string) => { all.push({ level: 'warn', o, msg }); },
    },
    text: () => JSON.stringify(all),
  };
}

t.test('alerts.json that is not Wazuh\'s: a symlink to a root-only file, a FIFO, another user\'s file are refused; then a real file is followed', async (t) => {
  const rec = logRecorder();
  const r = rig(t, { fromBeginning: true, pollMs: 50, log: rec.log, wazuhUid: () => 0 });
  mkdirSync(r.dir, { recursive: true });
  // A root-only file of alert-shaped lines, outside logs/alerts: what the Wazuh user must not get published.
  const secret = join(r.home, 'root-only.json');
  writeFileSync(secret, `{"rule":{"level":12},"full_log":"ROOT-ONLY-SECRET-1"}\n{"rule":{"level":12},"full_log":"ROOT-ONLY-SECRET-2"}\n`, { mode: 0o600 });
  symlinkSync(secret, r.file);
  r.follower.start();
  await new Promise((res) => setTimeout(res, 400)); // several polls
  t.same(r.got, [], 'nothing of the link\'s target is read');
  t.notMatch(rec.text(), /ROOT-ONLY-SECRET/, 'nor logged');
  t.match(r.follower.stats(), { following: false, refusing: 'a symbolic link', untrusted_file: 1 }, 'counted once, not once per poll');
  t.equal(rec.all.filter((l) => /refused a file that is not Wazuh's/.test(l.msg)).length, 1, 'said once');

  // A FIFO: opening it must not block (the whole process would hang), reading it neither.
  // The first link is kept aside, not removed: a refusal is counted once per path, reason and inode, and
  // the link at the end of this test got its inode number back now and then (counted 3, not 4).
  renameSync(r.file, join(r.home, 'first-link'));
  execFileSync('mkfifo', ['-m', '0600', r.file]);
  await waitFor(() => r.follower.stats().untrusted_file === 2, 3000, 'the FIFO refused');
  t.match(r.follower.stats(), { following: false, refusing: 'not a regular file (a FIFO)' });

  // A regular file of another user (uid 65534, neither root nor the Wazuh user here), made aside and moved in.
  const tmpFile = `${r.file}.tmp`;
  writeFileSync(tmpFile, `{"rule":{"level":12},"full_log":"NOT-WAZUHS"}\n`);
  chownSync(tmpFile, 65534, 65534);
  renameSync(tmpFile, r.file);
  await waitFor(() => r.follower.stats().untrusted_file === 3, 3000, 'another user\'s file refused');
  t.match(r.follower.stats().refusing, /^owned by uid 65534, neither root nor the Wazuh user/);
  await new Promise((res) => setTimeout(res, 200));
  t.same(r.got, [], 'none of them was read');
  t.notMatch(rec.text(), /NOT-WAZUHS/);

  // A proper file in its place: followed, from its first line (it came after the start).
  writeFileSync(tmpFile, lines(0, 3));
  renameSync(tmpFile, r.file);
  await waitFor(() => r.got.length === 3, 3000, 'the real file followed');
  t.same(r.got, lines(0, 3).trim().split('\n'));
  t.match(r.follower.stats(), { following: true, refusing: null, untrusted_file: 3 });
  appendFileSync(r.file, lines(3, 4));
  await waitFor(() => r.got.length === 4, 3000, 'and kept followed');

  // Replaced by a symlink while followed: the followed file is finished, the link refused.
  symlinkSync(secret, tmpFile);
  renameSync(tmpFile, r.file);
  await waitFor(() => r.follower.stats().untrusted_file === 4, 3000, 'the link that replaced it refused');
  t.equal(r.follower.stats().following, false);
  t.equal(r.got.length, 4);
  t.notMatch(rec.text(), /ROOT-ONLY-SECRET/);
});

t.test('a file of the Wazuh user is followed; the Wazuh user is the owner of <home>/queue/db', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  t.equal(wazuhUid(home), null, 'no queue/db: unknown (only root\'s files are then Wazuh\'s)');
  mkdirSync(join(home, 'queue/db'), { recursive: true });
  chownSync(join(home, 'queue/db'), 65534, 65534);
  t.equal(wazuhUid(home), 65534);
  const r = rig(t, { fromBeginning: true, pollMs: 50, wazuhUid: () => wazuhUid(home) }, home);
  mkdirSync(r.dir, { recursive: true });
  writeFileSync(r.file, lines(0, 2));
  chownSync(r.file, 65534, 65534);
  r.follower.start();
  await waitFor(() => r.got.length === 2, 3000, 'the Wazuh user\'s file');
  t.equal(r.follower.stats().untrusted_file, 0);
});

t.test('rotated files are checked too: another user\'s old day, a .json.gz that is a symlink → refused, counted, not read', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const mk = (o: Partial<FollowerOptions> = {}) => rig(t, { fromBeginning: true, wazuhUid: () => 0, ...o }, home);
  const a = mk();
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 1);
  appendFileSync(d1, lines(0, 200)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.got.length === 200, 3000, 'first run');
  await a.follower.close();

  // While stopped: the day ends, and the old day's file (the inode the position names) is another user's.
  appendFileSync(d1, lines(200, 202));
  chownSync(d1, 65534, 65534);
  const d2 = dayFile(a.dir, 2);
  appendFileSync(d2, lines(1000, 1001));
  const b = mk();
  b.follower.start();
  await waitFor(() => b.got.length === 1, 3000, 'second run');
  t.same(b.got, [L(1000)], 'the old day not read: the new day from its start');
  t.match(b.follower.stats(), { untrusted_file: 1, rotated_unread: 1 });
  await b.follower.close();

  // While stopped: the day ends and is "compressed" — as a link to a root-only .gz of the same content.
  appendFileSync(d2, lines(1001, 1200));
  const c = mk();
  c.follower.start();
  await waitFor(() => c.got.length === 199, 3000, 'third run');
  await c.follower.close();
  appendFileSync(d2, lines(1200, 1202));
  const d3 = dayFile(a.dir, 3);
  appendFileSync(d3, lines(2000, 2001));
  const hidden = join(home, 'root-only.json.gz');
  writeFileSync(hidden, gzipSync(readFileSync(d2)), { mode: 0o600 });
  symlinkSync(hidden, `${d2}.gz`);
  unlinkSync(d2);
  const d = mk();
  d.follower.start();
  await waitFor(() => d.got.length === 1, 3000, 'fourth run');
  await new Promise((res) => setTimeout(res, 100));
  t.same(d.got, [L(2000)], 'nothing read through the link');
  t.match(d.follower.stats(), { untrusted_file: 1, rotated_unread: 1, rotated_compressed: 0 });
});

t.test('out of file descriptors (EMFILE): the follower waits and retries, never concludes a rotated file is gone', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 1);
  appendFileSync(d1, lines(0, 200)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.got.length === 200, 3000, 'first run');
  await a.follower.close();
  // While stopped: the rest of the day, then the next day.
  appendFileSync(d1, lines(200, 203));
  const d2 = dayFile(a.dir, 2);
  appendFileSync(d2, lines(1000, 1002));

  const child = startFdChild(t);
  // One descriptor left: enough to read the position and open alerts.json, not to list
  // logs/alerts/<year>/<Mon>/ for the rotated day.
  const ex = await child.send('exhaust 1');
  t.ok(ex.held > 100, `the child holds ${ex.held} descriptors`);
  await child.send(`follow ${a.file} ${a.pos}`);
  await new Promise((res) => setTimeout(res, 600)); // six polls
  let st = await child.send('stats');
  t.equal(child.p.exitCode, null, 'still running');
  t.same(child.got, [], 'nothing read yet');
  t.equal(st.rotated_unread, 0, 'the rotated day is not given up for want of a descriptor');

  await child.send('release');
  await waitFor(() => child.got.length === 5, 3000, 'the rest of the old day, then the new one');
  t.same(child.got, lines(200, 203).trim().split('\n').concat([L(1000), L(1001)]), 'nothing lost, nothing twice');
  st = await child.send('stats');
  t.match(st, { rotated_unread: 0, following: true });

  // Said, but not at every one of the six polls (each message at most once).
  const said = child.logs.filter((l) => /file descriptors/.test(l.msg)).map((l) => l.msg);
  t.ok(said.length >= 1, 'said');
  t.same([...new Set(said)], said, `not repeated at every poll: ${JSON.stringify(said)}`);
  await child.send('close');
});

t.test('out of descriptors once the old day is finished, and analysisd rotates again meanwhile: the day between is still read', async (t) => {
  // Chaos seed 492: the follower finished the old day, found no file between it and the live one, and
  // forgot where it had been; the live file could not be opened for want of a descriptor, and by the
  // next look analysisd had rotated again — the live file was the day after, and the day between
  // (43 alerts) was never read.
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 1);
  appendFileSync(d1, lines(0, 200));
  a.follower.start();
  await waitFor(() => a.got.length === 200, 3000, 'first run');
  await a.follower.close();

  const child = startFdChild(t);
  await child.send(`follow ${a.file} ${a.pos}`);
  await new Promise((res) => setTimeout(res, 300));
  await child.send('exhaust 0'); // the follower holds day 1's descriptor: closing it frees the only one
  const d2 = dayFile(a.dir, 2);
  appendFileSync(d2, lines(1000, 1003));
  await new Promise((res) => setTimeout(res, 600)); // six polls: day 1 finished, day 2 not opened
  t.same(child.got, [], 'nothing of day 2 yet (no descriptor to open it with)');
  const d3 = dayFile(a.dir, 3);
  appendFileSync(d3, lines(2000, 2002));
  await new Promise((res) => setTimeout(res, 300));
  await child.send('release');
  await waitFor(() => child.got.length >= 5, 3000, 'day 2, then day 3').catch(() => {});
  t.same(child.got, lines(1000, 1003).trim().split('\n').concat(lines(2000, 2002).trim().split('\n')), 'day 2 whole, then day 3: nothing lost, nothing twice');
  const st = await child.send('stats');
  t.match(st, { rotated_unread: 0, following: true });
  await child.send('close');
});

t.test('a new day\'s file seen before alerts.json links to it: read once, not again as the live file', async (t) => {
  // analysisd makes the day's file, then links alerts.json to it. A look in between, with an old day
  // finished and alerts.json not followable (here another user's file), took the new file for one
  // rotated in and out and read it whole — then read it again from its start once it was alerts.json.
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true, pollMs: 50 }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 1);
  appendFileSync(d1, lines(0, 3));
  a.follower.start();
  await waitFor(() => a.got.length === 3, 3000, 'day 1');
  // alerts.json replaced by a file that is not Wazuh's: day 1 is finished, nothing live is followed.
  writeFileSync(`${a.file}.new`, `${L(99)}\n`);
  chownSync(`${a.file}.new`, 65534, 65534);
  renameSync(`${a.file}.new`, a.file);
  await new Promise((res) => setTimeout(res, 300));
  // The next day's file, not linked yet.
  const d2 = join(a.dir, '2026/Nov/ossec-alerts-02.json');
  writeFileSync(d2, lines(10, 13));
  await new Promise((res) => setTimeout(res, 300));
  unlinkSync(a.file);
  linkSync(d2, a.file);
  await new Promise((res) => setTimeout(res, 500));
  appendFileSync(d2, lines(13, 14));
  await waitFor(() => a.got.length >= 7, 3000, 'day 2').catch(() => {});
  await new Promise((res) => setTimeout(res, 300));
  t.same(a.got.slice(3), lines(10, 14).trim().split('\n'), 'day 2 once, in order');
});

t.test('out of file descriptors reading the saved position: it is kept and read again at the next poll, not taken for none', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, {}, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 1);
  appendFileSync(d1, lines(0, 3));
  a.follower.start();
  appendFileSync(d1, lines(3, 5));
  await waitFor(() => a.got.length === 2, 3000, 'first run');
  await a.follower.close();
  const saved = readFileSync(a.pos, 'utf8');
  appendFileSync(d1, lines(5, 8)); // written while the tap is stopped

  const child = startFdChild(t);
  await child.send('exhaust 0'); // not even one descriptor to read alerts.position with
  await child.send(`follow ${a.file} ${a.pos} end`); // no position would mean: from the end
  await new Promise((res) => setTimeout(res, 500)); // five polls
  t.same(child.got, [], 'nothing read while the position is not known');
  t.equal(readFileSync(a.pos, 'utf8'), saved, 'the position file kept as it was');

  await child.send('release');
  await waitFor(() => child.got.length >= 3, 3000, 'the lines written while stopped').catch(() => {});
  t.same(child.got, lines(5, 8).trim().split('\n'), 'resumes at the saved position: nothing lost, nothing twice');
  t.notOk(child.logs.some((l) => /position unreadable/.test(l.msg)), 'not reported as a damaged position');
  t.ok(child.logs.some((l) => /file descriptors/.test(l.msg) && /position/.test(l.msg)), 'said');
  await child.send('close');
});

t.test('restart: alerts.json reuses the saved file\'s inode (freed by its compression) — not the saved file: the .gz and the days between are read', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const mk = () => rig(t, { fromBeginning: true }, home);
  const a = mk();
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 27);
  appendFileSync(d1, lines(0, 200)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.got.length === 200, 3000, 'first run');
  await a.follower.close();

  // While stopped: day 27 goes on, rotates, is compressed (its inode freed), day 28 rotates too.
  appendFileSync(d1, lines(200, 210));
  const d2 = dayFile(a.dir, 28);
  appendFileSync(d2, lines(210, 220));
  writeFileSync(`${d1}.gz`, gzipSync(readFileSync(d1)));
  unlinkSync(d1);
  const d3 = dayFile(a.dir, 29);
  appendFileSync(d3, lines(220, 230));
  // ext4 gives a freed inode to the next file at once (not always: other tests make files too), so
  // the position is made to say what it says then: the saved file's device and inode are the live one's.
  const reuse = (pos: string, file: string) => {
    const st = statSync(file);
    writeFileSync(pos, JSON.stringify({ ...JSON.parse(readFileSync(pos, 'utf8')), dev: st.dev, ino: st.ino }));
  };
  reuse(a.pos, d3);
  const b = mk();
  b.follower.start();
  await waitFor(() => b.got.length >= 30, 3000, 'second run').catch(() => {});
  t.same(b.got, lines(200, 230).trim().split('\n'), 'the rest of day 27 from its .gz, day 28, then day 29 from its start');
  t.match(b.follower.stats(), { rotated_compressed: 1, rotated_between: 1, rotated_unread: 0 });
  await b.follower.close();

  // The same, with the saved day removed instead of compressed: its rest is counted as unread.
  appendFileSync(d3, lines(230, 2000));
  const c = mk();
  c.follower.start();
  await waitFor(() => c.got.length === 1770, 3000, 'third run');
  await c.follower.close();
  appendFileSync(d3, lines(2000, 2010));
  const d4 = dayFile(a.dir, 30);
  appendFileSync(d4, lines(3000, 3002));
  unlinkSync(d3);
  reuse(a.pos, d4);
  const d = mk();
  d.follower.start();
  await waitFor(() => d.got.length >= 2, 3000, 'fourth run');
  t.same(d.got, [L(3000), L(3001)], 'the live file from its start');
  t.equal(d.follower.stats().rotated_unread, 1, 'the unread rest of the saved file is counted');
});

t.test('the spool refused the first lines of a new day, then the tap stopped and the day was compressed: found by its head, read whole', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  let room = true;
  const got: string[] = [];
  const a = rig(t, { fromBeginning: true, retryMs: 100, sink: (ls) => { if (!room) return 0; got.push(...ls.map((l) => l.text)); return ls.length; } }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 5);
  appendFileSync(d1, lines(0, 10));
  a.follower.start();
  await waitFor(() => got.length === 10, 3000, 'the first day');
  room = false; // the spool full from the first line of the next day on
  const d2 = dayFile(a.dir, 6);
  appendFileSync(d2, lines(10, 200)); // over a KiB
  await waitFor(() => a.follower.stats().rotations === 1 && a.follower.stats().refused >= 1, 3000, 'the new day refused');
  await a.follower.close();
  t.equal(JSON.parse(readFileSync(a.pos, 'utf8')).offset, 0, 'nothing of the new day taken');
  // While stopped: day 6 rotates and is compressed.
  const d3 = dayFile(a.dir, 7);
  appendFileSync(d3, lines(200, 202));
  writeFileSync(`${d2}.gz`, gzipSync(readFileSync(d2)));
  unlinkSync(d2);
  const b = rig(t, {}, home);
  b.follower.start();
  await waitFor(() => b.got.length >= 192, 3000, 'second run').catch(() => {});
  t.same(b.got, lines(10, 202).trim().split('\n'), 'day 6 whole from its .gz, then day 7');
  t.match(b.follower.stats(), { rotated_compressed: 1, rotated_unread: 0 });
});

t.test('the spool refuses across two rotations and each old day is compressed before the follower reaches its end: every day read', async (t) => {
  // NATS away, spool full: alerts wait in alerts.json, and the follower stays in day 5 (open, its
  // .json compressed and unlinked meanwhile) while days 6 and 7 come. Where day 5 was is what tells
  // which files came after it.
  let room = true;
  const got: string[] = [];
  const r = rig(t, { fromBeginning: true, pollMs: 100, retryMs: 100, sink: (ls) => { if (!room) return 0; got.push(...ls.map((l) => l.text)); return ls.length; } });
  mkdirSync(r.dir, { recursive: true });
  const d5 = dayFile(r.dir, 5);
  appendFileSync(d5, lines(0, 10));
  r.follower.start();
  await waitFor(() => got.length === 10, 3000, 'day 5');
  room = false;
  appendFileSync(d5, lines(10, 20));
  await waitFor(() => r.follower.stats().refused >= 1, 3000, 'refused');
  const d6 = dayFile(r.dir, 6);
  appendFileSync(d6, lines(20, 30));
  writeFileSync(`${d5}.gz`, gzipSync(readFileSync(d5)));
  unlinkSync(d5);
  await new Promise((res) => setTimeout(res, 300));
  const d7 = dayFile(r.dir, 7);
  appendFileSync(d7, lines(30, 40));
  writeFileSync(`${d6}.gz`, gzipSync(readFileSync(d6)));
  unlinkSync(d6);
  await new Promise((res) => setTimeout(res, 300));
  room = true;
  await waitFor(() => got.length >= 40, 3000, 'all 40').catch(() => {});
  t.same(got, lines(0, 40).trim().split('\n'), 'day 5 to its end, day 6 from its .gz, then day 7: all 40, in order');
  t.match(r.follower.stats(), { rotated_between: 1, rotated_unread: 0 });
});

t.test('restart: the saved file was empty (a head of 0 bytes) and its inode is alerts.json\'s now — its name tells them apart', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  const d1 = dayFile(a.dir, 5);
  appendFileSync(d1, lines(0, 3));
  a.follower.start();
  await waitFor(() => a.got.length === 3, 3000, 'day 5');
  dayFile(a.dir, 6); // midnight: the tap stops before day 6 has a line
  await waitFor(() => a.follower.stats().rotations === 1 && a.follower.stats().following, 3000, 'day 6 followed');
  await a.follower.close();
  const saved = JSON.parse(readFileSync(a.pos, 'utf8'));
  t.match(saved, { offset: 0, headLen: 0, path: '2026/Nov/ossec-alerts-06.json' }, 'the position names the file');

  // While stopped: day 6 fills, rotates and is compressed; day 7 rotates; day 8 has day 6's inode.
  const d2 = join(a.dir, '2026/Nov/ossec-alerts-06.json');
  appendFileSync(d2, lines(10, 15));
  const d3 = dayFile(a.dir, 7);
  appendFileSync(d3, lines(15, 18));
  writeFileSync(`${d2}.gz`, gzipSync(readFileSync(d2)));
  unlinkSync(d2);
  const d4 = dayFile(a.dir, 8);
  appendFileSync(d4, lines(18, 20));
  const st = statSync(d4);
  writeFileSync(a.pos, JSON.stringify({ ...saved, dev: st.dev, ino: st.ino }));
  const b = rig(t, {}, home);
  b.follower.start();
  await waitFor(() => b.got.length >= 10, 3000, 'second run').catch(() => {});
  t.same(b.got, lines(10, 20).trim().split('\n'), 'day 6 from its .gz (found by its name), day 7, day 8');
  t.match(b.follower.stats(), { rotated_compressed: 1, rotated_between: 1, rotated_unread: 0 });
  await b.follower.close();

  // The saved day removed while stopped (not compressed): its rest is lost, but the days after it are read.
  appendFileSync(d4, lines(20, 22));
  const d5 = dayFile(a.dir, 9);
  appendFileSync(d5, lines(22, 24));
  const d6 = dayFile(a.dir, 10);
  appendFileSync(d6, lines(24, 26));
  unlinkSync(d4);
  const c = rig(t, {}, home);
  c.follower.start();
  await waitFor(() => c.got.length >= 4, 3000, 'third run').catch(() => {});
  t.same(c.got, lines(22, 26).trim().split('\n'), 'day 9, then day 10');
  t.match(c.follower.stats(), { rotated_unread: 1, rotated_between: 1 });
});

t.test('hourly rotation: months of older files before the current one (in name order) and more than 64 .gz since the saved day — still found', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  // Earlier months of an hourly rotate_interval: 28 days x 24 rotations x (.json.gz, .log.gz), listed
  // by name Apr, Aug, Dec, Feb, Jan, … — before Nov, more entries than a search would look at.
  for (const m of ['Jan', 'Feb', 'Mar', 'Apr']) {
    mkdirSync(join(a.dir, '2026', m), { recursive: true });
    for (let d = 1; d <= 28; d++) {
      for (let k = 0; k < 24; k++) {
        for (const ext of ['json.gz', 'log.gz']) {
          writeFileSync(join(a.dir, '2026', m, `ossec-alerts-${String(d).padStart(2, '0')}${k ? `-${String(k).padStart(3, '0')}` : ''}.${ext}`), '');
        }
      }
    }
  }
  const d1 = dayFile(a.dir, 5);
  appendFileSync(d1, lines(0, 100)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.got.length === 100, 3000, 'first run');
  await a.follower.close();
  t.match(JSON.parse(readFileSync(a.pos, 'utf8')), { path: '2026/Nov/ossec-alerts-05.json' }, 'its name found in Nov');

  // While stopped: the 5th goes on and rotates twice within the day.
  appendFileSync(d1, lines(100, 110));
  const d2 = rotatedFile(a.dir, 5, 1);
  appendFileSync(d2, lines(110, 120));
  const d3 = rotatedFile(a.dir, 5, 2);
  appendFileSync(d3, lines(120, 130));
  const b = rig(t, {}, home);
  b.follower.start();
  await waitFor(() => b.got.length >= 30, 3000, 'second run').catch(() => {});
  t.same(b.got, lines(100, 130).trim().split('\n'), 'the rest of the 5th, its -001, then the live -002');
  t.match(b.follower.stats(), { rotated_between: 1, rotated_unread: 0 });
  await b.follower.close();

  // Stopped for four days of hourly rotations, each compressed, the saved file first; the position
  // is an earlier version's, without the file's name: the .gz is found by its head among 100 newer ones.
  appendFileSync(d3, lines(130, 2000));
  const c = rig(t, {}, home);
  c.follower.start();
  await waitFor(() => c.got.length === 1870, 3000, 'third run');
  await c.follower.close();
  appendFileSync(d3, lines(2000, 2005));
  const compress = (f: string) => { writeFileSync(`${f}.gz`, gzipSync(readFileSync(f))); unlinkSync(f); };
  compress(d3);
  for (let k = 3; k <= 102; k++) {
    const f = rotatedFile(a.dir, 5, k);
    appendFileSync(f, lines(3000 + k, 3001 + k));
    compress(f);
  }
  const d4 = dayFile(a.dir, 6);
  appendFileSync(d4, lines(4000, 4001));
  const { path: _name, ...older } = JSON.parse(readFileSync(a.pos, 'utf8'));
  writeFileSync(a.pos, JSON.stringify(older));
  const d = rig(t, {}, home);
  d.follower.start();
  await waitFor(() => d.got.length >= 106, 5000, 'fourth run').catch(() => {});
  t.same(d.got, [...lines(2000, 2005).trim().split('\n'), ...lines(3003, 3103).trim().split('\n'), L(4000)],
    'the rest of -002 from its .gz, the 100 rotated since, then the 6th');
  t.match(d.follower.stats(), { rotated_between: 100, rotated_unread: 0 });
});

t.test('a new live file given the inode of the last rotated file finished (ext4 reuse), after .gz files were read between: read from its start', async (t) => {
  // The day finished as rotated was remembered by its inode alone, and kept while the files between
  // were read from their .json.gz: the next alerts.json, made with that freed inode, was read from the
  // old day's offset — its first alerts never published.
  const r = rig(t, { fromBeginning: true });
  mkdirSync(r.dir, { recursive: true });
  const nov = join(r.dir, '2026/Nov');
  const d5 = dayFile(r.dir, 5);
  appendFileSync(d5, lines(0, 100));
  r.follower.start();
  await waitFor(() => r.got.length === 100, 3000, 'day 5');
  // Two rotations while the follower looks elsewhere: -001 (compressed already), -002 live; the 5th compressed.
  writeFileSync(join(nov, 'ossec-alerts-05-001.json.gz'), gzipSync(lines(200, 203)));
  const e = join(nov, 'ossec-alerts-05-002.json');
  writeFileSync(e, lines(300, 303));
  unlinkSync(r.file);
  linkSync(e, r.file);
  const ino5 = statSync(d5).ino;
  writeFileSync(`${d5}.gz`, gzipSync(lines(0, 100)));
  unlinkSync(d5);
  r.follower.kick(); // the 5th finished (its descriptor closed: its inode free), -001.json.gz begun
  // Another rotation meanwhile: -003 made (ext4: the 5th's inode, most of the time), -002 compressed.
  const g = join(nov, 'ossec-alerts-05-003.json');
  writeFileSync(g, lines(400, 410));
  const reused = statSync(g).ino === ino5;
  writeFileSync(`${e}.gz`, gzipSync(lines(300, 303)));
  unlinkSync(e);
  unlinkSync(r.file);
  linkSync(g, r.file);
  await waitFor(() => r.got.length >= 116, 3000, 'every file').catch(() => {});
  r.follower.kick();
  await new Promise((res) => setTimeout(res, 100));
  t.comment(`the new live file ${reused ? 'reuses' : 'does not reuse'} the 5th's inode`);
  t.same(r.got, (lines(0, 100) + lines(200, 203) + lines(300, 303) + lines(400, 410)).trim().split('\n'), 'every alert once, in order');
});

t.test('thousands of empty files named like rotated days (planted by the Wazuh user): walked in bounded turns, listed once, the position moving on', async (t) => {
  // Each file walked listed and sorted the whole month again, all in one synchronous turn (empty files
  // read no bytes, so the byte budget never ended it): 4000 files held the event loop 46 s, past the
  // watchdog, and the position saved before the walk made every restart walk them again.
  const N = 1500;
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  dayFile(a.dir, 5);
  appendFileSync(join(a.dir, '2026/Nov/ossec-alerts-05.json'), lines(0, 3));
  a.follower.start();
  await waitFor(() => a.got.length === 3, 3000, 'day 5');
  for (let k = 1; k <= N; k++) writeFileSync(join(a.dir, '2026/Nov', `ossec-alerts-${String(5 + Math.floor(k / 1000)).padStart(2, '0')}-${String(k % 1000).padStart(3, '0')}.json`), '');
  mkdirSync(join(a.dir, '2026/Dec'), { recursive: true });
  const dec = join(a.dir, '2026/Dec/ossec-alerts-01.json');
  writeFileSync(dec, lines(100, 101));
  unlinkSync(a.file);
  linkSync(dec, a.file);
  const t0 = performance.now();
  a.follower.kick();
  const held = performance.now() - t0;
  t.ok(held < 1000, `one kick() holds the event loop briefly (${held.toFixed(0)} ms)`);
  t.ok(a.follower.stats().rotated_between < N, `the walk goes on in later turns (${a.follower.stats().rotated_between} files in the first)`);
  await a.follower.close(); // a stop (or the watchdog) in the middle of the walk
  const saved = JSON.parse(readFileSync(a.pos, 'utf8'));
  t.match(saved.path, /^2026\/Nov\/ossec-alerts-0[56]-\d{3}\.json$/, `the position moved on into the walk (${saved.path})`);

  const b = rig(t, {}, home);
  b.follower.start();
  await waitFor(() => b.got.length === 1, 10_000, 'the live file after the walk');
  t.same(b.got, [L(100)]);
  t.equal(a.follower.stats().rotated_between + b.follower.stats().rotated_between, N, 'the walk resumed where it was stopped (in the file it stopped in), each file walked once');
});

t.test('a flood of tiny lines: a turn hands the sink a bounded number of lines, then the event loop gets its turn; none lost, none twice', async (t) => {
  // The turn was bounded in bytes only: 4 MiB of `{}` lines is 1.4 million events in one synchronous turn.
  const r = rig(t, { fromBeginning: true });
  mkdirSync(r.dir, { recursive: true });
  const day = dayFile(r.dir, 5);
  const N = 60_000;
  appendFileSync(day, '{}\n'.repeat(N - 1) + `${L(1)}\n`); // 180 KB: one read
  const t0 = performance.now();
  r.follower.kick();
  const first = r.got.length;
  t.comment(`first turn: ${first} lines in ${(performance.now() - t0).toFixed(0)} ms`);
  t.ok(first > 0 && first <= 5000, `one kick() hands over at most 5000 lines (${first})`);
  await waitFor(() => r.got.length >= N, 5000, 'every line').catch(() => {});
  t.equal(r.got.length, N, 'every line, once');
  t.equal(r.got.at(-1), L(1), 'in order, to the last');
  t.equal(r.follower.stats().bytes, statSync(day).size, 'bytes counted once');
  t.equal(r.follower.stats().offset, statSync(day).size, 'the position at the end');
});

t.test('gzip bombs planted as newer .json.gz files: the search for the saved day\'s .gz inflates only heads, in bounded turns, and still finds it', async (t) => {
  // Each look inflated the first 16 KiB of a candidate whole (~16 MiB for a bomb), all in one turn.
  const home = mkdtempSync(join(tmpdir(), 'wnt-follow-'));
  const a = rig(t, { fromBeginning: true }, home);
  mkdirSync(a.dir, { recursive: true });
  const d5 = dayFile(a.dir, 5);
  appendFileSync(d5, lines(0, 200)); // over a KiB: the head identifies it
  a.follower.start();
  await waitFor(() => a.got.length === 200, 3000, 'first run');
  await a.follower.close();
  // While stopped: the 5th ends and is compressed; the position is one without the file's name (an
  // earlier version's, or a one-name alerts.json), so the .gz is looked for by its head, newest first.
  appendFileSync(d5, lines(200, 205));
  const live = dayFile(a.dir, 6);
  appendFileSync(live, lines(1000, 1001));
  writeFileSync(`${d5}.gz`, gzipSync(readFileSync(d5)));
  unlinkSync(d5);
  const { path: _name, ...older } = JSON.parse(readFileSync(a.pos, 'utf8'));
  writeFileSync(a.pos, JSON.stringify(older));
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024, 0x61), { level: 9 }).subarray(0, 16 * 1024);
  mkdirSync(join(a.dir, '2026/Dec'), { recursive: true });
  for (let k = 1; k <= 100; k++) writeFileSync(join(a.dir, '2026/Dec', `ossec-alerts-01-${String(k).padStart(3, '0')}.json.gz`), bomb);

  const b = rig(t, {}, home);
  let last = performance.now();
  let worst = 0;
  const lag = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
  const t0 = performance.now();
  b.follower.start();
  const held = performance.now() - t0;
  await waitFor(() => b.got.length >= 6, 10_000, 'the rest of the 5th, then the 6th').catch(() => {});
  clearInterval(lag);
  t.ok(held < 500, `start() holds the event loop briefly (${held.toFixed(0)} ms)`);
  t.ok(worst < 500, `the event loop keeps its turns (worst gap ${worst.toFixed(0)} ms)`);
  t.same(b.got, [...lines(200, 205).trim().split('\n'), L(1000)], 'the rest of the 5th from its .gz, then the 6th');
  t.match(b.follower.stats(), { rotated_compressed: 1, rotated_unread: 0 });
});
