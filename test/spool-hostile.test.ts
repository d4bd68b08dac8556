// Something planted in the spool directory (SPEC §8: a FIFO or a symlink where a file should be is
// reported and survived; the tap is root on a shared host): a link where a segment, the next segment
// or the cursor's copy will be, a hard link, a FIFO, a directory of another user or one others may
// write, the directory renamed and replaced under the running spool. What a link points to is never
// read, truncated, chmodded or written; the spool starts and goes on, and says what it left alone.
// The files beside it (agents.status, alerts.position) likewise.
import t from 'tap';
import { spawn } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, constants, existsSync, linkSync, lstatSync, mkdirSync, openSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool, type SpoolMessage } from '../controller/src/publish/spool.js';
import { StatusJournal } from '../controller/src/state/sources/status-journal.js';
import { readPosition, writePosition } from '../controller/src/alerts/position.js';
import { privateTmpfs } from './helpers/mount-ns.js';
import { onForeignMount } from '../controller/src/util/proc-root.js';

const base = () => mkdtempSync(join(tmpdir(), 'wnt-hostile-spool-'));
const msg = (i: number, pad = 0): SpoolMessage => ({
  subject: `wazuh.agent.${String(i % 7).padStart(3, '0')}.status`, headers: {},
  body: JSON.stringify({ i, pad: 'x'.repeat(pad) }), kind: 'status', eventId: `ev-${i}`,
});
const ids = (es: { eventId: string }[]) => es.map((e) => e.eventId);
const seg = (id: number) => `seg-${String(id).padStart(12, '0')}.log`;

/** A root-only file outside the spool: what a link planted in it points to. Returns a check that it is as it was. */
function victim(t: Tap.Test, dir: string, text = 'root:x:0:0:root:/root:/bin/bash\n') {
  const path = join(dir, 'victim');
  writeFileSync(path, text);
  chmodSync(path, 0o644);
  return {
    path,
    untouched(what: string) {
      t.equal(readFileSync(path, 'utf8'), text, `${what}: the victim's content is as it was`);
      t.equal(statSync(path).mode & 0o777, 0o644, `${what}: its mode too`);
    },
  };
}

/** What the spool said through onWarn. */
function warnings() {
  const said: { msg: string; fields: Record<string, unknown> }[] = [];
  return { said, onWarn: (msg: string, fields: Record<string, unknown>) => { said.push({ msg, fields }); } };
}

t.test('a symbolic link planted as a segment: refused and said, never read, cut or chmodded; the spool starts', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  const s0 = Spool.open({ dir, maxBytes: 1 << 20 });
  s0.append([msg(1), msg(2)]);
  s0.close();
  const v = victim(t, b);
  symlinkSync(v.path, join(dir, seg(7))); // after the real one: the "last" segment, whose tail a reopen cuts
  const w = warnings();
  const s = Spool.open({ dir, maxBytes: 1 << 20, onWarn: w.onWarn });
  v.untouched('opened');
  t.equal(s.stats().refusedFiles, 1, 'counted');
  t.match(w.said, [{ msg: /not the tap's: left as it is/, fields: { file: join(dir, seg(7)), is: 'a symbolic link' } }], 'said, naming the file');
  t.same(ids(s.read(10)), ['ev-1', 'ev-2'], 'the spool\'s own records are there');
  t.ok(s.append([msg(3)])[0] > 0, 'and it accepts new ones');
  s.close();
  t.ok(lstatSync(join(dir, seg(7))).isSymbolicLink(), 'the link is left as it is');
  v.untouched('closed');
});

t.test('a hard link to another file as a segment: refused (the tap gives its files one name), the file untouched', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  Spool.open({ dir, maxBytes: 1 << 20 }).close();
  const v = victim(t, b);
  linkSync(v.path, join(dir, seg(3)));
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  t.equal(s.stats().refusedFiles, 1);
  s.close();
  v.untouched('opened');
});

t.test('a symbolic link planted where the next segment will be: never appended to; the segment after it is used', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  const v = victim(t, b, '# root crontab\n');
  const w = warnings();
  const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024, onWarn: w.onWarn });
  const active = readdirSync(dir).filter((f) => f.startsWith('seg-'))[0];
  const next = seg(Number(active.slice(4, -4)) + 1);
  symlinkSync(v.path, join(dir, next));
  const body = '\n* * * * * root touch /tmp/pwned\n';
  let accepted = 0;
  for (let i = 0; i < 100; i++) if (s.append([{ ...msg(i), body: body + 'x'.repeat(1000) }])[0] > 0) accepted++;
  t.equal(accepted, 100, 'every record accepted');
  v.untouched('rotated past it');
  t.equal(s.stats().refusedFiles, 1, 'counted');
  t.match(w.said, [{ fields: { file: join(dir, next), is: /there already, not made by the tap/ } }]);
  t.equal(s.read(1000).length, 100, 'every record is in the spool');
  s.close();
  t.ok(lstatSync(join(dir, next)).isSymbolicLink(), 'the link is left as it is');
});

t.test('a symbolic link planted as the cursor\'s copy (ack.tmp) or as the cursor: never written through; the cursor is saved', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  const v = victim(t, b, 'root ALL=(ALL:ALL) ALL\n');
  const s = Spool.open({ dir, maxBytes: 1 << 20, ackPersistMs: 20 });
  s.append([msg(1), msg(2), msg(3)]);
  symlinkSync(v.path, join(dir, 'ack.tmp'));
  for (const e of s.read(10)) s.ack(e.seq);
  await new Promise((r) => setTimeout(r, 100)); // several saves
  v.untouched('the cursor saved');
  t.equal(readFileSync(join(dir, 'ack'), 'utf8'), '3\n', 'the cursor is in its own file');
  t.equal(s.stats().writeErrors, 0);
  s.close();

  // The cursor itself a link: refused at open (read as none: what is left is replayed, never lost), replaced by the next save.
  const d2 = join(b, 'spool2');
  const s2 = Spool.open({ dir: d2, maxBytes: 1 << 20, ackPersistMs: 20 });
  s2.append([msg(1), msg(2)]);
  s2.close();
  symlinkSync(v.path, join(d2, 'ack'));
  const s3 = Spool.open({ dir: d2, maxBytes: 1 << 20, ackPersistMs: 20 });
  t.equal(s3.stats().refusedFiles, 1);
  const again = s3.read(10);
  t.same(ids(again), ['ev-1', 'ev-2'], 'replayed');
  for (const e of again) s3.ack(e.seq);
  await new Promise((r) => setTimeout(r, 100));
  s3.close();
  t.ok(lstatSync(join(d2, 'ack')).isFile(), 'the link was replaced (rename), not followed');
  v.untouched('the cursor replaced');
});

t.test('a FIFO as a segment: the spool opens at once (never blocks on it), says so, and goes on', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const fifo = join(dir, seg(3));
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  // Were it opened for reading, the open would wait for a writer: this one comes 3 s later (so a
  // spool that blocks fails here rather than hanging the test), and waits for ever for a reader
  // when none comes — killed at the end.
  const writer = spawn('sh', ['-c', `sleep 3; : > '${fifo}'`], { stdio: 'ignore' });
  t.teardown(() => { writer.kill('SIGKILL'); });
  const t0 = performance.now();
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  const ms = performance.now() - t0;
  t.ok(ms < 1000, `opened in ${Math.round(ms)} ms`);
  t.equal(s.stats().refusedFiles, 1, 'counted');
  t.ok(s.append([msg(1)])[0] > 0);
  t.same(ids(s.read(10)), ['ev-1']);
  s.close();
  t.ok(lstatSync(fifo).isFIFO(), 'left as it is');
});

t.test('a spool_dir of another user is refused, saying whose it is; nothing is written in it', async (t) => {
  const dir = join(base(), 'spool');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, 65534, 65534);
  t.throws(() => Spool.open({ dir, maxBytes: 1 << 20 }),
    { exitCode: 2, message: new RegExp(`^spool_dir ${dir} is owned by uid 65534, not by the tap's user \\(uid 0\\)`) });
  t.same(readdirSync(dir), [], 'nothing made there');
});

t.test('a spool_dir others may write is refused when it holds files not the tap\'s; made 0700 when it holds only the tap\'s', async (t) => {
  const dir = join(base(), 'shared');
  mkdirSync(dir);
  chmodSync(dir, 0o1777);
  writeFileSync(join(dir, 'notes.txt'), 'x');
  t.throws(() => Spool.open({ dir, maxBytes: 1 << 20 }),
    { exitCode: 2, message: new RegExp(`^spool_dir ${dir} is writable by its group and others \\(mode 1777\\) and holds files that are not the tap's \\(notes\\.txt\\)`) });
  t.equal(statSync(dir).mode & 0o7777, 0o1777, 'its mode is left as it is');
  t.same(readdirSync(dir), ['notes.txt'], 'nothing made there');

  const g = join(base(), 'group-writable');
  mkdirSync(g);
  chmodSync(g, 0o770);
  t.throws(() => { writeFileSync(join(g, 'other'), ''); Spool.open({ dir: g, maxBytes: 1 << 20 }); }, /writable by its group \(mode 0770\)/);

  const own = join(base(), 'own');
  const s0 = Spool.open({ dir: own, maxBytes: 1 << 20 });
  s0.append([msg(1)]);
  s0.close();
  chmodSync(own, 0o777);
  const s = Spool.open({ dir: own, maxBytes: 1 << 20 });
  t.equal(statSync(own).mode & 0o777, 0o700, 'only the tap\'s files: made 0700');
  t.same(ids(s.read(10)), ['ev-1']);
  s.close();
});

t.test('the directory renamed and replaced under a running spool: its writes stay in the directory it opened', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  const v = victim(t, b);
  const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 * 1024, ackPersistMs: 20 });
  s.append([msg(1)]);
  // Whoever writes the parent (on Wazuh, <home>/var is root:wazuh 0770) moves it away and puts their own
  // in its place, with links where the next segment and the cursor's copy will be.
  renameSync(dir, `${dir}.moved`);
  mkdirSync(dir, { mode: 0o777 });
  const active = readdirSync(`${dir}.moved`).filter((f) => f.startsWith('seg-'))[0];
  symlinkSync(v.path, join(dir, seg(Number(active.slice(4, -4)) + 1)));
  symlinkSync(v.path, join(dir, 'ack.tmp'));
  for (let i = 2; i <= 100; i++) s.append([msg(i, 1000)]); // rotates
  for (const e of s.read(10)) s.ack(e.seq);
  await new Promise((r) => setTimeout(r, 100)); // the cursor saved
  v.untouched('written on');
  t.same(readdirSync(dir).sort(), ['ack.tmp', seg(Number(active.slice(4, -4)) + 1)], 'nothing written in the replacement');
  t.ok(readdirSync(`${dir}.moved`).filter((f) => f.startsWith('seg-')).length > 1, 'the segments are in the directory opened');
  t.equal(readFileSync(join(`${dir}.moved`, 'ack'), 'utf8'), '10\n', 'and so is the cursor');
  t.equal(s.read(1000).length, 90, 'every record can be read back');
  s.close();
  v.untouched('closed');
});

t.test('agents.status and alerts.position: links planted there or at their copies are never followed', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const v = victim(t, b, '1 active 0\n');
  const journalPath = join(dir, 'agents.status');
  symlinkSync(v.path, journalPath);
  symlinkSync(v.path, `${journalPath}.tmp`);
  const errors: string[] = [];
  const j = new StatusJournal(journalPath, { onError: (e, op) => errors.push(`${op}: ${e.message}`) });
  t.same([...j.open()], [], 'the link is not read (the victim is a journal\'s shape)');
  t.match(errors, [/^read: .*agents\.status is a symbolic link/], 'said');
  j.recordMany([{ agentId: '002', status: 'disconnected', statusCode: 1 }]);
  j.close(new Map([[2, { status: 'disconnected', status_code: 1 }]]));
  t.ok(lstatSync(journalPath).isFile(), 'replaced by the tap\'s own file');
  t.equal(readFileSync(journalPath, 'utf8'), '2 disconnected 1\n');
  v.untouched('the journal');

  const pos = join(dir, 'alerts.position');
  symlinkSync(v.path, pos);
  const bad: string[] = [];
  t.equal(readPosition(pos, (why) => bad.push(why)), null, 'a link is not read');
  t.match(bad, [/a symbolic link/]);
  symlinkSync(v.path, `${pos}.tmp`);
  writePosition(pos, { dev: 1, ino: 2, offset: 3, headLen: 0, head: '' });
  t.ok(lstatSync(pos).isFile());
  t.same(readPosition(pos, () => t.fail('readable')), { dev: 1, ino: 2, offset: 3, headLen: 0, head: '' });
  v.untouched('the position');
});

t.test('kv.pending (agents_kv): a link or a FIFO planted there or at its copy is never read, followed or blocked on; the file is replaced through the directory opened', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const v = victim(t, b, `${JSON.stringify({ a: '001', s: 1, b: Buffer.from('{"status":"planted"}').toString('base64') })}\n`);
  symlinkSync(v.path, join(dir, 'kv.pending'));
  symlinkSync(v.path, join(dir, 'kv.pending.tmp'));
  const w = warnings();
  const s = Spool.open({ dir, maxBytes: 1 << 20, onWarn: w.onWarn });
  t.equal(s.readSide('kv.pending', 1 << 20), null, 'a link is not read (the victim is a kv.pending\'s shape)');
  t.equal(s.stats().refusedFiles, 1, 'counted');
  t.match(w.said.map((x) => x.msg), [/not the tap's/], 'said');
  await s.replaceSide('kv.pending', 'the tap\'s\n');
  t.ok(lstatSync(join(dir, 'kv.pending')).isFile(), 'replaced by the tap\'s own file (rename), not written through');
  t.equal(readFileSync(join(dir, 'kv.pending'), 'utf8'), 'the tap\'s\n');
  t.equal(statSync(join(dir, 'kv.pending')).mode & 0o777, 0o600, '0600');
  v.untouched('kv.pending written');
  // Written through the directory opened: a rename and replacement of spool_dir does not move it.
  renameSync(dir, `${dir}.moved`);
  mkdirSync(dir, { mode: 0o777 });
  await s.replaceSide('kv.pending', 'again\n');
  t.same(readdirSync(dir), [], 'nothing written in the replacement');
  t.equal(readFileSync(join(`${dir}.moved`, 'kv.pending'), 'utf8'), 'again\n', 'the directory opened has it');
  await s.replaceSide('kv.pending', '');
  t.notOk(readdirSync(`${dir}.moved`).includes('kv.pending'), '\'\' removes it');
  s.close();
  await t.rejects(s.replaceSide('kv.pending', 'late\n'), /closed/, 'none after close');

  // A FIFO there: the spool opens at once, never blocks on it.
  const d2 = join(b, 'spool2');
  mkdirSync(d2, { mode: 0o700 });
  execFileSync('mkfifo', [join(d2, 'kv.pending')]);
  const s2 = Spool.open({ dir: d2, maxBytes: 1 << 20 });
  t.equal(s2.readSide('kv.pending', 1 << 20), null, 'a FIFO is not read');
  t.equal(s2.stats().refusedFiles, 1);
  s2.close();
  v.untouched('closed');
});

t.test('kv.pending being written when the spool closes: the directory stays open until it is done, the write lands in it', async (t) => {
  const b = base();
  const dir = join(b, 'spool');
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  const writing = s.replaceSide('kv.pending', 'x'.repeat(1 << 20));
  s.close(); // the write is on libuv's threads: the directory's descriptor must outlive close() for it
  await writing;
  t.equal(readFileSync(join(dir, 'kv.pending'), 'utf8').length, 1 << 20, 'written whole in the spool directory');
});

/** `<b>/var` as Wazuh makes `<home>/var`: root:wazuh 0770 (65534 stands for the wazuh group). */
function wazuhVar(b: string): string {
  const dir = join(b, 'var');
  mkdirSync(dir);
  chownSync(dir, 0, 65534);
  chmodSync(dir, 0o770);
  return dir;
}

/** A directory of root's, 0755, holding a file of its own (/etc/sudoers.d, /etc/cron.d…): returns a check that it is as it was. */
function rootDir(t: Tap.Test, b: string) {
  const path = join(b, 'root-only');
  mkdirSync(path, { mode: 0o755 });
  chmodSync(path, 0o755);
  writeFileSync(join(path, 'README'), 'root\'s own\n');
  return {
    path,
    untouched(what: string) {
      t.same(readdirSync(path), ['README'], `${what}: nothing made in the directory the link points to`);
      t.equal(statSync(path).mode & 0o7777, 0o755, `${what}: its mode is as it was`);
    },
  };
}

t.test('a symbolic link at spool_dir in a directory others may write (<home>/var, root:wazuh 0770): refused, naming it; nothing made where it points', async (t) => {
  const b = base();
  const parent = wazuhVar(b);
  const target = rootDir(t, b);
  const dir = join(parent, 'nats-tap');
  symlinkSync(target.path, dir); // what the wazuh user can do in <home>/var
  t.throws(() => Spool.open({ dir, maxBytes: 1 << 20 }), {
    exitCode: 2,
    message: new RegExp(`^spool_dir ${dir} is a symbolic link to ${target.path}, in ${parent}, a directory its group \\(gid 65534\\) may write: `
      + 'the tap \\(root\\) does not follow it'),
  });
  target.untouched('refused');
  t.ok(lstatSync(dir).isSymbolicLink(), 'the link is left as it is');

  // Others (a sticky /tmp-like directory) the same.
  const shared = join(b, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  symlinkSync(target.path, join(shared, 'spool'));
  t.throws(() => Spool.open({ dir: join(shared, 'spool'), maxBytes: 1 << 20 }), { exitCode: 2, message: /is a symbolic link .* a directory its group and others may write/ });
  target.untouched('refused in a sticky directory');

  // A directory made there by the spool is used: the parent's mode is no reason to refuse.
  rmSync(dir);
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append([msg(1)]);
  s.close();
  t.ok(lstatSync(dir).isDirectory(), 'made, a directory');
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.ok(readdirSync(dir).some((f) => f.startsWith('seg-')), 'the spool is in it');
});

t.test('a symbolic link at spool_dir in a directory only root may write: the administrator\'s, followed', async (t) => {
  const b = base();
  const parent = join(b, 'etc');
  mkdirSync(parent, { mode: 0o755 });
  chmodSync(parent, 0o755);
  const real = join(b, 'spool-elsewhere');
  mkdirSync(real, { mode: 0o700 });
  const dir = join(parent, 'spool');
  symlinkSync(real, dir);
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append([msg(1)]);
  s.close();
  t.ok(readdirSync(real).some((f) => f.startsWith('seg-')), 'the spool is where the link points');
});

t.test('a symbolic link anywhere below a directory others may write, not only at spool_dir (<home>/var/a/nats-tap: a is the wazuh user\'s to replace): refused, naming it', async (t) => {
  const b = base();
  const wvar = wazuhVar(b);
  const target = rootDir(t, b);
  const a = join(wvar, 'a');
  const dir = join(a, 'nats-tap');
  symlinkSync(target.path, a); // what the wazuh user can do in <home>/var, to a root-only `a`
  t.throws(() => Spool.open({ dir, maxBytes: 1 << 20 }), {
    exitCode: 2,
    message: new RegExp(`^spool_dir ${dir}: ${a} is a symbolic link to ${target.path}, in ${wvar}, a directory its group \\(gid 65534\\) may write: `
      + 'the tap \\(root\\) does not follow it'),
  });
  target.untouched('refused');

  // The same path made of directories (root's `a`, made by the spool when missing): used.
  rmSync(a);
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append([msg(1)]);
  s.close();
  t.ok(lstatSync(a).isDirectory() && statSync(a).uid === 0, 'a made, root\'s');
  t.equal(statSync(a).mode & 0o777, 0o700, 'a made 0700');
  t.ok(readdirSync(dir).some((f) => f.startsWith('seg-')), 'the spool is in it');
});

t.test('below a container\'s root (/proc/<pid>/root/…): no link is followed, even in a directory of root\'s — an absolute one would lead the tap to the host\'s', async (t) => {
  // A process whose root the path goes through: the host's own root here, as a container's would be.
  const proc = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => { proc.kill('SIGKILL'); });
  const b = base();
  const target = rootDir(t, b); // a host directory of root's
  const home = join(b, 'home');
  mkdirSync(home, { mode: 0o755 });
  chmodSync(home, 0o755); // root's, 0755: on the host a link in it would be the administrator's
  symlinkSync(target.path, join(home, 'var')); // what the container's root can do to its <home>/var
  const through = `/proc/${proc.pid}/root${home}`;
  t.throws(() => Spool.open({ dir: `${through}/var/nats-tap`, maxBytes: 1 << 20 }), {
    exitCode: 2,
    message: new RegExp(`^spool_dir ${through}/var/nats-tap: ${through}/var is a symbolic link to ${target.path}, in ${through}, `
      + `a directory the container's root user \\(it is below /proc/${proc.pid}/root\\) may write`),
  });
  target.untouched('refused');
  // On the host path (no container root on the way) the same link, in root's directory, is the administrator's.
  const s0 = Spool.open({ dir: join(home, 'var/nats-tap'), maxBytes: 1 << 20 });
  s0.append([msg(1)]);
  s0.close();
  t.ok(readdirSync(join(target.path, 'nats-tap')).some((f) => f.startsWith('seg-')), 'followed on the host path');
  rmSync(join(target.path, 'nats-tap'), { recursive: true });

  // Directories all the way: the spool is made and used through the container's root.
  rmSync(join(home, 'var'));
  const s = Spool.open({ dir: `${through}/var/nats-tap`, maxBytes: 1 << 20 });
  s.append([msg(1)]);
  s.close();
  t.ok(readdirSync(join(home, 'var/nats-tap')).some((f) => f.startsWith('seg-')), 'the spool is made below the container\'s root');
});

t.test('an ack cursor past every record in the spool (damaged, or saved after a crash lost the segments\' end) is said, with both numbers', async (t) => {
  const dir = join(base(), 'spool');
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append([msg(1), msg(2), msg(3)]);
  s.close();
  writeFileSync(join(dir, 'ack'), '999999999\n');
  const w = warnings();
  const s2 = Spool.open({ dir, maxBytes: 1 << 20, onWarn: w.onWarn });
  t.same(ids(s2.read(10)), [], 'taken as delivered (it cannot be told from a crash\'s)');
  t.match(w.said, [{ msg: /the ack cursor is past every record in the spool/, fields: { cursor: 999999999, last_record: 3 } }], 'but said');
  s2.close();

  const d2 = join(base(), 'spool');
  const s3 = Spool.open({ dir: d2, maxBytes: 1 << 20, ackPersistMs: 20 });
  s3.append([msg(1), msg(2)]);
  for (const e of s3.read(10)) s3.ack(e.seq);
  await new Promise((r) => setTimeout(r, 100));
  s3.close();
  const w2 = warnings();
  Spool.open({ dir: d2, maxBytes: 1 << 20, onWarn: w2.onWarn }).close();
  t.same(w2.said.filter((x) => /ack cursor/.test(x.msg)), [], 'a cursor at the last record: nothing to say');
});

t.test('a host link into a container (a stable name for /proc/<pid>/root): the link resolved by hand says whose it is — no link below it is followed', async (t) => {
  const ns = await privateTmpfs(t);
  const b = base();
  const target = rootDir(t, b); // a host directory of root's
  mkdirSync(join(ns.view, 'home'), { mode: 0o755 });
  symlinkSync(target.path, join(ns.view, 'home/var')); // what the container's root can do to its <home>/var
  const link = join(b, 'manager'); // the administrator's stable name for the container's root
  symlinkSync(ns.view, link);
  t.throws(() => Spool.open({ dir: join(link, 'home/var/nats-tap'), maxBytes: 1 << 20 }), {
    exitCode: 2, message: /home\/var is a symbolic link to .*root-only, in .*home, a directory the container's root user \(.*(is below \/proc\/\d+\/root|is on a mount of another process's view)\) may write/,
  });
  target.untouched('refused');
});

t.test('a link in a directory only root may write that leads to a file, a FIFO or nowhere: a configuration error naming it, not a raw errno', async (t) => {
  const b = base();
  const parent = join(b, 'etc');
  mkdirSync(parent, { mode: 0o755 });
  chmodSync(parent, 0o755);
  writeFileSync(join(b, 'a-file'), 'x');
  symlinkSync(join(b, 'a-file'), join(parent, 'to-file'));
  symlinkSync(join(b, 'nowhere'), join(parent, 'to-nowhere'));
  for (const name of ['to-file', 'to-nowhere']) {
    for (const dir of [join(parent, name), join(parent, name, 'deeper')]) {
      t.throws(() => Spool.open({ dir, maxBytes: 1 << 20 }), { exitCode: 2, message: new RegExp(`${name} is a symbolic link to .*, which leads to no directory`) }, `${dir}`);
    }
  }
  t.notOk(existsSync(join(b, 'nowhere')), 'nothing made where the dangling link points');
});

t.test('a host link to a directory below a container\'s root: the container\'s own absolute link on the way is not followed into the host\'s', async (t) => {
  const ns = await privateTmpfs(t);
  const b = base();
  const target = rootDir(t, b); // a host directory of root's, which the container names by its host path
  mkdirSync(join(ns.view, 'var/ossec'), { recursive: true, mode: 0o755 });
  symlinkSync(target.path, join(ns.view, 'var/ossec/var')); // absolute: the kernel resolves it against the tap's root
  const link = join(b, 'manager-home'); // the administrator's name for the container's home
  symlinkSync(join(ns.view, 'var/ossec'), link);
  t.throws(() => Spool.open({ dir: join(link, 'var/nats-tap'), maxBytes: 1 << 20 }), {
    exitCode: 2, message: /var\/ossec\/var is a symbolic link to .*root-only, in .*\/root.*var\/ossec, a directory the container's root user/,
  });
  target.untouched('refused');
});

t.test('onForeignMount: a file on a mount of another mount namespace (a container\'s), not on the tap\'s own', async (t) => {
  const ns = await privateTmpfs(t);
  writeFileSync(join(ns.view, 'f'), 'x');
  const b = base();
  writeFileSync(join(b, 'g'), 'y');
  for (const [file, foreign] of [[join(ns.view, 'f'), true], [join(b, 'g'), false], ['/etc/hostname', false]] as const) {
    const fd = openSync(file, constants.O_RDONLY);
    t.equal(onForeignMount(fd), foreign, `${file}: ${foreign ? 'another namespace\'s mount' : 'the tap\'s'}`);
    closeSync(fd);
  }
});

t.test('a path the tap cannot follow to its end by hand (more than 40 links; its own /proc/self/cwd): refused, not taken for a host path', async (t) => {
  const b = base();
  const real = join(b, 'real');
  mkdirSync(real, { mode: 0o755 });
  let prev = real;
  for (let i = 0; i < 42; i++) { // each link in a directory only root may write, the next pointing at the one before
    const l = join(b, `l${i}`);
    symlinkSync(prev, l);
    prev = l;
  }
  t.throws(() => Spool.open({ dir: join(prev, 'spool'), maxBytes: 1 << 20 }), { exitCode: 2, message: /cannot be followed to its end/ });
  t.throws(() => Spool.open({ dir: '/proc/self/cwd/spool', maxBytes: 1 << 20 }), { exitCode: 2, message: /cannot be followed to its end/ });
  t.same(readdirSync(real), [], 'nothing made');
});
