// Which directory each spool_dir was, noted where only root writes (agent/spool-note.ts): a start
// tells a spool gone since the last run from a first one.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSpoolNote } from '../controller/src/agent/spool-note.js';

function dirs(t: Tap.Test) {
  const b = mkdtempSync(join(tmpdir(), 'wnt-spool-note-'));
  t.teardown(() => rmSync(b, { recursive: true, force: true }));
  const parent = join(b, 'var');
  mkdirSync(parent);
  const spool = join(parent, 'nats-tap');
  mkdirSync(spool, { mode: 0o700 });
  return { b, parent, spool, stateDir: join(b, 'state') };
}

t.test('a first run notes the directory; the same one again is nothing; another one is said, and the old one found beside it by identity', async (t) => {
  const { parent, spool, stateDir } = dirs(t);
  const errors: string[] = [];
  const check = () => checkSpoolNote(spool, statSync(spool), parent, { stateDir, onNoteError: (w) => errors.push(w) });
  t.equal(check(), null, 'a first run');
  t.equal(statSync(stateDir).mode & 0o777, 0o700, 'the state directory made root\'s, 0700');
  t.equal(readdirSync(stateDir).length, 1, 'one note');
  t.equal(check(), null, 'the same directory');
  renameSync(spool, join(parent, 'moved'));
  mkdirSync(spool, { mode: 0o700 });
  const moved = statSync(join(parent, 'moved'));
  t.match(check(), { was: `${moved.dev}:${moved.ino}`, foundAt: join(parent, 'moved') }, 'another directory: said, the old one named');
  t.equal(check(), null, 'said once: the new one is noted');
  rmSync(spool, { recursive: true });
  mkdirSync(spool, { mode: 0o700 });
  t.match(check(), { foundAt: null }, 'not in the parent: null');
  t.same(errors, []);
});

t.test('a note that is not the tap\'s (garbage, another spool_dir\'s, group-writable) is no note; a state directory others may write is refused, said', async (t) => {
  const { parent, spool, stateDir } = dirs(t);
  const errors: string[] = [];
  const check = () => checkSpoolNote(spool, statSync(spool), parent, { stateDir, onNoteError: (w) => errors.push(w) });
  check();
  const [note] = readdirSync(stateDir);
  writeFileSync(join(stateDir, note), 'garbage');
  t.equal(check(), null, 'garbage: taken for none (and noted again)');
  writeFileSync(join(stateDir, note), JSON.stringify({ spool_dir: '/other', dev: 1, ino: 2, since: 'x' }));
  t.equal(check(), null, 'another spool_dir\'s: none');
  for (const since of [{ a: '\u001b]0;x\u0007' }, 12, null, undefined]) {
    writeFileSync(join(stateDir, note), JSON.stringify({ spool_dir: spool, dev: 1, ino: 2, birth: 0, since }));
    t.equal(check(), null, `since not a string (${JSON.stringify(since)}): none`);
  }
  writeFileSync(join(stateDir, note), JSON.stringify({ spool_dir: spool, dev: 1, ino: 2, birth: 0, since: 'x' }));
  t.match(check(), { was: '1:2', noted: 'x' }, 'the same note with a string since: another directory, said');
  writeFileSync(join(stateDir, note), JSON.stringify({ spool_dir: spool, dev: 1, ino: 2, since: 'x' }));
  chmodSync(join(stateDir, note), 0o666);
  t.equal(check(), null, 'writable by others: not trusted, none');
  const shared = join(parent, 'shared-state');
  mkdirSync(shared, { mode: 0o777 });
  chmodSync(shared, 0o777);
  t.equal(checkSpoolNote(spool, statSync(spool), parent, { stateDir: shared, onNoteError: (w) => errors.push(w) }), null);
  t.match(errors, [/shared-state is not a directory of the tap's user that only it may write/], 'a state directory others may write: not written, said');
  t.same(readdirSync(shared), [], 'nothing written there');
});

t.test('the same directory on a disk that came back under another device number is the same (inode and birth time)', async (t) => {
  const { parent, spool, stateDir } = dirs(t);
  const st = statSync(spool);
  const born = Object.assign(Object.create(Object.getPrototypeOf(st)), st, { birthtimeMs: 1_700_000_000_123.5 });
  t.equal(checkSpoolNote(spool, born, parent, { stateDir }), null, 'noted');
  const moved = Object.assign(Object.create(Object.getPrototypeOf(st)), born, { dev: st.dev + 1 });
  t.equal(checkSpoolNote(spool, moved, parent, { stateDir }), null, 'another device number, the same inode and birth: the same directory');
  const other = Object.assign(Object.create(Object.getPrototypeOf(st)), born, { birthtimeMs: 1_700_000_000_999 });
  t.match(checkSpoolNote(spool, other, parent, { stateDir }), { was: `${st.dev + 1}:${st.ino}` }, 'another birth time: another directory (an inode number reused)');
});
