// The events of wazuh-nats-tap, as docs/asyncapi.yaml defines them (copy both together).
// In the tap's repository, test/contract-types.test.ts checks these types against the
// document's schemas field by field, so this copy is the contract, not a guess.

export type ConnectionStatus = 'never_connected' | 'pending' | 'active' | 'disconnected' | 'unknown';

/** `<prefix>.agent.<id>.status`, and the value of each key of the KV bucket `<prefix>_agents`. */
export interface StatusChangeEvent {
  event_id: string;
  event_type: 'status_change';
  agent_id: string;
  agent_name: string | null;
  previous_status: ConnectionStatus;
  current_status: ConnectionStatus;
  status_code: number;
  reason: 'agent_startup' | 'keepalive' | 'agent_shutdown' | 'no_keepalive' | 'manager_reset'
    | 'invalid_version' | 'registered' | 'removed' | 'initial_sync';
  ip_address: string | null;
  timestamp: number;
  time: string;
  manager_node: string;
  source: string;
  sync_status: string | null;
}

/** `<prefix>.agent.<id>.keepalive`. */
export interface KeepaliveEvent {
  event_id: string;
  event_type: 'keepalive';
  agent_id: string;
  agent_name: string | null;
  ip_address: string | null;
  status: ConnectionStatus;
  version: string | null;
  os: { name?: string; version?: string; platform?: string; arch?: string } | null;
  group_config_status: string | null;
  sync_status: string | null;
  timestamp: number;
  time: string;
  manager_node: string;
  source: string;
}

/** `<prefix>.agent.batch.keepalive`: keepalives, many a message (the tap's default `keepalive_batch`). */
export interface KeepaliveBatchEvent {
  event_id: string;
  event_type: 'keepalive_batch';
  manager_node: string;
  count: number;
  timestamp: number;
  time: string;
  events: KeepaliveEvent[];
}

/** `<prefix>.security.alerts.<severity>`. */
export interface AlertEvent {
  event_id: string;
  event_type: 'alert';
  rule_id: number | string | null;
  level: number | null;
  severity: 'low' | 'medium' | 'high' | 'critical';
  description: string | null;
  agent_id: string | null;
  agent_name: string | null;
  timestamp: number;
  time: string;
  source_ip: string | null;
  user: string | null;
  manager_node: string;
  groups: string[];
  /** The alert as wazuh-analysisd wrote it. */
  alert: Record<string, unknown>;
}

export type ShedCounts = Record<'status' | 'keepalive' | 'alert' | 'tap', number>;

/** `<prefix>.tap.<node>.events`: the tap's own lifecycle. */
export interface TapEvent {
  event_id: string;
  event_type: 'tap';
  action: 'started' | 'attached' | 'detached' | 'records_lost' | 'spool_full' | 'stopped';
  manager_node: string;
  time: string;
  timestamp: number;
  home?: string;
  lost?: number;
  shed?: ShedCounts;
  shed_total?: ShedCounts;
  records?: number;
  events?: number;
}

export type WazuhEvent = StatusChangeEvent | KeepaliveEvent | KeepaliveBatchEvent | AlertEvent | TapEvent;
