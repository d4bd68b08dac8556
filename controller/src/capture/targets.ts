// Which processes are this manager's daemons, and which socket is its
// wazuh-db socket — by what the kernel knows (device and inode numbers),
// never by a name or a path text anyone can copy (SPEC §2, trust boundary).
//
// The kernel decides for itself (wdbtap.bpf.c): a process exec'ing a file of
// a daemon's name from this home's bin/ becomes a target; a socket is
// wazuh-db's when its path is the entry `wdb` of this home's queue/db/. This
// module gives the kernel those directories' identities, and finds the
// daemons already running when the tap starts (and every rescan) through
// /proc/<pid>/exe, compared by identity with this home's executables.
import { readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readdirInView, rootViewOf, statInView, withPathInView } from '../util/in-view.js';

/** The name every executable of the framework's Python directory counts as (state/format.ts: source `clusterd`). */
export const CLUSTER_DAEMON = 'python3';

/**
 * The daemons of SPEC §2 by executable name. 4.x: comm equals the name. 5.x:
 * `wazuh-manager-*` names are longer than a comm (15 characters, where
 * analysisd, authd and apid all read `wazuh-manager-a`), so the kernel resolves
 * them from the executable at exec, also for a process that lives a millisecond.
 */
export const DEFAULT_TARGET_NAMES = [
  'wazuh-remoted', 'wazuh-db', 'wazuh-monitord', 'wazuh-authd', 'wazuh-modulesd',
  'wazuh-manager-remoted', 'wazuh-manager-db', 'wazuh-manager-monitord', 'wazuh-manager-authd',
  'wazuh-manager-modulesd',
  // wazuh-clusterd runs on the bundled Python (<home>/framework/python/bin/python3.x): on a master it
  // writes the workers' agents (sync-agent-info-set), which update the state without an event (SPEC §3).
  CLUSTER_DAEMON,
];

/** A filesystem object as stat(2) names it. */
export interface FsId {
  dev: bigint;
  ino: bigint;
}

export interface ExeDir {
  path: string;
  id: FsId;
  /** 0: only files named like a daemon; else every file in it is this daemon id. */
  any: number;
}

/** What the tap follows: one Wazuh home, by identity. */
export interface HomeIdentity {
  home: string;
  /** `<home>/queue/db`: the kernel matches the socket entry `wdb` in it. null: it does not exist (yet). */
  wdbDir: FsId | null;
  /** `<home>/queue/db/wdb` now (shown by status; the kernel follows a re-created one by itself). */
  socket: FsId | null;
  exeDirs: ExeDir[];
}

export function wdbDirOf(home: string): string {
  return join(home, 'queue/db');
}

/** Where a home's daemons are: bin/, and the framework's Python for wazuh-clusterd. */
export function exeDirsOf(home: string): { path: string; cluster: boolean }[] {
  return [{ path: join(home, 'bin'), cluster: false }, { path: join(home, 'framework/python/bin'), cluster: true }];
}

/** A home's file or directory (below a container's root: as the container resolves it, util/in-view.ts). */
function statId(path: string, want: 'dir' | 'socket' | 'file'): FsId | null {
  let st: BigIntStats;
  try {
    st = statInView(path, { bigint: true });
  } catch {
    return null; // missing (not installed yet), or unreadable: nothing to trust
  }
  const ok = want === 'dir' ? st.isDirectory() : want === 'socket' ? st.isSocket() : st.isFile();
  return ok ? { dev: st.dev, ino: st.ino } : null;
}

/** `major:minor inode` as ls -i and stat show it. */
export function formatFsId(id: FsId | null): string | null {
  if (!id) return null;
  const major = ((id.dev >> 8n) & 0xfffn) | ((id.dev >> 32n) & ~0xfffn);
  const minor = (id.dev & 0xffn) | ((id.dev >> 12n) & ~0xffn);
  return `${major}:${minor} inode ${id.ino}`;
}

const key = (id: FsId) => `${id.dev}:${id.ino}`;

export function sameFsId(a: FsId | null, b: FsId | null): boolean {
  return a === b || (a !== null && b !== null && a.dev === b.dev && a.ino === b.ino);
}

/** The identities of a home. `names` are the daemon names (id = index + 1). */
export function resolveHome(home: string, names: readonly string[]): HomeIdentity {
  const clusterId = names.indexOf(CLUSTER_DAEMON) + 1;
  const exeDirs: ExeDir[] = [];
  for (const d of exeDirsOf(home)) {
    if (d.cluster && clusterId === 0) continue;
    const id = statId(d.path, 'dir');
    if (id) exeDirs.push({ path: d.path, id, any: d.cluster ? clusterId : 0 });
  }
  return {
    home,
    wdbDir: statId(wdbDirOf(home), 'dir'),
    socket: wdbSocketId(home),
    exeDirs,
  };
}

/** `<home>/queue/db/wdb` now, when it is a socket. */
export function wdbSocketId(home: string): FsId | null {
  return statId(join(wdbDirOf(home), 'wdb'), 'socket');
}

/** This home's daemon executables by identity → daemon id. */
export function trustedExecutables(home: HomeIdentity, names: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of home.exeDirs) {
    if (!sameFsId(statId(d.path, 'dir'), d.id)) continue; // replaced since resolveHome: the next rescan
    for (const f of d.any ? safeReaddir(d.path) : names) {
      const id = statId(join(d.path, f), 'file');
      if (!id) continue;
      const daemon = d.any || names.indexOf(f) + 1;
      if (daemon) out.set(key(id), daemon);
    }
  }
  return out;
}

/**
 * Whether the kernel's exec hook tells every daemon of these directories by itself. It matches the
 * directory and name of the file a process runs (`mm->exe_file`): a daemon's file that is a symbolic
 * link out of its directory, a file with other names (a hard link elsewhere runs as that name), or a file
 * of another filesystem (mounted over the name) runs as a file the kernel does not match — only a walk
 * of /proc, by the file's identity, finds such a process (Capture.rescan walks at every rescan then).
 * Not seen here: a file of the same filesystem mounted over a daemon's name (the 30 s walk finds what runs
 * it). An overlay home whose layers are other filesystems shows its files on another device than their
 * directory: every rescan walks there, as before, though the kernel follows them.
 */
export function kernelFollows(home: HomeIdentity, names: readonly string[]): boolean {
  for (const d of home.exeDirs) {
    for (const f of d.any ? safeReaddir(d.path) : names) {
      const path = join(d.path, f);
      let st: BigIntStats;
      try {
        st = statInView(path, { bigint: true, follow: false });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        return false;
      }
      try {
        // A link within its directory (framework/python/bin/python3 → python3.10) runs as its target there.
        if (st.isSymbolicLink() && !linkStaysIn(path, d.id)) return false;
      } catch {
        return false; // a link that leads nowhere now may lead somewhere at the next exec
      }
      if (st.isFile() && (st.nlink > 1n || st.dev !== d.id.dev)) return false;
    }
  }
  return true;
}

/**
 * Whether the link `path` runs as a file of the directory `dir`. Below a container's root only a link to
 * a name in the same directory counts (its text without a `/`): the tap cannot resolve the container's
 * links with realpath, which would follow their absolute targets on the host.
 */
function linkStaysIn(path: string, dir: FsId): boolean {
  if (!rootViewOf(path)) return sameFsId(statId(dirname(realpathSync.native(path)), 'dir'), dir);
  // The link's own text, read in the directory as the container resolves it (readlink does not follow the last name).
  const target = withPathInView(dirname(path), (p) => readlinkSync(join(p, basename(path))));
  return !target.includes('/') && target !== '..' && target !== '.';
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirInView(dir).slice(0, 256);
  } catch {
    return [];
  }
}

/**
 * Running processes whose executable is one of `trusted` (by identity: stat of
 * /proc/<pid>/exe, which follows the mapped file whatever its path text, mount
 * namespace or container): pid → daemon id. Throws what readdir('/proc') throws
 * (EMFILE): the caller decides to retry.
 */
export function scanProcesses(trusted: ReadonlyMap<string, number>, procRoot = '/proc'): Map<number, number> {
  const found = new Map<number, number>();
  if (trusted.size === 0) return found;
  for (const entry of readdirSync(procRoot)) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const daemon = daemonOf(trusted, Number(entry), procRoot);
    if (daemon) found.set(Number(entry), daemon);
  }
  return found;
}

/** The daemon id process `pid` runs as now (0: none of `trusted`, a kernel thread, gone). */
function daemonOf(trusted: ReadonlyMap<string, number>, pid: number, procRoot: string): number {
  const st = exeOf(`${procRoot}/${pid}`) ?? exeOfAThread(pid, procRoot);
  // (A process gone meanwhile, or whose threads all ended between the two looks: 0, as any gone.)
  return st ? trusted.get(key({ dev: st.dev, ino: st.ino })) ?? 0 : 0;
}

function exeOf(task: string): BigIntStats | null {
  try {
    // No exception for ENOENT (a kernel thread, a zombie, gone): one costs ~6 µs, for each of the
    // machine's kernel threads at each rescan.
    return statSync(`${task}/exe`, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null; // not ours to read
  }
}

/**
 * A process whose first thread has ended while the others go on (a zombie leader: pthread_exit
 * from main) has no /proc/<pid>/exe; each living thread's /proc/<pid>/task/<tid>/exe still leads to
 * the executable. Such a daemon started before the tap was otherwise never found. Asked only where
 * the process's own failed (a kernel thread's task list is itself).
 */
function exeOfAThread(pid: number, procRoot: string): BigIntStats | null {
  let tids: string[];
  try {
    // procfs counts a process's threads in its task directory's links (2 + threads): one stat
    // passes over the kernel threads — hundreds to thousands at each rescan — that have only one.
    if ((statSync(`${procRoot}/${pid}/task`, { throwIfNoEntry: false })?.nlink ?? 0) <= 3) return null;
    tids = readdirSync(`${procRoot}/${pid}/task`);
  } catch {
    return null;
  }
  for (const tid of tids) {
    if (tid === String(pid)) continue;
    const st = exeOf(`${procRoot}/${pid}/task/${tid}`);
    if (st) return st;
  }
  return null;
}

/**
 * Mark the running daemons (scanProcesses) with `mark`, then look at each again: a daemon that
 * exited between the scan and its mark had its mark cleared by the kernel at its exit, before this
 * one was made — a process given its pid since was marked in its place, and stayed so until it
 * exited. What the pid runs now decides (0: unmarked; another daemon: that one). The processes
 * marked as daemons, pid → daemon id.
 */
export function markRunning(trusted: ReadonlyMap<string, number>, mark: (pid: number, daemon: number) => void,
  procRoot = '/proc', onScanned?: () => void): Map<number, number> {
  const found = scanProcesses(trusted, procRoot);
  onScanned?.();
  for (const [pid, daemon] of found) mark(pid, daemon);
  for (const [pid, daemon] of found) {
    const now = daemonOf(trusted, pid, procRoot);
    if (now === daemon) continue;
    mark(pid, now);
    if (now) found.set(pid, now);
    else found.delete(pid);
  }
  return found;
}

/** The processes among the kernel's targets (which also holds thread ids), with their daemon names. */
export function describeTargets(targets: { pid: number; daemon: string }[], procRoot = '/proc'): { pid: number; name: string }[] {
  const out: { pid: number; name: string }[] = [];
  for (const { pid, daemon } of targets) {
    try {
      const status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
      if (Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1]) !== pid) continue; // a thread
      out.push({ pid, name: daemon });
    } catch {
      // gone since: the kernel forgets it at its exit
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.pid - b.pid);
}
