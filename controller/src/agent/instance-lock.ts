// One tap per Wazuh home and per spool (SPEC §8): an exclusive flock(2) on a
// lock file, held for the life of the process. The kernel releases it when the
// process ends, however it ends, so a crash never leaves a stale lock; the
// file holds the owner's pid so that a second instance can name it.
// Node has no flock: libc's is called through koffi, like getsockopt for the
// control socket's peer credentials.
import koffi from 'koffi';
import { libc } from '../util/libc.js';
import { closeSync, constants, ftruncateSync, mkdirSync, statSync, writeSync } from 'node:fs';
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

/** Another instance holds the lock: exit 2, naming it. */
export class AlreadyRunning extends ConfigError {}

export class InstanceLock {
  private fd: number | null = null;
  private ino = 0;

  /** `what` names the lock in messages: "the spool /var/ossec/var/nats-tap". */
  constructor(readonly path: string, private readonly what: string) {}

  /** Take the lock, or throw AlreadyRunning with the holder's pid. */
  acquire(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    // O_NOFOLLOW and a regular-file check: a symlink or a FIFO planted there is refused, never followed or blocked on.
    const r = openChecked(this.path, constants.O_RDWR | constants.O_CREAT, (st) => (st.isFile() ? null : `not a regular file (${fileKind(st)})`));
    if ('refused' in r) throw new ConfigError(`${this.path} is ${r.refused}: remove it`);
    const { fd, st } = r;
    try {
      if (libcFlock()(fd, LOCK_EX | LOCK_NB) !== 0) {
        const errno = koffi.errno();
        if (errno !== 11 /* EWOULDBLOCK */) throw new Error(`flock ${this.path}: errno ${errno}`);
        let holder = '';
        try {
          holder = readWhole(fd, 20).toString('utf8').trim();
        } catch { /* unreadable: unnamed */ }
        throw new AlreadyRunning(`another wazuh-nats-tap${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''} already runs on ${this.what} (lock ${this.path})`);
      }
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`, 0);
      this.ino = Number(st.ino);
      this.fd = fd;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Still ours? The file was removed or replaced (a second instance could then lock a new one):
   * the caller stops, since one tap per home is no longer guaranteed.
   */
  held(): boolean {
    if (this.fd === null) return false;
    try {
      return statSync(this.path).ino === this.ino;
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
