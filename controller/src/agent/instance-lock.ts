// One tap per Wazuh home and per spool (SPEC §8): an exclusive flock(2) on a
// lock file, held for the life of the process. The kernel releases it when the
// process ends, however it ends, so a crash never leaves a stale lock; the
// file holds the owner's pid so that a second instance can name it (when the
// disk had room to write it: the pid is a name, never the lock).
// Node has no flock: libc's is called through koffi, like getsockopt for the
// control socket's peer credentials.
import koffi from 'koffi';
import { libc } from '../util/libc.js';
import { closeSync, constants, ftruncateSync, lstatSync, mkdirSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../errors.js';
import { openChecked } from '../util/checked-open.js';
import { fileKind, readWhole } from '../util/read-file.js';

const LOCK_EX = 2;
const LOCK_NB = 4;

let flock: ((fd: number, op: number) => number) | null = null;

function libcFlock(): (fd: number, op: number) => number {
  flock ??= libc().func('int flock(int fd, int op)') as (fd: number, op: number) => number;
  return flock;
}

/**
 * Our pid in the lock file, for a second instance to name. Only that: the flock is the lock. On a
 * full disk (the first start, when there is no file yet to rewrite in place) the write fails, or
 * writes part of the pid — which would name another process: the file is left empty, unnamed, and
 * the tap starts, as it survives a full disk everywhere else (SPEC §8).
 */
function namePid(fd: number): void {
  const pid = Buffer.from(`${process.pid}\n`);
  try {
    ftruncateSync(fd, 0);
    if (writeSync(fd, pid, 0, pid.length, 0) === pid.length) return;
  } catch { /* ENOSPC, EIO, EDQUOT: unnamed */ }
  try {
    ftruncateSync(fd, 0);
  } catch { /* an I/O error: a part of a pid has no newline, and names no one (acquire) */ }
}

/** Another instance holds the lock: exit 2, naming it. */
export class AlreadyRunning extends ConfigError {}

export class InstanceLock {
  private fd: number | null = null;
  private dev = 0;
  private ino = 0;
  /** Where the file is opened and looked at: `at`, else `path`. */
  private readonly at: string;

  /**
   * `what` names the lock in messages: "the spool /var/ossec/var/nats-tap"; `path` names its file.
   * `at`: where it is reached when its directory was opened already (`/proc/self/fd/<n>/lock`, the
   * spool's: lock part) — then that directory, wherever its path leads later, is the lock's.
   */
  constructor(readonly path: string, private readonly what: string, o: { at?: string } = {}) {
    this.at = o.at ?? path;
  }

  /** Take the lock, or throw AlreadyRunning with the holder's pid. */
  acquire(): void {
    if (this.at === this.path) mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // O_NOFOLLOW and a regular-file check: a symlink or a FIFO planted there is refused, never followed or blocked on.
    // And root's own, with one name: a hard link to another root file (made where the Wazuh user may write,
    // with fs.protected_hardlinks=0) would be truncated and get a pid written in it.
    const r = openChecked(this.at, constants.O_RDWR | constants.O_CREAT, (st) => {
      if (!st.isFile()) return `not a regular file (${fileKind(st)})`;
      const me = process.geteuid?.() ?? 0;
      if (st.uid !== me) return `owned by uid ${st.uid}, not ${me === 0 ? 'root' : `uid ${me}`}`;
      return st.nlink > 1 ? `a file with ${st.nlink} names (hard links)` : null;
    });
    if ('refused' in r) throw new ConfigError(`${this.path} is ${r.refused}: remove it`);
    const { fd, st } = r;
    try {
      if (libcFlock()(fd, LOCK_EX | LOCK_NB) !== 0) {
        const errno = koffi.errno();
        if (errno !== 11 /* EWOULDBLOCK */) throw new Error(`flock ${this.path}: errno ${errno}`);
        let holder: string | undefined;
        try {
          holder = /^(\d+)\n$/.exec(readWhole(fd, 20).toString('utf8'))?.[1]; // whole, newline included (namePid)
        } catch { /* unreadable: unnamed */ }
        throw new AlreadyRunning(`another wazuh-nats-tap${holder ? ` (pid ${holder})` : ''} already runs on ${this.what} (lock ${this.path})`);
      }
      namePid(fd);
      this.dev = st.dev;
      this.ino = st.ino;
      this.fd = fd;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Still ours? The file was removed or replaced (a second instance could then lock a new one):
   * the caller stops, since one tap per home is no longer guaranteed. Looked at where it was opened
   * (`at`: in the directory opened, so a rename of that directory changes nothing), its name's entry
   * itself (a link put in its place is another file), by device and inode.
   */
  held(): boolean {
    if (this.fd === null) return false;
    try {
      const st = lstatSync(this.at);
      return st.dev === this.dev && st.ino === this.ino;
    } catch {
      return false;
    }
  }

  release(): void {
    if (this.fd === null) return;
    closeSync(this.fd); // closing the descriptor drops the flock
    this.fd = null;
  }
}
