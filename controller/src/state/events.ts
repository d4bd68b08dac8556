// The two agent events of SPEC §4, built from an agent's record and the exchange that caused them.
// Pure: the same inputs always give the same event, and the same event_id (so a replay after a
// reconnect or a restart is de-duplicated by JetStream through Nats-Msg-Id).

import type { AgentRecord, ConnectionStatus, KeepaliveEvent, StatusChangeEvent, StatusReason } from '../types.js';
import { agentIdText, eventId, eventTime, keepaliveEventId } from './format.js';

/** What one exchange gives every event it produces. */
export interface EventCause {
  /** Capture time of the request (CLOCK_MONOTONIC ns): part of event_id. */
  tsNs: bigint;
  /** The same instant in wall-clock milliseconds: `timestamp` and `time`. */
  ms: number;
  /** The daemon that caused it (`remoted`, `monitord`, `authd`, …). */
  source: string;
  /** `sync_status` of the request, when it had one. */
  sync: string | null;
}

export interface StatusChange {
  previous: ConnectionStatus;
  current: ConnectionStatus;
  code: number;
  reason: StatusReason;
  /**
   * Set when the status string did not change but the status_code did (an agent refused for its
   * version): it keeps that event's id apart from a status change at the same instant.
   */
  codeOnly?: boolean;
}

export function statusChangeEvent(
  managerNode: string,
  a: Readonly<AgentRecord>,
  ch: StatusChange,
  cause: EventCause,
): StatusChangeEvent {
  const agentId = agentIdText(a.id);
  const idParts: (string | number | bigint)[] = [managerNode, 'status_change', agentId, cause.tsNs, ch.current];
  if (ch.codeOnly) idParts.push(`code:${ch.code}`);
  return {
    event_id: eventId(idParts),
    event_type: 'status_change',
    agent_id: agentId,
    agent_name: a.name,
    previous_status: ch.previous,
    current_status: ch.current,
    status_code: ch.code,
    reason: ch.reason,
    ip_address: a.ip,
    ...eventTime(cause.ms),
    manager_node: managerNode,
    source: cause.source,
    sync_status: cause.sync,
  };
}

export function keepaliveEvent(
  managerNode: string,
  a: Readonly<AgentRecord>,
  groupConfigStatus: string | null,
  cause: EventCause,
): KeepaliveEvent {
  const agentId = agentIdText(a.id);
  const t = eventTime(cause.ms);
  return {
    // Structured, not hashed (one a keepalive): unique and stable all the same (format.ts keepaliveEventId).
    event_id: keepaliveEventId(managerNode, a.id, cause.tsNs, a.status),
    event_type: 'keepalive',
    agent_id: agentId,
    agent_name: a.name,
    ip_address: a.ip,
    status: a.status,
    version: a.version,
    os: a.os, // shared: the state replaces an agent's os, never changes it in place
    group_config_status: groupConfigStatus ?? a.group_config_status,
    sync_status: cause.sync,
    timestamp: t.timestamp, // one fixed shape, in JSON's key order (no spread)
    time: t.time,
    manager_node: managerNode,
    source: cause.source,
  };
}
