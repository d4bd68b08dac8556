// wazuh-db's framing for a client of its socket (as Wazuh's own Python framework speaks it): a 4-byte
// little-endian length, then the payload, no NUL. Pure.

import { MAX_FRAME } from '../../decode/reassembler.js';
import { parseReply, replyHead } from '../../decode/wdb-reply.js';

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

/**
 * A page of ids straight from the reply's text, null unless wazuh-db answered it `ok` or `due`. Not
 * through parseReply: only numbers come out of a page, so there is nothing to redact, and its two scans
 * of every 64 KiB page were ~6 % of the busiest second of a start at 100,000 agents. A refused page's text,
 * which goes into a reason and the log, is the caller's to read through parseReply (redacted).
 */
export function parseIdPageText(text: string, parseIds: (payload: string) => number[] | null): { ids: number[]; more: boolean } | null {
  const { head, rest } = replyHead(text);
  if (head !== 'ok' && head !== 'due') return null;
  const ids = parseIds(rest);
  return ids === null ? null : { ids, more: head === 'due' };
}

export { parseReply };
