// Exchanges leave the decoder in the order wazuh-db applied their requests (SPEC §3), not in the order
// of their replies.
//
// wazuh-db applies requests in the order they reach it, across connections (architecture.md, "Order
// across CPUs": the records come merged by the time each write began), and writes each reply after
// applying its request. A reply can be written late, though: the worker that applied a request is
// preempted before its sendto, and a later request of another connection is answered first. Paired at
// their replies, the state would apply the later request first — a reconnecting agent's `active`, then
// its `pending` (SPEC §3's own example), leaving it pending while wazuh-db has it active. So a finished
// exchange waits here while a request that began before it, on any connection, still waits for its
// reply (Pairer.oldestWaiting: requests that change or show a status; `other` ones never hold). Bounded:
// a request unanswered HOLD_NS after it began (its client gone, its reply lost) holds nothing any more,
// and the caller releases what waits at that time even when no record comes (WdbDecoder.release).

import type { WdbExchange } from '../types.js';
import { MinHeap } from '../util/min-heap.js';

/** How long an unanswered request holds the exchanges that began after it (ns; the shim's in-flight rule). */
export const HOLD_NS = 50_000_000n;

interface Held<R> {
  ex: WdbExchange<R>;
  /** Arrival order: exchanges of one time leave in it. */
  n: number;
}

export class ApplyOrder<R> {
  private readonly held = new MinHeap<Held<R>>((a, b) => a.ex.tsNs < b.ex.tsNs || (a.ex.tsNs === b.ex.tsNs && a.n < b.n));
  private n = 0;

  /** Exchanges waiting for an earlier request's reply. */
  get size(): number {
    return this.held.size;
  }

  /** The request time of the earliest exchange waiting (null: none). */
  get earliestNs(): bigint | null {
    return this.held.peek()?.ex.tsNs ?? null;
  }

  /**
   * `fresh` (just paired) and whatever waits, in request order, up to `watermark`: the time of the
   * earliest request still waiting for its reply (null: none). An exchange of that same time came from
   * the same write, before it in the write: it goes.
   */
  pass(fresh: WdbExchange<R>[], watermark: bigint | null): WdbExchange<R>[] {
    if (this.held.size === 0 && (watermark === null || fresh.every((ex) => ex.tsNs <= watermark))) return fresh; // the usual case
    for (const ex of fresh) this.held.push({ ex, n: this.n++ });
    const out: WdbExchange<R>[] = [];
    for (let top = this.held.peek(); top && (watermark === null || top.ex.tsNs <= watermark); top = this.held.peek()) {
      out.push(this.held.pop()!.ex);
    }
    return out;
  }
}
