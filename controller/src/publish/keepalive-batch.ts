// Optional batching of keepalive events (`keepalive_batch`): for very large fleets one
// message carries many keepalives, bounded by a count, a size and a time. Pure logic: the
// publisher owns the timer and the spool.
//
// Order: a batch holds an agent's keepalive for up to `intervalMs`; a status change of an
// agent that is in the open batch closes the batch first (`holds`), so a consumer never
// sees an agent's status change before a keepalive recorded earlier.
//
// Durability: keepalives wait in memory until their batch closes, then the batch is spooled
// like any message. A tap killed with SIGKILL loses at most the open batch — keepalives
// only, which every agent repeats every few seconds; status changes and alerts never wait
// here.
import type { KeepaliveEvent } from '../types.js';
import { keepaliveBatchId } from '../state/format.js';
import { KEEPALIVE_PIECES, keepaliveJsonAt } from './event-json.js';

export interface KeepaliveBatchOptions {
  /** Keepalives per message at most. */
  maxEvents: number;
  /** JSON bytes of the events of one message at most (NATS' default max_payload is 1 MiB). */
  maxBytes: number;
  manager_node: string;
}

/** The message body: the events as they would have been published one by one. */
export interface KeepaliveBatchEvent {
  event_id: string;
  event_type: 'keepalive_batch';
  manager_node: string;
  count: number;
  timestamp: number;
  time: string;
  events: KeepaliveEvent[];
}

export const DEFAULT_BATCH_BYTES = 512 * 1024;
/** keepalive_batch's largest (config: ossec-conf.ts): a batch's Wazuh-Event-Count is at most that. */
export const MAX_BATCH_EVENTS = 100_000;

/** The pieces array's size to begin with; it grows to the batches' size and stays (a join walks every slot). */
const PARTS_KEPT = 64;

/** What add() returns when no batch closed (most calls): no array made a keepalive. */
const NONE_CLOSED: readonly ClosedBatch[] = Object.freeze([]);

/** A closed batch: its body, its size, a stable event id, and the capture time of its earliest keepalive. */
export interface ClosedBatch {
  body: string;
  count: number;
  eventId: string;
  /** CLOCK_MONOTONIC ms of the earliest record behind its keepalives (NaN: not known), to time its delay. */
  capturedMs: number;
}

export class KeepaliveBatcher {
  private events: KeepaliveEvent[] = [];
  /**
   * The body's pieces: [0] is the envelope's head, set when the batch closes; then the events' JSON,
   * up to `n`. One long-lived array written by index, its slots blanked after each join (nothing kept
   * alive): made anew for each batch and pushed into, its backing store was allocated four or five
   * times over (~550 bytes of garbage a keepalive).
   */
  private parts: string[] = new Array<string>(PARTS_KEPT).fill('');
  private n = 1;
  private bytes = 0;
  /** The open batch's capturedMs: its first keepalive's (records come in capture order). */
  private capturedMs = Number.NaN;
  /**
   * Made anew for each batch, never clear()ed: V8 allocates a Set's new table in the generation of
   * the old one, so the long-lived Set of a long-lived batcher had every batch's tables (clear, then
   * the growth to a batch's size) allocated straight in the old generation — garbage there at once,
   * ~160 bytes a batch (docs/performance.md, item 13).
   */
  private agents = new Set<string>();
  private readonly o: KeepaliveBatchOptions;
  /** manager_node as JSON, once. */
  private readonly nodeJson: string;

  constructor(o: KeepaliveBatchOptions) {
    if (!(o.maxEvents >= 1) || !(o.maxBytes >= 1024)) throw new Error('keepalive batch: maxEvents >= 1 and maxBytes >= 1024');
    this.o = { ...o };
    this.nodeJson = JSON.stringify(o.manager_node);
  }

  get size(): number {
    return this.events.length;
  }

  /** The byte bound of the next batches (at least 1,024); the open batch closes at the next add that would cross it. */
  set maxBytes(n: number) {
    this.o.maxBytes = Math.max(1024, Math.floor(n));
  }

  get maxBytes(): number {
    return this.o.maxBytes;
  }

  /** The open batch holds a keepalive of this agent. */
  holds(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  /**
   * Add one keepalive, captured at `capturedMs` (the earliest record of the records it came with).
   * Returns the batches that closed: the open one when this event would overflow its size, and the
   * one this event completed.
   */
  add(ev: KeepaliveEvent, capturedMs = Number.NaN): readonly ClosedBatch[] {
    let out: ClosedBatch[] | null = null;
    // The event's pieces go straight into the body, after a comma if it is not the first; taken back
    // out (rare: a batch full) if they do not fit. Through a scratch array emptied at every add they
    // cost its backing store twice over a keepalive (~500 bytes of garbage).
    const parts = this.parts;
    const mark = this.n;
    if (this.events.length) parts[this.n++] = ',';
    const len = keepaliveJsonAt(ev, parts, this.n);
    this.n += KEEPALIVE_PIECES;
    if (this.events.length && this.bytes + len + 1 > this.o.maxBytes) {
      const mine = parts.slice(this.n - KEEPALIVE_PIECES, this.n);
      parts.fill('', mark, this.n);
      this.n = mark;
      out = [this.take()!];
      for (const p of mine) this.parts[this.n++] = p;
    }
    if (this.events.length === 0) this.capturedMs = capturedMs; // this one opens a batch
    this.events.push(ev);
    this.bytes += len + 1;
    this.agents.add(ev.agent_id);
    if (this.events.length >= this.o.maxEvents || this.bytes >= this.o.maxBytes) (out ??= []).push(this.take()!);
    return out ?? NONE_CLOSED;
  }

  /** Close the open batch (null when empty). */
  take(): ClosedBatch | null {
    const n = this.events.length;
    if (!n) return null;
    const first = this.events[0];
    const last = this.events[n - 1];
    // Derived from its first member: the same batch always has the same id.
    const id = keepaliveBatchId(first.event_id);
    // The events are serialised as they are added (as pieces); the envelope is put around them, one join.
    // Its fields in KeepaliveBatchEvent's order; its time is its last keepalive's (what eventTime made).
    const parts = this.parts;
    parts[0] = `{"event_id":${JSON.stringify(id)},"event_type":"keepalive_batch","manager_node":${this.nodeJson},"count":${n},`
      + `"timestamp":${JSON.stringify(last.timestamp)},"time":${JSON.stringify(last.time)},"events":[`;
    parts[this.n++] = ']}';
    const body = parts.join(''); // the slots after n are blank
    parts.fill('', 0, this.n);
    // A batch far larger than usual (a burst) grew it: blank slots are joined too, so it goes.
    if (parts.length > 4 * PARTS_KEPT && this.n * 4 < parts.length) this.parts = new Array<string>(PARTS_KEPT).fill('');
    this.n = 1;
    this.events = [];
    this.bytes = 0;
    this.agents = new Set();
    const capturedMs = this.capturedMs;
    this.capturedMs = Number.NaN;
    return { body, count: n, eventId: id, capturedMs };
  }
}
