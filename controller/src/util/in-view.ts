// Looking up a path below a container's root the way the container does.
//
// A home reached through another process's root (`--home /proc/<pid>/root/var/ossec`: a manager in a
// container) is walked by the kernel from that root, but the tap's own root stays the walk's root: an
// absolute symbolic link on the way (`/var/ossec/queue -> /data/queue`, a volume — or a link the
// container's root user made to a path of the host's) is resolved against the *host's* `/`. Followed so,
// the tap took a host directory for the container's `queue/db` or `bin/`: it watched a host manager's
// wazuh-db, asked it for its agents and published them as the container's, or watched nothing where
// the container's own manager ran. openat2(2) with RESOLVE_IN_ROOT walks the rest of the path with the
// container's root as `/` (absolute links and `..` stay inside it) in one call, so no component can be
// swapped between a look and a use; RESOLVE_NO_MAGICLINKS keeps a container's `/proc/…/fd` links
// out of it. What was found is then used through its descriptor (`/proc/self/fd/<n>`, which the
// kernel follows to that very object) or fstat. Paths that go through no other process's root are
// the kernel's to resolve, as before (every function below is then the plain call).
import { closeSync, constants as fc, existsSync, fstatSync, lstatSync, openSync, readdirSync, statSync, type BigIntStats, type Stats } from 'node:fs';
import { constants as osc } from 'node:os';
import { dirname, resolve } from 'node:path';
import koffi from 'koffi';
import { libc } from './libc.js';
import { throughViews, walkDenied } from './proc-root.js';
import { isTransient } from './errno.js';

/** openat2's number: 437 in the table every architecture Node runs on shares since 5.1 (alpha and mips differ). */
const SYS_OPENAT2 = ['x64', 'arm64', 'arm', 'ia32', 'riscv64', 'ppc64', 's390x', 'loong64'].includes(process.arch) ? 437 : null;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_IN_ROOT = 0x10;

/** The tap's own descriptor, or one name in the directory it holds open (a spool file, its lock). */
const OWN_FD = new RegExp(`^/proc/(self|thread-self|${process.pid})/fd/[0-9]+(/[^/]+)?$`);
/**
 * A kernel walk with `..` that a rename or a mount raced: it asks to be tried again. A rename anywhere on
 * the machine in a loop failed ~1 % of single tries; a container's own chain of `..` links with its own
 * rename loop keeps most looks failing even at 64 tries (helper-70: 62 %) — a container's root user
 * blinding its own tap, whose manager it controls anyway. What such a look returns is EAGAIN: the alerts
 * follower, the socket watch, the lock and the configuration take it as "not now"; the capture's rescan
 * as "not there" until its next look (2 s).
 */
const EAGAIN_TRIES = 64;

/** Where a path enters another process's root, and the rest of it, relative to that root. */
export interface RootView {
  /** `/proc/<pid>/root`. */
  root: string;
  /** The rest of the path, relative (`var/ossec/queue/db`; `.` for the root itself). */
  rest: string;
}

/** An errno error as Node's fs functions throw them (`code`, `errno`, `path`). */
function errnoError(errno: number, call: string, path: string): NodeJS.ErrnoException {
  const code = Object.entries(osc.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
  const e: NodeJS.ErrnoException = new Error(`${code}: ${call} '${path}'`);
  e.code = code;
  e.errno = -errno;
  e.syscall = call;
  e.path = path;
  return e;
}

/**
 * The other process's root `path` goes through, and the rest of it (host links on the way resolved by
 * hand: util/proc-root.ts throughViews), or null when it goes through none. Throws (code `EXDEV`) when
 * it cannot be told — more than 40 links, the tap's own cwd or fd — or when it goes through another
 * entry of a process's than its root (`/proc/<pid>/cwd/…`, `task/<tid>/root`): where absolute links
 * there lead is not a root the tap holds.
 */
export function rootViewOf(path: string, o: { followLast?: boolean } = {}): RootView | null {
  // The tap's own descriptors (the spool's files, named through its pinned directory): what they name
  // was opened the safe way already, and the kernel follows them to that object.
  if (OWN_FD.test(path)) return null;
  if (o.followLast === false) {
    // A look that does not follow its last name (lstat, O_NOFOLLOW): only the directory is resolved. The
    // walk by hand follows every name, so `alerts.json -> /proc/<pid>/root/<a root-only file>`, planted by
    // the Wazuh user in logs/alerts, was opened as that file where O_NOFOLLOW refused the link (helper-70).
    // The last name as written: `x/`, `x/.` and `x/..` end in a directory the kernel follows whatever the
    // flags, so they take the walk that follows (resolve() would have made `x` their last name).
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (name !== '' && name !== '.' && name !== '..') {
      const dir = rootViewOf(dirname(path));
      return dir && { root: dir.root, rest: dir.rest === '.' ? name : `${dir.rest}/${name}` };
    }
    // The walk by hand drops the `.` and applies the `..`: a `/.` after what it found keeps the kernel
    // following that directory's name below the root, as O_NOFOLLOW does not apply to it (helper-71).
    const v = rootViewOf(path);
    return v && { root: v.root, rest: v.rest === '.' ? '.' : `${v.rest}/.` };
  }
  const now = performance.now();
  const key = resolve(path); // a relative path's answer is its directory's
  const hit = seen.get(key);
  if (hit !== undefined && now - hit.at < SEEN_MS) return hit.view;
  const resolved = throughViews(path);
  if (resolved === null) throw unresolvable(path);
  const m = /^\/proc\/([0-9]+)(?:\/([^/]+))?(?:\/(.*))?$/.exec(resolved);
  let view: RootView | null = null;
  if (m && String(m[1]) !== String(process.pid)) {
    if (m[2] !== 'root') throw errnoError(osc.errno.EXDEV, 'resolve', path);
    view = { root: `/proc/${m[1]}/root`, rest: m[3] ? m[3] : '.' };
  }
  // "No container on the way" is kept only for a path that is there: one made later may be a host link
  // into a container's root (kept, the tap took the host's walk to it for 30 s — helper-69).
  // (existsSync: the kernel's walk, its last name followed as the walk by hand follows it.)
  if (view !== null || existsSync(path)) {
    if (seen.size >= SEEN_MAX) seen.clear();
    seen.set(key, { view, at: now });
  }
  return view;
}

/**
 * Each path's view, as last worked out, for 30 s: the same few paths are looked up every second or two
 * (the rescan, wazuh-db's socket, the alerts), and the walk by hand is an lstat a component — 3.5 ms a
 * rescan of a host home without this, 1.0 with it (0.48 before the walk; the daemons not installed are
 * walked again each time). What it answers is the host's links on the way — root's, or in logs/alerts the
 * Wazuh user's, who may point them at any host directory anyway (and whose last names are never followed
 * where the caller does not follow them); what lies below the container's root is resolved at every look.
 */
const seen = new Map<string, { view: RootView | null; at: number }>();
const SEEN_MS = 30_000;
const SEEN_MAX = 4096; // a rescan looks at up to ~270 paths (framework/python/bin's entries)


/**
 * A path the hand walk could not follow to its end: a permission the kernel's own walk would refuse too
 * (a user other than root: EACCES, said as such), else EXDEV — whether it goes through a container's root
 * cannot be told (more than 40 links, a name too long once resolved, the tap's own cwd or fd).
 */
function unresolvable(path: string): NodeJS.ErrnoException {
  return walkDenied(path) ? errnoError(osc.errno.EACCES, 'lstat', path) : errnoError(osc.errno.EXDEV, 'resolve', path);
}

let openat2: ReturnType<ReturnType<typeof libc>['func']> | null = null;
const how = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }

/** openat2(rootFd, rest, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): a descriptor, or the errno thrown. */
function openInRoot(view: RootView, flags: number, path: string, mode = 0): number {
  if (SYS_OPENAT2 === null) throw errnoError(osc.errno.ENOSYS, 'openat2', path);
  openat2 ??= libc().func('long syscall(long nr, ...)');
  // openat2 refuses what open(2) ignores: O_PATH with other flags than these, a mode without O_CREAT or
  // past 07777 (EINVAL).
  const f = (flags & O_PATH) !== 0 ? flags & (O_PATH | fc.O_DIRECTORY | fc.O_NOFOLLOW) : flags;
  const root = openSync(view.root, O_PATH | fc.O_DIRECTORY);
  try {
    how.writeBigUInt64LE(BigInt(f | O_CLOEXEC), 0);
    how.writeBigUInt64LE(BigInt((f & fc.O_CREAT) !== 0 ? mode & 0o7777 : 0), 8);
    how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), 16);
    for (let tries = 1; ; tries++) {
      const fd = Number(openat2(SYS_OPENAT2, 'int', root, 'const char *', view.rest, 'void *', how, 'size_t', how.length));
      if (fd >= 0) return fd;
      const errno = koffi.errno();
      // A `..` on the way (a relative link in the container) and a rename or mount anywhere meanwhile:
      // the kernel cannot vouch that the walk stayed inside the root, and says to try again.
      if (errno !== osc.errno.EAGAIN || tries >= EAGAIN_TRIES) throw errnoError(errno, 'openat2', path);
    }
  } finally {
    closeSync(root);
  }
}

/**
 * open(2) of `path` (`flags`: fs.constants, O_CLOEXEC added), below another process's root resolved as
 * it resolves it; else openSync. Throws the fs error (ENOENT, ELOOP for O_NOFOLLOW on a link…).
 */
export function openInView(path: string, flags: number, mode = 0o600): number {
  // O_CREAT|O_EXCL never follows a last link either (the kernel: EEXIST, even for a dangling one).
  const excl = (flags & fc.O_CREAT) !== 0 && (flags & fc.O_EXCL) !== 0;
  const view = rootViewOf(path, { followLast: (flags & fc.O_NOFOLLOW) === 0 && !excl });
  return view ? openInRoot(view, flags, path, mode) : openSync(path, flags, mode);
}

/** statSync / lstatSync (`follow: false`) of `path`, below another process's root resolved as it resolves it. */
export function statInView(path: string, o: { bigint: true; follow?: boolean }): BigIntStats;
export function statInView(path: string, o?: { bigint?: false; follow?: boolean }): Stats;
export function statInView(path: string, o: { bigint?: boolean; follow?: boolean } = {}): Stats | BigIntStats {
  const view = rootViewOf(path, { followLast: o.follow !== false });
  const bigint = o.bigint === true;
  if (!view) return o.follow === false ? lstatSync(path, { bigint }) : statSync(path, { bigint });
  const fd = openInRoot(view, O_PATH | (o.follow === false ? fc.O_NOFOLLOW : 0), path);
  try {
    return fstatSync(fd, { bigint });
  } finally {
    closeSync(fd);
  }
}

/** readdirSync of `path`, below another process's root resolved as it resolves it. */
export function readdirInView(path: string): string[] {
  const view = rootViewOf(path);
  if (!view) return readdirSync(path);
  const fd = openInRoot(view, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK, path);
  try {
    return readdirSync(`/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * `use` called with a path that leads to what `path` names (resolved, below another process's root, as
 * it resolves it): `/proc/self/fd/<n>` of a descriptor held for the call, else `path` itself. For what
 * takes a path only — connect(2) to a socket, inotify — and does its lookup during the call.
 */
export function withPathInView<T>(path: string, use: (p: string) => T): T {
  const view = rootViewOf(path);
  if (!view) return use(path);
  const fd = openInRoot(view, O_PATH, path);
  try {
    return use(`/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Why `path` (a Wazuh home) cannot be followed below another process's root, or null when it can (or
 * goes through none): it goes through another entry than the root (`/proc/<pid>/cwd/…`), or openat2(2)
 * is refused here (a kernel before 5.6, or a seccomp filter: ENOSYS) — without it, the container's
 * absolute links would be resolved on the host. For the start's check: a clear error, not a home
 * that silently shows nothing.
 */
export function viewProblem(path: string): string | null {
  let view: RootView | null;
  try {
    view = rootViewOf(path);
  } catch (e) {
    // A permission the user lacks on the way: the reads that follow say so as they always did (exit 3).
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') return null;
    return 'it goes through another process\'s entry in /proc than its root (or through more than 40 links): '
      + 'name the container\'s home through its root, /proc/<pid>/root/<path in the container>';
  }
  if (!view) return null;
  try {
    closeSync(openInRoot({ root: view.root, rest: '.' }, O_PATH, view.root));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSYS' || code === 'EPERM' || code === 'EINVAL' || code === 'E2BIG') {
      return `it is below another process's root (a container's), and openat2(2) is refused here (${code}: a kernel `
        + 'before 5.6, or a seccomp filter): without it the container\'s own absolute links would be resolved on the host';
    }
    // The process is gone or not ours to look into (ENOENT, EACCES): the home shows nothing until it is; said elsewhere.
  }
  return null;
}

/**
 * existsSync of `path`, below another process's root resolved as it resolves it. A look that failed for
 * now (EAGAIN: a raced `..` walk; util/errno isTransient) is thrown, not taken for an absent file (the
 * configuration would fall back to another).
 */
export function existsInView(path: string): boolean {
  try {
    statInView(path);
    return true;
  } catch (e) {
    if (isTransient(e)) throw e;
    return false;
  }
}
