// Opening a file where someone else may have put something (SPEC §8): the tap is root, so a symbolic
// link planted where it reads or writes would have it read, truncate, chmod or append to any file of
// the system, and a FIFO would block it on the event loop for ever. So a file is opened without
// following a symbolic link in its last component (O_NOFOLLOW) and without blocking (O_NONBLOCK: a
// FIFO opens at once and is then refused), and what was opened is checked through the descriptor
// (fstat: no race with a swap between a look and the open), else closed unread. One way for the files
// of logs/alerts (alerts/trusted-open.ts), the lock, and the files the tap keeps for itself beside the
// spool (its segments and ack cursor, agents.status, alerts.position).
import { closeSync, constants as fc, fstatSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { open as openAsync, rename as renameAsync, unlink as unlinkAsync } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EUID, fileKind, lstatOrNull, readWhole } from './read-file.js';
import { openInView } from './in-view.js';

/** Added to every open: a terminal device opened by mistake must not become the tap's controlling terminal either. */
const SAFE = fc.O_NOFOLLOW | fc.O_NONBLOCK | fc.O_NOCTTY;

export type CheckedOpen =
  | { fd: number; st: Stats }
  /** Not opened, or closed unread: `refused` says what it is; dev/ino tell this file from the next one. */
  | { refused: string; dev: number; ino: number };

/**
 * Open `path` (`flags`: fs.constants, O_NOFOLLOW|O_NONBLOCK added) and keep it when `check` finds
 * nothing wrong with its fstat; else close it unread and say what it is. A symbolic link (ELOOP), a
 * socket (ENXIO; or a FIFO opened for writing with no reader) and a directory opened for writing
 * (EISDIR) are refused the same way. Other errors (ENOENT, EEXIST, EMFILE…) are thrown.
 */
export function openChecked(path: string, flags: number, check: (st: Stats) => string | null, mode = 0o600): CheckedOpen {
  let fd: number;
  try {
    fd = openInView(path, flags | SAFE, mode); // below a container's root: as it resolves the path
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENXIO' || code === 'EISDIR') {
      const l = lstatOrNull(path); // below a container's root too, as openInView looked
      const what = code === 'ELOOP' ? 'a symbolic link' : l ? fileKind(l) : code === 'ENXIO' ? 'a socket or a FIFO' : 'a directory';
      return { refused: what, dev: l?.dev ?? 0, ino: l?.ino ?? 0 };
    }
    throw e;
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const why = check(st);
  if (why === null) return { fd, st };
  closeSync(fd);
  return { refused: why, dev: st.dev, ino: st.ino };
}

export { EUID };

/**
 * Why a file is not one the tap keeps for itself — a regular file of its user with that one name —
 * or null when it is. A hard link is refused too: a user's second name for /etc/shadow (where
 * fs.protected_hardlinks is off, on the same file system) is a regular file of root's, and the tap
 * never gives its files a second name.
 */
export function notOwnFile(st: Stats): string | null {
  if (!st.isFile()) return `not a regular file (${fileKind(st)})`;
  if (st.uid !== EUID) return `owned by uid ${st.uid}, not by the tap's user (uid ${EUID})`;
  if (st.nlink > 1) return `a file with ${st.nlink} names (a hard link)`;
  return null;
}

/** A file where the tap keeps one of its own is not one: closed unread. `code`: a fault of the system to count and survive, not a bug. */
export class NotOwnFile extends Error {
  readonly code = 'ENOTOWN';
  constructor(readonly path: string, readonly why: string) {
    super(`${path} is ${why}`);
  }
}

/** Open one of the tap's own files (see notOwnFile); NotOwnFile when what is there is not one. */
export function openOwn(path: string, flags: number, mode = 0o600): number {
  const r = openChecked(path, flags, notOwnFile, mode);
  if ('refused' in r) throw new NotOwnFile(path, r.refused);
  return r.fd;
}

/** One of the tap's own files, whole (NotOwnFile, ENOENT… thrown), at most `maxBytes` of it. */
export function readOwn(path: string, maxBytes: number): Buffer {
  const fd = openOwn(path, fc.O_RDONLY);
  try {
    return readWhole(fd, Math.min(fstatSync(fd).size, maxBytes));
  } finally {
    closeSync(fd);
  }
}

/**
 * Replace one of the tap's own files with `data` (or its pieces, written one by one: a large file need
 * never be one string): a copy `tmp` made new — a leftover removed first,
 * then O_CREAT|O_EXCL, so a link or a FIFO planted there is never followed or blocked on — written
 * (`sync`: and fsynced), renamed over `path` (a crash leaves the old file or the new one, and rename
 * replaces a link planted at `path` instead of following it; with `sync`, the directory is fsynced
 * after it, so the rename itself outlives a power loss). On a failure the copy is removed and the
 * error thrown.
 */
export function replaceOwn(path: string, data: string | Uint8Array | Iterable<string>, o: { tmp?: string; sync?: boolean } = {}): void {
  const tmp = o.tmp ?? `${path}.tmp`;
  try {
    unlinkSync(tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // a directory there (EISDIR): said as it is
  }
  try {
    const fd = openOwn(tmp, fc.O_WRONLY | fc.O_CREAT | fc.O_EXCL);
    try {
      const pieces = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
      for (const p of pieces) writeAll(fd, typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
      if (o.sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* not made */ }
    throw e;
  }
  if (o.sync) syncDir(path);
}

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}

/**
 * fsync of the directory a replace renamed in, so the rename outlives a power loss. The directory is
 * followed (the spool names its files through /proc/self/fd/<its pinned directory>, a link). Best
 * effort: the file is already replaced, so a failure here is no failed replace — the rename stands,
 * only its durability is the file system's.
 */
function syncDir(path: string): void {
  try {
    const d = openSync(dirname(path), fc.O_RDONLY | fc.O_DIRECTORY);
    try {
      fsyncSync(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // said by nothing: see above
  }
}

/**
 * replaceOwn on libuv's threads, for a file rewritten while the tap runs (the alerts position): the
 * same copy made new with O_CREAT|O_EXCL (a leftover removed first; no link followed, no FIFO
 * blocked on) and checked through its descriptor, written, fdatasynced when `sync` — before the
 * rename, so a power loss leaves the old file or the whole new one, never a renamed file whose
 * data the kernel had not written yet (empty on XFS, on ext4 without auto_da_alloc) — then renamed
 * over `path`, and the directory fsynced (`sync`): until then the rename itself may not outlive a
 * power loss (the alerts position's first write would leave no file at all). Nothing waits for the disk on the event loop: a sync that takes seconds holds one
 * of libuv's threads, not the process. On a failure the copy is removed and the error thrown (the
 * promise rejected).
 */
export async function replaceOwnAsync(path: string, data: string | Uint8Array, o: { tmp?: string; sync?: boolean } = {}): Promise<void> {
  const tmp = o.tmp ?? `${path}.tmp`;
  try {
    await unlinkAsync(tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    await writeOwnAsync(tmp, fc.O_CREAT | fc.O_EXCL, data, !!o.sync);
    await renameAsync(tmp, path);
  } catch (e) {
    try { await unlinkAsync(tmp); } catch { /* not made */ }
    throw e;
  }
  if (o.sync) await syncDirAsync(path);
}

/**
 * Append `data` to one of the tap's own files that exists, on libuv's threads: opened without following
 * a link or blocking on a FIFO, used only when it is a regular file of the tap's user with one name,
 * written, fdatasynced. A write that fails part-way may leave part of `data` at the end (the caller
 * rewrites the file whole after a failure). Rejects with ENOENT when there is no such file.
 */
export async function appendOwnAsync(path: string, data: string): Promise<void> {
  await writeOwnAsync(path, fc.O_APPEND, data, true);
}

/**
 * Open `path` for writing (`flags` added; never following a link, never blocking on a FIFO), check it
 * is a regular file of the tap's user with one name, write `data` whole, fdatasync it when `sync`.
 */
async function writeOwnAsync(path: string, flags: number, data: string | Uint8Array, sync: boolean): Promise<void> {
  const fh = await openAsync(path, fc.O_WRONLY | flags | SAFE, 0o600);
  try {
    const why = notOwnFile(await fh.stat());
    if (why !== null) throw new NotOwnFile(path, why);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += (await fh.write(buf, off)).bytesWritten;
    if (sync) await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Remove one of the tap's files, on libuv's threads, and fsync its directory after it, so the removal
 * outlives a power loss (the file back after it could hold what must not come back). ENOENT is no error;
 * a directory sync that fails is (rejects).
 */
export async function removeOwnAsync(path: string): Promise<void> {
  try {
    await unlinkAsync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    // Gone already: maybe by an earlier removal whose directory sync failed — synced now.
  }
  // Not best effort here: a removal the caller takes for durable must be (its failure rejects).
  await fsyncDirOf(path);
}

/** fsync of the directory `path` is in, on libuv's threads; rejects when it fails. */
async function fsyncDirOf(path: string): Promise<void> {
  const d = await openAsync(dirname(path), fc.O_RDONLY | fc.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** syncDir on libuv's threads. */
async function syncDirAsync(path: string): Promise<void> {
  try {
    await fsyncDirOf(path);
  } catch {
    // best effort, as syncDir
  }
}
