// Turns the kernel's records (one per write, or per chunk of a large write) back into wdb frames.
// Each (connection, direction) is its own byte stream: 5.x clients split a frame across writes, and
// nothing guarantees that one write holds one frame. Corruption on one stream never touches another.

import { connIdOf, type CaptureRecord, type ConnId, type Direction, type WdbFrame } from '../types.js';

/** wazuh-db refuses longer frames, so a bigger length means we are not at a frame boundary. */
export const MAX_FRAME = 65536;
const HEADER = 4;
/** Payload bytes inspected to decide whether a length header is plausible (see looksLikeStart). */
const PREFIX_CHECK = 8;
/** The kernel sends a write in records of this many bytes, and this many of those at most (bpf/wdbtap.h). */
const CHUNK = 32768;
const MAX_CHUNKS = 3;

export type ResetReason = 'bad-length' | 'bad-start' | 'truncated' | 'gap' | 'evicted';

export interface ReassemblerOptions {
  /** Streams tracked at once; the least recently used is forgotten beyond this. */
  maxStreams?: number;
  /** Bytes of partial frames held across all streams. One stream holds at most one partial frame. */
  maxBufferedBytes?: number;
  /**
   * Called whenever bytes of a stream are discarded (so frames may be missing). The pairer must hear
   * about it, or a reply after the hole would be paired with the wrong request.
   */
  onReset?: (connId: ConnId, direction: Direction, reason: ResetReason) => void;
}

export interface ReassemblerStats {
  /** Frames emitted. */
  frames: number;
  /** Captured bytes received. */
  bytes: number;
  /** Bad lengths or frame starts that are not wdb text: the stream was not at a frame boundary. */
  malformed: number;
  /** Times a stream that was in sync lost it (any cause). */
  resyncs: number;
  /** Records the kernel could not capture whole. */
  truncated: number;
  /** Records whose offset was not the continuation expected (chunks lost in between). */
  gaps: number;
  /** Streams forgotten to respect maxStreams / maxBufferedBytes. */
  evicted: number;
  /** Records after writes the kernel filtered out (WDBTAP_F_GAP): expected, not a loss. */
  filtered: number;
  /** Streams tracked now. */
  streams: number;
  /** Bytes of partial frames held now. */
  buffered: number;
}

interface Stream {
  connId: ConnId;
  direction: Direction;
  /** We know where frames start. False until a write begins with a plausible frame. */
  synced: boolean;
  /** Bytes of one incomplete frame (header included), or null. */
  partial: Uint8Array | null;
  /** Who began the partial frame: a frame is stamped with the write that started it. */
  partialTs: bigint;
  partialTgid: number;
  partialComm: string;
  partialExe: string | undefined;
  partialRead: bigint | undefined;
  /** Offset the next record must have: 0 at a write boundary, else the continuation of a chunked write. */
  nextOffset: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

export class StreamReassembler {
  private readonly streams = new Map<string, Stream>();
  private readonly maxStreams: number;
  private readonly maxBuffered: number;
  private readonly onReset: ReassemblerOptions['onReset'];
  private readonly counters = { frames: 0, bytes: 0, malformed: 0, resyncs: 0, truncated: 0, gaps: 0, evicted: 0, filtered: 0 };
  private buffered = 0;

  constructor(opts: ReassemblerOptions = {}) {
    this.maxStreams = Math.max(1, opts.maxStreams ?? 65536);
    this.maxBuffered = Math.max(HEADER + MAX_FRAME, opts.maxBufferedBytes ?? 64 * 1024 * 1024);
    this.onReset = opts.onReset;
  }

  push(rec: CaptureRecord): WdbFrame[] {
    this.counters.bytes += rec.data.length;
    const s = this.stream(connIdOf(rec), rec.direction);
    const frames: WdbFrame[] = [];
    if (rec.gap) rec = this.skipFiltered(s, rec);
    const data = rec.data;

    const end = rec.offset + data.length;
    const gap = rec.offset !== s.nextOffset;
    if (gap) {
      this.counters.gaps++;
      this.lose(s, 'gap');
    }
    // F_TRUNCATED: what follows this record's end is gone. It rides on the last record the kernel sent
    // of the write; on a whole chunk short of the kernel's limit, more chunks of the write may follow,
    // and the frames they complete are whole (a flag on the first chunk threw away a 64 KiB frame
    // captured in full, then counted each later chunk as a gap).
    const cut = rec.truncated && (data.length < CHUNK || end >= Math.min(rec.syscallBytes, MAX_CHUNKS * CHUNK));
    // Follow the chunks of a large write even when they are being discarded, so that each lost write
    // is one gap, not one per chunk.
    s.nextOffset = !cut && end < rec.syscallBytes ? end : 0;

    // Only the start of a write can be a frame boundary we can trust after a loss.
    if (s.synced || rec.offset === 0) this.consume(s, rec, frames);
    else if (!gap && data.length > 0) this.lose(s, 'gap');

    if (cut) {
      // Frames wholly inside the captured part were emitted; whatever followed is gone.
      this.counters.truncated++;
      this.lose(s, 'truncated');
    }
    return frames;
  }

  /**
   * The kernel dropped writes of this stream that held nothing wanted (agent-
   * scoped requests, replies nobody waits for). Not a loss: forget the partial
   * frame they interrupted and start at the first frame the kernel saw begin.
   */
  private skipFiltered(s: Stream, rec: CaptureRecord): CaptureRecord {
    this.counters.filtered++;
    if (s.partial) this.drop(s);
    const skip = Math.max(0, Math.min(rec.data.length, (rec.frameOff ?? rec.offset) - rec.offset));
    s.synced = true;
    s.nextOffset = rec.offset + skip;
    return skip === 0 ? rec : { ...rec, data: rec.data.subarray(skip), offset: rec.offset + skip };
  }

  /** The connection ended: forget both directions. */
  close(connId: ConnId): void {
    for (const dir of ['request', 'reply'] as const) {
      const key = streamKey(connId, dir);
      const s = this.streams.get(key);
      if (s) {
        this.drop(s);
        this.streams.delete(key);
      }
    }
  }

  stats(): ReassemblerStats {
    return { ...this.counters, streams: this.streams.size, buffered: this.buffered };
  }

  private consume(s: Stream, rec: CaptureRecord, out: WdbFrame[]): void {
    let buf = rec.data;
    const continuing = s.partial !== null;
    if (s.partial) {
      buf = concat(s.partial, rec.data);
      this.drop(s);
    }
    let pos = 0;
    let first = true;
    while (buf.length - pos >= HEADER) {
      // `+` for the top byte: `|` would make lengths of 2 GiB and more negative.
      const len = (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)) + buf[pos + 3] * 0x1000000;
      if (len === 0 || len > MAX_FRAME) {
        this.counters.malformed++;
        this.lose(s, 'bad-length');
        return;
      }
      const avail = Math.min(len, buf.length - pos - HEADER);
      if (!looksLikeStart(buf, pos + HEADER, Math.min(avail, PREFIX_CHECK))) {
        this.counters.malformed++;
        this.lose(s, 'bad-start');
        return;
      }
      // A plausible frame at the start of a write is how a lost stream finds its footing again.
      s.synced = true;
      if (avail < len) break;
      const from = first && continuing ? s : null;
      out.push(this.frame(s, rec, from, buf.subarray(pos + HEADER, pos + HEADER + len)));
      this.counters.frames++;
      pos += HEADER + len;
      first = false;
    }
    if (pos < buf.length) {
      if (!(first && continuing)) {
        s.partialTs = rec.tsNs;
        s.partialTgid = rec.tgid;
        s.partialComm = rec.comm;
        s.partialExe = rec.exe;
        s.partialRead = rec.readNs;
      }
      // Copy: the caller's buffer may be reused for the next batch of records, and a view (Buffer#slice
      // is one) kept the whole record — 32 KiB for a partial of ten bytes, past the budget that counts
      // the partial alone (review helper-87).
      s.partial = Uint8Array.prototype.slice.call(buf, pos);
      this.buffered += s.partial.length;
      this.enforceBudget(s);
    }
  }

  private frame(s: Stream, rec: CaptureRecord, from: Stream | null, bytes: Uint8Array): WdbFrame {
    // 4.x C clients count a trailing NUL in the length; wazuh-db and 5.x do not. Both ends read a frame as a
    // C string: what follows its first NUL is nothing to wazuh-db (it applied such a request; the tap dropped it).
    const nul = bytes.indexOf(0);
    const body = nul >= 0 ? bytes.subarray(0, nul) : bytes;
    const f: WdbFrame = {
      connId: s.connId,
      direction: s.direction,
      tsNs: from ? from.partialTs : rec.tsNs,
      tgid: from ? from.partialTgid : rec.tgid,
      comm: from ? from.partialComm : rec.comm,
      payload: decoder.decode(body),
    };
    const exe = from ? from.partialExe : rec.exe;
    if (exe !== undefined) f.exe = exe;
    const readNs = from ? from.partialRead : rec.readNs;
    if (readNs !== undefined) f.readNs = readNs;
    // The shim keyed the record it is alone in (bpf/shim/fastpath.h).
    if (rec.keyed && !from && bytes.length + HEADER === rec.data.length) f.keyed = rec.keyed;
    return f;
  }

  private stream(connId: ConnId, direction: Direction): Stream {
    const key = streamKey(connId, direction);
    let s = this.streams.get(key);
    if (s) {
      // Re-insert: Map keeps insertion order, so the first entry is always the least recently used.
      this.streams.delete(key);
      this.streams.set(key, s);
      return s;
    }
    s = {
      connId, direction, synced: false, partial: null,
      partialTs: 0n, partialTgid: 0, partialComm: '', partialExe: undefined, partialRead: undefined, nextOffset: 0,
    };
    this.streams.set(key, s);
    while (this.streams.size > this.maxStreams) this.evictOldest();
    return s;
  }

  private enforceBudget(keep: Stream): void {
    while (this.buffered > this.maxBuffered) {
      const oldest = this.streams.values().next().value as Stream | undefined;
      if (!oldest || oldest === keep) return;
      this.evictOldest();
    }
  }

  private evictOldest(): void {
    const oldest = this.streams.values().next().value as Stream | undefined;
    if (!oldest) return;
    this.counters.evicted++;
    const hadBytes = oldest.partial !== null;
    this.drop(oldest);
    this.streams.delete(streamKey(oldest.connId, oldest.direction));
    if (hadBytes) this.onReset?.(oldest.connId, oldest.direction, 'evicted');
  }

  /**
   * The stream's position is no longer known: drop its bytes and wait for a write that starts a frame.
   * Reported every time bytes are discarded, even on a stream never in sync (a frame may have been in
   * them); counted as a resync only when a stream that was in sync loses it.
   */
  private lose(s: Stream, reason: ResetReason): void {
    if (s.synced || s.partial !== null) this.counters.resyncs++;
    this.drop(s);
    s.synced = false;
    this.onReset?.(s.connId, s.direction, reason);
  }

  private drop(s: Stream): void {
    if (s.partial) this.buffered -= s.partial.length;
    s.partial = null;
  }
}

function streamKey(connId: ConnId, direction: Direction): string {
  return direction === 'request' ? `q${connId}` : `r${connId}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Every wdb payload starts with a lower-case command or status word (`global`, `agent`, `task`, `ok`,
 * `err`, …) followed by a space or the end. Checking the first bytes rejects a misread length header,
 * which would otherwise swallow up to 64 KiB of good frames before the damage showed.
 */
function looksLikeStart(buf: Uint8Array, at: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const c = buf[at + i];
    const letter = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
    if (i === 0) {
      if (!letter) return false;
      continue;
    }
    if (c === 0x20 || c === 0) return true;
    const word = letter || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
    if (!word) return false;
  }
  return true;
}
