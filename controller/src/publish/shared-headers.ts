// Core NATS: the headers of a message as one shared, never-changed object per distinct set, its bytes
// encoded once. A keepalive batch's are the same but for the count: made per message they were ~500
// bytes of garbage a keepalive and a Map, a regex and an encode each. Bounded (SharedPool).
// Given the headers alone, never the message: the kept encode() closed over the message it was first
// made for (delivery.ts's scope), and each of the pool's sets — one a batch size — held that first
// batch's body alive, 0.2–0.3 MB each at 100,000 agents (~10 MB in a heap snapshot of the memory step).

import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { SharedPool } from '../util/intern.js';

/** A message's headers, made anew (JetStream adds Nats-Msg-Id to each message: it gets its own). */
export function headersOf(headers: Readonly<Record<string, string>>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  return h;
}

/** What nats.js's core publish() takes of a message's headers: their bytes (MsgHdrsImpl.encode). */
class EncodedHeaders {
  constructor(private readonly bytes: Uint8Array) {}
  encode(): Uint8Array {
    return this.bytes;
  }
}

/** A header name as the tap writes them (`Wazuh-Agent-Id`): a token nats.js writes as it is given. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
/** A value nats.js writes unchanged: no CR or LF (it refuses them), no space at either end (it trims). */
const VALUE = /^(?:[^\s\r\n](?:[^\r\n]*[^\s\r\n])?)?$/;

/**
 * Core NATS: a message's own headers (an agent's: one set a message) as the bytes nats.js would write
 * for them — `NATS/1.0`, then `Name: value` lines in their order, CRLF each, and an empty line
 * (MsgHdrsImpl.toString; test/shared-headers.test.ts holds the two equal). Made through nats.js's
 * headers() they were a Map, an array a name, a validation a name and a value, and a string encoded at
 * publish: ~5 % of the tap's work for an agent's first keepalive. A name or value it would change or
 * refuse, or a value that is not a string (a spool record made by hand), goes through headersOf (none
 * the tap makes), as does an empty set.
 */
export function encodedHeaders(headers: Readonly<Record<string, string>>): MsgHdrs {
  let s = 'NATS/1.0';
  let n = 0;
  for (const k of Object.keys(headers)) { // own names only, as nats.js's Object.entries
    const v = headers[k];
    if (typeof v !== 'string' || !NAME.test(k) || !VALUE.test(v)) return headersOf(headers);
    s += `\r\n${k}: ${v}`;
    n++;
  }
  if (n === 0) return headersOf(headers); // nats.js writes no header block then
  return new EncodedHeaders(Buffer.from(`${s}\r\n\r\n`, 'utf8')) as unknown as MsgHdrs;
}

export class SharedHeaders {
  private readonly pool: SharedPool<MsgHdrs>;

  constructor(max = 1024) {
    this.pool = new SharedPool<MsgHdrs>(max);
  }

  of(headers: Readonly<Record<string, string>>): MsgHdrs {
    let key = '';
    for (const k in headers) key += `${k}\n${headers[k]}\n`;
    return this.pool.of(key, () => encodedHeaders(headers));
  }
}
