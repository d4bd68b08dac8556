// One request, one reply, in order, per connection — but wazuh-db answers from a pool of threads, so
// the connection is the only key that pairs them (never the thread).
//
// Records reach user space in emission order, which is not syscall order: each CPU has its own ring
// and a record is emitted at syscall exit. A reply can therefore arrive before its request. Record
// timestamps are taken at syscall entry, and a request's entry strictly precedes its reply's, so a
// reply older than every outstanding request is held briefly instead of dropped; the request that
// follows with an older timestamp takes it. Without this, one reordering would shift every later
// pairing on the connection by one.
//
// And a client sends its next request only once it has read the reply to the last (WAZUH-PROTOCOL.md
// §1: one request, one reply, per round trip): so a reply that entered after two outstanding requests
// of two writes did cannot answer the first — that one's reply came before the second write and was
// lost (a perf-buffer loss the stream cannot see: each record is a whole write). The first is
// abandoned; kept, it would take this reply and every later pairing on the connection would be off
// by one. Frames of one write share its time: several requests in one write (no Wazuh daemon does
// it) still pair in order.

import { setRequestRead, type ConnId, type ParsedWdbReply, type WdbExchange, type WdbFrame, type WdbRequest } from '../types.js';
import { parseReply } from './wdb-reply.js';
import { parseRequest } from './wdb-request.js';
import { MinHeap } from '../util/min-heap.js';

export interface PairerOptions {
  /** Outstanding requests kept per connection; beyond it the oldest is dropped (its reply was lost). */
  maxQueue?: number;
  /** Connections tracked; the least recently used is forgotten beyond this. */
  maxConnections?: number;
  /**
   * Payload bytes of the requests waiting for replies, all connections together (default 16 MiB):
   * beyond it the least recently used connection's oldest is dropped. A request whose reply never
   * comes (its client gone, wazuh-db killed) waits until its connection is evicted, and a parsed
   * request weighs tens of times its bytes (a 64 KiB sync-agent-info-set, thousands of rows).
   */
  maxQueuedBytes?: number;
  /** Replies held per connection while waiting for a request that was emitted later. */
  maxEarly?: number;
  /** A request the shim keyed (WdbFrame.keyed) was parsed: the decoder keeps it for its ticks. */
  onKeyed?: (keyed: { key: number; hash: number }, request: WdbRequest) => void;
}

export interface PairerStats {
  requests: number;
  replies: number;
  paired: number;
  /** Replies no request claimed (lost request, tap started mid-round-trip): dropped. */
  unpaired: number;
  /** Replies that arrived before their request and were paired once it came. */
  reordered: number;
  /** Replies that did not start with a known status. */
  malformedReplies: number;
  /** `global` requests whose arguments were not Wazuh's (parseRequest's `invalid`): never applied. */
  invalidRequests: number;
  /** Descriptive fields left out of requests that were otherwise applied (see DroppedFields). */
  droppedFields: number;
  /** Requests dropped unanswered: a later request of the connection answered first (their reply lost), queue overflow, or a reset after lost bytes. */
  abandoned: number;
  /** Connections forgotten to respect maxConnections. */
  evicted: number;
  /**
   * Exchanges whose request wazuh-db's read was not known for (its first reply after the tap attached, a
   * read too long before the reply, a worker that read otherwise): placed in the apply order by their write.
   */
  placedByWrite: number;
  connections: number;
}

interface Pending {
  request: WdbRequest;
  bytes: number;
  tsNs: bigint;
  tgid: number;
  comm: string;
  exe: string | undefined;
  /** Out of its connection's queue (paired, abandoned, reset): it holds nothing any more (oldestWaiting). */
  gone: boolean;
}

interface Early {
  reply: ParsedWdbReply;
  tsNs: bigint;
  readNs: bigint | undefined;
}

interface Conn {
  queue: Pending[];
  early: Early[];
}

export class Pairer {
  private readonly conns = new Map<ConnId, Conn>();
  private readonly maxQueue: number;
  private readonly maxQueuedBytes: number;
  private queuedBytes = 0;
  private readonly maxConns: number;
  private readonly maxEarly: number;
  private readonly onKeyed: PairerOptions['onKeyed'];
  /** The requests that change or show a status, waiting for their replies, earliest first (apply-order.ts); gone ones are dropped when they come on top. */
  private readonly waiting = new MinHeap<Pending>((a, b) => a.tsNs < b.tsNs);
  private readonly counters = {
    requests: 0, replies: 0, paired: 0, unpaired: 0, reordered: 0, malformedReplies: 0, invalidRequests: 0, droppedFields: 0,
    abandoned: 0, evicted: 0, placedByWrite: 0,
  };

  constructor(opts: PairerOptions = {}) {
    this.maxQueue = Math.max(1, opts.maxQueue ?? 64);
    this.maxConns = Math.max(1, opts.maxConnections ?? 65536);
    this.maxQueuedBytes = Math.max(1, opts.maxQueuedBytes ?? 16 << 20);
    this.maxEarly = Math.max(1, opts.maxEarly ?? 4);
    this.onKeyed = opts.onKeyed;
  }

  push(frame: WdbFrame): WdbExchange<WdbRequest> | null {
    return frame.direction === 'request' ? this.request(frame) : this.reply(frame);
  }

  /** Bytes were lost on this connection: no outstanding request can be trusted to get its own reply. */
  reset(connId: ConnId): void {
    const c = this.conns.get(connId);
    if (c) {
      this.counters.abandoned += c.queue.length;
      this.counters.unpaired += c.early.length;
      for (const p of c.queue) {
        this.queuedBytes -= p.bytes;
        p.gone = true;
      }
      c.queue.length = 0;
      c.early.length = 0;
    }
  }

  close(connId: ConnId): void {
    this.reset(connId);
    this.conns.delete(connId);
  }

  /**
   * A request that entered in [fromNs, toNs) waits for its reply. A rare question (a
   * resynchronisation's barrier), so a walk over the connections.
   */
  unansweredBetween(fromNs: bigint, toNs: bigint): boolean {
    for (const c of this.conns.values()) {
      for (const p of c.queue) if (p.tsNs >= fromNs && p.tsNs < toNs) return true;
    }
    return false;
  }

  /**
   * The time of the earliest request that changes or shows a status and still waits for its reply,
   * having begun at most `holdNs` before `nowNs` (null: none): the exchanges that began after it wait
   * for it (apply-order.ts). The heap is cleaned here: what is gone, or has waited longer, is dropped.
   */
  oldestWaiting(nowNs: bigint, holdNs: bigint): bigint | null {
    for (let top = this.waiting.peek(); top; top = this.waiting.peek()) {
      if (!top.gone && top.tsNs + holdNs >= nowNs) return top.tsNs;
      this.waiting.pop();
    }
    return null;
  }

  stats(): PairerStats {
    return { ...this.counters, connections: this.conns.size };
  }

  private request(frame: WdbFrame): WdbExchange<WdbRequest> | null {
    this.counters.requests++;
    const c = this.conn(frame.connId);
    const request = parseRequest(frame.payload);
    if (frame.keyed) this.onKeyed?.(frame.keyed, request);
    // Counted here, where every request passes, paired or not.
    if (request.cmd === 'invalid') this.counters.invalidRequests++;
    else if ('dropped' in request && request.dropped) this.counters.droppedFields += request.dropped.length;
    const p: Pending = { request, bytes: frame.payload.length, tsNs: frame.tsNs, tgid: frame.tgid, comm: frame.comm, exe: frame.exe, gone: false };
    // Held replies older than this request answered requests the tap never saw.
    while (c.early.length > 0 && c.early[0].tsNs < p.tsNs) {
      c.early.shift();
      this.counters.unpaired++;
    }
    if (c.early.length > 0 && c.queue.length === 0) {
      const e = c.early.shift()!;
      this.counters.paired++;
      this.counters.reordered++;
      return this.exchange(frame.connId, p, e.reply, e.tsNs, e.readNs);
    }
    c.queue.push(p);
    this.queuedBytes += p.bytes;
    if (holdsLater(request)) this.waiting.push(p);
    if (c.queue.length > this.maxQueue) this.abandon(c);
    // Least recently used first (Map order): p's own connection, the most recent, comes last.
    if (this.queuedBytes > this.maxQueuedBytes) {
      for (const o of this.conns.values()) {
        while (o.queue.length > 0 && this.queuedBytes > this.maxQueuedBytes) this.abandon(o);
        if (this.queuedBytes <= this.maxQueuedBytes) break;
      }
    }
    return null;
  }

  private reply(frame: WdbFrame): WdbExchange<WdbRequest> | null {
    this.counters.replies++;
    const reply = parseReply(frame.payload);
    if (reply.malformed) this.counters.malformedReplies++;
    const c = this.conn(frame.connId);
    // Requests whose own replies were lost (see the top of this file).
    while (c.queue.length > 1 && c.queue[1].tsNs > c.queue[0].tsNs && c.queue[1].tsNs <= frame.tsNs) this.abandon(c);
    const head = c.queue[0];
    if (head && head.tsNs <= frame.tsNs) {
      c.queue.shift();
      head.gone = true;
      this.queuedBytes -= head.bytes;
      this.counters.paired++;
      return this.exchange(frame.connId, head, reply, frame.tsNs, frame.readNs);
    }
    // Its request may still be on its way (see the top of this file).
    c.early.push({ reply, tsNs: frame.tsNs, readNs: frame.readNs });
    if (c.early.length > this.maxEarly) {
      c.early.shift();
      this.counters.unpaired++;
    }
    return null;
  }

  /** The connection's oldest request will never be paired: dropped, counted. */
  private abandon(c: Conn): void {
    const p = c.queue.shift();
    if (!p) return;
    p.gone = true;
    this.queuedBytes -= p.bytes;
    this.counters.abandoned++;
  }

  private exchange(connId: ConnId, p: Pending, reply: ParsedWdbReply, replyTsNs: bigint, readNs: bigint | undefined): WdbExchange<WdbRequest> {
    const ex: WdbExchange<WdbRequest> = { connId, request: p.request, reply, tsNs: p.tsNs, tgid: p.tgid, comm: p.comm, replyTsNs };
    if (p.exe !== undefined) ex.exe = p.exe;
    if (!setRequestRead(ex, readNs)) this.counters.placedByWrite++;
    return ex;
  }

  /** The connection's entry, made most recently used (Map order is least recently used first). */
  private conn(connId: ConnId): Conn {
    let c = this.conns.get(connId);
    if (c) {
      this.conns.delete(connId);
    } else {
      c = { queue: [], early: [] };
      while (this.conns.size >= this.maxConns) this.evictOldest();
    }
    this.conns.set(connId, c);
    return c;
  }

  private evictOldest(): void {
    const oldest = this.conns.keys().next().value as ConnId | undefined;
    if (oldest === undefined) return;
    this.counters.evicted++;
    this.close(oldest);
  }
}

/** A request whose exchange the state applies (changes or shows a status): later exchanges wait for its reply. */
function holdsLater(request: WdbRequest): boolean {
  return request.cmd !== 'other' && request.cmd !== 'non-global' && request.cmd !== 'invalid';
}
