// capture → decode → state → publish, as plain function calls on plain data.
// No I/O here: the sink is whatever publishes (NATS, a test's array, the
// capture command's printer).
//
// The last guard of the capture path: the decoder and the state validate what
// they parse and never throw on input, but should one record still make
// something throw (a bug), that record is dropped and counted, the sink hears
// about it, and the records after it go on. Left to reach the capture loop, one
// such record would stop every capture (an unhandled rejection ends the process).
import type { WdbDecoder } from './decode/index.js';
import type { AgentStateTable } from './state/agents.js';
import { connIdOf, type AgentEvent, type CaptureRecord, type WdbExchange } from './types.js';
import type { WdbRequest } from './decode/wdb-request.js';

export interface PipelineSinks {
  event(ev: AgentEvent): void;
  /**
   * After each push(): the events of one batch of records are complete (the publisher spools them in
   * one write). `capturedMs`: the capture time of the batch's earliest record (CLOCK_MONOTONIC, ms;
   * NaN for an empty batch), which the publisher times each message from.
   */
  flush?(capturedMs: number): void;
  exchange?(ex: WdbExchange<WdbRequest>): void;
  /**
   * Something threw while one record was handled (`rec`), or while the batch was flushed (`rec` null):
   * that record (or that flush) was given up, the others went on. Log it, rate-limited.
   */
  error?(e: unknown, rec: CaptureRecord | null): void;
}

export class Pipeline {
  records = 0;
  exchanges = 0;
  events = 0;
  /** Records (or flushes) given up because something threw: each one is a bug to report. */
  errors = 0;

  constructor(
    private readonly decoder: WdbDecoder,
    private readonly state: AgentStateTable,
    private readonly sinks: PipelineSinks,
  ) {}

  push(records: CaptureRecord[]): void {
    let earliest = records.length ? records[0].tsNs : 0n;
    for (const rec of records) {
      this.records++;
      if (rec.tsNs < earliest) earliest = rec.tsNs;
      try {
        this.one(rec);
      } catch (e) {
        this.failed(e, rec);
      }
    }
    try {
      this.sinks.flush?.(records.length ? Number(earliest) / 1e6 : NaN);
    } catch (e) {
      this.failed(e, null);
    }
  }

  /**
   * The exchanges that waited for an earlier request's reply and wait no longer at `nowNs` (WdbDecoder.release):
   * applied and flushed as a batch of their own. The caller's timer, while `decoder.holding`; null: all of
   * them, at the capture's end.
   */
  release(nowNs: bigint | null): void {
    let exs: WdbExchange<WdbRequest>[];
    try {
      exs = this.decoder.release(nowNs);
    } catch (e) {
      this.failed(e, null);
      return;
    }
    if (!exs.length) return;
    for (const ex of exs) {
      try {
        this.apply(ex);
      } catch (e) {
        this.failed(e, null);
      }
    }
    try {
      this.sinks.flush?.(Number(exs[0].tsNs) / 1e6); // the earliest: they come in request order
    } catch (e) {
      this.failed(e, null);
    }
  }

  private one(rec: CaptureRecord): void {
    // Each exchange on its own: a record can let go exchanges that waited (apply-order.ts), and one that
    // throws must not take the others with it.
    for (const ex of this.decoder.push(rec)) {
      try {
        this.apply(ex);
      } catch (e) {
        this.failed(e, rec);
      }
    }
  }

  private apply(ex: WdbExchange<WdbRequest>): void {
    this.exchanges++;
    this.sinks.exchange?.(ex);
    for (const ev of this.state.apply(ex)) {
      this.events++;
      this.sinks.event(ev);
    }
  }

  private failed(e: unknown, rec: CaptureRecord | null): void {
    this.errors++;
    try {
      this.sinks.error?.(e, rec);
    } catch {
      // A failing reporter must not undo the guard.
    }
  }
}

/**
 * Log fields for an error of the guard: where it happened, never the payload (it may hold a key). An
 * error's own text can quote input (V8's JSON errors quote a few characters of it): long hex runs, the
 * shape of a key, are masked.
 */
export function errorFields(e: unknown, rec: CaptureRecord | null): Record<string, unknown> {
  const err = (e instanceof Error ? (e.stack ?? e.message) : String(e)).replace(/[0-9a-fA-F]{16,}/g, '[redacted]');
  const at = rec ? { conn: connIdOf(rec), direction: rec.direction, comm: rec.comm, pid: rec.tgid, bytes: rec.data.length } : { at: 'flush' };
  return { err: err.slice(0, 2000), ...at };
}
