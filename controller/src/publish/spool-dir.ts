// Opening spool_dir (SPEC §8). The tap is root and the directory's parent may be another user's to
// write: on Wazuh the default `<home>/var/nats-tap` is in `<home>/var`, root:wazuh 0770. Whoever can
// write the parent can put a symbolic link where the directory is (or will be made), so a link there
// is never followed: the last component is opened with O_NOFOLLOW, and a link found there is refused
// with an error naming it (exit 2). sshd's StrictModes reasons the same way. A parent only root (or
// the tap's user) may write is the administrator's: a link there is theirs and is followed (an
// explicit spool_dir may so point elsewhere; the directories above the parent are the
// administrator's too). The directory is made when missing and then opened the same way: a link
// planted between the mkdir and the open is refused too. What is opened is then checked by the
// spool (its owner, its mode, its files: Spool.pinDir), through the descriptor.
import { closeSync, constants as fc, fstatSync, mkdirSync, openSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { EUID, fileKind, lstatOrNull } from '../util/read-file.js';

export interface OpenedDir {
  /** The directory, opened (O_RDONLY|O_DIRECTORY). */
  fd: number;
  /** Its parent, as it was when the directory was opened through it. */
  parent: { path: string; dev: number; ino: number };
}

/** Who other than root and the tap's user may write a directory: null when no one. */
export function othersMayWrite(st: Stats): string | null {
  if (st.uid !== 0 && st.uid !== EUID) return `its owner (uid ${st.uid})`;
  if (st.mode & 0o020) return st.mode & 0o002 ? 'its group and others' : `its group (gid ${st.gid})`;
  if (st.mode & 0o002) return 'others';
  return null;
}

/**
 * spool_dir (`dir`, opened: `st`) must be the tap's user's: its owner could put links there for the tap
 * to follow. The error that says so, or null.
 */
export function notOwnedError(dir: string, st: Stats): ConfigError | null {
  if (st.uid === EUID) return null;
  return new ConfigError(`spool_dir ${dir} is owned by uid ${st.uid}, not by the tap's user (uid ${EUID}): its owner could put `
    + `links there for the tap to follow; make it the tap's (chown ${EUID} ${dir}) or set spool_dir to a directory of its own`);
}

/** `/proc/self/fd/<fd>` when it leads to what `fd` is (`st`), else null (no /proc). */
export function procPathOf(fd: number, st: Stats): string | null {
  const via = `/proc/self/fd/${fd}`;
  try {
    const l = statSync(via);
    return l.dev === st.dev && l.ino === st.ino ? via : null;
  } catch {
    return null;
  }
}

/**
 * Make `dir` when missing and open it (see the header): through its parent's descriptor, never
 * following a link in its last component when others than root may write the parent. ConfigError
 * (exit 2) when a link, or something that is no directory, is there; other errors are thrown.
 */
export function openSpoolDir(dir: string): OpenedDir {
  const path = resolve(dir);
  const parent = dirname(path);
  const name = basename(path);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const pfd = openSync(parent, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK);
  try {
    const pst = fstatSync(pfd);
    // The parent opened, wherever its path leads later: the directory is made and opened in it.
    const at = parent === path ? path : `${procPathOf(pfd, pst) ?? parent}/${name}`;
    if (parent !== path) {
      try {
        mkdirSync(at, { mode: 0o700 }); // never follows a link: one there is EEXIST, and refused below
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    const who = parent === path ? null : othersMayWrite(pst);
    let fd: number;
    try {
      fd = openSync(at, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK | (who ? fc.O_NOFOLLOW : 0));
    } catch (e) {
      // A link opened with O_NOFOLLOW|O_DIRECTORY: ENOTDIR (ELOOP without O_DIRECTORY).
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTDIR' && code !== 'ELOOP') throw e;
      const l = lstatOrNull(at);
      if (who && l?.isSymbolicLink()) {
        let to = '';
        try { to = ` to ${readlinkSync(at)}`; } catch { /* gone meanwhile */ }
        throw new ConfigError(`spool_dir ${path} is a symbolic link${to}, in ${parent}, a directory ${who} may write: the tap (root) `
          + 'does not follow it, since whoever can write there could point it at any directory for the tap to write in; remove the link '
          + `(rm ${path}), or set spool_dir to the directory it should be, in a directory only root may write`);
      }
      if (l && !l.isSymbolicLink()) throw new ConfigError(`spool_dir ${path} is not a directory (${l.isFile() ? 'a regular file' : fileKind(l)})`);
      throw e;
    }
    return { fd, parent: { path: parent, dev: pst.dev, ino: pst.ino } };
  } finally {
    closeSync(pfd);
  }
}
