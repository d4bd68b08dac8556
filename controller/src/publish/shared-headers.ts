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

export class SharedHeaders {
  private readonly pool: SharedPool<MsgHdrs>;

  constructor(max = 1024) {
    this.pool = new SharedPool<MsgHdrs>(max);
  }

  of(headers: Readonly<Record<string, string>>): MsgHdrs {
    let key = '';
    for (const k in headers) key += `${k}\n${headers[k]}\n`;
    return this.pool.of(key, () => encodedOnce(headersOf(headers)));
  }
}

/** `h`, its encode() (what nats.js's publish() calls: MsgHdrsImpl, not in the MsgHdrs type) made once. */
function encodedOnce(h: MsgHdrs): MsgHdrs {
  const impl = h as unknown as { encode?: () => Uint8Array };
  if (typeof impl.encode === 'function') {
    const bytes = impl.encode();
    impl.encode = () => bytes;
  }
  return h;
}
