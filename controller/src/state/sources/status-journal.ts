// The last status the tap published for each agent, kept on disk beside the
// spool. After a crash (SIGKILL, power loss) the records the kernel still held
// are gone; at the next start the tap compares this journal with what wazuh-db
// says now, and publishes each difference as a status event — instead of
// silently adopting wazuh-db's view and losing the transition.
//
// One line per published status event (`<id> <status> <code>\n`), appended
// with one write: cheap, since status changes are rare next to keepalives.
// Compacted to the latest line per agent at start and at a clean stop.
//
// A full disk never stops the tap here: a write that fails is cut back (no torn
// line), its lines wait in memory (the latest per agent) and are written before
// the next ones — tried again with each new status, and once a second without
// one; a compaction that fails keeps the old file (still valid, only longer).
// Failures are reported through `onError`, the first one and then at most once a
// minute, and `onRecovered` says when writing works again. Lines left waiting
// until the next status (as they once were) made a stale journal: the disk back,
// the events delivered, then a crash — and the next start compared wazuh-db with
// statuses older than those the consumers had, publishing nothing (found by
// test/chaos-e2e.test.ts).
//
// A line follows a status event the spool has just accepted. On a disk filled to
// the last byte the spool can still append into its segment's last block while
// the journal needs a new one: the journal behind the spool, and a crash before
// the disk has room again makes the same stale start (chaos-e2e, again). So the
// journal keeps 64 KiB beyond its end allocated for itself (fallocate, KEEP_SIZE:
// its appends land in blocks it already has), topped up once half of it is
// written, and tried again with each write while it cannot be. A separate
// reserve file given back on a full disk was not enough: the room it freed
// went to whoever wrote first — the spool.
//
// The tap is root and the directory's parent may be another user's: the file is
// opened without following a link, without blocking, and used only when it is a
// regular file of the tap's (util/checked-open.ts); the compacted copy is made
// new (O_EXCL) and renamed over it. Anything else there is not read: reported
// (`read`), and replaced by the compaction — the rename replaces a link, never
// follows it.
import { closeSync, constants as fc, fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { openOwn, readOwn, replaceOwn } from '../../util/checked-open.js';
import { libc } from '../../util/libc.js';
import type { ConnectionStatus } from '../../types.js';
import { SharedPool } from '../../util/intern.js';

/** The room the journal keeps allocated beyond its end (see the header): ~2,000 lines after the disk filled. */
const RESERVE_BYTES = 64 * 1024;
const FALLOC_FL_KEEP_SIZE = 1;

type Fallocate = (fd: number, mode: number, offset: number, len: number) => number;
let fallocateFn: Fallocate | null | undefined;
/** fallocate(2), or null where it cannot be loaded. */
function fallocate(): Fallocate | null {
  if (fallocateFn === undefined) {
    try {
      fallocateFn = libc().func('int fallocate(int fd, int mode, int64_t offset, int64_t len)') as unknown as Fallocate;
    } catch {
      fallocateFn = null;
    }
  }
  return fallocateFn;
}

const STATUSES: readonly ConnectionStatus[] = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'];
const MAX_BYTES = 256 * 1024 * 1024;

export interface PublishedStatus {
  readonly status: ConnectionStatus;
  readonly status_code: number;
}

/** The few (status, code) pairs there are, one shared frozen object each: a fleet's map holds 100,000s. */
const pairs = new SharedPool<PublishedStatus>(); // codes are 0–999 (decode/values.ts): its bound is never reached by Wazuh

export function publishedStatus(status: ConnectionStatus, status_code: number): PublishedStatus {
  return pairs.of(`${status} ${status_code}`, () => Object.freeze({ status, status_code }));
}

/**
 * Parse journal text: the last valid line per agent wins; anything malformed (a torn last line) is skipped.
 * Ids and codes follow decode/values.ts: at most 9 digits (0 to 999,999,999) and 3 digits.
 */
export function parseJournal(text: string): Map<number, PublishedStatus> {
  const out = new Map<number, PublishedStatus>();
  for (const line of text.split('\n')) {
    const m = /^(\d{1,9}) ([a-z_]+) (\d{1,3})$/.exec(line);
    if (!m || !(STATUSES as readonly string[]).includes(m[2])) continue;
    out.set(Number(m[1]), publishedStatus(m[2] as ConnectionStatus, Number(m[3])));
  }
  return out;
}

export interface StatusJournalOptions {
  /** A write failed (`failures` so far): reported the first time, then at most once a minute. */
  onError?: (err: Error, op: 'read' | 'open' | 'write' | 'compact', failures: number) => void;
  /** Writing works again after failures. */
  onRecovered?: () => void;
  /** Milliseconds between attempts to write what a failed write left in memory (default 1000). */
  retryMs?: number;
}

const REPORT_EVERY_MS = 60_000;

export class StatusJournal {
  private fd: number | null = null;
  /** Bytes of the file that hold whole lines (where a failed write is cut back to). */
  private size = 0;
  /** Lines a failed write left, the latest per agent, in the order they came. */
  private readonly unsaved = new Map<number, string>();
  private failures = 0;
  /** performance.now() of the last failure: a step of the wall clock must not hold the retry. */
  private failedAt = Number.NEGATIVE_INFINITY;
  private reportedAt = Number.NEGATIVE_INFINITY;
  /** Writes what waits in `unsaved` when no new status comes to carry it. */
  private retryTimer: NodeJS.Timeout | null = null;
  /** The offset up to which fallocate last kept the file's blocks (0: none kept). */
  private reservedTo = 0;

  private readonly o: StatusJournalOptions;

  /** `o`: the options, or (as before) just a function told of a failed compaction. */
  constructor(private readonly path: string, o: StatusJournalOptions | ((e: Error) => void) = {}) {
    this.o = typeof o === 'function' ? { onError: (e) => o(e) } : o;
  }

  /** Read the journal (empty on first run), rewrite it compacted, and open it for appends. */
  open(): Map<number, PublishedStatus> {
    let known = new Map<number, PublishedStatus>();
    try {
      const text = readOwn(this.path, MAX_BYTES + 1);
      if (text.length <= MAX_BYTES) known = parseJournal(text.toString('utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.failed(e as Error, 'read'); // none: the first run
    }
    this.compact(known);
    this.openFile();
    return known;
  }

  /**
   * Keep RESERVE_BYTES allocated beyond the end, topped up once half of it is written (one syscall
   * per 32 KiB of lines). Where it fails (a full disk, a file system without fallocate) the journal
   * only lacks that margin, and the next write tries again.
   */
  private keepReserve(): void {
    if (this.fd === null || this.size + RESERVE_BYTES / 2 < this.reservedTo) return;
    try {
      if (fallocate()?.(this.fd, FALLOC_FL_KEEP_SIZE, this.size, RESERVE_BYTES) === 0) this.reservedTo = this.size + RESERVE_BYTES;
    } catch { /* the margin only */ }
  }

  private openFile(): boolean {
    try {
      this.fd = openOwn(this.path, fc.O_WRONLY | fc.O_APPEND | fc.O_CREAT);
      this.size = fstatSync(this.fd).size;
      this.reservedTo = 0; // a new file (after a compaction): nothing kept yet
      this.keepReserve();
      return true;
    } catch (e) {
      this.fd = null;
      this.failed(e as Error, 'open');
      return false;
    }
  }

  /** The statuses just published, with one write. Never throws: what cannot be written now waits (see the header). */
  recordMany(entries: { agentId: string; status: ConnectionStatus; statusCode: number }[]): void {
    const lines = entries.filter((e) => /^\d{1,9}$/.test(e.agentId))
      .map((e) => [Number(e.agentId), `${Number(e.agentId)} ${e.status} ${e.statusCode}\n`] as const);
    if (lines.length === 0 && this.unsaved.size === 0) return;
    let tried = false;
    if (this.unsaved.size === 0 && this.fd !== null) {
      if (this.write(lines.map(([, l]) => l).join(''))) return;
      tried = true;
    }
    for (const [id, l] of lines) {
      this.unsaved.delete(id); // the latest, last
      this.unsaved.set(id, l);
    }
    // New statuses were just accepted by the spool, beside this file: the disk has room, most likely.
    if (!tried && (lines.length || performance.now() - this.failedAt >= this.retryMs)) this.writeUnsaved();
    else this.retryLater();
  }

  private get retryMs(): number {
    return this.o.retryMs ?? 1000;
  }

  private writeUnsaved(): void {
    if ((this.fd !== null || this.openFile()) && this.write([...this.unsaved.values()].join(''))) this.unsaved.clear();
    else this.retryLater();
  }

  private retryLater(): void {
    if (this.retryTimer || this.unsaved.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.unsaved.size) this.writeUnsaved();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  /** Append whole lines; a write that fails is cut back to the last whole line. */
  private write(text: string): boolean {
    const buf = Buffer.from(text, 'utf8');
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd!, buf, off);
    } catch (e) {
      // Cut back to the last whole line (what fallocate kept beyond it goes too: it was used up).
      try { ftruncateSync(this.fd!, this.size); } catch { /* a torn line is skipped when read */ }
      this.reservedTo = 0;
      this.failed(e as Error, 'write');
      return false;
    }
    this.size += buf.length;
    this.recovered();
    this.keepReserve();
    return true;
  }

  /** Replace the file with one line per agent (write a copy, then rename: never a half file). False when it failed (the old file stays). */
  compact(latest: ReadonlyMap<number, PublishedStatus>): boolean {
    try {
      replaceOwn(this.path, [...latest].map(([id, s]) => `${id} ${s.status} ${s.status_code}\n`).join(''));
    } catch (e) {
      this.failed(e as Error, 'compact');
      return false;
    }
    this.recovered();
    return true;
  }

  close(latest?: ReadonlyMap<number, PublishedStatus>): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.fd !== null) {
      try { closeSync(this.fd); } catch { /* written */ }
    }
    this.fd = null;
    if (latest) this.compact(latest);
  }

  /** Failed writes since the last one that worked. */
  get writeFailures(): number {
    return this.failures;
  }

  private failed(e: Error, op: 'read' | 'open' | 'write' | 'compact'): void {
    this.failures++;
    this.failedAt = performance.now();
    if (this.failedAt - this.reportedAt < REPORT_EVERY_MS) return;
    this.reportedAt = this.failedAt;
    this.o.onError?.(e, op, this.failures);
  }

  private recovered(): void {
    if (this.failures === 0) return;
    this.failures = 0;
    this.reportedAt = Number.NEGATIVE_INFINITY;
    this.o.onRecovered?.();
  }
}
