// wazuh-db's framing for a client of its socket (as Wazuh's own Python framework speaks it): a 4-byte
// little-endian length, then the payload, no NUL. Pure.

import { MAX_FRAME } from '../../decode/reassembler.js';
import { parseReply } from '../../decode/wdb-reply.js';
import type { ParsedWdbReply } from '../../types.js';

export function encodeFrame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  if (body.length === 0 || body.length > MAX_FRAME) throw new RangeError(`a wdb request is 1 to ${MAX_FRAME} bytes`);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Cuts a byte stream from wazuh-db into reply frames; a length over MAX_FRAME is a broken stream. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  /** Returns the whole frames now available (their raw text: the caller parses and redacts). */
  push(chunk: Buffer): string[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32LE(0);
      if (len > MAX_FRAME) throw new RangeError(`reply length ${len} is over ${MAX_FRAME}`);
      if (this.buf.length < 4 + len) break;
      out.push(this.buf.toString('utf8', 4, 4 + len));
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }

  get buffered(): number {
    return this.buf.length;
  }
}

/** A listing page (`ok [...]`/`due [...]`) → its ids and whether more follow; null when unusable. */
export function parseIdPage(reply: ParsedWdbReply, parseIds: (payload: string) => number[] | null): { ids: number[]; more: boolean } | null {
  if (reply.status !== 'ok' && reply.status !== 'due') return null;
  const ids = parseIds(reply.payload);
  return ids === null ? null : { ids, more: reply.status === 'due' };
}

export { parseReply };
