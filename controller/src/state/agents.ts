// Mirrors wazuh-db's agent table from the exchanges the tap sees, and turns each accepted change into
// the events of SPEC §4. The updates mirror the SQL wazuh-db runs for each command (wdb_global.c), so
// the table holds what wazuh-db holds, not what the requester hoped for.

import type {
  AgentEvent,
  AgentOs,
  AgentRecord,
  ConnectionStatus,
  KeepaliveEvent,
  StatusChangeEvent,
  StatusReason,
  WdbExchange,
  WdbRequest,
} from '../types.js';
import { agentIdText, eventId, eventTime, sourceOf } from './format.js';

export interface AgentStateOptions {
  /** This manager's cluster node name (`manager_node` in every event). */
  managerNode: string;
  /** Converts a capture timestamp (CLOCK_MONOTONIC ns) to wall-clock milliseconds. */
  wallClockMs: (tsNs: bigint) => number;
}

export interface AgentStateStats {
  /** State-changing requests wazuh-db accepted and the table applied. */
  applied: number;
  /** State-changing requests wazuh-db answered `err`: nothing changed. */
  rejected: number;
  /** State-changing requests answered `ign`/`unk` or with an unreadable reply: nothing changed. */
  unanswered: number;
  /** `global` requests whose argument could not be used. */
  invalid: number;
  /** Requests about agent 0, the manager itself: never published. */
  manager: number;
  statusEvents: number;
  keepaliveEvents: number;
  agents: number;
}

const ALL_STATUSES: readonly ConnectionStatus[] = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'];

/** The context one exchange gives every event it produces. */
interface Cause {
  tsNs: bigint;
  ms: number;
  source: string;
  sync: string | null;
}

type StateRequest = Extract<
  WdbRequest,
  { cmd: 'update-keepalive' | 'update-agent-data' | 'update-connection-status' | 'update-status-code' }
>;

export class AgentStateTable {
  private readonly agents = new Map<number, AgentRecord>();
  private readonly byStatus = new Map<ConnectionStatus, number>(ALL_STATUSES.map((s) => [s, 0]));
  private readonly managerNode: string;
  private readonly wallClockMs: (tsNs: bigint) => number;
  private readonly counters = { applied: 0, rejected: 0, unanswered: 0, invalid: 0, manager: 0, statusEvents: 0, keepaliveEvents: 0 };

  constructor(opts: AgentStateOptions) {
    this.managerNode = opts.managerNode;
    this.wallClockMs = opts.wallClockMs;
  }

  get size(): number {
    return this.agents.size;
  }

  get(id: number): Readonly<AgentRecord> | undefined {
    return this.agents.get(id);
  }

  countsByStatus(): Record<ConnectionStatus, number> {
    return Object.fromEntries(this.byStatus) as Record<ConnectionStatus, number>;
  }

  stats(): AgentStateStats {
    return { ...this.counters, agents: this.agents.size };
  }

  /**
   * Seeds what was learned outside the socket (client.keys, global.db, a wazuh-db query), so the first
   * transition reports the right previous status. Only AgentRecord's own fields are copied: a caller
   * handing in a raw database row cannot smuggle `internal_key` into the table.
   */
  setKnown(agent: Partial<AgentRecord> & { id: number }): void {
    if (!Number.isSafeInteger(agent.id) || agent.id < 0) return;
    const a = this.record(agent.id);
    if (agent.name !== undefined) a.name = agent.name;
    if (agent.ip !== undefined) a.ip = agent.ip;
    if (agent.status !== undefined && ALL_STATUSES.includes(agent.status)) this.setStatus(a, agent.status);
    if (agent.status_code !== undefined) a.status_code = agent.status_code;
    if (agent.version !== undefined) a.version = agent.version;
    if (agent.os !== undefined) a.os = agent.os && pickOs(agent.os);
    if (agent.last_keepalive !== undefined) a.last_keepalive = agent.last_keepalive;
    if (agent.node !== undefined) a.node = agent.node;
    if (agent.groups !== undefined) a.groups = [...agent.groups];
    if (agent.sync_status !== undefined) a.sync_status = agent.sync_status;
    if (agent.group_config_status !== undefined) a.group_config_status = agent.group_config_status;
  }

  apply(ex: WdbExchange<WdbRequest>): AgentEvent[] {
    const req = ex.request;
    if (req.cmd === 'invalid') {
      this.counters.invalid++;
      return [];
    }
    if (!isStateRequest(req)) return [];
    if (ex.reply.status === 'err') {
      this.counters.rejected++;
      return [];
    }
    if (ex.reply.status !== 'ok' && ex.reply.status !== 'due') {
      this.counters.unanswered++;
      return [];
    }
    const id = req.cmd === 'update-agent-data' ? req.data.id : req.id;
    if (id === 0) {
      this.counters.manager++;
      return [];
    }
    this.counters.applied++;
    const ms = this.wallClockMs(ex.tsNs);
    const cause: Cause = { tsNs: ex.tsNs, ms, source: sourceOf(ex.comm), sync: syncOf(req) };
    const a = this.record(id);
    const events: AgentEvent[] = [];
    const push = (e: AgentEvent | null): void => {
      if (!e) return;
      if (e.event_type === 'status_change') this.counters.statusEvents++;
      else this.counters.keepaliveEvents++;
      events.push(e);
    };

    switch (req.cmd) {
      case 'update-keepalive': {
        // wazuh-db: last_keepalive = now, connection_status, sync_status, status_code = 0.
        const wasActive = a.status === 'active';
        a.last_keepalive = Math.floor(ms / 1000);
        a.sync_status = req.sync_status ?? a.sync_status;
        const changed = this.transition(a, req.connection_status, 0, reasonFor(req.connection_status, 0), cause);
        push(changed);
        // A lighter keepalive for an agent that was already active is just a keepalive.
        if (wasActive && req.connection_status === 'active') push(this.keepalive(a, null, cause));
        break;
      }
      case 'update-agent-data': {
        // wazuh-db: version, os, node, ip, last_keepalive, connection_status, sync_status; status_code kept.
        const d = req.data;
        a.last_keepalive = Math.floor(ms / 1000);
        if (d.version !== undefined) a.version = d.version;
        if (d.agent_ip !== undefined) a.ip = d.agent_ip;
        if (d.node_name !== undefined) a.node = d.node_name;
        if (d.sync_status !== undefined) a.sync_status = d.sync_status;
        if (d.group_config_status !== undefined) a.group_config_status = d.group_config_status;
        const os = pickOs({ name: d.os_name, version: d.os_version, platform: d.os_platform, arch: d.os_arch });
        if (os) a.os = os;
        if (d.connection_status) {
          push(this.transition(a, d.connection_status, a.status_code, reasonFor(d.connection_status, a.status_code), cause));
        }
        push(this.keepalive(a, d.group_config_status ?? null, cause));
        break;
      }
      case 'update-connection-status': {
        // wazuh-db: connection_status, sync_status, disconnection_time, status_code.
        const code = req.status_code ?? a.status_code;
        a.sync_status = req.sync_status ?? a.sync_status;
        push(this.transition(a, req.connection_status, code, reasonFor(req.connection_status, code), cause));
        break;
      }
      case 'update-status-code': {
        // wazuh-db: status_code, version, sync_status only. A 5.x variant may also name the status.
        if (req.version !== null) a.version = req.version;
        a.sync_status = req.sync_status ?? a.sync_status;
        const to = req.connection_status ?? a.status;
        push(this.transition(a, to, req.status_code, codeReason(req.status_code) ?? reasonFor(to, req.status_code), cause));
        break;
      }
    }
    return events;
  }

  /** Applies a status and returns its event, or null when the status did not change. */
  private transition(
    a: AgentRecord,
    to: ConnectionStatus,
    code: number,
    reason: StatusReason,
    cause: Cause,
  ): StatusChangeEvent | null {
    const previous = a.status;
    a.status_code = code;
    if (previous === to) return null;
    this.setStatus(a, to);
    const agentId = agentIdText(a.id);
    return {
      event_id: eventId([this.managerNode, 'status_change', agentId, cause.tsNs, to]),
      event_type: 'status_change',
      agent_id: agentId,
      agent_name: a.name,
      previous_status: previous,
      current_status: to,
      status_code: code,
      reason,
      ip_address: a.ip,
      ...eventTime(cause.ms),
      manager_node: this.managerNode,
      source: cause.source,
      sync_status: cause.sync,
    };
  }

  private keepalive(a: AgentRecord, groupConfigStatus: string | null, cause: Cause): KeepaliveEvent {
    const agentId = agentIdText(a.id);
    return {
      event_id: eventId([this.managerNode, 'keepalive', agentId, cause.tsNs, a.status]),
      event_type: 'keepalive',
      agent_id: agentId,
      agent_name: a.name,
      ip_address: a.ip,
      status: a.status,
      version: a.version,
      os: a.os ? { ...a.os } : null,
      group_config_status: groupConfigStatus ?? a.group_config_status,
      sync_status: cause.sync,
      ...eventTime(cause.ms),
      manager_node: this.managerNode,
      source: cause.source,
    };
  }

  private record(id: number): AgentRecord {
    let a = this.agents.get(id);
    if (!a) {
      a = {
        id, name: null, ip: null, status: 'unknown', status_code: 0, version: null, os: null,
        last_keepalive: null, node: null, groups: [], sync_status: null, group_config_status: null,
      };
      this.agents.set(id, a);
      this.byStatus.set('unknown', (this.byStatus.get('unknown') ?? 0) + 1);
    }
    return a;
  }

  private setStatus(a: AgentRecord, to: ConnectionStatus): void {
    if (a.status === to) return;
    this.byStatus.set(a.status, (this.byStatus.get(a.status) ?? 1) - 1);
    this.byStatus.set(to, (this.byStatus.get(to) ?? 0) + 1);
    a.status = to;
  }
}

function isStateRequest(r: WdbRequest): r is StateRequest {
  return (
    r.cmd === 'update-keepalive' || r.cmd === 'update-agent-data' ||
    r.cmd === 'update-connection-status' || r.cmd === 'update-status-code'
  );
}

function syncOf(r: StateRequest): string | null {
  return r.cmd === 'update-agent-data' ? (r.data.sync_status ?? null) : r.sync_status;
}

/** Wazuh's status_code values that name their own reason (WAZUH-PROTOCOL.md §4). */
function codeReason(code: number): StatusReason | null {
  switch (code) {
    case 1:
    case 2:
      return 'invalid_version';
    case 3:
      return 'agent_shutdown';
    case 4:
      return 'no_keepalive';
    case 5:
      return 'manager_reset';
    default:
      return null;
  }
}

function reasonFor(to: ConnectionStatus, code: number): StatusReason {
  switch (to) {
    case 'pending':
      return 'agent_startup';
    case 'active':
      return 'keepalive';
    case 'never_connected':
      return 'registered';
    case 'disconnected':
      return codeReason(code) ?? 'agent_shutdown';
    default:
      return 'initial_sync';
  }
}

function pickOs(os: AgentOs): AgentOs | null {
  const out: AgentOs = {};
  if (typeof os.name === 'string') out.name = os.name;
  if (typeof os.version === 'string') out.version = os.version;
  if (typeof os.platform === 'string') out.platform = os.platform;
  if (typeof os.arch === 'string') out.arch = os.arch;
  return Object.keys(out).length > 0 ? out : null;
}
