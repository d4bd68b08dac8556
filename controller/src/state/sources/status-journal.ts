// The last status the tap published for each agent, kept on disk beside the
// spool. After a crash (SIGKILL, power loss) the records the kernel still held
// are gone; at the next start the tap compares this journal with what wazuh-db
// says now, and publishes each difference as a status event — instead of
// silently adopting wazuh-db's view and losing the transition.
//
// One line per published status event (`<id> <status> <code>\n`), appended
// with one write: cheap, since status changes are rare next to keepalives.
// Compacted to the latest line per agent at start, at a clean stop, and while
// the tap runs once the file holds more than max(1 MiB, 4 × its compacted
// size) — in a timer after the write, not inside the batch being published.
// Only appended, it grew for the tap's whole uptime (a fleet's restarts, an
// agent flapping), and a start after a crash read all of it. A file found
// larger than can be read (256 MiB: a journal of an older version, or one that
// could not be compacted for long) is read from its end — its last lines are
// each agent's latest — and that is said; it was taken as empty, silently,
// and compacted to nothing.
//
// It names at most the agents the tap keeps (MAX_AGENTS, its table's bound): a legitimate journal
// compacts to one line per agent, while a hand-made one of 14 million distinct ids ran the tap out of
// heap at every start (found by review). Lines naming further agents are counted and said as invalid
// lines; the compaction is written a piece at a time, never as one string of the whole file.
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
import { openOwn, replaceOwn } from '../../util/checked-open.js';
import { isTransient } from '../../util/errno.js';
import { readWhole } from '../../util/read-file.js';
import { libc } from '../../util/libc.js';
import { CONNECTION_STATUSES, type ConnectionStatus } from '../../types.js';
import { MAX_AGENTS } from '../../decode/values.js';
import { publishedStatus, PublishedStatuses, type PublishedStatus } from '../published-statuses.js';

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

/** What open() reads at most: the end of a larger file. */
const MAX_BYTES = 256 * 1024 * 1024;
/** A compaction while running once the file holds more than this, or than COMPACT_RATIO × its compacted size. */
const COMPACT_MIN_BYTES = 1024 * 1024;
const COMPACT_RATIO = 4;
/** Text parsed at a time: a journal of 256 MiB was one string, split into 15 million. */
const PARSE_CHUNK = 1024 * 1024;
/** Lines a compaction writes at a time (~1 MiB): 2 million agents' lines were one array and one string. */
const COMPACT_CHUNK = 50_000;

export { publishedStatus, type PublishedStatus } from '../published-statuses.js';

/** Lines that are no journal line (`lines`), and journal lines of agents past the bound (`beyond`). */
export interface JournalBadLines {
  lines: number;
  beyond: number;
}

/**
 * The removed agents held (their latest line `unknown`), in the order of their removal: the oldest
 * first out at the bound. An agent back (a later line of another status) leaves it, so it holds no
 * more than the agents held (review helper-94: a list of every removal grew with the file).
 */
type Removed = Set<number>;

/**
 * Parse journal text: the last valid line per agent wins; anything malformed (a torn last line) is skipped.
 * Ids and codes follow decode/values.ts: at most 9 digits (0 to 999,999,999) and 3 digits. At most
 * `maxAgents` agents are held. At the bound, a removed agent (`unknown`: the journal keeps them for good)
 * makes room for another that is not (review helper-93: a manager with 2 M registrations over its life
 * lost its live agents' lines, the newest, at every start), and a removed one past the bound is left
 * out unsaid; a line of another agent that finds no room is skipped and counted (`bad.beyond`). Lines of
 * the agents held still count.
 */
export function parseJournal(text: string, out = new Map<number, PublishedStatus>(), bad?: JournalBadLines,
  maxAgents = MAX_AGENTS, removed: Removed = new Set()): Map<number, PublishedStatus> {
  for (const line of text.split('\n')) {
    const m = /^(\d{1,9}) ([a-z_]+) (\d{1,3})$/.exec(line);
    if (!m || !(CONNECTION_STATUSES as readonly string[]).includes(m[2])) {
      if (bad && line !== '') bad.lines++;
      continue;
    }
    const id = Number(m[1]);
    const gone = m[2] === 'unknown';
    if (out.size >= maxAgents && !out.has(id) && (gone || !evictRemoved(out, removed))) {
      if (!gone && bad) bad.beyond++;
      continue;
    }
    removed.delete(id);
    if (gone) removed.add(id); // at the end: its latest removal
    out.set(id, publishedStatus(m[2] as ConnectionStatus, Number(m[3])));
  }
  return out;
}

/** Makes room by forgetting the agent removed the longest ago; false when none is held. */
function evictRemoved(out: Map<number, PublishedStatus>, removed: Removed): boolean {
  for (const id of removed) {
    removed.delete(id);
    out.delete(id);
    return true;
  }
  return false;
}

/**
 * parseJournal over a file's bytes, PARSE_CHUNK of whole lines at a time; a longer line (no journal line
 * is) skipped. `bad.lines`: the lines that are no journal line — but a torn last one (a crash in a write).
 */
function parseJournalBytes(buf: Buffer, bad: JournalBadLines, maxAgents: number): Map<number, PublishedStatus> {
  const out = new Map<number, PublishedStatus>();
  const removed: Removed = new Set(); // across the chunks, the last line's too
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.length - pos <= PARSE_CHUNK ? buf.length : buf.lastIndexOf(0x0a, pos + PARSE_CHUNK - 1);
    if (end < pos) {
      // A line of more than PARSE_CHUNK bytes: damage whether it ends or not (a torn line is a journal line's ~20).
      bad.lines++;
      const nl = buf.indexOf(0x0a, pos + PARSE_CHUNK);
      if (nl < 0) break;
      pos = nl + 1;
      continue;
    }
    // The file's end without its newline: a write a crash cut, not a line that was ever whole.
    const whole = end === buf.length && buf[end - 1] !== 0x0a ? buf.lastIndexOf(0x0a, end - 1) + 1 : end;
    parseJournal(buf.toString('latin1', pos, Math.max(pos, whole)), out, bad, maxAgents, removed);
    if (whole < end) parseJournal(buf.toString('latin1', Math.max(pos, whole), end), out, undefined, maxAgents, removed);
    pos = end + 1;
  }
  return out;
}

/**
 * The journal's file, or its last `maxBytes` from a line's start when it is larger: its bytes, and
 * how many before them were not read.
 */
function readJournal(path: string, maxBytes: number): { bytes: Buffer; unread: number } {
  const fd = openOwn(path, fc.O_RDONLY);
  try {
    const size = fstatSync(fd).size;
    // One byte before the part read: whether it begins a line.
    const from = size > maxBytes ? size - maxBytes - 1 : 0;
    const buf = readWhole(fd, size - from, from);
    if (from === 0) return { bytes: buf, unread: 0 };
    const start = buf.indexOf(0x0a) + 1; // 0 when no line ends in it: nothing whole
    return start > 0 ? { bytes: buf.subarray(start), unread: from + start } : { bytes: Buffer.alloc(0), unread: size };
  } finally {
    closeSync(fd);
  }
}

export type JournalOp = 'read' | 'open' | 'write' | 'compact' | 'oversized' | 'invalid';

export interface StatusJournalOptions {
  /**
   * A write failed (`failures` so far): reported the first time, then at most once a minute.
   * `oversized`: open() found the file larger than it reads, and read its end only; `invalid`: lines
   * in it that are no journal line (not a torn last one), or that name more agents than it takes, skipped.
   */
  onError?: (err: Error, op: JournalOp, failures: number) => void;
  /** Writing works again after failures. */
  onRecovered?: () => void;
  /** Milliseconds between attempts to write what a failed write left in memory (default 1000). */
  retryMs?: number;
  /** What open() reads at most (default 256 MiB; tests). */
  maxBytes?: number;
  /** Agents open() takes at most (default MAX_AGENTS, the table's bound; tests). */
  maxAgents?: number;
}

const REPORT_EVERY_MS = 60_000;

/** A compaction's text, COMPACT_CHUNK lines a piece (its bytes added up in `written`). */
function* compactedText(latest: ReadonlyMap<number, PublishedStatus>, written: { bytes: number }): Generator<string> {
  let lines: string[] = [];
  const piece = () => {
    const text = lines.join('');
    lines = [];
    written.bytes += text.length; // ASCII only: ids, statuses and codes
    return text;
  };
  for (const [id, s] of latest) {
    lines.push(`${id} ${s.status} ${s.status_code}\n`);
    if (lines.length >= COMPACT_CHUNK) yield piece();
  }
  if (lines.length) yield piece();
}

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
  /** What the file holds (written or waiting in `unsaved`), the latest per agent: what a compaction writes. */
  private latest = new PublishedStatuses();
  /** The size past which a compaction is due (see the header). */
  private compactAbove = COMPACT_MIN_BYTES;
  /** open() could not read the file (out of descriptors): it holds what this run does not know, never compacted. */
  private unread = false;
  private compactTimer: NodeJS.Timeout | null = null;
  /** Compactions made while running. */
  compactions = 0;
  /** Bytes of the file open() could not read (it was larger than that): the statuses in them are lost. */
  unreadBytes = 0;
  /**
   * Lines open() found that are no journal line (damage, not a crash's torn last line), or that name
   * agents past maxAgents: their statuses are lost.
   */
  invalidLines = 0;

  private readonly o: StatusJournalOptions;

  /** `o`: the options, or (as before) just a function told of a failed compaction. */
  constructor(private readonly path: string, o: StatusJournalOptions | ((e: Error) => void) = {}) {
    this.o = typeof o === 'function' ? { onError: (e) => o(e) } : o;
  }

  /** Read the journal (empty on first run), rewrite it compacted, and open it for appends. */
  open(): Map<number, PublishedStatus> {
    let known = new Map<number, PublishedStatus>();
    try {
      const maxBytes = this.o.maxBytes ?? MAX_BYTES;
      const { bytes, unread } = readJournal(this.path, maxBytes);
      const bad = { lines: 0, beyond: 0 };
      const maxAgents = this.o.maxAgents ?? MAX_AGENTS;
      known = parseJournalBytes(bytes, bad, maxAgents);
      if (bad.lines > 0) {
        // Not a crash's torn last line: damage (a disk, a restore, an edit). What those lines held is lost.
        this.invalid(`${bad.lines} line${bad.lines === 1 ? ' is' : 's are'} no journal line (AGENT_ID STATUS CODE)`, bad.lines);
      }
      if (bad.beyond > 0) {
        // More agents than the tap keeps: no journal of its own (one line per agent once compacted).
        this.invalid(`${bad.beyond} line${bad.beyond === 1 ? ' names' : 's name'} agents past the ${maxAgents} it takes (the tap's bound)`, bad.beyond);
      }
      if (unread > 0) {
        // Its end holds each agent's latest line, for every agent with one there; the others' are lost.
        this.unreadBytes += unread;
        this.o.onError?.(new Error(`${this.path} holds ${unread + bytes.length} bytes, more than the ${maxBytes} read: `
          + `its first ${unread} bytes were not read`), 'oversized', this.failures);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.failed(e as Error, 'read'); // none: the first run
      // Out of descriptors (or memory) for a moment: the file is whole, only unread. Compacted from
      // nothing it would be emptied, and the next start would know no status published before.
      // Nor later, at run time or at close: appended to, it is read whole at the next start.
      this.unread = isTransient(e);
    }
    this.latest = new PublishedStatuses();
    for (const [id, p] of known) this.latest.set(id, p);
    if (!this.unread) this.compact(known);
    this.openFile();
    return known;
  }

  /** Lines open() skipped as no journal line: counted and said. */
  private invalid(what: string, lines: number): void {
    this.invalidLines += lines;
    this.o.onError?.(new Error(`${this.path}: ${what}`), 'invalid', this.failures);
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
    const valid = entries.filter((e) => /^\d{1,9}$/.test(e.agentId));
    for (const e of valid) this.latest.set(Number(e.agentId), publishedStatus(e.status, e.statusCode));
    const lines = valid.map((e) => [Number(e.agentId), `${Number(e.agentId)} ${e.status} ${e.statusCode}\n`] as const);
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
    if (this.size > this.compactAbove) this.compactSoon();
    return true;
  }

  /** A compaction after the batch being published (one timer, whatever the writes meanwhile). */
  private compactSoon(): void {
    if (this.compactTimer) return;
    this.compactTimer = setTimeout(() => {
      this.compactTimer = null;
      this.compactRunning();
    }, 0);
    this.compactTimer.unref();
  }

  /**
   * Replace the file with what it holds (`latest`: the lines waiting in `unsaved` too), and append
   * to the new one. Failed, the old file stays (as good, only longer) and the next try waits for
   * another COMPACT_MIN_BYTES of lines.
   */
  private compactRunning(): void {
    if (this.fd === null || this.unread) return; // closed, or not open: open() and close() compact
    if (!this.compact(this.latest)) {
      this.compactAbove = this.size + COMPACT_MIN_BYTES;
      return;
    }
    this.compactions++;
    try { closeSync(this.fd); } catch { /* the old file, renamed over */ }
    this.fd = null;
    this.unsaved.clear(); // in the new file
    this.openFile(); // failed: said, and the next status opens it again (writeUnsaved)
  }

  /** Replace the file with one line per agent (write a copy, then rename: never a half file). False when it failed (the old file stays). */
  compact(latest: ReadonlyMap<number, PublishedStatus>): boolean {
    const written = { bytes: 0 };
    try {
      replaceOwn(this.path, compactedText(latest, written));
    } catch (e) {
      this.failed(e as Error, 'compact');
      return false;
    }
    this.compactAbove = Math.max(COMPACT_MIN_BYTES, COMPACT_RATIO * written.bytes);
    this.recovered();
    return true;
  }

  close(latest?: ReadonlyMap<number, PublishedStatus>): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.compactTimer = null;
    if (this.fd !== null) {
      try { closeSync(this.fd); } catch { /* written */ }
    }
    this.fd = null;
    if (latest && !this.unread) this.compact(latest);
  }

  /** Failed writes since the last one that worked. */
  get writeFailures(): number {
    return this.failures;
  }

  private failed(e: Error, op: Exclude<JournalOp, 'oversized' | 'invalid'>): void {
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
