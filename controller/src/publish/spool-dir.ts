// Opening spool_dir (SPEC §8). The tap is root and a directory on the way may be another user's to
// write: on Wazuh the default `<home>/var/nats-tap` is in `<home>/var`, root:wazuh 0770. Whoever can
// write a directory can put a symbolic link in it where the tap's next directory is (or will be
// made), so there a link is never followed: the walk from / opens each directory through the one above
// it with O_NOFOLLOW, and a link found is refused with an error naming it (exit 2) — at any depth
// (`<home>/var/a/nats-tap`: `a` is the wazuh user's to replace too). sshd's StrictModes reasons the
// same way. A directory only root (or the tap's user) may write is the administrator's: a link there
// is theirs and is followed (an explicit spool_dir may so point elsewhere). Below a container's root
// (`/proc/<pid>/root/…`, a home in a container) nothing is the host administrator's: no link is
// followed. Missing directories are made and then opened the same way: a link planted between the
// mkdir and the open is refused too. What is opened is then checked by the spool (its owner, its
// mode, its files: Spool.pinDir), through the descriptor.
import { closeSync, constants as fc, fstatSync, mkdirSync, openSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { foreignViewOf, onForeignMount, throughViews } from '../util/proc-root.js';
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
 * Make `dir` when missing and open it (see the header): every directory from the root down to it is
 * opened through the one above it (its descriptor, `/proc/self/fd/<n>/<name>`), made when missing, and
 * a link in it is followed only where no one but root may have put it: in a host directory only root
 * may write. Below a container's root (`/proc/<pid>/root`, opened as one) every directory is the
 * container's root user's to change, whatever its uid: a link there is never followed (an absolute one
 * would lead the tap, on the host, to any host directory). ConfigError (exit 2) when a link, or
 * something that is no directory, is on the way; other errors are thrown.
 */
export function openSpoolDir(dir: string): OpenedDir {
  // The root's links resolved by hand up to a container's view (a host link to a directory below a
  // container's root: the kernel would resolve the container's absolute links on the way against the
  // host's root), so that the walk below knows the view from its path.
  const resolved = throughViews(resolve(dir), { stopAt: (st) => othersMayWrite(st) !== null });
  if (resolved === null) {
    throw new ConfigError(`spool_dir ${resolve(dir)} cannot be followed to its end (more than 40 links, a name too long once they `
      + 'are resolved, the tap\'s own /proc/self/cwd or fd): whether a container\'s files are on the way cannot be told; '
      + 'set spool_dir to the directory itself');
  }
  const path = resolved;
  const view = foreignViewOf(path);
  const top = view ?? '/';
  // Whose every directory from here on is, whatever their owners: a container's root user's.
  let container = view ? `the container's root user (it is below ${view})` : null;
  const names = path.slice(top.length).split('/').filter(Boolean);
  let fd = openSync(top, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK);
  let at = top;
  let parent = { path: top, dev: 0, ino: 0 };
  try {
    for (const name of names) {
      const st = fstatSync(fd);
      parent = { path: at, dev: st.dev, ino: st.ino };
      // Without /proc a directory is reached again by its path, which anyone who may write one on the
      // way could change meanwhile: no link is followed at all then.
      const who = container ?? othersMayWrite(st) ?? (procPathOf(fd, st) ? null : 'anyone who may write a directory above (no /proc: reached by its path)');
      const next = openIn(fd, st, at, name, who, path);
      closeSync(fd);
      fd = next;
      at = at === '/' ? `/${name}` : `${at}/${name}`;
      // A host link into a container (a stable name for /proc/<pid>/root): the path did not say it, the mount does.
      if (!container && onForeignMount(fd)) container = `the container's root user (${at} is on a mount of another process's view)`;
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (!names.length) {
    const st = fstatSync(fd);
    parent = { path: top, dev: st.dev, ino: st.ino };
  }
  return { fd, parent };
}

/**
 * Open (and make, when missing) `name` in the directory `pfd` (`pst`, reached as `ppath`), a directory:
 * without following a link in it when `who` (someone other than root) may write `pfd`.
 */
function openIn(pfd: number, pst: Stats, ppath: string, name: string, who: string | null, spoolDir: string): number {
  // The parent opened, wherever its path leads later: the directory is made and opened in it.
  const at = `${procPathOf(pfd, pst) ?? ppath}/${name}`;
  const path = ppath === '/' ? `/${name}` : `${ppath}/${name}`;
  const what = path === spoolDir ? `spool_dir ${spoolDir}` : `spool_dir ${spoolDir}: ${path}`;
  /** ` to TARGET` of the link at `at`, or nothing (gone meanwhile). */
  const linkTo = () => {
    try { return ` to ${readlinkSync(at)}`; } catch { return ''; }
  };
  const flags = fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK | (who ? fc.O_NOFOLLOW : 0);
  for (let made = false; ; made = true) {
    try {
      return openSync(at, flags);
    } catch (e) {
      // A link opened with O_NOFOLLOW|O_DIRECTORY: ENOTDIR (ELOOP without O_DIRECTORY).
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !made) {
        try {
          mkdirSync(at, { mode: 0o700 }); // never follows a link: one put there meanwhile is EEXIST, refused below
        } catch (m) {
          const mc = (m as NodeJS.ErrnoException).code;
          if (mc !== 'EEXIST') throw Object.assign(new Error(`${what} cannot be made: ${mc}`), { code: mc });
        }
        continue;
      }
      const l = lstatOrNull(at);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
        if (who && l?.isSymbolicLink()) {
          throw new ConfigError(`${what} is a symbolic link${linkTo()}, in ${ppath}, a directory ${who} may write: the tap (root) `
            + 'does not follow it, since whoever can write there could point it at any directory for the tap to write in; remove the link '
            + `(rm ${path}), or set spool_dir to the directory it should be, in a directory only root may write`);
        }
        if (l?.isSymbolicLink()) throw new ConfigError(`${what} is a symbolic link${linkTo()}, which leads to no directory`);
        if (l) throw new ConfigError(`${what} is not a directory (${l.isFile() ? 'a regular file' : fileKind(l)})`);
      }
      throw Object.assign(new Error(`${what} cannot be opened: ${code}`), { code });
    }
  }
}
