// Status changes the spool refused, owed to the consumers.
//
// A full spool (or a full disk under it) sheds keepalives first, then refuses what it cannot hold —
// status changes included (SPEC §5: counted, reported). Shed and forgotten, an agent's last change
// never reached NATS: the KV bucket and every consumer kept the status before it until the agent
// changed again, which for an agent that went away is never (found by test/chaos-e2e.test.ts: the
// KV left at `disconnected` for agents wazuh-db had active). So each agent's refused changes are
// folded into one event owed to the consumers — from the status they last received to the latest
// one, with the latest change's reason, source and time — and offered again, before the agent's
// next events and every second, until the spool takes it. One event per agent at most: bounded by
// the agents, however long the disk stays full.
import type { PublishedStatus } from '../state/sources/status-journal.js';
import type { StatusChangeEvent } from '../types.js';

export class OwedStatuses {
  private readonly owed = new Map<number, StatusChangeEvent>();

  get size(): number {
    return this.owed.size;
  }

  /** Whether a change of the agent is owed. */
  has(agentId: number): boolean {
    return this.owed.has(agentId);
  }

  /**
   * The spool refused `ev`. `published`: the status the consumers last received of the agent
   * (undefined when this tap never published one: the event's own previous_status stands).
   */
  refused(ev: StatusChangeEvent, published: PublishedStatus | undefined): void {
    const id = Number(ev.agent_id);
    const previous = published?.status ?? this.owed.get(id)?.previous_status ?? ev.previous_status;
    // Back where the consumers left it (active → disconnected → active, both refused): nothing to tell.
    if (published && published.status === ev.current_status && published.status_code === ev.status_code) {
      this.owed.delete(id);
      return;
    }
    this.owed.set(id, previous === ev.previous_status ? ev : { ...ev, previous_status: previous });
  }

  /** The spool took a status change of the agent: it carries the latest status, nothing is owed. */
  accepted(agentId: number): void {
    this.owed.delete(agentId);
  }

  /** Every owed event, removed: offered to the spool again, first (refused again, they come back). */
  take(): StatusChangeEvent[] {
    const out = [...this.owed.values()];
    this.owed.clear();
    return out;
  }
}
