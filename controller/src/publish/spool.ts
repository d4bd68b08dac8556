// A bounded disk spool: every event is written here before it counts as
// accepted, and is removed only when NATS acknowledged it (SPEC §5).
//
// Layout: a directory of append-only segment files `seg-<n>.log` and a file
// `ack` holding the ack cursor (every record with seq <= cursor was
// acknowledged). A record on disk is a frame:
//
//   u32 LE payload length | u32 LE CRC-32 of the payload | payload
//   payload = u8 kind | u48 LE seq | u16 subject length | subject | u8 id length | event_id
//             | u32 headers length | headers (JSON object) | body
//
// Durability (the fsync policy):
//   - every append is one write(2) of whole frames before append() returns: a record that
//     was accepted survives the process being killed (SIGKILL, crash), since it is in the
//     kernel's page cache;
//   - `fsync: 'interval'` (default) fdatasync()s the active segment every `fsyncIntervalMs`
//     (1 s) when it was written, and on rotation and close: a power loss or kernel crash
//     loses at most that interval. They run on libuv's threads, never on the event loop's:
//     a disk that takes seconds to sync (a busy or throttled volume) delays the durability
//     of the last second, not every event — nor the shutdown, which waits for the last sync
//     a bounded time (`synced()`) and then leaves it to the kernel; a segment is closed once
//     its sync is done. `'always'` fdatasync()s every append on the
//     event loop (slow, no loss: accepted means synced);
//     `'never'` leaves it to the kernel; `afterSync()` says when what was written so far is
//     synced (the alerts position is saved behind it, never ahead);
//   - a record torn by a crash in the middle of a write is found by its length or checksum
//     when the spool is opened, dropped and counted (`torn`); the file is cut there. Only the
//     last segment can end so; damage anywhere else (a bad sector, a flipped bit) costs only
//     the records it hit: counted (`corrupt`), jumped over by a replay, never cut (parseFrames).
//   - the ack cursor is written (tmp + rename) at most every `ackPersistMs` (250 ms) and
//     before any segment is deleted, so a restart resends at most the records acknowledged
//     in the last 250 ms plus those in flight; resends are harmless with JetStream, which
//     de-duplicates them by Nats-Msg-Id.
//
// Replay is FIFO (seq order), so per-agent order is kept. The bound is the bytes of all
// segment files: keepalives are refused once the spool holds `keepaliveShare` (90 %) of
// `maxBytes`; a status change, alert or tap event that does not fit makes room by
// compacting unsent keepalives out of the oldest segments, and is itself shed (counted)
// only when no keepalive is left to drop. Every shed event is counted by kind (a keepalive batch by its events).
//
// A full disk (or a failing one) is a fault to survive, never a crash (SPEC §8). The bound in
// force is `maxBytes`, but never so much that the file system keeps less than a reserve free
// (2 % of it, 64 KiB to 64 MiB: room for the ack cursor, the status journal, the alerts
// position, and for Wazuh when it shares the disk); the free space is read with statfs every
// second (every 100 ms when it is short) and followed between reads. A full disk so sheds as
// above: keepalives refused first (below 90 % of the bound in force only), then the rest,
// counted. A write that fails all the same (the disk filled faster, EDQUOT, EIO, any errno)
// keeps the records written whole before the failure, cuts the file back after them (a
// reopen finds no torn record), and the bound drops to what the spool holds until the disk
// is looked at again (`retryMs`). Room returns as the drain deletes acknowledged segments or
// as the disk frees up: accepting again needs no restart. Saving the ack cursor, a compaction,
// an fdatasync that fail are counted and retried later, never thrown.
//
// Every file is 0600 and the directory 0700 (SPEC §8): they hold events, maybe secrets.
//
// The tap is root and the directory's parent may be another user's to write (on Wazuh, `<home>/var` is
// root:wazuh 0770), so nothing found in it is trusted (SPEC §8). The directory is opened once — a
// symbolic link in its place is refused when others than root may write the parent (spool-dir.ts) — and
// checked: the tap's user must own it, and one that others may write is refused unless it holds only
// the tap's files (then it is made 0700). Every file is then reached through that descriptor
// (`/proc/self/fd/<n>/<name>`), so a directory renamed and replaced by whoever writes the parent cannot
// redirect a write; each is opened without following a link and without blocking (a FIFO), and used
// only when it is a regular file of the tap's user with one name (util/checked-open.ts); new files are
// made with O_EXCL. Anything else where a segment or the cursor should be is reported (`onWarn`),
// counted (`refusedFiles`) and left as it is: never read, written, truncated, chmodded or followed.
import {
  closeSync, constants as fc, fchmodSync, fdatasync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync,
  readSync, readdirSync, statfsSync, unlinkSync, writeSync, writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ConfigError } from '../errors.js';
import {
  NotOwnFile, appendOwnAsync, notOwnFile, openOwn, readOwn, removeOwnAsync, replaceOwn, replaceOwnAsync,
} from '../util/checked-open.js';
import { isErrno } from '../util/errno.js';
import { notOwnedError, openSpoolDir, procPathOf } from './spool-dir.js';
import { readBackFault } from './publishable.js';
import { prefixOfTapSubject } from './subjects.js';
import { MAX_BATCH_EVENTS } from './keepalive-batch.js';
import { clip } from '../util/clip.js';
import { lstatOrNull, readWhole } from '../util/read-file.js';

export type MessageKind = 'status' | 'keepalive' | 'alert' | 'tap';
export const KINDS: readonly MessageKind[] = ['status', 'keepalive', 'alert', 'tap'];
const KIND_CODE: Record<MessageKind, number> = { status: 1, keepalive: 2, alert: 3, tap: 4 };
const CODE_KIND: Record<number, MessageKind> = { 1: 'status', 2: 'keepalive', 3: 'alert', 4: 'tap' };

/** What goes into the spool. */
export interface SpoolMessage {
  subject: string;
  headers: Record<string, string>;
  body: Uint8Array | string;
  kind: MessageKind;
  eventId: string;
}

/** What comes out, in seq order. */
export interface SpoolEntry {
  seq: number;
  kind: MessageKind;
  subject: string;
  eventId: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** Bytes on disk (frame). */
  size: number;
  /** Written by an earlier process (found when the spool was opened). */
  recovered: boolean;
}

export interface SpoolOptions {
  /** spool_dir: made when missing and opened (publish/spool-dir.ts) unless `openAt` is given; its name in messages. */
  dir: string;
  /**
   * `dir` opened already by the caller (the tap's lock part, publish/spool-dir.ts): the path that leads
   * to that directory (`/proc/self/fd/<n>`), opened as it is. `dir` then only names it.
   */
  openAt?: string;
  /** Bound of all segment files together. */
  maxBytes: number;
  /** Segment file size at which a new one is started (default min(8 MiB, maxBytes / 8)). */
  segmentBytes?: number;
  /** Keepalives are refused once the spool holds this share of maxBytes (default 0.9). */
  keepaliveShare?: number;
  fsync?: 'always' | 'interval' | 'never';
  fsyncIntervalMs?: number;
  ackPersistMs?: number;
  /** Unsent records kept in memory too, so a healthy drain never reads the disk (default 16 MiB). */
  memCacheBytes?: number;
  /** After a failed write, how long before the disk is looked at again (default 1000 ms). */
  retryMs?: number;
  /** Left free on the file system (default 2 % of its size, at least 64 KiB, at most 64 MiB). */
  reserveBytes?: number;
  /** A write failed (`op`: append, ack, compact, sync, open): counted, the spool goes on. */
  onIoError?: (err: NodeJS.ErrnoException, op: string) => void;
  /** Something to say once (a file in the directory that is not the tap's: counted, left as it is). */
  onWarn?: (msg: string, fields: Record<string, unknown>) => void;
  /**
   * subject_prefix: a record read back under another (spooled before the prefix changed) is left out,
   * counted (`foreign`) and said — published as it was, it went outside the stream (no PubAck, retried
   * for ever) and the consumers no longer listen there. Unset: any prefix.
   */
  subjectPrefix?: string;
  /** The disk limits the spool below `maxBytes` (full: true), or no longer does. */
  onDisk?: (full: boolean, stats: { boundBytes: number; freeBytes: number }) => void;
  /**
   * Each record an earlier process left unacknowledged, in seq order, as the spool is opened (it will
   * be replayed): what the consumers are about to receive, newer than any note kept beside the spool.
   */
  onRecovered?: (e: SpoolEntry) => void;
}

export interface SpoolStats {
  bytes: number;
  records: number;
  segments: number;
  appended: number;
  acked: number;
  /** Events shed, by kind: a keepalive batch counts its events (Wazuh-Event-Count). */
  shed: Record<MessageKind, number>;
  /** Refused for want of room, but kept by the caller to offer again (alerts stay in alerts.json): not shed. */
  deferred: number;
  torn: number;
  corrupt: number;
  /** Whole records found at open under another subject prefix (SpoolOptions.subjectPrefix): left out. */
  foreign: number;
  /** The first of those prefixes (null: none). */
  foreignPrefix: string | null;
  compactions: number;
  recovered: number;
  ackCursor: number;
  /** Keepalives queued in memory only, never written (append's keepalivesInMemory). */
  inMemory: number;
  /** Writes that failed (append, ack cursor, compaction, fdatasync, a new segment). */
  writeErrors: number;
  /** Reads of unsent records from the segment files that failed (EMFILE, ENFILE, EIO…): retried by the caller. */
  readErrors: number;
  /** Files where a segment or the ack cursor should be that are not the tap's (a link, a FIFO, another user's): left unread. */
  refusedFiles: number;
  /** Unsent records lost with their segment file: removed (by hand, a clean-up) or replaced before they were read back. */
  lost: number;
  /** The disk is full: it (not maxBytes) made the spool refuse records, or a write failed; until the spool is below 80 % of what the disk holds. */
  diskFull: boolean;
  /** The bound in force: maxBytes, or less while the disk is full. */
  boundBytes: number;
}

interface Segment {
  id: number;
  path: string;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** Keepalive records in the file (an upper bound of what a compaction can drop). */
  keepalives: number;
  /** Byte ranges found damaged when the spool was opened (counted then): a replay jumps over them. */
  damaged?: [number, number][];
}

const HDR = 8;
const MAX_RECORD = 16 * 1024 * 1024;
/**
 * A replay reads a segment this much at a time (a record larger than it, whole). Every byte read is
 * checksummed and decoded at once, on the event loop: 4 MiB at a time held it 15–40 ms per read
 * during a replay (~8,000 records, where a read(512) needs ~500); 256 KiB is about one read's worth.
 */
export const READ_CHUNK = 256 * 1024;

/** The files the tap keeps in the spool directory (the status journal and the alerts position live there too). */
const TAP_FILE = /^(ack|seg-\d+\.log|agents\.status|alerts\.position|kv\.pending|lock)(\.tmp)?$/;

/** What the spool leaves free on its file system: 2 % of it, at least 64 KiB, at most 64 MiB. */
function defaultReserve(dir: string): number {
  try {
    const st = statfsSync(dir);
    return Math.round(Math.min(64 * 1024 * 1024, Math.max(64 * 1024, st.blocks * st.bsize * 0.02)));
  } catch {
    return 64 * 1024;
  }
}

/**
 * The events a message carries: a keepalive batch says how many (Wazuh-Event-Count, reliable.ts), any
 * other message is one. What shed counts: a batch of 500 keepalives shed is 500 events, not 1.
 */
function eventsOf(m: { headers: Record<string, string> }): number {
  const n = Number(m.headers['Wazuh-Event-Count']);
  // A record read back says what it likes: no more than a batch can hold (keepalive_batch's bound).
  return Number.isSafeInteger(n) && n > 0 ? Math.min(n, MAX_BATCH_EVENTS) : 1;
}

/**
 * The largest seq a run starts from (the ack cursor, reserveSeqs; kv.pending's seqs too: kv-latest.ts).
 * A seq is written in 6 bytes (< 2^48), and one read at 2^48 - 1 made every later append throw — the
 * tap exited at each start (review helper-89). A cursor above it is ignored.
 */
export const MAX_SEQ = 2 ** 47;
/**
 * The largest seq written or read back: above MAX_SEQ by 2^47 - 2^40 appends (44 years at 100,000 a
 * second), so what a run that started at MAX_SEQ writes is read back whole (review helper-92: one bound
 * for both, its records were cut as a torn tail). A record above it is damage; an append refused.
 */
const MAX_RECORD_SEQ = 2 ** 48 - 2 ** 40;

/** Errors that say the disk has no room (the others — EMFILE, EIO… — are not cured by deleting). */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/** A frame waiting to be written by append(): measured, then written by writeBatch. */
interface Pending {
  i: number;
  m: SpoolMessage;
  layout: FrameLayout;
  seq: number;
}

/** A message's frame, measured before it is written: its headers' JSON and the byte length of each part. */
interface FrameLayout {
  hdrs: string;
  sl: number;
  il: number;
  hl: number;
  /** The body's bytes: the frame's tail. */
  bl: number;
  /** The whole frame's. */
  size: number;
}

/** Measures m's frame; throws for a message no frame can hold (as encodeFrame). */
function frameLayout(m: SpoolMessage): FrameLayout {
  const hdrs = JSON.stringify(m.headers);
  const sl = Buffer.byteLength(m.subject, 'utf8');
  const il = Buffer.byteLength(m.eventId, 'utf8');
  if (sl > 0xffff || il > 0xff) throw new Error('subject or event id too long for the spool');
  const hl = Buffer.byteLength(hdrs, 'utf8');
  const bl = typeof m.body === 'string' ? Buffer.byteLength(m.body, 'utf8') : m.body.length;
  const plen = 1 + 6 + 2 + sl + 1 + il + 4 + hl + bl;
  if (plen > MAX_RECORD) throw new Error(`message of ${plen} bytes is larger than a spool record may be`);
  return { hdrs, sl, il, hl, bl, size: HDR + plen };
}

/**
 * Writes m's frame (measured: `l`) into b (l.size bytes). Each string straight into place: through
 * Buffer.from, a status event's four strings were four buffers copied again into the frame.
 */
function writeFrame(b: Buffer, m: SpoolMessage, seq: number, l: FrameLayout): void {
  let o = HDR;
  b[o++] = KIND_CODE[m.kind];
  b.writeUIntLE(seq, o, 6); o += 6;
  b.writeUInt16LE(l.sl, o); o += 2;
  o += b.write(m.subject, o, l.sl, 'utf8');
  b[o++] = l.il;
  o += b.write(m.eventId, o, l.il, 'utf8');
  b.writeUInt32LE(l.hl, o); o += 4;
  o += b.write(l.hdrs, o, l.hl, 'utf8');
  if (typeof m.body === 'string') b.write(m.body, o, l.bl, 'utf8');
  else b.set(m.body, o);
  b.writeUInt32LE(l.size - HDR, 0);
  b.writeUInt32LE(crc32(b.subarray(HDR, l.size)), 4);
}

export function encodeFrame(m: SpoolMessage, seq: number): Buffer {
  const l = frameLayout(m);
  const b = Buffer.allocUnsafe(l.size);
  writeFrame(b, m, seq, l);
  return b;
}

/** The body's bytes in a frame made for a message whose body is `bodyBytes` long: its tail. */
export function frameBody(frame: Buffer, bodyBytes: number): Buffer {
  return frame.subarray(frame.length - bodyBytes);
}

function decodePayload(p: Buffer, size: number, recovered: boolean, checked = false): SpoolEntry | null {
  try {
    let o = 0;
    const kind = CODE_KIND[p[o++]];
    if (!kind) return null;
    const seq = p.readUIntLE(o, 6); o += 6;
    if (seq === 0 || seq > MAX_RECORD_SEQ) return null;
    const sl = p.readUInt16LE(o); o += 2;
    const subject = p.toString('utf8', o, o + sl); o += sl;
    const il = p[o++];
    const eventId = p.toString('utf8', o, o + il); o += il;
    const hl = p.readUInt32LE(o); o += 4;
    const headersText = p.toString('utf8', o, o + hl); o += hl;
    if (o > p.length) return null;
    // A record the tap could not have written is damage too (only a hand-made one: publishable.ts).
    if (!checked && readBackFault(subject, eventId, headersText) !== null) return null;
    const headers = JSON.parse(headersText) as Record<string, string>;
    return { seq, kind, subject, eventId, headers, body: Uint8Array.prototype.slice.call(p, o), size, recovered };
  } catch {
    return null;
  }
}

/** The smallest frame: a payload with an empty subject, id, headers and body. */
const MIN_FRAME = HDR + 14;

/**
 * Parse the frames of a buffer. Without `resync` (a replay's chunk) it stops at the first frame that
 * does not fit, and skips one whose checksum fails by its length.
 *
 * `accept`: a whole record that is not this tap's to publish now (another prefix) is left out, counted in
 * `foreign`. `checked`: the records were checked already (readBackFault): a replay's chunk.
 *
 * With `resync` (a whole segment, at open or for a compaction: the seq of the last record before it, 0
 * when unknown), damage in the middle costs only the records it hit. A bad length or checksum there —
 * one byte of a length was enough to drop every later record of the segment, all counted as one
 * (found by review) — makes it look for the next offset where a whole frame's length, checksum and
 * contents hold and whose seq comes after the last good one; the bytes in between are `damaged`, and
 * their records counted in `bad`: one when the damaged frame's own length led to that offset, else the
 * seqs missing between the good records around them, at most what the bytes can hold (exact for what
 * was spooled while NATS was away, every record on disk; an upper bound when keepalives kept in memory
 * only, or compacted out, left seqs unused). With no good frame after it, the rest is the tail: `cut`
 * at `end` (torn by a crash in the last segment, damaged in another).
 */
function parseFrames(
  buf: Buffer, recovered: boolean, resync?: number, accept?: (e: SpoolEntry) => boolean, checked = false,
): { entries: SpoolEntry[]; end: number; bad: number; foreign: number; cut: boolean; damaged: [number, number][]; lastSeq: number } {
  const entries: SpoolEntry[] = [];
  const damaged: [number, number][] = [];
  let o = 0;
  let bad = 0;
  let foreign = 0;
  let lastSeq = resync ?? 0;
  while (o + HDR <= buf.length) {
    const len = buf.readUInt32LE(o);
    const fits = len >= 14 && len <= MAX_RECORD && o + HDR + len <= buf.length;
    const e = fits && crc32(buf.subarray(o + HDR, o + HDR + len)) === buf.readUInt32LE(o + 4)
      ? decodePayload(buf.subarray(o + HDR, o + HDR + len), HDR + len, recovered, checked) : null;
    if (e && resync !== undefined && e.seq <= lastSeq) {
      // Whole, but not after the record before it: seqs only rise (a hand-made or pasted segment). Kept,
      // it was counted as waiting and never handed out (a read goes by seq): a stop waited its whole deadline.
      bad++;
      damaged.push([o, o + HDR + len]);
      o += HDR + len;
      continue;
    }
    if (e && accept && !accept(e)) {
      foreign++; // whole, but not for this tap to publish now (Spool's `subjectPrefix`): left out
      damaged.push([o, o + HDR + len]);
      lastSeq = e.seq;
      o += HDR + len;
      continue;
    }
    if (e) {
      entries.push(e);
      lastSeq = e.seq;
      o += HDR + len;
      continue;
    }
    if (resync === undefined) {
      if (!fits) break; // torn (or garbage) tail
      // A bad checksum on the very last frame is a torn write; before that, a damaged record.
      if (o + HDR + len === buf.length) break;
      bad++;
      o += HDR + len;
      continue;
    }
    const next = nextFrame(buf, o + 1, lastSeq);
    if (next < 0) break; // the tail
    damaged.push([o, next]);
    if (fits && next === o + HDR + len) {
      bad++;
    } else {
      const fit = Math.max(1, Math.floor((next - o) / MIN_FRAME));
      const gap = lastSeq > 0 ? buf.readUIntLE(next + HDR + 1, 6) - lastSeq - 1 : 1;
      bad += Math.max(1, Math.min(gap, fit));
    }
    o = next;
  }
  return { entries, end: o, bad, foreign, cut: o < buf.length, damaged, lastSeq };
}

/** The offset of the next whole frame from `from` whose seq is past `after` (a damaged one's successor), or -1. */
function nextFrame(buf: Buffer, from: number, after: number): number {
  for (let p = from; p + MIN_FRAME <= buf.length; p++) {
    const len = buf.readUInt32LE(p);
    if (len < 14 || len > MAX_RECORD || p + HDR + len > buf.length) continue;
    // The cheap fields first: a byte of garbage passes the length about once in 256, the kind once in 64 of those.
    if (!CODE_KIND[buf[p + HDR]] || buf.readUIntLE(p + HDR + 1, 6) <= after) continue;
    const payload = buf.subarray(p + HDR, p + HDR + len);
    if (crc32(payload) === buf.readUInt32LE(p + 4) && decodePayload(payload, HDR + len, false)) return p;
  }
  return -1;
}

export class Spool {
  private readonly segs: Segment[] = [];
  private active!: Segment;
  private fd = -1;
  private nextSeq = 1;
  private firstSeqOfRun = 1;
  private totalBytes = 0;
  private unacked = 0;
  /** Next seq to hand out by read(); every record below it was handed out (or shed). */
  private nextRead = 1;
  /** Handed out, not acknowledged, in seq order. */
  private readonly outstanding = new Map<number, true>();
  /** Keepalives held in memory only and not acknowledged (append's keepalivesInMemory), by seq: their events. */
  private readonly memOnly = new Map<number, number>();
  private ackCursor = 0;
  private persistedCursor = 0;
  private mem: SpoolEntry[] = [];
  private memHead = 0;
  private memBytes = 0;
  /** Unsent records exist that are on disk only. */
  private diskMode = false;
  private rd: { segId: number; fd: number; offset: number; entries: SpoolEntry[]; head: number; damaged: [number, number][] } | null = null;
  private dirty = false;
  /**
   * What is durable, for afterSync() (the alerts position may not be saved ahead of it): the seq of
   * the last record written to a segment; the syncs started, in order, each covering every record
   * written before it started; every record up to `syncedThrough` synced — but for `hole`, records
   * a sync that failed (or was left to the kernel's writeback) may have lost, until NATS acknowledged
   * them (then their copy on disk no longer matters).
   */
  private writtenSeq = 0;
  private syncedThrough = 0;
  private readonly syncQueue: { upTo: number; from: number; done: boolean }[] = [];
  private hole: { lo: number; hi: number } | null = null;
  private readonly durableWaiters: { seq: number; resolve: (durable: boolean) => void }[] = [];
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** maxBytes, or what the spool held when a write failed (until the disk is looked at again). */
  private bound: number;
  /** When a write last failed (performance.now(): a step of the wall clock must not hold the retry). */
  private failedAt = Number.NEGATIVE_INFINITY;
  /** Free bytes on the file system: read by statfs at `fsCheckedAt`, less what was written since. */
  private fsFree = Number.POSITIVE_INFINITY;
  private fsCheckedAt = Number.NEGATIVE_INFINITY;
  /** Bytes written since the last statfs (the estimate drifts with what others write meanwhile). */
  private fsWritten = 0;
  private reserve = 0;
  /** The bound in force as last computed, and whether the disk limited it. */
  private lastLimit: number;
  private full = false;
  /** The active segment has a tail that could not be cut back: the next record starts a new segment. */
  private sealed = false;
  private readonly o: Required<Omit<SpoolOptions, 'onIoError' | 'onDisk' | 'onRecovered' | 'onWarn' | 'reserveBytes' | 'openAt' | 'subjectPrefix'>>
    & { reserveBytes?: number; openAt?: string; subjectPrefix?: string };
  private readonly onRecovered?: (e: SpoolEntry) => void;
  private readonly onWarn?: (msg: string, fields: Record<string, unknown>) => void;
  /** A whole record read back is this tap's to publish: under `subjectPrefix` (undefined: any). */
  private readonly accepts?: (e: SpoolEntry) => boolean;
  /** The prefix of the first record found under another (stats: said at open). */
  private foreignPrefix: string | null = null;
  /** The directory, opened once (recover): what `dirPath` names. */
  private dirFd = -1;
  /** How its files are reached: `/proc/self/fd/<dirFd>` (the directory opened, wherever it is now), else its path. */
  private dirPath = '';
  onIoError?: (err: NodeJS.ErrnoException, op: string) => void;
  onDisk?: (full: boolean, stats: { boundBytes: number; freeBytes: number }) => void;
  readonly counters = {
    appended: 0, acked: 0, torn: 0, corrupt: 0, foreign: 0, compactions: 0, recovered: 0, deferred: 0, writeErrors: 0, readErrors: 0, refusedFiles: 0, lost: 0,
    /** Keepalives queued in memory only (append's keepalivesInMemory). */
    inMemory: 0,
    shed: { status: 0, keepalive: 0, alert: 0, tap: 0 } as Record<MessageKind, number>,
  };

  private constructor(opts: SpoolOptions) {
    const { onIoError, onDisk, onRecovered, onWarn, ...rest } = opts;
    this.o = {
      segmentBytes: Math.max(64 * 1024, Math.min(8 * 1024 * 1024, Math.floor(opts.maxBytes / 8))),
      keepaliveShare: 0.9, fsync: 'interval', fsyncIntervalMs: 1000, ackPersistMs: 250,
      memCacheBytes: 16 * 1024 * 1024, retryMs: 1000, ...rest,
    };
    this.bound = this.o.maxBytes;
    this.lastLimit = this.o.maxBytes;
    this.onIoError = onIoError;
    this.onDisk = onDisk;
    this.onRecovered = onRecovered;
    const prefix = this.o.subjectPrefix;
    // decodePayload took the subject for one of the tap's: its prefix is all but its last three tokens.
    if (prefix !== undefined) {
      this.accepts = (e) => {
        const p = prefixOfTapSubject(e.subject);
        if (p === prefix) return true;
        this.foreignPrefix ??= p; // the warning names it: the prefix those events were for
        return false;
      };
    }
    this.onWarn = onWarn;
  }

  /** Open (or create) the spool in `dir`, recovering what an earlier process left. */
  static open(opts: SpoolOptions): Spool {
    const s = new Spool(opts);
    try {
      s.recover();
    } catch (e) {
      if (s.dirFd >= 0) closeSync(s.dirFd);
      throw e;
    }
    return s;
  }

  private recover(): void {
    this.pinDir();
    this.reserve = this.o.reserveBytes ?? defaultReserve(this.dirPath);
    const names = readdirSync(this.dirPath);
    for (const f of names) {
      // A copy a crash left half written (a compaction, the cursor): the original is whole. Removing a
      // name never follows it: a link planted there goes, what it points to stays.
      if (f === 'ack.tmp' || /^seg-\d+\.log\.tmp$/.test(f)) {
        try { unlinkSync(this.at(f)); } catch { /* gone; a directory: the next save of the copy says so */ }
      }
    }
    const ackFd = this.openFound('ack');
    if (ackFd !== null) {
      try {
        const text = readWhole(ackFd, 64).toString('utf8').trim();
        const n = Number(text);
        if (Number.isSafeInteger(n) && n >= 0 && n <= MAX_SEQ) this.ackCursor = n;
        else if (text !== '') {
          // Damaged or hand-made: replayed from the start (JetStream drops what it has stored already).
          this.onWarn?.('spool: the ack cursor is not a seq the spool could have saved: ignored, what the spool holds is replayed', {
            file: join(this.o.dir, 'ack'), cursor: clip(text, 32) });
        }
      } finally {
        closeSync(ackFd);
      }
    }
    this.persistedCursor = this.ackCursor;
    const files = names.filter((f) => /^seg-\d+\.log$/.test(f))
      .map((f) => ({ f, id: Number(f.slice(4, -4)) })).sort((a, b) => a.id - b.id);
    /** The highest seq of the records found (the cursor aside). */
    let recordsMax = 0;
    // Past every name found, refused ones too: a new segment is never one of them.
    const maxId = files.reduce((m, { id }) => Math.max(m, id), 0);
    /**
     * Segments whose tail did not parse. Only the last one's can be torn by a crash (its write was
     * the last): it is cut after its last whole record. Another's is damage: counted and jumped over,
     * never cut — a cut cannot tell what it removes from what could still be read.
     */
    type Tail = { path: string; end: number; size: number; lastSeq: number; nextSeq: number; seg?: Segment };
    const tails: Tail[] = [];
    /** The last record's seq of the segment before: where a damaged start of the next one resumes from. */
    let prevSeq = 0;
    let last = '';
    for (const { f, id } of files) {
      const fd = this.openFound(f);
      if (fd === null) continue;
      const path = this.at(f);
      last = path;
      let buf: Buffer;
      try {
        buf = readWhole(fd, fstatSync(fd).size);
      } finally {
        closeSync(fd);
      }
      const { entries, end, bad, foreign, cut, damaged, lastSeq: seenSeq } = parseFrames(buf, true, prevSeq, this.accepts);
      if (foreign) recordsMax = Math.max(recordsMax, seenSeq); // a record left out still took its seq: none of this run reuses it
      this.counters.corrupt += bad;
      this.counters.foreign += foreign;
      const before = tails.at(-1);
      if (before && before.nextSeq === 0 && entries.length) before.nextSeq = entries[0].seq;
      if (entries.length) prevSeq = entries[entries.length - 1].seq;
      const tail: Tail | null = cut ? { path, end, size: buf.length, lastSeq: prevSeq, nextSeq: 0 } : null;
      if (tail) tails.push(tail);
      const live = entries.filter((e) => e.seq > this.ackCursor);
      for (const e of entries) recordsMax = Math.max(recordsMax, e.seq);
      if (live.length === 0) {
        try { unlinkSync(path); } catch (e) { if (!isErrno(e)) throw e; }
        continue;
      }
      const seg: Segment = {
        id, path, bytes: buf.length, firstSeq: live[0].seq, lastSeq: live[live.length - 1].seq, count: live.length,
        keepalives: live.filter((e) => e.kind === 'keepalive').length,
      };
      if (tail) damaged.push([end, buf.length]);
      if (damaged.length) seg.damaged = damaged;
      if (tail) tail.seg = seg;
      this.segs.push(seg);
      this.totalBytes += buf.length;
      this.unacked += live.length;
      if (this.onRecovered) for (const e of live) this.onRecovered(e);
    }
    for (const t of tails) {
      if (t.path === last) {
        this.counters.torn++;
        // Cut for good; if that fails, nothing is appended to this file anyway (a new segment
        // is opened below), a replay stops at `end`, and the next open cuts it again.
        this.cut(t.path, t.end);
        if (t.seg) {
          t.seg.bytes = t.end;
          this.totalBytes -= t.size - t.end;
        }
      } else {
        // The seqs missing up to the next segment's first record, at most what the bytes can hold (see parseFrames).
        const gap = t.lastSeq > 0 && t.nextSeq > 0 ? t.nextSeq - t.lastSeq - 1 : 1;
        this.counters.corrupt += Math.max(1, Math.min(gap, Math.floor((t.size - t.end) / MIN_FRAME)));
      }
    }
    const maxSeq = Math.max(this.ackCursor, recordsMax);
    if (recordsMax > 0 && this.ackCursor > recordsMax) {
      // Every record taken as delivered. Legitimate after a crash that lost a segment's unsynced end
      // while the cursor saved after it was synced; a damaged cursor hides undelivered events: said.
      this.onWarn?.('spool: the ack cursor is past every record in the spool: all are taken as delivered (a crash between the '
        + 'segments\' sync and the cursor\'s, or a damaged ack file: then those events never reached NATS)', {
        file: join(this.o.dir, 'ack'), cursor: this.ackCursor, last_record: recordsMax,
      });
    }
    this.counters.recovered = this.unacked;
    this.nextSeq = maxSeq + 1;
    // What an earlier process left is the disk's already: a position saved then was behind its syncs.
    this.writtenSeq = this.syncedThrough = maxSeq;
    this.firstSeqOfRun = this.nextSeq;
    this.nextRead = this.ackCursor + 1;
    this.diskMode = this.unacked > 0;
    try {
      this.openSegment(maxId + 1);
    } catch (e) {
      if (!isErrno(e)) throw e;
      this.ioFailed(e, 'open'); // no segment to write to yet: refused until one can be made
    }
    if (this.o.fsync === 'interval') {
      const t = setInterval(() => this.syncLater(), this.o.fsyncIntervalMs);
      t.unref();
      this.timers.push(t);
    }
    const a = setInterval(() => {
      this.persistAck(); // never throws: a failure is counted, the next tick tries again
      if (this.full) this.limit(); // notices room returning (and says so) without waiting for an append
    }, this.o.ackPersistMs);
    a.unref();
    this.timers.push(a);
  }

  /**
   * Open spool_dir once and check it (see the header): owned by the tap's user; writable by others
   * only while it holds nothing but the tap's files, and then made 0700 (an earlier version made it
   * 0750; a spool_dir pointed at a directory of other files, /tmp say, is not the tap's to change,
   * and others could put links there: refused). Its files are then reached through the descriptor.
   */
  private pinDir(): void {
    const { dir, openAt } = this.o;
    // Made when missing and opened without following a link in its last component where others than
    // root may write its parent (spool-dir.ts); a link in the rest of its path, or in a parent only
    // root may write, is followed (the administrator's). What is opened is checked here, on the
    // descriptor, and kept for the spool's life.
    const fd = openAt ? openSync(openAt, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK) : openSpoolDir(dir).fd;
    try {
      const st = fstatSync(fd);
      const notOwned = notOwnedError(dir, st);
      if (notOwned) throw notOwned;
      const via = procPathOf(fd, st);
      const pinned = via !== null;
      this.dirPath = via ?? dir;
      const names = readdirSync(this.dirPath);
      const foreign = names.filter((f) => !TAP_FILE.test(f));
      if (foreign.length === 0) {
        if ((st.mode & 0o7777) !== 0o700) fchmodSync(fd, 0o700);
      } else if (st.mode & 0o022) {
        const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
        throw new ConfigError(`spool_dir ${dir} is writable by ${st.mode & 0o020 ? (st.mode & 0o002 ? 'its group and others' : 'its group') : 'others'} `
          + `(mode ${mode}) and holds files that are not the tap's (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}): `
          + 'whoever can write it could put links there for the tap to follow; set spool_dir to a directory of its own');
      }
      this.dirFd = fd;
      if (!pinned) {
        this.onWarn?.('spool: /proc/self/fd cannot be used: the spool reaches its files by the path of spool_dir (a rename of the '
          + 'directory by whoever can write its parent would move where the tap writes)', { dir });
      }
    } catch (e) {
      closeSync(fd);
      this.dirPath = '';
      throw e;
    }
  }

  /** A file of the spool directory, by the directory opened (pinDir). */
  private at(name: string): string {
    return `${this.dirPath}/${name}`;
  }

  /**
   * A file of the tap's kept beside the segments (`kv.pending`), as an earlier run left it: null when
   * there is none, when it is larger than `maxBytes` (said), or when what is there is not the tap's
   * (reported, counted, left as it is).
   */
  readSide(name: string, maxBytes: number, o: { sync?: boolean } = {}): Buffer | null {
    if (this.closed || this.dirFd < 0) return null;
    let fd: number | null;
    try {
      fd = this.openFound(name);
    } catch (e) {
      if (!isErrno(e)) throw e;
      this.onWarn?.('spool: a file beside the segments cannot be read: ignored', { file: join(this.o.dir, name), err: e.code });
      return null;
    }
    if (fd === null) return null;
    try {
      const size = fstatSync(fd).size;
      if (size > maxBytes) {
        this.onWarn?.('spool: a file beside the segments is larger than the tap ever writes it: ignored', { file: join(this.o.dir, name), bytes: size });
        return null;
      }
      const data = readWhole(fd, size);
      if (o.sync) {
        // `sync`: what is read is on the disk before it is trusted (a killed run's last write may not be),
        // and so is its name. A sync that fails: not trusted (null), said.
        fdatasyncSync(fd);
        fsyncSync(this.dirFd);
      }
      return data;
    } catch (e) {
      if (!isErrno(e)) throw e;
      if (o.sync) this.onWarn?.('spool: a file beside the segments cannot be read or synced: ignored', { file: join(this.o.dir, name), err: e.code });
      return null;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Whether a file of the tap's beside the segments is there (looked at, not read: its name's entry, never
   * followed). Something else there is reported, counted and left as it is, as readSide does.
   */
  hasSide(name: string): boolean {
    if (this.closed || this.dirFd < 0) return false;
    const st = lstatOrNull(this.at(name));
    if (st === null) return false;
    const why = notOwnFile(st);
    if (why !== null) this.refusedFile(name, why);
    return why === null;
  }

  /**
   * Replace a file of the tap's beside the segments with `data`, fsynced, on libuv's threads ('' removes
   * it), through the directory opened (a rename of spool_dir cannot redirect it). The directory's
   * descriptor stays open until the last of these ends, even past close(): its number reused by another
   * file would have the write land there.
   */
  async replaceSide(name: string, data: string): Promise<void> {
    await this.sideOp(() => (data === ''
      ? removeOwnAsync(this.at(name))
      : replaceOwnAsync(this.at(name), data, { tmp: this.at(`${name}.tmp`), sync: true })));
  }

  /** Append `data` to a file of the tap's beside the segments, fdatasynced (appendOwnAsync: ENOENT when there is none). */
  async appendSide(name: string, data: string): Promise<void> {
    await this.sideOp(() => appendOwnAsync(this.at(name), data));
  }

  private async sideOp(op: () => Promise<void>): Promise<void> {
    if (this.closed || this.dirFd < 0) throw new Error('the spool is closed');
    this.sideOps++;
    try {
      await op();
    } finally {
      if (--this.sideOps === 0 && this.closed) this.closeDir();
    }
  }

  /**
   * No record of this run gets a seq at or below `seq`: kv.pending names seqs an earlier run handed out,
   * and after a power loss the segments (synced every second) and the cursor (never) may end before them —
   * a new record reusing one would be taken for older than the file's value of its agent.
   */
  reserveSeqs(seq: number): void {
    if (Number.isSafeInteger(seq) && seq >= this.nextSeq && seq <= MAX_SEQ) this.nextSeq = seq + 1;
  }

  /** replaceSide()s and appendSide()s under way. */
  private sideOps = 0;

  private closeDir(): void {
    if (this.dirFd < 0) return;
    try { closeSync(this.dirFd); } catch { /* closed */ }
    this.dirFd = -1;
    this.dirPath = this.o.dir; // its number may be another file's now: nothing goes through it
  }

  /**
   * A segment or the cursor an earlier run left, opened for reading and made 0600 (an earlier version
   * made them 0640, 0644); null when there is none, or when what is there is not the tap's: then it is
   * reported, counted and left as it is (never read, chmodded or followed), and the spool goes on.
   */
  private openFound(name: string): number | null {
    let fd: number;
    try {
      fd = openOwn(this.at(name), fc.O_RDONLY);
    } catch (e) {
      if (e instanceof NotOwnFile) {
        this.refusedFile(name, e.why);
        return null;
      }
      if (isErrno(e) && e.code === 'ENOENT') return null;
      throw e;
    }
    try {
      if ((fstatSync(fd).mode & 0o7777) !== 0o600) fchmodSync(fd, 0o600);
    } catch { /* read all the same */ }
    return fd;
  }

  /** Something in the directory where a file of the spool should be is not one of the tap's: said, counted, left alone. */
  private refusedFile(name: string, why: string): void {
    this.counters.refusedFiles++;
    this.onWarn?.('spool: a file in spool_dir is not the tap\'s: left as it is, never read, written or followed', {
      file: join(this.o.dir, name), is: why,
    });
  }

  /** Cut a segment after its last whole record (a torn tail); a failure is left for the next open to try again. */
  private cut(path: string, end: number): void {
    let fd: number;
    try {
      fd = openOwn(path, fc.O_WRONLY);
    } catch (e) {
      if (!isErrno(e)) throw e;
      return;
    }
    try { ftruncateSync(fd, end); } catch (e) { if (!isErrno(e)) throw e; } finally { closeSync(fd); }
  }

  /**
   * Make segment `id` the active one; when the file cannot be made, it stays a placeholder (not in segs) and this throws.
   * A new file (O_EXCL): a name already taken (planted: the tap never made it) is reported and the next id tried.
   */
  private openSegment(id: number): void {
    for (let tries = 0; ; tries++) {
      const name = `seg-${String(id).padStart(12, '0')}.log`;
      this.active = { id, path: this.at(name), bytes: 0, firstSeq: 0, lastSeq: 0, count: 0, keepalives: 0 };
      try {
        // Not O_APPEND: a batch is written where the spool's own bytes end (writeBatch), so bytes another
        // hand added to the file are overwritten, never left between the spool's records (review helper-94).
        this.fd = openOwn(this.active.path, fc.O_WRONLY | fc.O_CREAT | fc.O_EXCL);
        break;
      } catch (e) {
        if (!isErrno(e) || e.code !== 'EEXIST') throw e;
        this.refusedFile(name, 'there already, not made by the tap: another segment id is used');
        this.active.id = ++id; // the placeholder: a retry starts past it
        if (tries >= 15) throw e;
      }
    }
    this.segs.push(this.active);
    this.fsFree -= 4096; // a file's last block is partly empty: what the byte count does not see
  }

  /** Close the active segment and open the next one; false when the new one cannot be made (counted). */
  private rotate(): boolean {
    if (this.fd >= 0) {
      // 'interval' syncs the segment's last writes off the event loop; 'always' syncs them now (an
      // append that rotates wrote to this segment before, and its sync at the end is the next one's).
      if (this.o.fsync === 'interval' && this.dirty && !this.syncInBackground(this.fd)) this.leftToKernel();
      if (this.o.fsync === 'always') this.sync();
      this.closeFd(this.fd);
      this.fd = -1;
    }
    this.dirty = false;
    this.sealed = false;
    // After a failed open the active segment is a placeholder: its id is still free.
    const id = this.segs.includes(this.active) ? this.active.id + 1 : this.active.id;
    try {
      this.openSegment(id);
      return true;
    } catch (e) {
      if (!isErrno(e)) throw e;
      this.ioFailed(e, 'open');
      return false;
    }
  }

  /** A segment to append to: the active one, or a new one when it could not be made or cut back (retried every `retryMs`). */
  private writable(): boolean {
    if (this.fd >= 0 && !this.sealed) return true;
    if (performance.now() - this.failedAt < this.o.retryMs) return false;
    return this.rotate();
  }

  /**
   * A write failed: stop accepting more than the spool holds now. The drain frees room under that
   * bound (deleted segments are space on this disk); limit() lifts it once the disk has room.
   */
  private ioFailed(e: NodeJS.ErrnoException, op: string): void {
    this.counters.writeErrors++;
    this.failedAt = performance.now();
    this.bound = Math.min(this.bound, this.totalBytes);
    this.fsCheckedAt = Number.NEGATIVE_INFINITY; // the estimate was wrong: read the disk at the next look
    this.lastLimit = Math.min(this.lastLimit, this.bound);
    this.onIoError?.(e, op);
    this.setFull(true);
  }

  /** Read the file system's free space. */
  private checkDisk(now: number): void {
    this.fsCheckedAt = now;
    this.fsWritten = 0;
    try {
      const st = statfsSync(this.dirPath);
      this.fsFree = st.bavail * st.bsize;
    } catch {
      this.fsFree = Number.POSITIVE_INFINITY; // cannot tell: the bound and write failures decide
    }
  }

  /**
   * The bytes the spool may hold now: maxBytes; what it held when a write failed, until the disk is
   * looked at again (`retryMs` later); and never so much that less than the reserve stays free.
   */
  private limit(): number {
    const now = performance.now();
    if (this.bound < this.o.maxBytes) {
      if (now - this.failedAt >= this.o.retryMs) {
        if (now - this.fsCheckedAt >= this.o.retryMs) this.checkDisk(now);
        // Any reading since the failure lifts it, this one or a compaction's: a refused status or
        // alert tries a compaction, which reads the disk, and while they came faster than retryMs
        // this look never came (chaos seed 349: every event refused for good once the disk was full).
        if (this.fsCheckedAt > this.failedAt && this.fsFree > this.reserve) this.bound = this.o.maxBytes;
      }
    } else if (now - this.fsCheckedAt >= 1000
      // The disk may bind: look again after 10 ms, or after writing a quarter of the reserve.
      || (this.fsFree - this.reserve < this.o.maxBytes && (now - this.fsCheckedAt >= 10 || this.fsWritten > this.reserve / 4))) {
      this.checkDisk(now);
    }
    const lim = Math.min(this.bound, this.totalBytes + Math.max(0, this.fsFree - this.reserve));
    this.lastLimit = lim;
    // Full until the disk holds the whole bound, or the spool is well below the bound in force (80 %:
    // not at the first keepalive that fits again, which would flap at every refresh of the free space).
    if (this.full && (lim >= this.o.maxBytes || this.totalBytes < lim * 0.8)) this.setFull(false);
    return lim;
  }

  /** The disk (not the spool's own bound) refused a record, or a write failed. */
  private setFull(full: boolean): void {
    if (full === this.full) return;
    this.full = full;
    this.onDisk?.(full, { boundBytes: this.lastLimit, freeBytes: this.fsFree });
  }

  /** Flush written records to the disk now, on the event loop (`fsync: 'always'`). */
  private sync(): void {
    if (this.dirty && this.fd >= 0) {
      this.dirty = false;
      // A failed writeback is counted; retrying the same fdatasync would report success falsely.
      try {
        fdatasyncSync(this.fd);
      } catch (e) {
        if (!isErrno(e)) throw e;
        this.leftToKernel();
        this.ioFailed(e, 'sync');
      }
    }
    if (this.syncQueue.length === 0) this.syncedTo(this.writtenSeq);
  }

  /** The periodic fsync: on libuv's threads; skipped while the last one is still running (the disk is slow). */
  private syncLater(): void {
    if (this.dirty && this.fd >= 0 && !this.syncing.has(this.fd) && this.syncInBackground(this.fd)) this.dirty = false;
  }

  /** fdatasyncs running on libuv's threads, by descriptor; `close`: the descriptor is closed by the last one. */
  private readonly syncing = new Map<number, { n: number; close: boolean }>();

  /**
   * At most this many at once: libuv has four threads for every process's file and DNS work, and a
   * disk that hangs must not take them all. Over it, a rotated segment is left to the kernel's writeback.
   */
  private static readonly MAX_SYNCING = 2;

  /**
   * Start an fdatasync of `fd` on libuv's threads; false when MAX_SYNCING are running (`last`: the
   * one of close(), started whatever runs — the process ends soon and no later sync would cover it).
   */
  private syncInBackground(fd: number, last = false): boolean {
    let running = 0;
    for (const x of this.syncing.values()) running += x.n;
    if (running >= Spool.MAX_SYNCING && !last) return false;
    let s = this.syncing.get(fd);
    if (!s) this.syncing.set(fd, s = { n: 0, close: false });
    s.n++;
    const covers = { upTo: this.writtenSeq, from: this.syncedThrough, done: false };
    this.syncQueue.push(covers);
    fdatasync(fd, (e) => {
      if (e && !this.closed) this.ioFailed(e, 'sync');
      else if (e) this.lastSyncError = e; // after close(): synced() says it
      if (e) this.addHole(covers.from + 1, covers.upTo);
      covers.done = true;
      // Syncs can end out of order (two descriptors): what is durable is what the syncs done so far,
      // in the order they started, cover — each started after the writes to the segments before it.
      let through = this.syncedThrough;
      while (this.syncQueue.length && this.syncQueue[0].done) through = Math.max(through, this.syncQueue.shift()!.upTo);
      if (--s.n === 0) {
        this.syncing.delete(fd);
        if (s.close) try { closeSync(fd); } catch { /* the records are written */ }
      }
      this.syncedTo(through);
      if (this.syncing.size === 0) for (const w of this.syncWaiters.splice(0)) w();
    });
    return true;
  }

  /** The records written since the last sync started are not synced by the spool (left to the kernel's writeback, or a sync failed). */
  private leftToKernel(): void {
    this.addHole(this.syncedThrough + 1, this.writtenSeq);
  }

  private addHole(lo: number, hi: number): void {
    if (hi < lo || hi <= this.ackCursor) return;
    this.hole = this.hole ? { lo: Math.min(this.hole.lo, lo), hi: Math.max(this.hole.hi, hi) } : { lo, hi };
  }

  /** Every record up to `seq` whose durability is the disk's: synced (but for the hole). Tells afterSync()'s waiters. */
  private syncedTo(seq: number): void {
    this.syncedThrough = Math.max(this.syncedThrough, seq);
    this.tellDurable();
  }

  /** Every record up to this seq is synced or acknowledged. */
  private durableThrough(): number {
    if (this.hole && this.ackCursor >= this.hole.hi) this.hole = null;
    const synced = this.hole ? Math.min(this.syncedThrough, this.hole.lo - 1) : this.syncedThrough;
    return Math.max(synced, this.ackCursor);
  }

  private tellDurable(): void {
    if (this.durableWaiters.length === 0) return;
    const through = this.durableThrough();
    while (this.durableWaiters.length && this.durableWaiters[0].seq <= through) this.durableWaiters.shift()!.resolve(true);
    // Closed, its last sync done: no later sync or acknowledgement will come.
    if (this.closed && this.syncing.size === 0) for (const w of this.durableWaiters.splice(0)) w.resolve(false);
  }

  /**
   * Resolves true once every record written so far is as durable as the fsync policy makes it:
   * synced ('interval': by a sync started after this call, at the next tick — or now, with `now`;
   * 'always': already, as every append) or acknowledged by NATS. What the alerts position waits for
   * before it is saved: a position on disk ahead of the spool's sync would, after a power loss, say
   * read alerts whose events the spool lost. 'never' resolves at once (nothing is ever synced: the
   * administrator chose so). False when the spool closed without being able to say so (a sync
   * failed and NATS did not acknowledge the records since). Never waits on the event loop.
   */
  afterSync(now = false): Promise<boolean> {
    if (this.o.fsync === 'never' || this.writtenSeq <= this.durableThrough()) return Promise.resolve(true);
    if (this.closed && this.syncing.size === 0) return Promise.resolve(false);
    // Started even beside a sync of this segment already running (it may have started before the
    // last writes), within MAX_SYNCING; else the periodic sync is the one.
    if (now && this.o.fsync === 'interval' && !this.closed && this.dirty && this.fd >= 0 && this.syncInBackground(this.fd)) this.dirty = false;
    const seq = this.writtenSeq;
    return new Promise((resolve) => this.durableWaiters.push({ seq, resolve }));
  }

  /** The fsync policy: the alerts position is synced as the spool is, or not at all under 'never'. */
  get fsyncPolicy(): 'always' | 'interval' | 'never' {
    return this.o.fsync;
  }

  /** What synced() waits on: called once no sync runs. */
  private readonly syncWaiters: (() => void)[] = [];
  /** A sync that failed after close() (before it, ioFailed counts it). */
  private lastSyncError: NodeJS.ErrnoException | null = null;

  /**
   * Once no sync of the spool runs — after close(), its last one is done: `synced` (the records are on
   * the disk) or the sync's error (`EIO`: the disk lost them) — or `timeout` when `timeoutMs` passed
   * first: the records are written all the same (in the kernel's page cache, which a process exit does
   * not lose); only a power loss before the kernel's writeback could. What the shutdown waits on,
   * bounded, instead of an fdatasync on the event loop that a hung disk would hold past its deadline.
   */
  synced(timeoutMs: number): Promise<'synced' | 'timeout' | NodeJS.ErrnoException> {
    const outcome = (): 'synced' | NodeJS.ErrnoException => this.lastSyncError ?? 'synced';
    if (this.syncing.size === 0) return Promise.resolve(outcome());
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); resolve(outcome()); };
      const timer = setTimeout(() => {
        const i = this.syncWaiters.indexOf(done);
        if (i >= 0) this.syncWaiters.splice(i, 1);
        resolve('timeout');
      }, timeoutMs);
      this.syncWaiters.push(done);
    });
  }

  /** Close a segment's descriptor, or have its running sync close it (its number must not be reused under it). */
  private closeFd(fd: number): void {
    const s = this.syncing.get(fd);
    if (s) s.close = true;
    else try { closeSync(fd); } catch { /* the records are written */ }
  }

  /**
   * Write messages (one write for all that fit). Returns, for each, its seq, or 0 when it was
   * refused: shed and counted — or, with `callerKeeps`, counted as deferred (the caller keeps it
   * and offers it again later, so nothing is lost). Accepted means on disk (see the fsync policy).
   *
   * `keepalivesInMemory` (the publisher is connected and keeping up): keepalives are queued in
   * memory only, in their place in the order, never written: a keepalive repeats every few seconds,
   * and writing each one was the largest cost of a keepalive (SPEC §9). Status changes, alerts and
   * everything while NATS is away or behind still go to disk. A tap killed with SIGKILL loses those
   * keepalives not yet acknowledged — never a status change; a stop counts them as shed (close).
   * Never throws for the disk: a write that fails refuses what it held (see the header).
   *
   * Nothing overtakes a refused record: once one that is not a keepalive is refused, every later
   * one of the call is refused too. The caller offers it again before what followed it (an agent's
   * owed status change, an alert left in alerts.json); a smaller record accepted behind it — the
   * limit fits it, not the one before — would reach NATS first: an agent's status changes out of
   * their chain (found by test/chaos-e2e.test.ts with the disk fault). Keepalives may be shed and
   * what follows them kept: they repeat, and are shed first by design.
   */
  append(msgs: SpoolMessage[], callerKeeps = false, keepalivesInMemory = false): number[] {
    if (this.closed) throw new Error('spool is closed');
    const out = new Array<number>(msgs.length).fill(0);
    const batch: Pending[] = [];
    let pending = 0;
    /** A record that is not a keepalive was refused: the rest of the call is refused behind it. */
    let stopped = false;
    const refuse = (m: SpoolMessage): void => {
      this.refuse(m, callerKeeps);
      if (m.kind !== 'keepalive') stopped = true;
    };
    // Once per call, and again when a write failed or a compaction ran: writing only moves bytes
    // from the disk's free space into the spool, which leaves the limit where it was.
    let limit = this.limit();
    const writeOut = (): boolean => {
      if (batch.length === 0) return true;
      const n = this.writeBatch(batch, pending);
      batch.forEach((b, k) => {
        if (k < n) out[b.i] = b.seq;
        else refuse(b.m);
      });
      const ok = n === batch.length;
      batch.length = 0;
      pending = 0;
      if (!ok) limit = this.limit();
      return ok;
    };
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      if (stopped || this.nextSeq > MAX_RECORD_SEQ) { // the latter: decades of appends after a cursor at MAX_SEQ
        refuse(m);
        continue;
      }
      if (keepalivesInMemory && m.kind === 'keepalive' && !this.diskMode) {
        const body = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : m.body;
        const size = body.length + m.subject.length + m.eventId.length + 64; // about its frame's
        // What waits for a write goes first: seqs stay in order in memory, and a failed write that
        // hands its seqs out again cannot hand out this one.
        if (this.memBytes + size <= this.o.memCacheBytes && writeOut() && !this.diskMode) {
          const seq = this.nextSeq++;
          this.mem.push({ seq, kind: m.kind, subject: m.subject, eventId: m.eventId, headers: m.headers, body, size, recovered: false });
          this.memBytes += size;
          this.unacked++;
          this.counters.appended++;
          this.counters.inMemory++;
          this.memOnly.set(seq, eventsOf(m));
          out[i] = seq;
          continue;
        }
        if (stopped) { // the write before it failed
          refuse(m);
          continue;
        }
      }
      if (!this.writable()) {
        refuse(m);
        continue;
      }
      const layout = frameLayout(m);
      const size = layout.size;
      const after = this.totalBytes + pending + size;
      if (m.kind === 'keepalive' ? after > limit * this.o.keepaliveShare : after > limit) {
        if (m.kind === 'keepalive' || !writeOut()) {
          refuse(m);
          continue;
        }
        // A compaction writes a copy: after a failed write, try it again only once `retryMs` passed.
        if (performance.now() - this.failedAt >= this.o.retryMs) this.compact(this.totalBytes + size - limit);
        limit = this.limit();
        if (this.totalBytes + size > limit || !this.writable()) {
          refuse(m);
          continue;
        }
      }
      if (this.active.bytes + pending + size > this.o.segmentBytes && this.active.count + batch.length > 0) {
        if (!writeOut() || !this.rotate()) {
          limit = this.limit();
          refuse(m);
          continue;
        }
      }
      batch.push({ i, m, layout, seq: this.nextSeq++ });
      pending += size;
    }
    writeOut();
    if (this.o.fsync === 'always') this.sync();
    return out;
  }

  /** Refused for want of room: shed (counted by kind), or deferred when the caller keeps it. */
  private refuse(m: SpoolMessage, callerKeeps: boolean): void {
    if (callerKeeps && m.kind !== 'keepalive') this.counters.deferred++;
    else this.counters.shed[m.kind] += eventsOf(m);
    if (this.lastLimit < this.o.maxBytes) this.setFull(true);
  }

  /**
   * One write(2) of the batch at the end of the active segment; returns how many of its records are
   * on disk. When the write fails, the records written whole before the failure stay, the file is
   * cut back after the last of them (or sealed when even that fails: a reopen cuts the torn tail),
   * and the seqs of the others are handed out again.
   */
  private writeBatch(batch: Pending[], bytes: number): number {
    // Each frame its own buffer, written in place, and the batch one writev (a concatenation of the
    // frames before). Not one buffer for the batch: an in-memory entry shares its frame's bytes (commit),
    // and one kept for long (KvLatest's latest status of an agent while the bucket is away) held a whole
    // batch, up to a segment (review helper-87).
    const frames = batch.map((p) => {
      const f = Buffer.allocUnsafe(p.layout.size);
      writeFrame(f, p.m, p.seq, p.layout);
      return f;
    });
    const a = this.active;
    let off = 0;
    try {
      off = writevSync(this.fd, frames, a.bytes);
      if (off < bytes) {
        // Short (a disk filling up): the rest one write at a time, until it is all out or one fails.
        const all = Buffer.concat(frames, bytes);
        while (off < bytes) off += writeSync(this.fd, all, off, bytes - off, a.bytes + off);
      }
    } catch (e) {
      if (!isErrno(e)) throw e;
      let whole = 0;
      let n = 0;
      while (n < batch.length && whole + batch[n].layout.size <= off) whole += batch[n++].layout.size;
      try { ftruncateSync(this.fd, a.bytes + whole); } catch { this.sealed = true; }
      this.nextSeq = batch[n].seq;
      this.commit(batch.slice(0, n), frames);
      this.ioFailed(e, 'append');
      return n;
    }
    this.commit(batch, frames);
    return batch.length;
  }

  /**
   * Count records that are on disk in the active segment (and in memory, for a drain that never reads
   * the disk). `frames[k]` is `batch[k]`'s, as written.
   */
  private commit(batch: Pending[], frames: Buffer[]): void {
    if (batch.length === 0) return;
    const a = this.active;
    this.dirty = true;
    for (let k = 0; k < batch.length; k++) {
      const { m, seq, layout } = batch[k];
      const size = layout.size;
      if (a.count === 0) a.firstSeq = seq;
      a.lastSeq = seq;
      this.writtenSeq = seq;
      a.count++;
      a.bytes += size;
      if (m.kind === 'keepalive') a.keepalives++;
      this.totalBytes += size;
      this.fsFree -= size;
      this.fsWritten += size;
      this.unacked++;
      this.counters.appended++;
      if (!this.diskMode && this.memBytes + size <= this.o.memCacheBytes) {
        // A string body is in the frame already: the entry shares those bytes (not encoded twice).
        const body = typeof m.body === 'string' ? frameBody(frames[k], layout.bl) : m.body;
        this.mem.push({ seq, kind: m.kind, subject: m.subject, eventId: m.eventId, headers: m.headers, body, size, recovered: false });
        this.memBytes += size;
      } else {
        this.diskMode = true;
      }
    }
  }

  /** Every record with a seq up to this one was acknowledged. */
  get ackedThrough(): number {
    return this.ackCursor;
  }

  /** Records not handed out yet. */
  get unsent(): number {
    return this.unacked - this.outstanding.size;
  }

  /**
   * Hand out up to `max` records, oldest first. Each must later be ack()ed.
   *
   * Reading the segment files can fail (out of descriptors: EMFILE, ENFILE; EIO): the failure is
   * counted (`readErrors`) and nothing is lost — the records handed out before it are returned,
   * and a failure with nothing to hand out is thrown (an errno error) for the caller to try again
   * later; the next read starts where this one stopped. A segment whose file is gone (or is not the
   * tap's any more) is another matter: no retry brings it back, and every later record would wait
   * behind it until a restart. Its unsent records are counted as lost and said, and the read goes on
   * with the next segment (lostSegment).
   */
  read(max: number): SpoolEntry[] {
    const out: SpoolEntry[] = [];
    while (out.length < max) {
      let e: SpoolEntry | undefined;
      if (this.memHead < this.mem.length) {
        e = this.mem[this.memHead];
        this.mem[this.memHead++] = undefined as unknown as SpoolEntry;
        this.memBytes -= e.size;
        if (this.memHead > 4096 && this.memHead * 2 > this.mem.length) {
          this.mem = this.mem.slice(this.memHead);
          this.memHead = 0;
        }
      } else if (this.diskMode) {
        try {
          e = this.readDisk();
        } catch (err) {
          if (!isErrno(err)) throw err;
          this.counters.readErrors++;
          if (out.length > 0) break;
          throw err;
        }
        if (!e) {
          this.diskMode = false;
          this.closeReader();
          break;
        }
      } else {
        break;
      }
      if (e.seq < this.nextRead) continue; // already handed out (should not happen)
      this.nextRead = e.seq + 1;
      this.outstanding.set(e.seq, true);
      out.push(e);
    }
    return out;
  }

  private closeReader(): void {
    if (this.rd) {
      closeSync(this.rd.fd);
      this.rd = null;
    }
  }

  /** Next unsent record from the segment files, or undefined when caught up. */
  private readDisk(): SpoolEntry | undefined {
    for (;;) {
      if (this.nextRead >= this.nextSeq) return undefined;
      if (!this.rd) {
        const seg = this.segs.find((s) => s.count > 0 && s.lastSeq >= this.nextRead);
        if (!seg) return undefined;
        if (!this.openReader(seg)) continue; // gone: dropped, the next one
      }
      const rd = this.rd!;
      while (rd.head < rd.entries.length) {
        const e = rd.entries[rd.head++];
        if (e.seq >= this.nextRead) return e;
      }
      // Load more of this segment (it may be the active one, still growing), up to the next damaged
      // range found at open, which is jumped over, and no further than what the spool wrote or found
      // there: bytes added to the file since by another hand were never checked (review helper-93).
      let size = Math.min(fstatSync(rd.fd).size, this.segs.find((x) => x.id === rd.segId)?.bytes ?? 0);
      const skip = rd.damaged.find(([, to]) => to > rd.offset);
      if (skip && skip[0] <= rd.offset) {
        rd.offset = skip[1];
        continue;
      }
      if (skip) size = Math.min(size, skip[0]);
      if (size > rd.offset) {
        let len = Math.min(size - rd.offset, READ_CHUNK);
        if (len >= HDR) {
          // A record larger than the chunk: read it whole.
          const h = Buffer.allocUnsafe(4);
          readSync(rd.fd, h, 0, 4, rd.offset);
          len = Math.min(size - rd.offset, Math.max(len, HDR + h.readUInt32LE(0)));
        }
        const buf = Buffer.allocUnsafe(len);
        const n = readSync(rd.fd, buf, 0, len, rd.offset);
        // Records this run wrote, or found at open and checked then (what was not, a damaged range,
        // is jumped over): not checked again — twice a record, the check cost a replay ~20 % (helper-92).
        const { entries, end } = parseFrames(buf.subarray(0, n), false, undefined, undefined, true);
        for (const e of entries) e.recovered = e.seq < this.firstSeqOfRun;
        if (end > 0) {
          rd.offset += end;
          rd.entries = entries;
          rd.head = 0;
          continue;
        }
      }
      // This segment is exhausted: move to the next one.
      const idx = this.segs.findIndex((s) => s.id === rd.segId);
      this.closeReader();
      for (;;) {
        const next = this.segs.slice(idx + 1).find((s) => s.count > 0 && s.lastSeq >= this.nextRead);
        if (!next) return undefined;
        if (this.openReader(next)) break; // else gone: dropped, the one after it
      }
    }
  }

  /** Start reading segment `s`; false when its file is gone or not the tap's (then it was dropped: lostSegment). Other errors are thrown. */
  private openReader(s: Segment): boolean {
    try {
      this.rd = { segId: s.id, fd: openOwn(s.path, fc.O_RDONLY), offset: 0, entries: [], head: 0, damaged: s.damaged ?? [] };
      return true;
    } catch (e) {
      if (!(e instanceof NotOwnFile) && !(isErrno(e) && (e.code === 'ENOENT' || e.code === 'ENOTDIR'))) throw e;
      this.lostSegment(s, e as NodeJS.ErrnoException);
      return false;
    }
  }

  /**
   * The file of segment `s` is gone (an administrator's rm, a clean-up of old files) or was replaced by
   * something not the tap's: its records not handed out yet are lost. Retrying could never read them
   * and every later record would wait behind them (found by review: delivery stopped until a restart),
   * so the segment is dropped, its unsent records counted (`lost`) and said once, and the drain goes on.
   *
   * How many: called from readDisk, which runs only once memory holds nothing unsent, so every record
   * not handed out is on disk — those of `s` at or past nextRead, and every record of the segments after
   * it. What `unacked` holds beyond those and the ones handed out (outstanding) was in `s`.
   */
  private lostSegment(s: Segment, err: NodeJS.ErrnoException): void {
    const i = this.segs.indexOf(s);
    if (i < 0) return;
    let after = 0;
    for (let k = i + 1; k < this.segs.length; k++) after += this.segs[k].count;
    const lost = Math.max(0, Math.min(s.count, this.unacked - this.outstanding.size - after));
    this.segs.splice(i, 1);
    this.totalBytes -= s.bytes;
    this.unacked -= lost;
    this.counters.lost += lost;
    const file = join(this.o.dir, s.path.slice(s.path.lastIndexOf('/') + 1));
    this.onWarn?.('spool: a segment file is gone or is not the tap\'s: its undelivered events are lost (counted); delivery goes on with the next one',
      { file, err: err instanceof NotOwnFile ? err.why : err.code, lost });
    // The one being written: new records go to a new file (an unlinked one would vanish at close).
    if (s === this.active) this.rotate();
  }

  /** NATS acknowledged record `seq`. */
  ack(seq: number): void {
    if (!this.outstanding.delete(seq)) return;
    if (this.memOnly.size > 0) this.memOnly.delete(seq);
    this.unacked--;
    this.counters.acked++;
    let cursor: number;
    if (this.outstanding.size > 0) cursor = (this.outstanding.keys().next().value as number) - 1;
    else cursor = this.nextRead - 1;
    if (cursor > this.ackCursor) {
      this.ackCursor = cursor;
      this.dropAcked();
      this.tellDurable();
    }
  }

  /**
   * Delete the segments every record of which was acknowledged, once the cursor is on disk (a
   * restart then resends nothing acknowledged before them). When the cursor cannot be saved they
   * wait for a later ack — except for want of space (ENOSPC, EDQUOT): then deleting them is what
   * makes the room, and their records were acknowledged (a restart resends some, loses none).
   */
  private dropAcked(): void {
    if (this.closed) return; // a late acknowledgement: the next start drops them
    const done = this.segs.filter((s) => s !== this.active && s.lastSeq <= this.ackCursor);
    if (done.length === 0) return;
    const err = this.persistAck();
    if (err !== null && !NO_SPACE.has(err)) return;
    for (const s of done) {
      if (this.rd?.segId === s.id) this.closeReader();
      try { unlinkSync(s.path); } catch { /* already gone */ }
      this.totalBytes -= s.bytes;
      this.fsFree += s.bytes;
      this.segs.splice(this.segs.indexOf(s), 1);
    }
  }

  /**
   * Write the ack cursor (tmp + rename) when it moved. Never throws for the file system (out of
   * descriptors, out of space: from a timer a throw would end the process): the failure is counted
   * and the next tick tries again. Returns the errno of a failure, else null.
   */
  persistAck(): string | null {
    if (this.ackCursor === this.persistedCursor || this.closed) return null;
    try {
      replaceOwn(this.at('ack'), `${this.ackCursor}\n`, { tmp: this.at('ack.tmp') });
      this.persistedCursor = this.ackCursor;
      return null;
    } catch (e) {
      if (!isErrno(e)) throw e;
      const code = e.code ?? 'EIO';
      if (NO_SPACE.has(code)) {
        this.ioFailed(e, 'ack');
      } else {
        // Not the disk's room (EMFILE, say): counted and said, the bound stays.
        this.counters.writeErrors++;
        this.onIoError?.(e, 'ack');
      }
      return code;
    }
  }

  /**
   * Make at least `need` bytes of room by dropping unsent keepalives, oldest segment first
   * (acknowledged records are dropped from rewritten segments too). Each dropped keepalive is shed.
   */
  private compact(need: number): void {
    if (this.active.count > 0 && !this.rotate()) return;
    this.checkDisk(performance.now());
    let freed = 0;
    const droppedSeqs = new Set<number>();
    for (const s of [...this.segs]) {
      if (freed >= need) break;
      if (s === this.active || s.keepalives === 0 || s.lastSeq < this.nextRead) continue;
      let buf: Buffer;
      try {
        buf = readOwn(s.path, Number.MAX_SAFE_INTEGER).subarray(0, s.bytes); // what it wrote or found there: no more
      } catch (e) {
        if (!isErrno(e)) throw e;
        // Gone, or not the tap's: not the disk's room; the drain says what it lost when it gets there.
        if (e instanceof NotOwnFile || e.code === 'ENOENT') continue;
        this.ioFailed(e, 'compact');
        break;
      }
      // Past damage found at open (counted then): the copy leaves it out — a seq that does not rise too,
      // from the segment's first (a record below it was damage at open, not in `unacked`: review helper-92).
      // The prefix filter is for what an earlier run left (left out at open, so out of `unacked` too):
      // what this run appended is counted there, and is kept (review helper-94 X1).
      const accepts = this.accepts;
      const { entries } = parseFrames(buf, false, s.firstSeq - 1, accepts && ((e) => e.seq >= this.firstSeqOfRun || accepts(e)));
      const keep: Buffer[] = [];
      let dropped = 0;
      let droppedEvents = 0;
      let keptKa = 0;
      let first = 0;
      let last = 0;
      for (const e of entries) {
        if (e.seq <= this.ackCursor) continue; // acknowledged
        if (e.kind === 'keepalive' && e.seq >= this.nextRead) { dropped++; droppedEvents += eventsOf(e); droppedSeqs.add(e.seq); continue; }
        if (e.kind === 'keepalive') keptKa++;
        keep.push(encodeFrame(e, e.seq));
        if (!first) first = e.seq;
        last = e.seq;
      }
      const newBytes = keep.reduce((n, b) => n + b.length, 0);
      // The copy is written next to the segment: it needs room (half the reserve may go to it).
      if (keep.length > 0 && newBytes + 4096 > this.fsFree - this.reserve / 2) break;
      try {
        if (keep.length === 0) unlinkSync(s.path);
        else replaceOwn(s.path, Buffer.concat(keep, newBytes), { sync: this.o.fsync !== 'never' });
      } catch (e) {
        if (!isErrno(e)) throw e;
        for (const e2 of entries) if (e2.kind === 'keepalive') droppedSeqs.delete(e2.seq);
        this.ioFailed(e, 'compact');
        break;
      }
      if (this.rd?.segId === s.id) this.closeReader();
      freed += s.bytes - newBytes;
      this.totalBytes -= s.bytes - newBytes;
      this.fsFree += s.bytes - newBytes;
      if (keep.length === 0) this.segs.splice(this.segs.indexOf(s), 1);
      else Object.assign(s, { bytes: newBytes, count: keep.length, firstSeq: first, lastSeq: last, keepalives: keptKa, damaged: undefined });
      this.unacked -= dropped;
      this.counters.shed.keepalive += droppedEvents;
      this.counters.compactions++;
    }
    // Unsent keepalives still in memory were dropped on disk: drop them here too.
    if (droppedSeqs.size > 0) {
      const kept: SpoolEntry[] = [];
      let bytes = 0;
      for (let i = this.memHead; i < this.mem.length; i++) {
        const e = this.mem[i];
        if (droppedSeqs.has(e.seq)) continue;
        kept.push(e);
        bytes += e.size;
      }
      this.mem = kept;
      this.memHead = 0;
      this.memBytes = bytes;
    }
  }

  stats(): SpoolStats {
    return {
      bytes: this.totalBytes, records: this.unacked, segments: this.segs.length,
      appended: this.counters.appended, acked: this.counters.acked, shed: { ...this.counters.shed },
      deferred: this.counters.deferred, torn: this.counters.torn, corrupt: this.counters.corrupt, foreign: this.counters.foreign, foreignPrefix: this.foreignPrefix, compactions: this.counters.compactions,
      recovered: this.counters.recovered, ackCursor: this.ackCursor, inMemory: this.counters.inMemory,
      writeErrors: this.counters.writeErrors,
      readErrors: this.counters.readErrors, refusedFiles: this.counters.refusedFiles, lost: this.counters.lost,
      diskFull: this.full, boundBytes: this.lastLimit,
    };
  }

  /**
   * Save the cursor, close the files, start the last sync (`synced()` waits for it). Unacknowledged
   * records stay for the next start — but for the keepalives held in memory only (append's
   * keepalivesInMemory: NATS stalled while they waited), which the next start cannot have: they are
   * counted as shed, by their events, and said. Not written now: behind the status changes that came
   * after them, a keepalive's `status` would reach the consumers after a later change of the agent's.
   * Never throws for the disk, never waits for it.
   */
  close(): void {
    if (this.closed) return;
    if (this.memOnly.size > 0) {
      let events = 0;
      for (const n of this.memOnly.values()) events += n;
      this.counters.shed.keepalive += events;
      this.unacked -= this.memOnly.size;
      this.memOnly.clear();
      this.onWarn?.('spool: keepalives held in memory only were not delivered before the stop: shed (counted)', { keepalives: events });
    }
    for (const t of this.timers) clearInterval(t);
    this.closeReader();
    if (this.fd >= 0) {
      // On libuv's threads like the others: a disk that hangs must not hold the shutdown past its deadline.
      // Its descriptor is closed when the sync ends.
      if (this.o.fsync !== 'never' && this.dirty) this.syncInBackground(this.fd, true);
      this.dirty = false;
      this.closeFd(this.fd);
      this.fd = -1;
    }
    this.persistAck();
    this.closed = true;
    this.tellDurable(); // with no last sync to wait for, what afterSync() waits on is said now
    if (this.active.count === 0 && this.segs.includes(this.active)) {
      try { unlinkSync(this.active.path); } catch { /* gone */ }
    }
    if (this.sideOps === 0) this.closeDir(); // else when the last replaceSide() ends
  }
}
