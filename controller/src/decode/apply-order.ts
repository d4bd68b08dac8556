// Exchanges leave the decoder in the order wazuh-db applied their requests (SPEC §3), not in the order
// of their replies.
//
// wazuh-db applies a request after its worker reads it and before it writes the reply. The capture
// sees the worker's read end (bpf/wdbtap.bpf.c, read_at: a reply's readNs), and orders by it: a worker
// woken late (preempted before its recvfrom, on a loaded host) reads and applies a request after a later
// one of another connection — ordered by their writes, a reconnecting agent came out pending>active
// while wazuh-db had applied active, then pending. Where the read is not known, the request's write
// time stands in (appliedFrom, types.ts); what follows holds for both.
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

import { appliedFrom, type WdbExchange } from '../types.js';
import { MinHeap } from '../util/min-heap.js';

/** How long an unanswered request holds the exchanges that began after it (ns; the shim's in-flight rule). */
export const HOLD_NS = 50_000_000n;

interface Held<R> {
  ex: WdbExchange<R>;
  /** appliedFrom(ex): the order's key. */
  at: bigint;
  /** Arrival order: exchanges of one time leave in it. */
  n: number;
}

export class ApplyOrder<R> {
  private readonly held = new MinHeap<Held<R>>((a, b) => a.at < b.at || (a.at === b.at && a.n < b.n));
  private n = 0;

  /** Exchanges waiting for an earlier request's reply. */
  get size(): number {
    return this.held.size;
  }

  /** Whether an exchange whose request was written before `ns` waits (a resynchronisation's barrier: rare, a walk). */
  waitsBefore(ns: bigint): boolean {
    return this.held.some((h) => h.ex.tsNs < ns);
  }

  /**
   * `fresh` (just paired) and whatever waits, in the order wazuh-db applied them, up to `watermark`: the
   * write time of the earliest request still waiting for its reply (null: none) — its read, unknown yet,
   * comes after it. An exchange of that same time came from the same write, before it in the write: it goes.
   */
  pass(fresh: WdbExchange<R>[], watermark: bigint | null): WdbExchange<R>[] {
    if (this.held.size === 0 && (watermark === null || fresh.every((ex) => appliedFrom(ex) <= watermark))) {
      return fresh.length < 2 || inOrder(fresh) ? fresh : this.drain(fresh, null); // the usual case
    }
    return this.drain(fresh, watermark);
  }

  private drain(fresh: WdbExchange<R>[], watermark: bigint | null): WdbExchange<R>[] {
    for (const ex of fresh) this.held.push({ ex, at: appliedFrom(ex), n: this.n++ });
    const out: WdbExchange<R>[] = [];
    for (let top = this.held.peek(); top && (watermark === null || top.at <= watermark); top = this.held.peek()) {
      out.push(this.held.pop()!.ex);
    }
    return out;
  }
}

/** Whether exchanges (of one record) are already in apply order. */
function inOrder(exs: readonly WdbExchange<unknown>[]): boolean {
  for (let i = 1; i < exs.length; i++) if (appliedFrom(exs[i]) < appliedFrom(exs[i - 1])) return false;
  return true;
}
