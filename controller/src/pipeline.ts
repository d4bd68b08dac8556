// capture → decode → state → publish, as plain function calls on plain data.
// No I/O here: the sink is whatever publishes (NATS, a test's array, the
// capture command's printer).
import type { WdbDecoder } from './decode/index.js';
import type { AgentStateTable } from './state/agents.js';
import type { AgentEvent, CaptureRecord, WdbExchange } from './types.js';
import type { WdbRequest } from './decode/wdb-request.js';

export interface PipelineSinks {
  event(ev: AgentEvent): void;
  /** After each push(): the events of one batch of records are complete (the publisher spools them in one write). */
  flush?(): void;
  exchange?(ex: WdbExchange<WdbRequest>): void;
}

export class Pipeline {
  records = 0;
  exchanges = 0;
  events = 0;

  constructor(
    private readonly decoder: WdbDecoder,
    private readonly state: AgentStateTable,
    private readonly sinks: PipelineSinks,
  ) {}

  push(records: CaptureRecord[]): void {
    for (const rec of records) {
      this.records++;
      for (const ex of this.decoder.push(rec)) {
        this.exchanges++;
        this.sinks.exchange?.(ex);
        for (const ev of this.state.apply(ex)) {
          this.events++;
          this.sinks.event(ev);
        }
      }
    }
    this.sinks.flush?.();
  }
}
