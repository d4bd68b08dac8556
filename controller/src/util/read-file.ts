// Reading a file the tap was pointed at (its configuration, a key, credentials)
// without ever blocking on it. A FIFO where a file should be would block open(2) until some
// writer comes — forever, at start-up; a character device (/dev/zero) reads without end. So
// the path is stat()ed first and refused unless it is a regular file, opened O_NONBLOCK (a FIFO
// swapped in meanwhile opens at once), checked again with fstat, and read to a bound.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { foreignViewOf, onForeignMount, throughViews, walkDenied } from './proc-root.js';
import { openInView, statInView } from './in-view.js';
import { clipPath } from './clip.js';

/** The file exists but is not a regular file (a FIFO, a device, a socket, a directory). */
export class NotRegularFile extends Error {
  readonly code = 'ENOTREG';
}

/** What a non-regular file is, for a message. */
export function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * The entry itself (a symlink is not followed), or null when there is none (or it cannot be looked at).
 * Below a container's root: the entry the container's path leads to (util/in-view.ts).
 */
export function lstatOrNull(path: string): Stats | null {
  try {
    return statInView(path, { follow: false });
  } catch {
    return null;
  }
}

/**
 * A file holding a secret gives no access to group or others (mode & 0077 is 0): its mode as
 * four octal digits (`0644`) when it does, else null. One rule for the start's check and for the
 * secret files read again later.
 */
export function secretModeOpen(mode: number): string | null {
  const m = mode & 0o777;
  return (m & 0o077) !== 0 ? m.toString(8).padStart(4, '0') : null;
}

/** The user the tap runs as: the owner of every file it keeps for itself, and one a secret may belong to. */
export const EUID = process.geteuid?.() ?? 0;

/**
 * A file holding a secret belongs to root or to the tap's own user: whoever else owns it can read
 * it and put another in its place (the key the tap encrypts with, the credentials it sends),
 * whatever its mode says. Why not, as a phrase, when it does not; else null. One rule for the
 * start's check and for the secret files read again later, as secretModeOpen.
 */
export function secretOwnerOther(st: Stats): string | null {
  if (st.uid === 0 || st.uid === EUID) return null;
  return `owned by uid ${st.uid}, not by root${EUID === 0 ? '' : ` or the tap's user (uid ${EUID})`}`;
}

/**
 * The largest CA bundle, certificate or secret file read, at the start's check and at each
 * connection (a system CA bundle is ~220 KB).
 */
export const CREDENTIAL_FILE_BYTES = 1024 * 1024;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK; // libuv adds O_CLOEXEC

function refuse(path: string, st: Stats): NotRegularFile {
  return new NotRegularFile(`'${clipPath(path)}' is not a regular file (${fileKind(st)})`);
}

function tooLarge(path: string, size: number, maxBytes: number): Error {
  return new Error(`'${clipPath(path)}' is ${size} bytes, more than the ${maxBytes} allowed`);
}

/**
 * The contents of a regular file, read without blocking. Throws NotRegularFile for anything
 * else, the fs error (ENOENT, EACCES…) when it cannot be opened, an Error past `maxBytes`.
 */
export function readRegularFileSync(path: string, maxBytes = 64 * 1024 * 1024): Buffer {
  // Below a container's root (its ossec.conf, read for the node name): as the container resolves the path.
  const st = statInView(path);
  if (!st.isFile()) throw refuse(path, st);
  const fd = openInView(path, OPEN_FLAGS);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw refuse(path, fst);
    if (fst.size > maxBytes) throw tooLarge(path, fst.size, maxBytes);
    // What the file held when opened (a file growing meanwhile is read again next time).
    return readWhole(fd, fst.size);
  } finally {
    closeSync(fd);
  }
}

/** A file whose contents someone other than root (or the tap's user) could choose. */
export class UntrustedFile extends Error {
  readonly code = 'EUNTRUSTED';
  /** `container`: refused as a container's file (its path or its mount), whatever its owner and mode. */
  constructor(message: string, readonly container = false) {
    super(message);
  }
}

/**
 * Who else could change a file: its owner when that is not root or the tap's user, or group and
 * others when they may write it. Why, as a phrase; null when nobody else can. Its directory does
 * not matter: someone who may write there can put another file in its place, but one of their
 * own (fs.protected_hardlinks keeps them from linking another's), which this then refuses.
 */
export function writableByOthers(st: Stats): string | null {
  const owner = secretOwnerOther(st);
  if (owner) return owner;
  const m = st.mode & 0o777;
  return (m & 0o022) !== 0 ? `writable by ${(m & 0o020) !== 0 ? 'its group' : 'others'} (mode ${m.toString(8).padStart(4, '0')})` : null;
}

/**
 * Why a file below another process's view of the files (`/proc/<pid>/root/…`: a container's, as the
 * host reaches it) is no file of the host administrator's, whoever owns it: the container's root user
 * (uid 0 too, without a user namespace) may write, replace or link it. null for any other path.
 */
export function containerWritten(path: string): string | null {
  const resolved = throughViews(path); // a host link to a directory below a container's root too
  // Closed to this user on the way (not root): the read that follows says permission denied (exit 3).
  if (resolved === null && walkDenied(path)) return null;
  if (resolved === null) {
    return 'on a path that cannot be followed to its end by the tap (more than 40 links, a name too long once they are resolved, '
      + `the tap's own /proc/self/cwd or fd): whether a container's files are on the way cannot be told, so ${MAY_HAVE_WRITTEN.replace('its root user', 'a container\'s root user')}`;
  }
  const view = foreignViewOf(resolved);
  return view ? `below ${view}, another process's view of the files (a container's): ${MAY_HAVE_WRITTEN}` : null;
}

const MAY_HAVE_WRITTEN = 'its root user may have written it, whatever its owner and mode say';
/** containerWritten's reason for a file whose path did not say it (a host link into a container): its mount did. */
export const FOREIGN_MOUNT = `on a mount of another process's view of the files (a container's, reached through a link?): ${MAY_HAVE_WRITTEN}`;

/**
 * A file whose contents steer the tap — its configuration, the CA it trusts, the secrets it sends —
 * read only when nobody but root (or the tap's user) can have chosen them: a regular file, owned so,
 * writable by its owner only (`secret`: and giving group and others no access at all); a symbolic
 * link is followed only when it is root's too; nothing below a container's root (containerWritten). Checked on the descriptor read, so what is checked is
 * what is read. Throws UntrustedFile (its message says why and the fix, not the path), NotRegularFile,
 * the fs error, or an Error past `maxBytes`.
 */
export function readTrustedFileSync(path: string, maxBytes: number, o: { secret?: boolean } = {}): Buffer {
  const foreign = containerWritten(path);
  if (foreign) throw new UntrustedFile(foreign, true);
  const link = lstatSync(path);
  if (link.isSymbolicLink()) {
    const owner = secretOwnerOther(link);
    if (owner) throw new UntrustedFile(`a symbolic link ${owner}: its owner can point it elsewhere (chown -h root:)`);
  }
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(path, st);
    if (onForeignMount(fd)) throw new UntrustedFile(FOREIGN_MOUNT, true);
    const owner = secretOwnerOther(st);
    if (owner) throw new UntrustedFile(`${owner}: its owner can ${o.secret ? 'read and ' : ''}replace it (chown root:)`);
    const open = o.secret ? secretModeOpen(st.mode) : null;
    if (open) throw new UntrustedFile(`mode ${open} gives access to group or others (chmod 600)`);
    const other = writableByOthers(st);
    if (other) throw new UntrustedFile(`${other}: they can replace what it says (chmod go-w)`);
    if (st.size > maxBytes) throw tooLarge(path, st.size, maxBytes);
    return readWhole(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

/** `size` bytes of an open file from `from` (its first by default; fewer when it is shorter now). */
export function readWhole(fd: number, size: number, from = 0): Buffer {
  const buf = Buffer.alloc(size);
  let len = 0;
  while (len < buf.length) {
    const n = readSync(fd, buf, len, buf.length - len, from + len);
    if (n === 0) break;
    len += n;
  }
  return buf.subarray(0, len);
}
