// The decode stage in one object: capture records in, request/reply exchanges out.

import type { CaptureRecord, ConnId, WdbExchange, WdbRequest } from '../types.js';
import { Pairer, type PairerOptions, type PairerStats } from './pairer.js';
import { StreamReassembler, type ReassemblerOptions, type ReassemblerStats } from './reassembler.js';

export { MAX_FRAME, StreamReassembler } from './reassembler.js';
export type { ReassemblerOptions, ReassemblerStats, ResetReason } from './reassembler.js';
export { Pairer } from './pairer.js';
export type { PairerOptions, PairerStats } from './pairer.js';
export { parseRequest } from './wdb-request.js';
export { parseReply } from './wdb-reply.js';
export { redactText } from './redact.js';
export { agentRow, agentRows, parseAgentRows, parseIdList, MAX_ROWS } from './wdb-rows.js';
export { isAgentId, isAgentIp, isAgentName, isCleanText, isStatusCode, isVersion, MAX_AGENT_ID } from './values.js';

export interface DecoderOptions {
  reassembler?: Omit<ReassemblerOptions, 'onReset'>;
  pairer?: PairerOptions;
}

export interface DecoderStats {
  reassembler: ReassemblerStats;
  pairer: PairerStats;
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
}

export class WdbDecoder {
  private readonly pairer: Pairer;
  private readonly reassembler: StreamReassembler;

  constructor(opts: DecoderOptions = {}) {
    this.pairer = new Pairer(opts.pairer);
    // Lost bytes in either direction can shift the request/reply order on that connection.
    this.reassembler = new StreamReassembler({ ...opts.reassembler, onReset: (connId) => this.pairer.reset(connId) });
  }

  push(rec: CaptureRecord): WdbExchange<WdbRequest>[] {
    const out: WdbExchange<WdbRequest>[] = [];
    for (const frame of this.reassembler.push(rec)) {
      const ex = this.pairer.push(frame);
      if (ex) out.push(ex);
    }
    return out;
  }

  /** The connection ended (or the capture layer knows it is gone). */
  close(connId: ConnId): void {
    this.reassembler.close(connId);
    this.pairer.close(connId);
  }

  stats(): DecoderStats {
    return { reassembler: this.reassembler.stats(), pairer: this.pairer.stats() };
  }

  summary(): DecoderSummary {
    const r = this.reassembler.stats();
    const p = this.pairer.stats();
    return {
      ...r, malformed: r.malformed + p.invalidRequests + p.malformedReplies,
      malformedStreams: r.malformed, invalidRequests: p.invalidRequests, malformedReplies: p.malformedReplies, droppedFields: p.droppedFields,
    };
  }
}
export type { AgentDataUpdate, ParsedWdbReply, WdbRequest } from '../types.js';
