// Plain data passed between the stages of the pipeline:
//   capture (kernel records) → decode (frames, requests, replies, exchanges) → state (events) → publish.
// Every stage takes and returns these shapes only, so each can be tested alone.

/** request: a client (remoted, monitord, …) writes to wazuh-db; reply: wazuh-db writes back. */
export type Direction = 'request' | 'reply';

/** One record from the kernel: one write (or one chunk of a large write) on the wdb socket. */
export interface CaptureRecord {
  /** CLOCK_MONOTONIC nanoseconds at the syscall (bpf_ktime_get_ns). */
  tsNs: bigint;
  tgid: number;
  tid: number;
  /** The writer's comm (15 characters at most). */
  comm: string;
  /** Inode number of the writer's socket. */
  localIno: number;
  /** Inode number of the socket at the other end of the connection. */
  peerIno: number;
  direction: Direction;
  /** Bytes the syscall reported written (its return value). */
  syscallBytes: number;
  /** Offset of this record's data within that write (0 unless a large write was chunked). */
  offset: number;
  /** The captured bytes. */
  data: Uint8Array;
  /** The write was longer than what could be captured. */
  truncated: boolean;
  /**
   * The kernel filtered out writes of this stream since its last record: any
   * partial frame is void, and the first whole frame starts at frameOff
   * (an offset within the write, like `offset`).
   */
  gap?: boolean;
  frameOff?: number;
  /** Syscall that wrote it: 'sendto', 'write', … */
  syscall: string;
  /**
   * Optional: the writer's executable basename (from /proc/<pid>/exe), when the capture layer resolved
   * it. 5.x comms are cut to `wazuh-manager-X`, which is ambiguous (`-a`: analysisd, authd, apid).
   */
  exe?: string;
  /**
   * Set by the shim's fast path (bpf/shim/fastpath.h): an update-agent-data request sent whole under
   * this agent key and payload hash (the decoder keeps its parse), or — with `tick` — that same
   * request again, unchanged, answered `ok` by wazuh-db at `tick.replyTsNs`, without its bytes.
   */
  keyed?: { key: number; hash: number };
  tick?: { replyTsNs: bigint };
  /**
   * A reply (or a tick's reply): when the writing thread last finished a recvfrom before it — wazuh-db's
   * worker read the request then, and applied it between that read and this write (bpf/wdbtap.h
   * read_ago). Absent: not known.
   */
  readNs?: bigint;
}

/**
 * Stable identity of one wdb connection, the same for both directions: the
 * inode of the client's socket. Not the server's: wazuh-db's end has no inode
 * until it accept()s, and a client may write its first request before that.
 */
export type ConnId = string;

export function connIdOf(r: Pick<CaptureRecord, 'direction' | 'localIno' | 'peerIno'>): ConnId {
  return String(r.direction === 'request' ? r.localIno : r.peerIno);
}

/** One whole wdb frame (length header removed, optional trailing NUL removed). */
export interface WdbFrame {
  connId: ConnId;
  direction: Direction;
  tsNs: bigint;
  tgid: number;
  comm: string;
  payload: string;
  /** The writer's executable basename, when the capture layer knew it (see CaptureRecord.exe). */
  exe?: string;
  /** The shim keyed this frame (CaptureRecord.keyed): the decoder keeps its parse for later ticks. */
  keyed?: { key: number; hash: number };
  /** A reply: when wazuh-db's worker had read the request (CaptureRecord.readNs), when known. */
  readNs?: bigint;
}

export type ReplyStatus = 'ok' | 'due' | 'err' | 'ign' | 'unk';

export interface WdbReply {
  status: ReplyStatus;
  /** Text after the status and one space ('' when none). */
  payload: string;
}

/** A request paired with wazuh-db's answer on the same connection. */
export interface WdbExchange<Req = unknown> {
  connId: ConnId;
  request: Req;
  reply: WdbReply;
  /** Capture time of the request. */
  tsNs: bigint;
  /** The requesting process. */
  tgid: number;
  comm: string;
  /** Capture time of the reply (absent when an exchange is built by hand). */
  replyTsNs?: bigint;
  /**
   * When wazuh-db's worker had read the request (after tsNs, before replyTsNs), when known: wazuh-db
   * applied it after this. See appliedFrom.
   */
  readNs?: bigint;
  /** The requester's executable basename, when known (resolves ambiguous 5.x comms). */
  exe?: string;
}

/**
 * The earliest time wazuh-db can have applied an exchange's request: when its worker read it, if the
 * capture saw that read, else when the client wrote it. The order of exchanges (decode/apply-order.ts)
 * and the state's "which came later" (state/agents.ts) go by it: a worker woken late reads — and
 * applies — after a later request of another connection, which its write time cannot tell.
 */
export function appliedFrom(ex: Pick<WdbExchange, 'tsNs' | 'readNs'>): bigint {
  return ex.readNs ?? ex.tsNs;
}

/**
 * Set ex.readNs from the reply's (or tick's) read: the worker's last read before it wrote the reply is
 * this request's only when it came after the request was written (and the reply after it); else it was
 * an earlier one's: unknown. Whether it was set (the decoder counts the exchanges placed by their write).
 */
export function setRequestRead(ex: WdbExchange, readNs: bigint | undefined): boolean {
  if (readNs === undefined || readNs <= ex.tsNs || ex.replyTsNs === undefined || readNs > ex.replyTsNs) return false;
  ex.readNs = readNs;
  return true;
}

export type ConnectionStatus = 'never_connected' | 'pending' | 'active' | 'disconnected' | 'unknown';

/** Every ConnectionStatus, in one order: the agent table's counts and the columns that keep a status as its index (state/rows.ts, state/published-statuses.ts). */
export const CONNECTION_STATUSES: readonly ConnectionStatus[] = Object.freeze(['never_connected', 'pending', 'active', 'disconnected', 'unknown']);

/** Every reason a status change gives (SPEC §4): the type, and what a value read back is checked against (publish/spooled-status.ts). */
export const STATUS_REASONS = Object.freeze([
  'agent_startup', 'keepalive', 'agent_shutdown', 'no_keepalive', 'manager_reset',
  'invalid_version', 'registered', 'removed', 'initial_sync',
] as const);
export type StatusReason = (typeof STATUS_REASONS)[number];

/** SPEC §4 status change, exactly the JSON published. */
export interface StatusChangeEvent {
  event_id: string;
  event_type: 'status_change';
  agent_id: string;
  agent_name: string | null;
  previous_status: ConnectionStatus;
  current_status: ConnectionStatus;
  status_code: number;
  reason: StatusReason;
  ip_address: string | null;
  timestamp: number;
  time: string;
  manager_node: string;
  source: string;
  sync_status: string | null;
}

/** SPEC §4 keepalive, exactly the JSON published. */
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

export type AgentEvent = StatusChangeEvent | KeepaliveEvent;

// ---- decode stage: parsed requests and replies (added by the decode/state work) ----

/** The four connection statuses wazuh-db itself stores (`unknown` is ours, never on the wire). */
export type WazuhConnectionStatus = Exclude<ConnectionStatus, 'unknown'>;

/** A reply as parsed: `malformed` is true when the frame did not start with a known status. */
export interface ParsedWdbReply extends WdbReply {
  malformed: boolean;
}

/** The fields of `update-agent-data` the tap keeps (labels, sums and anything secret are dropped). */
export interface AgentDataUpdate {
  id: number;
  version?: string;
  agent_ip?: string;
  connection_status?: WazuhConnectionStatus;
  sync_status?: string;
  group_config_status?: string;
  node_name?: string;
  manager_host?: string;
  os_name?: string;
  os_version?: string;
  os_major?: string;
  os_codename?: string;
  os_platform?: string;
  os_arch?: string;
  os_uname?: string;
}

/**
 * One agent row as wazuh-db returns it (`get-agent-info`) or as the cluster writes it
 * (`sync-agent-info-set`): only the columns the tap keeps. `internal_key` is dropped while parsing.
 */
export interface AgentSyncRow {
  id: number;
  name?: string;
  ip?: string;
  register_ip?: string;
  version?: string;
  node_name?: string;
  os_name?: string;
  os_version?: string;
  os_platform?: string;
  os_arch?: string;
  last_keepalive?: number;
  connection_status?: WazuhConnectionStatus;
  status_code?: number;
  sync_status?: string;
  group_config_status?: string;
  group?: string;
}

/**
 * Descriptive fields (version, os, node, sync labels) the decoder left out because Wazuh would not have
 * written their value (decode/values.ts); absent when none was. The rest of the request is applied.
 */
export interface DroppedFields {
  dropped?: string[];
}

export type WdbRequest =
  | ({ cmd: 'update-keepalive'; id: number; connection_status: WazuhConnectionStatus; sync_status: string | null } & DroppedFields)
  | ({ cmd: 'update-agent-data'; data: AgentDataUpdate } & DroppedFields)
  | ({
      cmd: 'update-connection-status';
      id: number;
      connection_status: WazuhConnectionStatus;
      sync_status: string | null;
      status_code: number | null;
    } & DroppedFields)
  | ({
      cmd: 'update-status-code';
      id: number;
      status_code: number;
      version: string | null;
      sync_status: string | null;
      connection_status: WazuhConnectionStatus | null;
    } & DroppedFields)
  /** Registration (authd). `internal_key` is never kept: it is not even a field here. */
  | {
      cmd: 'insert-agent';
      id: number;
      name: string | null;
      ip: string | null;
      register_ip: string | null;
      date_add: number | null;
    }
  | { cmd: 'delete-agent'; id: number }
  | { cmd: 'update-agent-name'; id: number; name: string }
  /** remoted at start: every active/pending agent (id ≠ 0) → disconnected, code 5. */
  | { cmd: 'reset-agents-connection'; sync_status: string | null }
  /** monitord: agents whose keepalive is older than `threshold` → disconnected, code 4; the reply lists them. */
  | { cmd: 'disconnect-agents'; last_id: number; threshold: number; sync_status: string | null }
  | { cmd: 'get-agent-info'; id: number }
  /** `<last_id> <status> [<node> [<limit>]]`; the reply lists the ids (of that node only, when named). */
  | {
      cmd: 'get-agents-by-connection-status';
      last_id: number;
      status: WazuhConnectionStatus;
      node: string | null;
      limit: number | null;
    }
  | { cmd: 'get-all-agents'; last_id: number }
  /** Cluster synchronisation (wazuh-clusterd on the master): applied silently, never published. */
  | { cmd: 'sync-agent-info-set'; agents: AgentSyncRow[] }
  /** Any other `global` command; `args` has secret-like keys removed (or is `[redacted]`). */
  | { cmd: 'other'; name: string; args: string }
  /** Not a `global` command (`agent …`, `task …`, `mitre …`): only its first word is kept. */
  | { cmd: 'non-global'; name: string }
  /** A `global` command whose argument was unusable; never applied to state. */
  | { cmd: 'invalid'; name: string; reason: string };

// ---- state stage ----

export interface AgentOs {
  name?: string;
  version?: string;
  platform?: string;
  arch?: string;
}

/** What the tap knows about one agent. Field names follow Wazuh's columns. */
export interface AgentRecord {
  id: number;
  name: string | null;
  ip: string | null;
  status: ConnectionStatus;
  status_code: number;
  version: string | null;
  os: AgentOs | null;
  /** Unix seconds of the last keepalive wazuh-db accepted (or as seeded). */
  last_keepalive: number | null;
  node: string | null;
  groups: string[];
  sync_status: string | null;
  group_config_status: string | null;
}
