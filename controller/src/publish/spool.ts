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
//     loses at most that interval; `'always'` fdatasync()s every append (slow, no loss);
//     `'never'` leaves it to the kernel;
//   - a record torn by a crash in the middle of a write is found by its length or checksum
//     when the spool is opened, dropped and counted (`torn`); the file is cut there.
//   - the ack cursor is written (tmp + rename) at most every `ackPersistMs` (250 ms) and
//     before any segment is deleted, so a restart resends at most the records acknowledged
//     in the last 250 ms plus those in flight; resends are harmless with JetStream, which
//     de-duplicates them by Nats-Msg-Id.
//
// Replay is FIFO (seq order), so per-agent order is kept. The bound is the bytes of all
// segment files: keepalives are refused once the spool holds `keepaliveShare` (90 %) of
// `maxBytes`; a status change, alert or tap event that does not fit makes room by
// compacting unsent keepalives out of the oldest segments, and is itself shed (counted)
// only when no keepalive is left to drop. Every shed record is counted by kind.
import {
  closeSync, existsSync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync,
  readdirSync, renameSync, truncateSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

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
  dir: string;
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
}

export interface SpoolStats {
  bytes: number;
  records: number;
  segments: number;
  appended: number;
  acked: number;
  shed: Record<MessageKind, number>;
  /** Refused for want of room, but kept by the caller to offer again (alerts stay in alerts.json): not shed. */
  deferred: number;
  torn: number;
  corrupt: number;
  compactions: number;
  recovered: number;
  ackCursor: number;
  /** Keepalives queued in memory only, never written (append's keepalivesInMemory). */
  inMemory: number;
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
}

const HDR = 8;
const MAX_RECORD = 16 * 1024 * 1024;

export function encodeFrame(m: SpoolMessage, seq: number): Buffer {
  const subject = Buffer.from(m.subject, 'utf8');
  const id = Buffer.from(m.eventId, 'utf8');
  const hdrs = Buffer.from(JSON.stringify(m.headers), 'utf8');
  const body = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : m.body;
  if (subject.length > 0xffff || id.length > 0xff) throw new Error('subject or event id too long for the spool');
  const plen = 1 + 6 + 2 + subject.length + 1 + id.length + 4 + hdrs.length + body.length;
  if (plen > MAX_RECORD) throw new Error(`message of ${plen} bytes is larger than a spool record may be`);
  const b = Buffer.allocUnsafe(HDR + plen);
  let o = HDR;
  b[o++] = KIND_CODE[m.kind];
  b.writeUIntLE(seq, o, 6); o += 6;
  b.writeUInt16LE(subject.length, o); o += 2;
  subject.copy(b, o); o += subject.length;
  b[o++] = id.length;
  id.copy(b, o); o += id.length;
  b.writeUInt32LE(hdrs.length, o); o += 4;
  hdrs.copy(b, o); o += hdrs.length;
  b.set(body, o);
  b.writeUInt32LE(plen, 0);
  b.writeUInt32LE(crc32(b.subarray(HDR)), 4);
  return b;
}

function decodePayload(p: Buffer, size: number, recovered: boolean): SpoolEntry | null {
  try {
    let o = 0;
    const kind = CODE_KIND[p[o++]];
    if (!kind) return null;
    const seq = p.readUIntLE(o, 6); o += 6;
    const sl = p.readUInt16LE(o); o += 2;
    const subject = p.toString('utf8', o, o + sl); o += sl;
    const il = p[o++];
    const eventId = p.toString('utf8', o, o + il); o += il;
    const hl = p.readUInt32LE(o); o += 4;
    const headers = JSON.parse(p.toString('utf8', o, o + hl)) as Record<string, string>; o += hl;
    if (o > p.length) return null;
    return { seq, kind, subject, eventId, headers, body: Uint8Array.prototype.slice.call(p, o), size, recovered };
  } catch {
    return null;
  }
}

/** Parse the frames of a buffer. Stops at the first frame that does not fit. */
function parseFrames(buf: Buffer, recovered: boolean): { entries: SpoolEntry[]; end: number; bad: number; cut: boolean } {
  const entries: SpoolEntry[] = [];
  let o = 0;
  let bad = 0;
  while (o + HDR <= buf.length) {
    const len = buf.readUInt32LE(o);
    if (len < 14 || len > MAX_RECORD || o + HDR + len > buf.length) break; // torn (or garbage) tail
    const payload = buf.subarray(o + HDR, o + HDR + len);
    const e = crc32(payload) === buf.readUInt32LE(o + 4) ? decodePayload(payload, HDR + len, recovered) : null;
    if (!e) {
      // A bad checksum on the very last frame is a torn write; before that, a damaged record.
      if (o + HDR + len === buf.length) break;
      bad++;
    } else {
      entries.push(e);
    }
    o += HDR + len;
  }
  return { entries, end: o, bad, cut: o < buf.length };
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
  private ackCursor = 0;
  private persistedCursor = 0;
  private mem: SpoolEntry[] = [];
  private memHead = 0;
  private memBytes = 0;
  /** Unsent records exist that are on disk only. */
  private diskMode = false;
  private rd: { segId: number; fd: number; offset: number; entries: SpoolEntry[]; head: number } | null = null;
  private dirty = false;
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly o: Required<SpoolOptions>;
  readonly counters = {
    appended: 0, acked: 0, torn: 0, corrupt: 0, compactions: 0, recovered: 0, deferred: 0,
    /** Keepalives queued in memory only (append's keepalivesInMemory). */
    inMemory: 0,
    shed: { status: 0, keepalive: 0, alert: 0, tap: 0 } as Record<MessageKind, number>,
  };

  private constructor(opts: SpoolOptions) {
    this.o = {
      segmentBytes: Math.max(64 * 1024, Math.min(8 * 1024 * 1024, Math.floor(opts.maxBytes / 8))),
      keepaliveShare: 0.9, fsync: 'interval', fsyncIntervalMs: 1000, ackPersistMs: 250,
      memCacheBytes: 16 * 1024 * 1024, ...opts,
    };
  }

  /** Open (or create) the spool in `dir`, recovering what an earlier process left. */
  static open(opts: SpoolOptions): Spool {
    const s = new Spool(opts);
    s.recover();
    return s;
  }

  private recover(): void {
    const { dir } = this.o;
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const ackPath = join(dir, 'ack');
    if (existsSync(ackPath)) {
      const n = Number(readFileSync(ackPath, 'utf8').trim());
      if (Number.isSafeInteger(n) && n >= 0) this.ackCursor = n;
    }
    this.persistedCursor = this.ackCursor;
    const files = readdirSync(dir).filter((f) => /^seg-\d+\.log$/.test(f))
      .map((f) => ({ f, id: Number(f.slice(4, -4)) })).sort((a, b) => a.id - b.id);
    let maxSeq = this.ackCursor;
    let maxId = 0;
    files.forEach(({ f, id }, i) => {
      maxId = Math.max(maxId, id);
      const path = join(dir, f);
      const buf = readFileSync(path);
      const { entries, end, bad, cut } = parseFrames(buf, true);
      this.counters.corrupt += bad;
      if (cut) {
        if (i === files.length - 1) this.counters.torn++;
        else this.counters.corrupt++;
        truncateSync(path, end);
      }
      const live = entries.filter((e) => e.seq > this.ackCursor);
      for (const e of entries) maxSeq = Math.max(maxSeq, e.seq);
      if (live.length === 0) {
        unlinkSync(path);
        return;
      }
      this.segs.push({
        id, path, bytes: end, firstSeq: live[0].seq, lastSeq: live[live.length - 1].seq, count: live.length,
        keepalives: live.filter((e) => e.kind === 'keepalive').length,
      });
      this.totalBytes += end;
      this.unacked += live.length;
    });
    this.counters.recovered = this.unacked;
    this.nextSeq = maxSeq + 1;
    this.firstSeqOfRun = this.nextSeq;
    this.nextRead = this.ackCursor + 1;
    this.diskMode = this.unacked > 0;
    this.openSegment(maxId + 1);
    if (this.o.fsync === 'interval') {
      const t = setInterval(() => this.sync(), this.o.fsyncIntervalMs);
      t.unref();
      this.timers.push(t);
    }
    const a = setInterval(() => this.tryPersistAck(), this.o.ackPersistMs);
    a.unref();
    this.timers.push(a);
  }

  private openSegment(id: number): void {
    const path = join(this.o.dir, `seg-${String(id).padStart(12, '0')}.log`);
    this.fd = openSync(path, 'a', 0o640);
    this.active = { id, path, bytes: 0, firstSeq: 0, lastSeq: 0, count: 0, keepalives: 0 };
    this.segs.push(this.active);
  }

  private rotate(): void {
    if (this.fd >= 0) {
      if (this.o.fsync !== 'never') fdatasyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
    this.dirty = false;
    this.openSegment(this.active.id + 1);
  }

  /** Flush written records to the disk (the periodic fsync). */
  sync(): void {
    if (this.dirty && this.fd >= 0) {
      fdatasyncSync(this.fd);
      this.dirty = false;
    }
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
   * keepalives not yet acknowledged — never a status change.
   */
  append(msgs: SpoolMessage[], callerKeeps = false, keepalivesInMemory = false): number[] {
    if (this.closed) throw new Error('spool is closed');
    const out: number[] = [];
    const frames: Buffer[] = [];
    let pending = 0;
    const writeOut = () => {
      if (frames.length === 0) return;
      const buf = frames.length === 1 ? frames[0] : Buffer.concat(frames, pending);
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off);
      frames.length = 0;
      pending = 0;
      this.dirty = true;
    };
    for (const m of msgs) {
      const seq = this.nextSeq;
      if (keepalivesInMemory && m.kind === 'keepalive' && !this.diskMode) {
        const body = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : m.body;
        const size = body.length + m.subject.length + m.eventId.length + 64; // about its frame's
        if (this.memBytes + size <= this.o.memCacheBytes) {
          this.nextSeq++;
          this.mem.push({ seq, kind: m.kind, subject: m.subject, eventId: m.eventId, headers: m.headers, body, size, recovered: false });
          this.memBytes += size;
          this.unacked++;
          this.counters.appended++;
          this.counters.inMemory++;
          out.push(seq);
          continue;
        }
      }
      const frame = encodeFrame(m, seq);
      const size = frame.length;
      const after = this.totalBytes + pending + size;
      if (m.kind === 'keepalive' ? after > this.o.maxBytes * this.o.keepaliveShare : after > this.o.maxBytes) {
        if (m.kind === 'keepalive') {
          this.counters.shed.keepalive++;
          out.push(0);
          continue;
        }
        writeOut();
        this.compact(this.totalBytes + size - this.o.maxBytes);
        if (this.totalBytes + size > this.o.maxBytes) {
          if (callerKeeps) this.counters.deferred++;
          else this.counters.shed[m.kind]++;
          out.push(0);
          continue;
        }
      }
      if (this.active.bytes + size > this.o.segmentBytes && this.active.count > 0) {
        writeOut();
        this.rotate();
      }
      this.nextSeq++;
      frames.push(frame);
      pending += size;
      const a = this.active;
      if (a.count === 0) a.firstSeq = seq;
      a.lastSeq = seq;
      a.count++;
      a.bytes += size;
      if (m.kind === 'keepalive') a.keepalives++;
      this.totalBytes += size;
      this.unacked++;
      this.counters.appended++;
      if (!this.diskMode && this.memBytes + size <= this.o.memCacheBytes) {
        const body = typeof m.body === 'string' ? Buffer.from(m.body, 'utf8') : m.body;
        this.mem.push({ seq, kind: m.kind, subject: m.subject, eventId: m.eventId, headers: m.headers, body, size, recovered: false });
        this.memBytes += size;
      } else {
        this.diskMode = true;
      }
      out.push(seq);
    }
    writeOut();
    if (this.o.fsync === 'always') this.sync();
    return out;
  }

  /** Every record with a seq up to this one was acknowledged. */
  get ackedThrough(): number {
    return this.ackCursor;
  }

  /** Records not handed out yet. */
  get unsent(): number {
    return this.unacked - this.outstanding.size;
  }

  /** Hand out up to `max` records, oldest first. Each must later be ack()ed. */
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
        e = this.readDisk();
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
        this.rd = { segId: seg.id, fd: openSync(seg.path, 'r'), offset: 0, entries: [], head: 0 };
      }
      const rd = this.rd;
      while (rd.head < rd.entries.length) {
        const e = rd.entries[rd.head++];
        if (e.seq >= this.nextRead) return e;
      }
      // Load more of this segment (it may be the active one, still growing).
      const size = fstatSync(rd.fd).size;
      if (size > rd.offset) {
        let len = Math.min(size - rd.offset, 4 * 1024 * 1024);
        if (len >= HDR) {
          // A record larger than the chunk: read it whole.
          const h = Buffer.allocUnsafe(4);
          readSync(rd.fd, h, 0, 4, rd.offset);
          len = Math.min(size - rd.offset, Math.max(len, HDR + h.readUInt32LE(0)));
        }
        const buf = Buffer.allocUnsafe(len);
        const n = readSync(rd.fd, buf, 0, len, rd.offset);
        const { entries, end } = parseFrames(buf.subarray(0, n), false);
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
      const next = this.segs.slice(idx + 1).find((s) => s.count > 0 && s.lastSeq >= this.nextRead);
      if (!next) return undefined;
      this.rd = { segId: next.id, fd: openSync(next.path, 'r'), offset: 0, entries: [], head: 0 };
    }
  }

  /** NATS acknowledged record `seq`. */
  ack(seq: number): void {
    if (!this.outstanding.delete(seq)) return;
    this.unacked--;
    this.counters.acked++;
    let cursor: number;
    if (this.outstanding.size > 0) cursor = (this.outstanding.keys().next().value as number) - 1;
    else cursor = this.nextRead - 1;
    if (cursor > this.ackCursor) {
      this.ackCursor = cursor;
      this.dropAcked();
    }
  }

  /** Delete the segments every record of which was acknowledged (the cursor is saved first). */
  private dropAcked(): void {
    const done = this.segs.filter((s) => s !== this.active && s.lastSeq <= this.ackCursor);
    if (done.length === 0) return;
    if (!this.tryPersistAck()) return; // deleted at a later ack, once the cursor is on disk
    for (const s of done) {
      if (this.rd?.segId === s.id) this.closeReader();
      try { unlinkSync(s.path); } catch { /* already gone */ }
      this.totalBytes -= s.bytes;
      this.segs.splice(this.segs.indexOf(s), 1);
    }
  }

  /**
   * persistAck from the timer and from an ack: out of descriptors (EMFILE) the write fails, and
   * that must not kill the process (a timer's throw would). The cursor is written at the next
   * tick; until then a restart would only resend records already acknowledged. False: not written.
   */
  private tryPersistAck(): boolean {
    try {
      this.persistAck();
      return true;
    } catch {
      return false;
    }
  }

  /** Write the ack cursor (tmp + rename) when it moved. */
  persistAck(): void {
    if (this.ackCursor === this.persistedCursor || this.closed) return;
    const tmp = join(this.o.dir, 'ack.tmp');
    writeFileSync(tmp, `${this.ackCursor}\n`);
    renameSync(tmp, join(this.o.dir, 'ack'));
    this.persistedCursor = this.ackCursor;
  }

  /**
   * Make at least `need` bytes of room by dropping unsent keepalives, oldest segment first
   * (acknowledged records are dropped from rewritten segments too). Each dropped keepalive is shed.
   */
  private compact(need: number): void {
    if (this.active.count > 0) this.rotate();
    let freed = 0;
    const droppedSeqs = new Set<number>();
    for (const s of [...this.segs]) {
      if (freed >= need) break;
      if (s === this.active || s.keepalives === 0 || s.lastSeq < this.nextRead) continue;
      const buf = readFileSync(s.path);
      const { entries } = parseFrames(buf, false);
      const keep: Buffer[] = [];
      let dropped = 0;
      let keptKa = 0;
      let first = 0;
      let last = 0;
      for (const e of entries) {
        if (e.seq <= this.ackCursor) continue; // acknowledged
        if (e.kind === 'keepalive' && e.seq >= this.nextRead) { dropped++; droppedSeqs.add(e.seq); continue; }
        if (e.kind === 'keepalive') keptKa++;
        keep.push(encodeFrame(e, e.seq));
        if (!first) first = e.seq;
        last = e.seq;
      }
      if (this.rd?.segId === s.id) this.closeReader();
      const newBytes = keep.reduce((n, b) => n + b.length, 0);
      if (keep.length === 0) {
        unlinkSync(s.path);
        this.segs.splice(this.segs.indexOf(s), 1);
      } else {
        const tmp = `${s.path}.tmp`;
        const fd = openSync(tmp, 'w', 0o640);
        writeSync(fd, Buffer.concat(keep, newBytes));
        if (this.o.fsync !== 'never') fsyncSync(fd);
        closeSync(fd);
        renameSync(tmp, s.path);
        Object.assign(s, { bytes: newBytes, count: keep.length, firstSeq: first, lastSeq: last, keepalives: keptKa });
      }
      freed += buf.length - newBytes;
      this.totalBytes -= buf.length - newBytes;
      this.unacked -= dropped;
      this.counters.shed.keepalive += dropped;
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
      deferred: this.counters.deferred, torn: this.counters.torn, corrupt: this.counters.corrupt, compactions: this.counters.compactions,
      recovered: this.counters.recovered, ackCursor: this.ackCursor, inMemory: this.counters.inMemory,
    };
  }

  /** Sync, save the cursor, close the files. Unacknowledged records stay for the next start. */
  close(): void {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    this.closeReader();
    if (this.fd >= 0) {
      if (this.o.fsync !== 'never') fdatasyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
    this.persistAck();
    this.closed = true;
    if (this.active.count === 0) {
      try { unlinkSync(this.active.path); } catch { /* gone */ }
    }
  }
}
