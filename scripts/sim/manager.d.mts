// Types for manager.mjs (kept beside it so TypeScript tests need no allowJs).
import type { ChildProcess } from 'node:child_process';

export interface SimAgent {
  id: number;
  name: string;
  ip: string;
  /** What it reports at its keepalives; the real manager's defaults when left out (Wazuh v4.7.5 / v5.0.0). */
  version?: string;
  /** node_name (default node01). */
  node?: string;
  configSum?: string;
  /** Default: Debian GNU/Linux 12 (bookworm), x86_64. An empty string leaves the member out. */
  os?: { name?: string; version?: string; major?: string; codename?: string; platform?: string; uname?: string; arch?: string };
  /** Its own labels (remoted adds the hidden `#"_…"` ones). */
  labels?: Record<string, string>;
}

/** How a client cuts each request frame into writes (SimManager's `split`). */
export type SimSplit = 'none' | 'halves' | `random:${number}`;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export declare class SimProcess {
  constructor(binDir: string, name: string, home: string, extraArgs?: string[], user?: { uid?: number; gid?: number; chroot?: string });
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  stderr: string;
  exitInfo: ExitInfo | null;
  readonly exited: Promise<ExitInfo>;
  ready(ms?: number): Promise<void>;
  command(line: string, ms?: number): Promise<string>;
  kill(signal?: NodeJS.Signals, ms?: number): Promise<ExitInfo>;
}

export declare class SimClient {
  constructor(proc: SimProcess);
  readonly proc: SimProcess;
  readonly name: string;
  readonly pid: number | undefined;
  startup(agent: SimAgent): Promise<void>;
  keepalive(agent: SimAgent): Promise<void>;
  shutdown(agent: SimAgent): Promise<void>;
  /** Sends text as one request frame, as the client's requests go (4.x: + NUL; 5.x: none); resolves with wazuh-db's reply. */
  rawreq(text: string): Promise<string>;
  /** Writes the bytes (Buffer or hex string) as-is in one sendto; reads nothing. Each frame they complete is a
   * reply owed: until recv() read them all, other requests on this client are refused. */
  raw(bytes: Buffer | Uint8Array | string): Promise<void>;
  /** Reads the reply to the next raw frame, in order; refused when none is owed. */
  recv(): Promise<string>;
  /** monitord's sweep (paged on `due`): the ids wazuh-db disconnected. */
  disconnect(thresholdTs: number): Promise<number[]>;
  /** remoted's `get-agents-by-connection-status 0 active node01 -1` (paged on `due`). */
  pollActive(): Promise<number[]>;
  /** modulesd: the manager's row (agent 000), `update-agent-name` then `update-agent-data` (§9). */
  managerInfo(): Promise<void>;
  /** modulesd's `get-all-agents last_id <n>`, paged: every agent id (the manager, 0, is not one). */
  allAgents(): Promise<number[]>;
  /** `get-agent-info <id>`: wazuh-db's reply. */
  agentInfo(id: number): Promise<string>;
  /** authd: client.keys line + `insert-agent`; resolves with the 64-hex key sent on the wire. */
  register(agent: SimAgent): Promise<string>;
  /** authd: marks the client.keys entry removed, then `delete-agent`; wazuh-db's reply. */
  remove(id: number): Promise<string>;
  rename(id: number, name: string): Promise<void>;
  /** `update-status-code` code 1 (refused for its version). */
  refuse(id: number): Promise<void>;
  /** Cluster sync (`sync-agent-info-set`), meant for the `python3` client. */
  syncSet(agent: SimAgent, status: string, node: string): Promise<void>;
  /** Per agent: `pending` from one thread, then ~gapUs later `active` from another, on two connections and two CPUs. */
  reconnect(agents: number, firstId: number, gapUs: number, ms?: number): Promise<{ pending: number; active: number; errors: number }>;
  /** Exits as the daemon does; not gone after ms (default 5 s): killed, and the promise rejects. */
  quit(ms?: number): Promise<ExitInfo>;
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

/** The directory of a daemon's executable in a home: bin/, or framework/python/bin for python3. */
export declare function homeExeDir(home: string, name: string): string;
/** Copies the simulator's executable `name` into the home (bin/ …); returns that directory. */
export declare function installSimDaemon(binDir: string, home: string, name: string): string;

/** Intervals (ms) of the manager's background traffic (SimManager's `background`). */
export interface SimBackground {
  /** remoted's `get-agents-by-connection-status 0 active node01 -1`, while it tracks an agent (real: 5000). */
  remotedPollMs: number;
  /** remoted's short connection for `get-distinct-groups ` (real: 10000). */
  groupsMs: number;
  /** analysisd's own `get-agents-by-connection-status 0 active node01 -1` (real: 5000). */
  analysisdPollMs: number;
}
/** The intervals seen on a 4.7.5 manager (WAZUH-PROTOCOL §2). */
export declare const REAL_BACKGROUND: Readonly<SimBackground>;

export declare class SimManager {
  /**
   * uid/gid: every daemon runs as that user. root: a container's root, the daemons chrooted in it
   * (`home` is then their path inside it). The daemons run from copies in `<home>/bin`.
   * cpuPerRequestUs: the CPU time (µs) wazuh-db spends on each request before answering, one request at a
   * time, as the real one's global.db (~33 on a 4.7.5 manager, SPEC §9). Default 0: none.
   * lateReply: wazuh-db's worker that applied a request containing `match` waits `us` µs before its reply
   * (a worker preempted before its sendto: a later request of another connection is answered first).
   * lateRead: wazuh-db's worker waits `us` µs before it reads a request containing `match` (a worker woken
   * late: a later request of another connection is read and applied first).
   * persistDb: wazuh-db keeps its table across restartDb() and a stop and start (`queue/db/sim-global.db`,
   * written at SIGTERM), as the real one's global.db does. Default false: seeded from client.keys each start.
   * split: how the clients cut each request frame into writes — 'none' (default: one write a frame, as real
   * daemons do), 'halves' (the header alone, then the payload in two halves), 'random:<seed>' (one to three
   * cuts anywhere, the header too).
   * background: the manager's own traffic beside the agents' (WAZUH-PROTOCOL §2), off by default; true: at
   * the real intervals; an object: shorter ones (ms, 1 to 3,600,000; those left out are the real ones).
   * remoted polls the active agents on a connection of its own while it tracks an agent, opens a short
   * connection for get-distinct-groups, and sends each agent message from the next of 4 worker threads,
   * each on its own long-lived connection; analysisd polls the active agents on its own connection;
   * monitord (spawnMonitord) follows a sweep's hits with get-agent-info <id> (and find-agent while still
   * disconnected). Threads of the daemons: stop() ends them with the processes.
   */
  constructor(opts: { binDir: string; home: string; agents?: SimAgent[]; version?: 4 | 5; pageRows?: number; cpuPerRequestUs?: number; lateReply?: { match: string; us: number }; lateRead?: { match: string; us: number }; uid?: number; gid?: number; root?: string; persistDb?: boolean; split?: SimSplit; background?: boolean | Partial<SimBackground> });
  /** The background traffic's intervals, or null: none. */
  readonly background: Readonly<SimBackground> | null;
  readonly binDir: string;
  /** The home as the host sees it (`<root>/<home>` for a container). */
  readonly home: string;
  /** The home as the daemons see it. */
  readonly innerHome: string;
  readonly root: string | null;
  readonly version: 4 | 5;
  readonly pageRows: number | undefined;
  readonly cpuPerRequestUs: number;
  /** wazuh-db's late replies (the constructor's lateReply), or null. */
  readonly lateReply: { match: string; us: number } | null;
  /** wazuh-db's late reads (the constructor's lateRead), or null. */
  readonly lateRead: { match: string; us: number } | null;
  readonly persistDb: boolean;
  readonly split: SimSplit;
  /** `remoted` → `wazuh-remoted` (4.x) or `wazuh-manager-remoted` (5.x). */
  daemon(name: string): string;
  spawnMonitord(): Promise<SimClient>;
  spawnAuthd(): Promise<SimClient>;
  /** A modulesd client (`wazuh-modulesd`; 5.x `wazuh-manager-modulesd`, comm `wazuh-manager-m` like monitord's). */
  spawnModulesd(): Promise<SimClient>;
  /** A client whose comm is `python3`, as wazuh-clusterd's. */
  spawnClusterd(): Promise<SimClient>;
  pollActive(): Promise<number[]>;
  refuse(id: number): Promise<void>;
  readonly wdbPath: string;
  analysisd: SimProcess | null;
  db: SimProcess | null;
  remoted: SimClient | null;
  clients: SimClient[];
  start(opts?: { reset?: boolean }): Promise<void>;
  startup(agent: SimAgent): Promise<void>;
  keepalive(agent: SimAgent): Promise<void>;
  shutdown(agent: SimAgent): Promise<void>;
  reconnect(agents: number, firstId: number, gapUs: number, ms?: number): Promise<{ pending: number; active: number; errors: number }>;
  rawreq(text: string): Promise<string>;
  raw(bytes: Buffer | Uint8Array | string): Promise<void>;
  recv(): Promise<string>;
  /** remoted killed and started again (its reset-agents-connection); wazuh-db keeps running. */
  restartRemoted(opts?: { reset?: boolean }): Promise<void>;
  /**
   * A whole manager restart: clients (forgotten), remoted, analysisd and wazuh-db stopped; wazuh-db (a new
   * socket, the same table: needs persistDb), analysisd and remoted (reset) started; then each agent of
   * `reconnect` sends its startup and a keepalive.
   */
  restartManager(opts?: { reconnect?: SimAgent[]; reset?: boolean }): Promise<void>;
  /** wazuh-db stopped (SIGTERM) and started again: a new socket; with persistDb the same table. */
  restartDb(): Promise<void>;
  spawnClient(name: string, opts?: { reset?: boolean; syscall?: 'sendto' | 'write' | 'writev' | 'sendmsg'; split?: SimSplit }): Promise<SimClient>;
  /** analysisd's own wdb poll of the active agents (paged), on its own connection. */
  analysisdPollActive(): Promise<number[]>;
  /** analysisd's `get-labels <id>`: wazuh-db's reply. */
  analysisdLabels(id: number): Promise<string>;
  /** `<home>/logs/alerts/alerts.json`. */
  readonly alertsFile: string;
  /** analysisd writes alerts through buffered stdio; the sequence numbers (in `data.srcport`) written. */
  writeAlerts(count: number, level: number, intervalUs?: number, ms?: number): Promise<{ first: number; last: number }>;
  /** Bytes written into the alerts file as they are. */
  writeAlertBytes(bytes: Buffer | string): Promise<void>;
  /** A new day: the next day's file, alerts.json linked to it; resolves with its path. */
  rotateAlerts(): Promise<string>;
  pids(): Record<string, number>;
  stop(): Promise<void>;
}
