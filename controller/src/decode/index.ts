// The decode stage in one object: capture records in, request/reply exchanges out.

import { connIdOf, setRequestRead, type CaptureRecord, type ConnId, type ParsedWdbReply, type WdbExchange, type WdbRequest } from '../types.js';
import { Pairer, type PairerOptions, type PairerStats } from './pairer.js';
import { StreamReassembler, type ReassemblerOptions, type ReassemblerStats } from './reassembler.js';
import { ApplyOrder, HOLD_NS } from './apply-order.js';
import { KeptParses } from './kept.js';

export { MAX_FRAME, StreamReassembler } from './reassembler.js';
export type { ReassemblerOptions, ReassemblerStats, ResetReason } from './reassembler.js';
export { Pairer } from './pairer.js';
export { HOLD_NS } from './apply-order.js';
export type { PairerOptions, PairerStats } from './pairer.js';
export { parseRequest } from './wdb-request.js';
export { parseReply } from './wdb-reply.js';
export { redactText } from './redact.js';
export { agentRow, agentRows, parseAgentRows, parseIdList, MAX_ROWS } from './wdb-rows.js';
export { isAgentId, isAgentIp, isAgentName, isCleanText, isStatusCode, isVersion, MAX_AGENT_ID } from './values.js';

export interface DecoderOptions {
  reassembler?: Omit<ReassemblerOptions, 'onReset'>;
  pairer?: Omit<PairerOptions, 'onKeyed'>;
  /** A tick for an agent key whose parse the decoder does not hold: the shim must send its next payload whole. */
  onTickMiss?: (key: number) => void;
  /** Agents whose last update-agent-data parse is kept for ticks, at most. Default 2,000,000. */
  maxKeyed?: number;
}

export interface DecoderStats {
  reassembler: ReassemblerStats;
  pairer: PairerStats;
  /** Unchanged keepalives the shim sent as ticks: applied from the kept parse, without bytes. */
  ticks: number;
  /** Ticks of an agent whose parse was not kept (evicted): that keepalive is lost, the next comes whole. */
  tickMisses: number;
  /** Parses kept now. */
  keyed: number;
  /** Exchanges waiting for an earlier request's reply now (apply-order.ts). */
  held: number;
}

/**
 * What `status` and /metrics show. `malformed` counts every frame dropped for its content: bytes that
 * were not at a frame boundary (the reassembler's malformed), requests whose values Wazuh could not
 * have written (invalid) and replies without a known status. The parts are kept beside it.
 */
export interface DecoderSummary extends ReassemblerStats {
  /** The reassembler's own count: bad lengths or frame starts. */
  malformedStreams: number;
  invalidRequests: number;
  malformedReplies: number;
  droppedFields: number;
  /** Answered exchanges (ticks included) placed in the apply order by their write: wazuh-db's read of them not known. */
  placedByWrite: number;
  /**
   * Requests given up unanswered: a later request of their connection answered first (their reply lost
   * with records, or requests written back to back before any reply — no Wazuh client does), a queue
   * over its bound, lost bytes. A status change among them is not applied (after lost records, the
   * resynchronisation that follows mends it; back-to-back requests are not mended).
   */
  abandoned: number;
}

const OK: ParsedWdbReply = Object.freeze({ status: 'ok', payload: '', malformed: false }) as ParsedWdbReply;

export class WdbDecoder {
  private readonly pairer: Pairer;
  private readonly reassembler: StreamReassembler;
  /** Agent key → what a tick needs of the last request the shim sent whole for it (bpf/shim/fastpath.h). */
  private readonly keyed: KeptParses;
  private readonly onTickMiss: DecoderOptions['onTickMiss'];
  /** Exchanges in the order wazuh-db applied their requests (apply-order.ts). */
  private readonly order = new ApplyOrder<WdbRequest>();
  /** The latest time a record showed (CLOCK_MONOTONIC ns): how long a request has waited for its reply. */
  private nowNs = 0n;
  private ticks = 0;
  private tickMisses = 0;
  private ticksPlacedByWrite = 0;

  constructor(opts: DecoderOptions = {}) {
    this.keyed = new KeptParses(Math.max(1, opts.maxKeyed ?? 2_000_000));
    this.onTickMiss = opts.onTickMiss;
    this.pairer = new Pairer({ ...opts.pairer, onKeyed: (k, request) => this.keep(k, request) });
    // Lost bytes in either direction can shift the request/reply order on that connection.
    this.reassembler = new StreamReassembler({ ...opts.reassembler, onReset: (connId) => this.pairer.reset(connId) });
  }

  /** The exchanges a record finished, and those it lets go, in the order wazuh-db applied their requests. */
  push(rec: CaptureRecord): WdbExchange<WdbRequest>[] {
    const at = rec.tick ? rec.tick.replyTsNs : rec.tsNs;
    if (at > this.nowNs) this.nowNs = at;
    let fresh: WdbExchange<WdbRequest>[];
    if (rec.tick) {
      fresh = this.tick(rec);
    } else {
      fresh = [];
      for (const frame of this.reassembler.push(rec)) {
        const ex = this.pairer.push(frame);
        if (ex) fresh.push(ex);
      }
    }
    return this.order.pass(fresh, this.pairer.oldestWaiting(this.nowNs, HOLD_NS));
  }

  /** Exchanges that waited for an earlier request's reply now (`holding`). */
  get holding(): number {
    return this.order.size;
  }

  /**
   * What waits no longer at `nowNs` (CLOCK_MONOTONIC ns, as the records' times): the caller's timer, when
   * no record comes to let the exchanges go (an earlier request's reply never written). null: all of
   * them (the capture is over: no reply will come).
   */
  release(nowNs: bigint | null): WdbExchange<WdbRequest>[] {
    if (nowNs === null) return this.order.pass([], null);
    if (nowNs > this.nowNs) this.nowNs = nowNs;
    return this.order.pass([], this.pairer.oldestWaiting(this.nowNs, HOLD_NS));
  }

  /** An unchanged keepalive: its request is the one parsed when it last came whole, and wazuh-db said ok. */
  private tick(rec: CaptureRecord): WdbExchange<WdbRequest>[] {
    const k = rec.keyed!;
    const request = this.keyed.request(k.key, k.hash);
    if (!request) {
      this.tickMisses++;
      this.onTickMiss?.(k.key);
      return [];
    }
    this.ticks++;
    const ex: WdbExchange<WdbRequest> = {
      connId: connIdOf(rec), request, reply: OK, tsNs: rec.tsNs, tgid: rec.tgid, comm: rec.comm,
      replyTsNs: rec.tick!.replyTsNs,
    };
    if (!setRequestRead(ex, rec.readNs)) this.ticksPlacedByWrite++;
    if (rec.exe !== undefined) ex.exe = rec.exe;
    return [ex];
  }

  private keep(k: { key: number; hash: number }, request: WdbRequest): void {
    this.keyed.keep(k.key, k.hash, request);
  }

  /**
   * A request captured in [fromNs, toNs) has not been answered yet (Pairer.unansweredBetween), or an
   * exchange of a request captured before toNs waits for an earlier one's reply: not applied yet.
   */
  unansweredBetween(fromNs: bigint, toNs: bigint): boolean {
    return this.order.waitsBefore(toNs) || this.pairer.unansweredBetween(fromNs, toNs);
  }

  /** The connection ended (or the capture layer knows it is gone). */
  close(connId: ConnId): void {
    this.reassembler.close(connId);
    this.pairer.close(connId);
  }

  stats(): DecoderStats {
    return {
      reassembler: this.reassembler.stats(), pairer: this.pairer.stats(),
      ticks: this.ticks, tickMisses: this.tickMisses, keyed: this.keyed.size, held: this.order.size,
    };
  }

  summary(): DecoderSummary {
    const r = this.reassembler.stats();
    const p = this.pairer.stats();
    return {
      ...r, malformed: r.malformed + p.invalidRequests + p.malformedReplies,
      malformedStreams: r.malformed, invalidRequests: p.invalidRequests, malformedReplies: p.malformedReplies, droppedFields: p.droppedFields,
      placedByWrite: p.placedByWrite + this.ticksPlacedByWrite, abandoned: p.abandoned,
    };
  }
}
export type { AgentDataUpdate, ParsedWdbReply, WdbRequest } from '../types.js';

