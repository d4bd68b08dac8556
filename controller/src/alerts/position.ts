// Where the alerts follower stopped: the file's identity (device, inode, a hash of its first
// bytes) and the offset after the last line whose events are safely in the spool. Written with
// tmp + rename, so a crash leaves the old position or the new one, never half of one; the copy
// made new and the file read only when it is a regular file of the tap's (util/checked-open.ts):
// it lives beside the spool, whose parent may be another user's to write.
//
// While the tap runs it is written by a PositionWriter: the copy fdatasynced before the rename (a
// rename the disk has and data it has not leaves an empty file after a power loss — XFS, ext4
// without auto_da_alloc — which read as damaged had the follower start at the end of alerts.json,
// every alert since lost), on libuv's threads (a slow disk holds a thread, never the event loop),
// one write at a time with the newest position waiting, and only once the spool synced the events
// behind it (Spool.afterSync): ahead of them, a power loss would leave a position that says read
// alerts whose events the spool lost.
import { createHash } from 'node:crypto';
import { readOwn, replaceOwn, replaceOwnAsync } from '../util/checked-open.js';
import { readWhole } from '../util/read-file.js';
import { isTransient } from '../util/errno.js';

/** Bytes of the file's head whose hash tells a re-created file that reuses an inode apart. */
export const HEAD_BYTES = 1024;

export interface AlertsPosition {
  dev: number;
  ino: number;
  offset: number;
  /** Length of the head hashed (min(HEAD_BYTES, what was in the file when hashed)). */
  headLen: number;
  /** sha256 hex of those bytes ('' when headLen is 0). */
  head: string;
  /**
   * Its name under logs/alerts (`<year>/<Mon>/ossec-alerts-<dd>[-<nnn>].json`), when known: where
   * it is once rotated or compressed, and what tells it from a later file given its inode when
   * its head cannot (a file still empty when saved).
   */
  path?: string;
}

/** A rotated file's name under logs/alerts, as analysisd makes it (nothing else is looked up: `..`, links elsewhere). */
const ROTATED_NAME = /^\d{4}\/[A-Z][a-z]{2}\/ossec-alerts-\d{2}(?:-\d{3})?\.json$/;

export function isRotatedName(path: string): boolean {
  return ROTATED_NAME.test(path);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The saved position; null when there is none. A damaged file is reported through `onBad` and
 * ignored. A failure of the moment (out of descriptors: util/errno isTransient) is thrown: the
 * position is still there, and taking it for none would start at the end of alerts.json.
 */
export function readPosition(path: string, onBad: (why: string) => void): AlertsPosition | null {
  let text: string;
  try {
    text = readOwn(path, 64 * 1024).toString('utf8');
  } catch (e) {
    if (isTransient(e)) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onBad(`cannot read: ${(e as Error).message}`);
    return null;
  }
  try {
    const p = JSON.parse(text) as Record<string, unknown>;
    if (isCount(p.dev) && isCount(p.ino) && isCount(p.offset) && isCount(p.headLen) && p.headLen <= HEAD_BYTES
      && typeof p.head === 'string' && /^([0-9a-f]{64})?$/.test(p.head)) {
      const pos: AlertsPosition = { dev: p.dev, ino: p.ino, offset: p.offset, headLen: p.headLen, head: p.head };
      // A name that is not a rotated file's is left out: the position holds without it.
      if (typeof p.path === 'string' && isRotatedName(p.path)) pos.path = p.path;
      return pos;
    }
    onBad('not a position');
  } catch {
    onBad('not JSON');
  }
  return null;
}

/** Written at once, on the event loop, not synced (tests, tools): the follower uses a PositionWriter. */
export function writePosition(path: string, p: AlertsPosition): void {
  replaceOwn(path, `${JSON.stringify(p)}\n`);
}

export interface PositionWriterOptions {
  file: string;
  /** fdatasync the copy before the rename; false where the spool syncs nothing either (fsync 'never'). */
  sync: boolean;
  /**
   * Resolves true once the events the sink accepted so far are as durable as the spool makes them
   * (Spool.afterSync; `now`: the stop, start that sync now); false when it cannot say so (then the
   * position waiting is not written: it would be ahead of the spool). None: nothing to wait for.
   */
  afterSync?: (now: boolean) => Promise<boolean>;
  /** A write that failed, or a position not written (afterSync said false): counted and said by the caller, never thrown. */
  onError(e: Error, p: AlertsPosition): void;
}

/**
 * Writes of one file, one after the other, whichever writer: a follower stopped and another started
 * (alerts turned off and on by reloads) while the first's last write is still out would otherwise
 * share `<file>.tmp` — one removing, or renaming, the other's copy half-written.
 */
const writing = new Map<string, Promise<void>>();

function oneAtATime(file: string, write: () => Promise<void>): Promise<void> {
  const done = (writing.get(file) ?? Promise.resolve()).then(write);
  const tail = done.catch(() => {});
  writing.set(file, tail);
  void tail.then(() => { if (writing.get(file) === tail) writing.delete(file); });
  return done;
}

/** A position not written because the spool could not make the events behind it durable. */
export class NotSynced extends Error {
  readonly code = 'ENOTSYNCED';
}

/**
 * Writes the follower's position off the event loop: at most one write in flight, the newest
 * position waiting behind it (those in between are never written: each supersedes the last), each
 * taken when the spool's sync it waits for is asked for and written once that sync is done.
 */
export class PositionWriter {
  private pending: AlertsPosition | null = null;
  private running: Promise<void> | null = null;
  private stopping = false;
  /** The stop stopped waiting: a write not begun yet is not made (a later writer of the file has the newer position). */
  private abandoned = false;

  constructor(private readonly o: PositionWriterOptions) {}

  /** Write `p` (after what is in flight, instead of any position still waiting). */
  save(p: AlertsPosition): void {
    this.pending = p;
    if (!this.running) this.running = this.run();
  }

  private async run(): Promise<void> {
    try {
      while (this.pending) {
        // The position of now: every line before it was accepted, its events written to the spool
        // already; the sync asked for now covers them.
        const p = this.pending;
        this.pending = null;
        try {
          if (this.o.afterSync && !(await this.o.afterSync(this.stopping))) {
            throw new NotSynced('the spool could not sync the events behind the alerts position: it was not saved');
          }
          if (this.abandoned) return;
          await oneAtATime(this.o.file, () => (this.abandoned ? Promise.resolve()
            : replaceOwnAsync(this.o.file, `${JSON.stringify(p)}\n`, { sync: this.o.sync })));
        } catch (e) {
          this.o.onError(e as Error, p);
        }
      }
    } finally {
      // In the same step as the look that found nothing waiting: a save() after it starts another run.
      this.running = null;
    }
  }

  /**
   * The stop: what waits is written (its sync asked for now), and this resolves once it is done —
   * 'written' (or failed, said through onError) — or 'timeout' after `timeoutMs`: a disk that hangs
   * holds a thread of libuv's pool, never the exit (agent/process-exit.ts ends the process all the same).
   */
  async stop(timeoutMs: number): Promise<'written' | 'timeout'> {
    this.stopping = true;
    const running = this.running;
    if (!running) return 'written';
    // A write waiting for the spool's next periodic sync: have that sync start now.
    void this.o.afterSync?.(true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    try {
      // The run takes what waits, the last position with it, before it ends.
      const r = await Promise.race([running.then(() => 'written' as const), timeout]);
      if (r === 'timeout') this.abandoned = true;
      return r;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Hash of the first `len` bytes of an open file; null when it holds fewer. */
export function headHash(fd: number, len: number): string | null {
  if (len === 0) return '';
  const b = readWhole(fd, len);
  return b.length === len ? hashOf(b) : null;
}

/** The head's hash as the position keeps it (sha256, hex). */
export function hashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
