// Mirror of struct wdbtap_record in bpf/wdbtap.h. The shim asserts the size at
// compile time; Capture checks it against wdbtap_record_size() at run time.
import type { CaptureRecord, Direction } from '../types.js';

export const RECORD_SIZE = 88;
export const CHUNK = 32768;
export const F_TRUNCATED = 1;
export const F_LAST = 2;
export const F_GAP = 4;
/** Set by the shim (bpf/shim/fastpath.h): an update-agent-data sent whole, with its agent key and payload hash. */
export const F_KEYED = 8;
/** Set by the shim: that request again, unchanged, answered ok; data: the reply's ts_ns. */
export const F_TICK = 16;

const SYSCALLS: Record<number, string> = { 1: 'sendto', 2: 'write', 3: 'sendmsg', 4: 'writev' };

/** Kernel counters in the order of enum wdbtap_counter, then the shim's own. */
export const COUNTER_NAMES = [
  'seen', 'captured', 'filtered', 'truncated', 'scratch_failures', 'output_failures',
  'inflight_full', 'failed_writes', 'content_dropped', 'unframed', 'targets_exec', 'other_wdb',
  'lost', 'queue_drops', 'late_wakes',
] as const;
export type CaptureCounters = Record<(typeof COUNTER_NAMES)[number], number>;

const decoder = new TextDecoder('latin1');
const EMPTY = new Uint8Array(0);

/**
 * The last comm decoded, by its 16 bytes as four words: a batch's records come from a few daemons, and
 * a view and a decode a record were ~150 bytes of garbage each.
 */
const lastComm = { w0: -1, w1: -1, w2: -1, w3: -1, text: '' };

function commAt(buf: Uint8Array, view: DataView, at: number): string {
  const w0 = view.getUint32(at, true);
  const w1 = view.getUint32(at + 4, true);
  const w2 = view.getUint32(at + 8, true);
  const w3 = view.getUint32(at + 12, true);
  const c = lastComm;
  if (w0 === c.w0 && w1 === c.w1 && w2 === c.w2 && w3 === c.w3) return c.text;
  const bytes = buf.subarray(at, at + 16);
  const nul = bytes.indexOf(0);
  c.text = decoder.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
  c.w0 = w0; c.w1 = w1; c.w2 = w2; c.w3 = w3;
  return c.text;
}

/** A u64 field as a number (inode numbers: below 2^53), without a BigInt. */
function u64At(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 4294967296;
}

/**
 * Split a buffer filled by wdbtap_take (records, each after its u32 length) into
 * records. The payload is copied out so the poll buffer can be reused at once.
 * `daemons[id - 1]` names the writer's executable (the kernel resolved it at exec).
 */
export function parseRecords(buf: Uint8Array, used: number, daemons: readonly string[] = []): CaptureRecord[] {
  const view = new DataView(buf.buffer, buf.byteOffset, used);
  const out: CaptureRecord[] = [];
  let pos = 0;
  while (pos + 4 <= used) {
    const len = view.getUint32(pos, true);
    const at = pos + 4;
    pos = at + len;
    if (len < RECORD_SIZE || pos > used) break; // the shim writes whole records; anything else is a bug
    const capLen = view.getUint32(at + 40, true);
    if (RECORD_SIZE + capLen > len) continue;
    const flags = view.getUint16(at + 46, true);
    const exe = daemons[view.getUint16(at + 50, true) - 1];
    // 53 bits of the shim's 64-bit hash: a number, compared for equality only (the shim compared all 64).
    const keyed = (flags & (F_KEYED | F_TICK)) !== 0
      ? { key: view.getUint32(at + 64, true), hash: (view.getUint32(at + 60, true) & 0x1fffff) * 0x100000000 + view.getUint32(at + 56, true) }
      : undefined;
    const tsNs = view.getBigUint64(at, true);
    const localIno = u64At(view, at + 8);
    const peerIno = u64At(view, at + 16);
    const tgid = view.getUint32(at + 24, true);
    const tid = view.getUint32(at + 28, true);
    const syscallBytes = view.getUint32(at + 32, true);
    const syscall = SYSCALLS[view.getUint16(at + 48, true)] ?? 'unknown';
    const comm = commAt(buf, view, at + 72);
    // A reply's (or a tick's reply's): how long before it wazuh-db's thread had read the request; 0 unknown.
    const readAgo = view.getUint32(at + 68, true);
    const ago = readAgo !== 0 ? BigInt(readAgo) : 0n;
    if (flags & F_TICK) {
      // An unchanged keepalive the shim took whole (offset 0, a request, not truncated): no payload.
      const replyTsNs = capLen >= 8 ? view.getBigUint64(at + RECORD_SIZE, true) : 0n;
      const tick: CaptureRecord = {
        tsNs, localIno, peerIno, tgid, tid, syscallBytes, offset: 0, direction: 'request', truncated: false, syscall, exe, comm,
        data: EMPTY, keyed, tick: { replyTsNs },
      };
      if (ago !== 0n && replyTsNs > ago) tick.readNs = replyTsNs - ago;
      out.push(tick);
      continue;
    }
    const direction: Direction = view.getUint16(at + 44, true) === 2 ? 'reply' : 'request';
    // Built, then the optional fields set (not spreads of conditional literals: a throwaway object and a
    // runtime call each, at every record).
    const rec: CaptureRecord = {
      tsNs, localIno, peerIno, tgid, tid, syscallBytes,
      offset: view.getUint32(at + 36, true),
      direction,
      truncated: (flags & F_TRUNCATED) !== 0,
      gap: (flags & F_GAP) !== 0,
      frameOff: view.getUint32(at + 52, true),
      syscall,
      comm,
      // A copy, not a view (Buffer#slice shares memory): the poll buffer is reused at once.
      data: Uint8Array.prototype.slice.call(buf, at + RECORD_SIZE, at + RECORD_SIZE + capLen),
      keyed,
    };
    if (exe !== undefined) rec.exe = exe;
    if (ago !== 0n && direction === 'reply' && tsNs > ago) rec.readNs = tsNs - ago;
    out.push(rec);
  }
  return out;
}
