// Which directory each spool_dir was, noted where only root writes, so that a start can tell a spool
// that is gone since the last run from a first one. On Wazuh the default spool_dir is in `<home>/var`,
// root:wazuh 0770: the wazuh group may rename the tap's (root, 0700) directory while the tap is
// stopped — after a crash, before systemd restarts it — and the next start made a new, empty one
// without a word: the events it held never delivered, the statuses its journal kept forgotten (SPEC §5:
// nothing is lost silently). The note is the directory's device and inode, by spool_dir's path: at a
// start that finds another directory there (made anew, or put in its place), the tap says so and
// names the old one when it is still beside it (a rename within the parent), by identity.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { replaceOwn } from '../util/checked-open.js';
import { readTrustedFileSync } from '../util/read-file.js';

/** Where the notes live; a test may move it. Root's only (the unit's StateDirectory). */
export const STATE_DIR = process.env.WAZUH_NATS_TAP_STATE_DIR ?? '/var/lib/wazuh-nats-tap';

/**
 * A directory's identity across restarts: its inode and birth time (statx) — the device number is not
 * kept: a disk may come back under another (a loop device, a USB or iSCSI disk, an LVM change) with the
 * same directory on it. Where the file system has no birth time (0), the device and the inode.
 */
interface Note { spool_dir: string; dev: number; ino: number; birth: number; since: string }

const sameDir = (n: Pick<Note, 'dev' | 'ino' | 'birth'>, st: Stats) => n.ino === st.ino
  && (n.birth > 0 && st.birthtimeMs > 0 ? n.birth === st.birthtimeMs : n.dev === st.dev);

/** What a start found: the spool of the last run is not the directory at spool_dir now. */
export interface SpoolReplaced {
  /** The directory the last run used (device:inode), and since when it had been noted. */
  was: string;
  noted: string;
  /** Where it is now, found in spool_dir's parent by its identity; null when not there. */
  foundAt: string | null;
}

function noteFile(stateDir: string, spoolDir: string): string {
  return join(stateDir, `spool-${createHash('sha256').update(spoolDir).digest('hex').slice(0, 16)}.json`);
}

function readNote(file: string, spoolDir: string): Note | null {
  try {
    const n = JSON.parse(readTrustedFileSync(file, 4096).toString('utf8')) as Note;
    return n && n.spool_dir === spoolDir && Number.isSafeInteger(n.dev) && Number.isSafeInteger(n.ino)
      && typeof n.birth === 'number' && Number.isFinite(n.birth) && typeof n.since === 'string' ? n : null;
  } catch {
    return null; // none yet (a first run), or unreadable: nothing to compare
  }
}

/** The entry of `parent` that is the directory `n` noted: the old spool renamed beside the new one. */
function findById(parent: string, n: Note): string | null {
  try {
    for (const name of readdirSync(parent).slice(0, 10_000)) {
      const st = lstatSync(join(parent, name));
      if (st.isDirectory() && sameDir(n, st)) return join(parent, name);
    }
  } catch { /* the parent unreadable: not found */ }
  return null;
}

/**
 * Compare the spool directory opened (`st`, at `spoolDir`, in `parent`) with the last run's note, then
 * note it. Never throws: a state directory that cannot be made or written (read-only, not root's) only
 * means the next start cannot tell (`onNoteError`).
 */
export function checkSpoolNote(spoolDir: string, st: Stats, parent: string,
  o: { stateDir?: string; onNoteError?: (why: string) => void } = {}): SpoolReplaced | null {
  const stateDir = o.stateDir ?? STATE_DIR;
  const file = noteFile(stateDir, spoolDir);
  const last = readNote(file, spoolDir);
  const replaced = last && !sameDir(last, st)
    ? { was: `${last.dev}:${last.ino}`, noted: last.since, foundAt: findById(parent, last) } : null;
  // Noted again when it moved to another device (same directory): the note then names the device in use.
  if (!last || replaced || last.dev !== st.dev) {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const s = lstatSync(stateDir);
      if (!s.isDirectory() || s.uid !== process.geteuid?.() || (s.mode & 0o022) !== 0) {
        throw new Error(`${stateDir} is not a directory of the tap's user that only it may write`);
      }
      const note: Note = { spool_dir: spoolDir, dev: st.dev, ino: st.ino, birth: st.birthtimeMs, since: new Date().toISOString() };
      replaceOwn(file, `${JSON.stringify(note)}\n`, { sync: true });
    } catch (e) {
      o.onNoteError?.((e as Error).message);
    }
  }
  return replaced;
}
