// Mirrors wazuh-db's agent table from the exchanges the tap sees, and turns each accepted change into
// the events of SPEC §4. The updates mirror the SQL wazuh-db runs for each command (wdb_global.c), so
// the table holds what wazuh-db holds, not what the requester hoped for.
//
// Decisions (each has a test in test/state-*.test.ts):
// - A change is applied only when wazuh-db answered `ok` or `due`; `err` is counted and changes nothing.
// - Exactly one status event per real transition. Transitions no request names are inferred:
//   the agents listed in a `disconnect-agents` reply (code 4; `due` pages count too), and every
//   active/pending agent (id ≠ 0) after `reset-agents-connection` (code 5).
// - `update-status-code` publishes a status event when the agent's status_code changes to a non-zero
//   value even if its connection_status stays the same (an agent refused for its version, code 1 →
//   reason invalid_version): that refusal is what a consumer needs to see. A repeated refusal with the
//   same code is not a new event. Of an agent whose status the table does not know (and the request
//   names none) the code is kept silently: there is no status to report (`unknown>unknown` is no
//   transition), as learning a status for the first time is none either.
// - `delete-agent` of a known agent publishes `current_status: "unknown"` with reason `removed` (Wazuh
//   has no "removed" status: the row is gone, so the status is no longer known) and forgets the agent.
//   Deleting an agent the table never knew publishes nothing (there is no previous status to report).
// - `sync-agent-info-set` (cluster synchronisation, wazuh-clusterd on the master) updates the table but
//   never publishes: the worker that owns the agent already published the transition (SPEC §3).
// - `get-agent-info` replies refresh name, ip, version, os, node, and correct a status that drifted.
// - `get-agents-by-connection-status` replies reconcile (reason initial_sync): a listed agent the table
//   does not hold in that status gets it; when the listing of `active` is complete (pages from last_id 0
//   up to an `ok`, no row limit reached), an agent the table holds as active, of the node the request
//   named (wazuh-db lists only that node's agents), that is absent is corrected to disconnected (its
//   status_code is left as it was: the listing does not say why). An agent whose node is unknown is never
//   corrected for being absent from a node-filtered list.
// - An inferred or reconciled change never overrides a change the table applied from a request that
//   started after (or, for reconciliation, was still in flight when) the listing was made, nor brings
//   back an agent whose removal was not over before its request started.
// - An agent with UPDATEs held (while wazuh-db is asked about it: holds, describedAgents) is changed by
//   no view of wazuh-db meanwhile (a listing, a disconnect-agents or reset-agents-connection, a row):
//   the view waits behind those UPDATEs and is applied after them, in the order it came, with the same
//   time checks — so an older view never overrides them and no transition is published twice.
// - Agent 0 (the manager itself) is never tracked or published, nor is an id above 999,999,999 (the
//   decoder already refuses it: see decode/values.ts).
// - Requests the decoder found invalid (values Wazuh could not have written) are counted and ignored.

import { intern, SharedPool } from '../util/intern.js';
import type {
  AgentDataUpdate,
  AgentEvent,
  AgentOs,
  AgentRecord,
  AgentSyncRow,
  ConnectionStatus,
  ConnId,
  StatusReason,
  WazuhConnectionStatus,
  WdbExchange,
  WdbRequest,
} from '../types.js';
import { appliedFrom, CONNECTION_STATUSES } from '../types.js';
import { parseAgentRows, parseIdList } from '../decode/wdb-rows.js';
import { isAgentId, MAX_AGENTS } from '../decode/values.js';
import { keepaliveEvent, statusChangeEvent, type EventCause } from './events.js';
import { sourceOf } from './format.js';
import { liveAddress } from './address.js';
import { READS, WRITES } from './commands.js';
import { AgentRow, AgentRows, recordOf, type ProfileChanges } from './rows.js';

export interface AgentStateOptions {
  /** This manager's name in events (`manager_node`). */
  managerNode: string;
  /** Converts a capture timestamp (CLOCK_MONOTONIC ns) to wall-clock milliseconds. */
  wallClockMs: (tsNs: bigint) => number;
  /**
   * This manager's Wazuh cluster node name (`<cluster><node_name>`), when it is known. With it, the
   * bulk transitions inferred from `reset-agents-connection` and `disconnect-agents` are applied
   * silently to agents known to belong to another node (a master's copies of workers' agents), so one
   * transition is one event across the cluster.
   */
  clusterNode?: string;
  /** Agents tracked at most (hostile ids must not grow memory without bound). Default 2,000,000. */
  maxAgents?: number;
  /** Connections whose paged `get-agents-by-connection-status` listing is being collected. Default 256. */
  maxListings?: number;
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
  /** Agents changed without an event: cluster synchronisation, or another node's agents. */
  silent: number;
  /** Status corrections from wazuh-db's own listings and rows (reason initial_sync or better). */
  corrections: number;
  /** Replies whose rows could not be read (a listing, an agent row): nothing inferred from them. */
  unreadableReplies: number;
  /** New agents not tracked because maxAgents was reached. */
  overflow: number;
  /** UPDATEs of an agent removed lately and not seen since: wazuh-db's row is gone, nothing changed. */
  afterRemoval: number;
  /**
   * UPDATEs older than one already applied to their agent (an unchanged keepalive whose reply came
   * late, answered after a later request of another connection): wazuh-db applied them first, the
   * later one's values stand — nothing changed.
   */
  superseded: number;
  /**
   * UPDATEs of an agent the table does not hold once it held every agent wazuh-db listed: nothing
   * changed; wazuh-db is asked whether the agent exists (takeUnheld, describedAgents).
   */
  unlisted: number;
  agents: number;
}


/** When the table last changed an agent from a request: its request and reply capture times. */
interface Touch {
  start: bigint;
  end: bigint;
}

/** A `get-agents-by-connection-status` listing being collected page by page on one connection. */
interface Listing {
  status: WazuhConnectionStatus;
  node: string | null;
  /** Request time of the first page: the listing is no older than this. */
  startNs: bigint;
  /** The last id seen: the next page's last_id. */
  lastId: number;
  ids: Set<number>;
  /** A row limit was given and reached, so the listing may be cut. */
  capped: boolean;
}

const MAX_LISTED = 2_000_000;
/**
 * How long a removal is remembered against older views of wazuh-db: a view takes 15 s at most
 * (initial-sync.ts), a listing's pages or a disconnect-agents seconds; ten minutes leave a wide margin.
 * At most MAX_REMOVALS are kept (~100 bytes each): a removal forgotten early only risks what was before.
 */
const REMOVAL_MEMORY_NS = 600e9;
const MAX_REMOVALS = 200_000;
/** Agents waiting to be asked about (takeUnheld) at most; the UPDATEs of the others ask again. */
const MAX_UNHELD = 4096;
/** UPDATEs held for an agent being asked about, at most (the oldest go first). */
const MAX_HELD = 16;
/**
 * Views of wazuh-db waiting for an agent's held UPDATEs, at most (the oldest go first: a later view
 * says as much; dropping one never drops an UPDATE). remoted and analysisd list every 5 s.
 */
const MAX_WAITING_VIEWS = 16;

/**
 * What a view of wazuh-db (a listing, a disconnect-agents or reset-agents-connection, a row) does to
 * one agent, deferred while that agent's UPDATEs are held (AgentStateTable.defers): run at their replay,
 * its own time checks then see the UPDATEs applied before it.
 */
interface WaitingView {
  view: (events: AgentEvent[]) => void;
}

/** What waits for an agent being asked about: its held UPDATEs and the views that came meanwhile, in order. */
type Held = WdbExchange<WdbRequest> | WaitingView;

const isView = (h: Held): h is WaitingView => 'view' in h;
/** The UPDATEs that write connection_status: a later one's status stands over an older one's (superseded). */
const STATUS_UPDATES: ReadonlySet<WdbRequest['cmd']> = new Set(['update-keepalive', 'update-agent-data', 'update-connection-status']);
/** The UPDATEs that change an existing row only: wazuh-db answers `ok` to them when no row matched. */
const UPDATES: ReadonlySet<WdbRequest['cmd']> = new Set([
  'update-keepalive', 'update-agent-data', 'update-connection-status', 'update-status-code', 'update-agent-name',
]);

export class AgentStateTable {
  /** The rows, as columns by agent (rows.ts). */
  private readonly agents = new AgentRows();
  private readonly listings = new Map<ConnId, Listing>();
  private readonly byStatus = new Map<ConnectionStatus, number>(CONNECTION_STATUSES.map((s) => [s, 0]));
  private readonly managerNode: string;
  private readonly clusterNode: string | null;
  private readonly wallClockMs: (tsNs: bigint) => number;
  private readonly maxAgents: number;
  private readonly maxListings: number;
  /** Capture times are kept per agent as nanoseconds after this (AgentRows). */
  private readonly epochNs = process.hrtime.bigint();
  /**
   * Agents removed lately, with the capture times of their removal (ns after epochNs), oldest first: a
   * view of wazuh-db asked before a removal (a resync's rows, a captured listing or disconnect-agents)
   * must not bring the forgotten agent back — it did, `unknown → disconnected`, while wazuh-db had no
   * such agent (test/chaos-e2e.test.ts). Kept REMOVAL_MEMORY_NS, longer than any such view takes.
   */
  private readonly removals = new Map<number, { start: number; end: number }>();
  /**
   * The table holds every agent wazuh-db has, as far as it can tell: set by a complete listing
   * (removeUnlisted). While set, an UPDATE of an agent the table does not hold is held, not applied —
   * wazuh-db answers `ok` to an UPDATE that matched no row, so only wazuh-db can say whether the agent
   * exists: its id waits in `unheld` (with its UPDATEs) for the tap to ask, and the answer decides
   * (describedAgents). Taken as a change, a removed agent's late keepalive after a restart of the tap
   * (whose `removals` are empty) brought it back, `unknown → active`, while wazuh-db had no row for it.
   */
  private listedAll = false;
  /**
   * Agents to ask wazuh-db about, each with the UPDATEs held for it and the views deferred behind them
   * (oldest first; none: asked only).
   */
  private unheld = new Map<number, Held[]>();
  /** Those takeUnheld handed out, until describedAgents has the answer. */
  private asking = new Map<number, Held[]>();
  /** An UPDATE or view applied again from `unheld` (describedAgents): never held a second time. */
  private replaying = false;
  private readonly counters = {
    applied: 0, rejected: 0, unanswered: 0, invalid: 0, manager: 0, statusEvents: 0, keepaliveEvents: 0,
    silent: 0, corrections: 0, unreadableReplies: 0, overflow: 0, afterRemoval: 0, superseded: 0, unlisted: 0,
  };

  constructor(opts: AgentStateOptions) {
    this.managerNode = opts.managerNode;
    this.clusterNode = opts.clusterNode ?? null;
    this.wallClockMs = opts.wallClockMs;
    this.maxAgents = Math.max(1, opts.maxAgents ?? MAX_AGENTS);
    this.maxListings = Math.max(1, opts.maxListings ?? 256);
  }

  get size(): number {
    return this.agents.size;
  }

  get(id: number): Readonly<AgentRecord> | undefined {
    const a = this.agents.get(id);
    return a && recordOf(a);
  }

  /** The agent's status without making its record (a light look asks it of every agent); undefined: not held. */
  statusOf(id: number): ConnectionStatus | undefined {
    return this.agents.statusOf(id);
  }

  /** The agent's cluster node without making its record; null: none known, or not held. */
  nodeOf(id: number): string | null {
    return this.agents.nodeOf(id);
  }

  /** The nodes the agents are on, those with the most agents first. */
  nodes(): string[] {
    return this.agents.nodes();
  }

  /** Every agent tracked (a snapshot, e.g. for a KV materialised view). */
  all(): Readonly<AgentRecord>[] {
    return [...this.agents.rows()].map(recordOf);
  }

  countsByStatus(): Record<ConnectionStatus, number> {
    return Object.fromEntries(this.byStatus) as Record<ConnectionStatus, number>;
  }

  stats(): AgentStateStats {
    return { ...this.counters, agents: this.agents.size };
  }

  /**
   * Seeds what was learned outside the socket (client.keys, global.db, a wazuh-db query), so the first
   * transition reports the right previous status. No event. Only AgentRecord's own fields are copied: a
   * caller handing in a raw database row cannot smuggle `internal_key` into the table. Agent 0 is ignored.
   */
  setKnown(agent: Partial<AgentRecord> & { id: number }): void {
    if (!isAgentId(agent.id) || agent.id === 0) return;
    const a = this.record(agent.id);
    if (!a) return;
    if (typeof agent.name === 'string' || agent.name === null) a.name = agent.name;
    const ip = liveAddress(agent.ip);
    if (ip !== null) a.ip = ip; // a wildcard or nothing never erases a live address
    if (agent.status !== undefined && CONNECTION_STATUSES.includes(agent.status)) this.setStatus(a, agent.status);
    if (typeof agent.status_code === 'number' && Number.isSafeInteger(agent.status_code)) a.status_code = agent.status_code;
    // A time or none: NaN is no time (and the row's column would read it back as none).
    if (Number.isFinite(agent.last_keepalive) || agent.last_keepalive === null) a.last_keepalive = agent.last_keepalive ?? null;
    const shared: ProfileChanges = {};
    if (typeof agent.version === 'string' || agent.version === null) shared.version = agent.version;
    if (agent.os !== undefined) shared.os = agent.os && sharedOs(pickOs(agent.os));
    if (typeof agent.node === 'string' || agent.node === null) shared.node = agent.node;
    if (Array.isArray(agent.groups)) shared.groups = agent.groups.filter((g) => typeof g === 'string');
    if (typeof agent.sync_status === 'string' || agent.sync_status === null) shared.sync_status = agent.sync_status;
    if (typeof agent.group_config_status === 'string' || agent.group_config_status === null) {
      shared.group_config_status = agent.group_config_status;
    }
    a.share(shared);
  }

  /**
   * Applies agent rows read from wazuh-db outside the capture (a resynchronisation after lost records,
   * or after `attach`): like a captured `get-agent-info` reply, a status that drifted is corrected with
   * a status event (reason initial_sync, or the one its status_code names). `tsNs` is the monotonic time
   * the rows were requested: changes the table applied from requests after it are not overridden.
   */
  resync(rows: readonly AgentSyncRow[], tsNs: bigint, source = 'wazuh-db', adoptUnknown = false): AgentEvent[] {
    const cause: EventCause = { tsNs, ms: this.wallClockMs(tsNs), source, sync: null };
    const events: AgentEvent[] = [];
    for (const row of rows) this.applyRow(row, tsNs, cause, events, adoptUnknown);
    return events;
  }

  /**
   * wazuh-db's complete list of agent ids, read outside the capture: an agent the table knows a
   * status of and the list lacks was removed while no record was seen (the tap down, detached, or
   * its records lost) — one `removed` event, as a captured `delete-agent` gives, and forgotten.
   * Without it the agent stayed, with its last status, in every consumer's view and the KV bucket
   * for ever. An agent changed by a request after `tsNs` (registered since the list was read) is
   * left alone, as are agents known only by name (client.keys).
   */
  removeUnlisted(listed: readonly number[], tsNs: bigint, source = 'wazuh-db'): AgentEvent[] {
    const present = new Set(listed);
    const gone: AgentRow[] = [];
    for (const a of this.agents.rows()) {
      if (present.has(a.id) || a.status === 'unknown') continue;
      if (!this.changedSince(a.id, tsNs)) gone.push(a);
      // Changed while the list was read: registered since, or a removed agent's late UPDATE (wazuh-db
      // answers ok, no row) taken before the table held every agent — wazuh-db is asked which.
      else this.ask(a.id);
    }
    const cause: EventCause = { tsNs, ms: this.wallClockMs(tsNs), source, sync: null };
    const events: AgentEvent[] = [];
    for (const a of gone) this.removedUnseen(a, tsNs, cause, events);
    this.listedAll = true; // every listed agent was applied before this (the callers' order)
    return events;
  }

  /** One `removed` event for an agent wazuh-db no longer has (not for another node's), and forgotten. */
  private removedUnseen(a: AgentRow, tsNs: bigint, cause: EventCause, events: AgentEvent[]): void {
    // Another node's agent (a master's copy): forgotten here, that node says its own removal.
    const ours = this.clusterNode === null || a.node === null || a.node === this.clusterNode;
    if (ours) this.emitStatus(a, { previous: a.status, current: 'unknown', code: a.status_code, reason: 'removed' }, cause, events);
    this.forget(a, { start: tsNs, end: tsNs });
  }

  /** Someone must ask wazuh-db about this agent (takeUnheld); bounded, the next UPDATE asks again. */
  private ask(id: number): Held[] | undefined {
    let held = this.unheld.get(id);
    if (held === undefined && this.unheld.size < MAX_UNHELD) this.unheld.set(id, (held = []));
    return held;
  }

  /** An UPDATE of an agent the table does not hold while it holds every agent listed: held, asked about. */
  private holds(id: number, ex: WdbExchange<WdbRequest>): boolean {
    if (this.replaying) return false;
    // An agent with UPDATEs waiting has its next ones wait behind them, whatever brought it into the
    // table meanwhile (a resync's row): applied at once, they were overtaken by the older ones' replay.
    if (!this.unheld.has(id) && !this.asking.has(id)) {
      // An agent known only by name (client.keys: status unknown) is no agent the listing held: a removed
      // one whose name client.keys still had at the tap's start was brought back by its late keepalive.
      if (!this.listedAll) return false;
      const known = this.agents.statusOf(id);
      if ((known !== undefined && known !== 'unknown') || this.removals.has(id)) return false;
      if (!isAgentId(id) || this.agents.size >= this.maxAgents) return false;
    }
    this.counters.unlisted++;
    const held = this.ask(id);
    if (held !== undefined) {
      held.push(ex);
      dropOldest(held, (h) => !isView(h), MAX_HELD);
    }
    return true;
  }

  /**
   * A view of wazuh-db (a listing, a disconnect-agents or reset-agents-connection, a row) that would
   * change an agent whose UPDATEs are held: deferred behind them (true), `view` run at their replay.
   * Applied at once, the view made the row and published from it (`unknown → active`, initial_sync),
   * then the older UPDATEs were replayed on top of it (`active → pending`, `pending → active`): a
   * consumer saw the agent go back, and its transitions twice. Behind them, the view's own time checks
   * see the UPDATEs it may predate, as when nothing was held. Only for an agent that `waits` (the
   * callers ask first: a listing or a resync names a fleet, one closure an agent would be garbage).
   */
  private defers(id: number, view: WaitingView['view']): void {
    const held = this.unheld.get(id) ?? this.asking.get(id); // unheld: held since the question, the later
    if (held === undefined) return;
    held.push({ view });
    dropOldest(held, isView, MAX_WAITING_VIEWS);
  }

  /**
   * Applies what was held for an agent (holds, defers) as it would have been applied when it came: its
   * UPDATEs, and the views deferred behind them in their place (`viewsOnly`: the UPDATEs are dropped).
   */
  private replay(held: readonly Held[] | undefined, events: AgentEvent[], viewsOnly = false): void {
    if (!held?.length) return;
    this.replaying = true;
    try {
      for (const h of held) {
        if (isView(h)) h.view(events);
        else if (!viewsOnly) events.push(...this.apply(h));
      }
    } finally {
      this.replaying = false;
    }
  }

  /** Whether there are agents to ask wazuh-db about (takeUnheld). */
  get hasUnheld(): boolean {
    return this.unheld.size > 0;
  }

  /**
   * The agents to ask wazuh-db about since the last call (describedAgents): those UPDATEs named that the
   * table does not hold, and those a complete listing lacked that had changed while it was read.
   */
  takeUnheld(): number[] {
    for (const [id, held] of this.unheld) {
      const before = this.asking.get(id);
      this.asking.set(id, before ? [...before, ...held] : held);
    }
    this.unheld = new Map();
    return [...this.asking.keys()];
  }

  /**
   * wazuh-db's answer about the agents takeUnheld handed out, asked at `tsNs` (null: it could not be
   * asked). A described agent has a row: the UPDATEs held for it are applied as they came (their own
   * reasons and sources, its name from the row), with the views deferred behind them (defers) in their
   * place, then the row (a status that differs: corrected, as a resync's). An agent wazuh-db has no row
   * for (`absent`: removed, or never registered) drops its UPDATEs and is remembered as removed at
   * `tsNs` (its next UPDATEs are counted, afterRemoval, not asked about again); one the table holds,
   * unchanged since, gets its `removed` event, as removeUnlisted gives; its deferred views apply only
   * where newer than that. An agent not answered about gets its UPDATEs and views applied as they came,
   * as before any listing: wazuh-db's silence never loses a change.
   */
  describedAgents(
    answer: { rows: readonly AgentSyncRow[]; absent: readonly number[]; reason: string | null } | null, tsNs: bigint, source = 'wazuh-db',
  ): AgentEvent[] {
    const asked = this.asking;
    this.asking = new Map();
    const cause: EventCause = { tsNs, ms: this.wallClockMs(tsNs), source, sync: null };
    const events: AgentEvent[] = [];
    for (const row of answer?.rows ?? []) {
      if (!asked.has(row.id)) continue;
      const held = asked.get(row.id);
      asked.delete(row.id);
      const a = held?.length ? this.record(row.id) : null;
      if (a) copyRow(a, row); // its name and address in the events of its UPDATEs
      this.replay(held, events);
      // wazuh-db has the row: UPDATEs held for it since the question are no question any more.
      this.replay(this.unheld.get(row.id), events);
      this.unheld.delete(row.id);
      events.push(...this.resync([row], tsNs, source));
    }
    for (const id of answer?.absent ?? []) {
      const held = asked.get(id);
      if (!asked.delete(id) || id === 0) continue;
      const a = this.agents.get(id);
      if (a === undefined || a.status === 'unknown' || !this.changedSince(id, tsNs)) {
        if (a === undefined) this.rememberRemoval(id, { start: tsNs, end: tsNs });
        // Known only by name (client.keys had it): never published, forgotten without an event.
        else if (a.status === 'unknown') this.forget(a, { start: tsNs, end: tsNs });
        else this.removedUnseen(a, tsNs, cause, events);
        const since = this.unheld.get(id);
        this.unheld.delete(id); // UPDATEs of an agent with no row, held since the question: nothing either
        // The views deferred: each brings the agent back only if asked after that removal.
        this.replay(held, events, true);
        this.replay(since, events, true);
      } else {
        this.replay(held, events, true); // its UPDATEs matched no row; its views see the change since
        this.ask(id); // an UPDATE again while asked: asked once more
      }
    }
    // Not answered about: applied as they came — then those held since the question, behind them.
    for (const [id, held] of asked) {
      this.replay(held, events);
      this.replay(this.unheld.get(id), events);
      this.unheld.delete(id);
    }
    return events;
  }

  apply(ex: WdbExchange<WdbRequest>): AgentEvent[] {
    const req = ex.request;
    if (req.cmd === 'invalid') {
      this.counters.invalid++;
      return [];
    }
    const write = WRITES.has(req.cmd);
    if (!write && !READS.has(req.cmd)) return [];
    const status = ex.reply.status;
    if (status !== 'ok' && status !== 'due') {
      if (write) {
        if (status === 'err') this.counters.rejected++;
        else this.counters.unanswered++;
      }
      // A failed page ends the listing being collected on that connection.
      if (req.cmd === 'get-agents-by-connection-status') this.listings.delete(ex.connId);
      return [];
    }
    const id = agentOf(req);
    if (id === 0) {
      this.counters.manager++;
      return [];
    }
    // Held while wazuh-db is asked whether the agent exists (listedAll).
    if (id !== null && UPDATES.has(req.cmd) && this.holds(id, ex)) return [];
    // The earliest wazuh-db can have applied it (its worker's read, else its write): every "which came
    // later" of the state goes by it, as the decoder's order does.
    const from = appliedFrom(ex);
    // An UPDATE whose request began before one already applied to its agent: wazuh-db applied it first
    // (in the order requests reach it), so the later one's values stand. The decoder hands exchanges
    // over in request order (decode/apply-order.ts), but not an unchanged keepalive the shim's fast path
    // held for its reply (a tick: its request is never in the decoder's hands), nor one past its 50 ms
    // hold: applied, a tick answered late turned an agent shut down meanwhile active again.
    // Only between UPDATEs that write the status (a rename or a code is other columns), held ones replayed too.
    if (id !== null && STATUS_UPDATES.has(req.cmd) && this.superseded(id, from)) {
      this.counters.superseded++;
      return [];
    }
    if (write) this.counters.applied++;
    // The change's time is when wazuh-db can have made it (its read), as its place in the order: by the
    // write's, an agent's events came out in read order with times going back (review helper-57). The
    // event id stays the write's (stable for the same request whatever the capture saw of its read).
    const ms = this.wallClockMs(from);
    const cause: EventCause = { tsNs: ex.tsNs, ms, source: sourceOf(ex.comm, ex.exe), sync: syncOf(req) };
    const touch: Touch = { start: from, end: ex.replyTsNs ?? from };
    const events: AgentEvent[] = [];

    switch (req.cmd) {
      case 'update-keepalive': {
        // wazuh-db: last_keepalive = now, connection_status, sync_status, status_code = 0.
        const a = this.updated(req.id, touch);
        if (!a) break;
        const wasActive = a.status === 'active';
        a.last_keepalive = Math.floor(ms / 1000);
        a.sync_status = req.sync_status ?? a.sync_status;
        this.transition(a, req.connection_status, 0, reasonFor(req.connection_status, 0), cause, events);
        // A lighter keepalive for an agent that was already active is just a keepalive.
        if (wasActive && req.connection_status === 'active') this.keepalive(a, null, cause, events);
        break;
      }
      case 'update-agent-data': {
        // wazuh-db: version, os, node, ip, last_keepalive, connection_status, sync_status; status_code kept.
        // 5.x sends only agent_ip, connection_status, id, os_*, sync_status and version.
        const d = req.data;
        const a = this.updated(d.id, touch);
        if (!a) break;
        a.last_keepalive = Math.floor(ms / 1000);
        // The shared columns: nothing to do for a keepalive that repeats them (every one but the first).
        if (dataDiffers(a, d)) a.share(dataChanges(a.os, d));
        // The address of every keepalive but the first is the one the row holds (checked then). The
        // request's string is kept, not the row's: the decoder keeps that one (its fast path's copy of
        // the agent's last keepalive), and a row seeded from wazuh-db's listing held a second copy of
        // each address (3 MB at 100,000 agents).
        const ip = d.agent_ip === a.ip ? d.agent_ip : liveAddress(d.agent_ip);
        if (ip !== null) a.ip = ip;
        if (d.connection_status) {
          this.transition(a, d.connection_status, a.status_code, reasonFor(d.connection_status, a.status_code), cause, events);
        }
        this.keepalive(a, d.group_config_status ?? null, cause, events);
        break;
      }
      case 'update-connection-status': {
        // wazuh-db: connection_status, sync_status, disconnection_time, status_code.
        const a = this.updated(req.id, touch);
        if (!a) break;
        const code = req.status_code ?? a.status_code;
        a.sync_status = req.sync_status ?? a.sync_status;
        this.transition(a, req.connection_status, code, reasonFor(req.connection_status, code), cause, events);
        break;
      }
      case 'update-status-code': {
        // wazuh-db: status_code, version, sync_status only. A 5.x variant may also name the status.
        const a = this.updated(req.id, touch, false);
        if (!a) break;
        if (req.version !== null) a.version = req.version;
        a.sync_status = req.sync_status ?? a.sync_status;
        const to = req.connection_status ?? a.status;
        if (to === 'unknown') {
          // No status to report (the table has not learned it yet): wazuh-db's code is kept, no event —
          // `unknown → unknown` names no transition. The status, once learned, carries the code.
          a.status_code = req.status_code;
          break;
        }
        const reason = codeReason(req.status_code) ?? reasonFor(to, req.status_code);
        this.transition(a, to, req.status_code, reason, cause, events, true);
        break;
      }
      case 'insert-agent': {
        // authd registered the agent: a new row, never_connected. The key was never parsed into req.
        const a = this.touch(req.id, touch);
        if (!a) break;
        this.agents.setUpdateStart(a.slot, this.sinceEpoch(touch.start)); // an older UPDATE was the old row's
        if (req.name !== null) a.name = req.name;
        const ip = liveAddress(req.ip) ?? liveAddress(req.register_ip); // `any` registers no address
        if (ip !== null) a.ip = ip;
        this.transition(a, 'never_connected', 0, 'registered', cause, events);
        break;
      }
      case 'delete-agent': {
        const a = this.agents.get(req.id);
        if (!a) { // not tracked: no event, but an older view must not bring it in either
          if (isAgentId(req.id) && req.id !== 0) this.rememberRemoval(req.id, touch);
          break;
        }
        // Wazuh has no "removed" status: the row is gone, so its status is no longer known.
        this.emitStatus(a, { previous: a.status, current: 'unknown', code: a.status_code, reason: 'removed' }, cause, events);
        this.forget(a, touch);
        break;
      }
      case 'update-agent-name': {
        const a = this.updated(req.id, touch, false);
        if (a) a.name = req.name;
        break;
      }
      case 'reset-agents-connection': {
        // UPDATE agent SET connection_status = 'disconnected', status_code = 5 WHERE status is active or
        // pending AND id != 0 — on every node's agents: the tap infers the list.
        for (const a of this.agents.rows()) {
          if (this.waits(a.id)) continue; // below, behind its held UPDATEs
          this.reset(a.id, from, cause, touch, events);
        }
        // An agent with UPDATEs held: whether the reset found it active or pending is known after them.
        for (const id of this.waiting()) this.defers(id, (evs) => this.reset(id, from, cause, touch, evs));
        break;
      }
      case 'disconnect-agents': {
        // Only the reply names the agents (`ok` or `due` pages alike): they are now disconnected, code 4.
        const ids = parseIdList(ex.reply.payload);
        if (ids === null) {
          if (ex.reply.payload !== '') this.counters.unreadableReplies++;
          break;
        }
        for (const aid of ids) {
          if (aid === 0) continue;
          if (this.waits(aid)) this.defers(aid, (evs) => this.disconnected(aid, from, cause, touch, evs));
          else this.disconnected(aid, from, cause, touch, events);
        }
        break;
      }
      case 'sync-agent-info-set': {
        for (const row of req.agents) {
          if (row.id === 0) continue;
          const a = this.touch(row.id, touch);
          if (!a) continue;
          copyRow(a, row);
          if (row.connection_status !== undefined) this.setStatus(a, row.connection_status);
          if (row.status_code !== undefined) a.status_code = row.status_code;
          this.counters.silent++;
        }
        break;
      }
      case 'get-agent-info': {
        const rows = parseAgentRows(ex.reply.payload);
        if (rows === null) {
          this.counters.unreadableReplies++;
          break;
        }
        for (const row of rows) if (row.id === req.id) this.applyRow(row, from, cause, events);
        break;
      }
      case 'get-agents-by-connection-status':
        this.listing(ex, req, from, cause, events);
        break;
    }
    return events;
  }

  /** A `get-agents-by-connection-status` page: correct listed agents; on a complete listing, absent ones. */
  private listing(
    ex: WdbExchange<WdbRequest>,
    req: Extract<WdbRequest, { cmd: 'get-agents-by-connection-status' }>,
    from: bigint,
    cause: EventCause,
    events: AgentEvent[],
  ): void {
    const ids = parseIdList(ex.reply.payload);
    if (ids === null) {
      this.counters.unreadableReplies++;
      this.listings.delete(ex.connId);
      return;
    }
    let l = this.listings.get(ex.connId);
    this.listings.delete(ex.connId);
    if (req.last_id === 0) {
      l = { status: req.status, node: req.node, startNs: from, lastId: 0, ids: new Set(), capped: false };
    } else if (!l || l.status !== req.status || l.node !== req.node || l.lastId !== req.last_id) {
      l = undefined; // a page of a listing whose start we did not see: only its rows are usable
    }
    const cause2: EventCause = { ...cause, sync: null };
    for (const aid of ids) {
      if (aid === 0) continue;
      if (l) {
        if (l.ids.size < MAX_LISTED) l.ids.add(aid);
        else l.capped = true;
        if (aid > l.lastId) l.lastId = aid;
      }
      if (this.waits(aid)) this.defers(aid, (evs) => this.listed(aid, req.status, req.node, from, cause2, evs));
      else this.listed(aid, req.status, req.node, from, cause2, events);
    }
    if (!l) return;
    if (req.limit !== null && req.limit > 0 && ids.length >= req.limit) l.capped = true;
    if (ex.reply.status === 'due') {
      // More pages follow on this connection; keep the listing (bounded number of connections).
      while (this.listings.size >= this.maxListings) {
        const oldest = this.listings.keys().next().value as ConnId | undefined;
        if (oldest === undefined) break;
        this.listings.delete(oldest);
      }
      this.listings.set(ex.connId, l);
      return;
    }
    if (l.capped || l.status !== 'active') return;
    // Complete: every active agent of that node is in l.ids.
    const { ids: listed, node, startNs } = l;
    for (const a of [...this.agents.rows()]) {
      if (a.status !== 'active' || listed.has(a.id) || this.waits(a.id)) continue; // waiting: below
      this.unlisted(a.id, node, startNs, cause2, events);
    }
    // An agent with UPDATEs held: whether it is active is known after them.
    for (const id of this.waiting()) {
      if (!listed.has(id)) this.defers(id, (evs) => this.unlisted(id, node, startNs, cause2, evs));
    }
  }

  /** An agent a listing of `status` made at `startNs` names: corrected to that status unless changed since. */
  private listed(
    id: number, status: WazuhConnectionStatus, node: string | null, startNs: bigint, cause: EventCause, events: AgentEvent[],
  ): void {
    if (this.changedSince(id, startNs)) return; // its removal included: not brought back
    const a = this.record(id);
    if (!a) return;
    if (a.node === null && node !== null) a.node = node;
    if (a.status === status) return;
    const code = status === 'active' || status === 'pending' ? 0 : a.status_code;
    this.counters.corrections++;
    this.transition(a, status, code, 'initial_sync', cause, events);
  }

  /** An agent the complete listing of `node`'s active agents made at `startNs` lacks: not active, unless changed since. */
  private unlisted(id: number, node: string | null, startNs: bigint, cause: EventCause, events: AgentEvent[]): void {
    const a = this.agents.get(id);
    if (a === undefined || a.status !== 'active') return;
    if (node !== null && a.node !== node) return;
    if (this.changedSince(id, startNs)) return;
    this.counters.corrections++;
    this.transition(a, 'disconnected', a.status_code, 'initial_sync', cause, events);
  }

  /** An agent a disconnect-agents reply names (its request at `requestNs`): disconnected, code 4. */
  private disconnected(id: number, requestNs: bigint, cause: EventCause, touch: Touch, events: AgentEvent[]): void {
    // A change from a request after it wins; so does a removal not over before it began (wazuh-db may
    // have computed the list before the delete ran: the reply came after, the agent is gone all the same).
    if (this.newerThan(id, requestNs) || this.removedSince(id, requestNs)) return;
    const a = this.record(id);
    if (a) this.inferred(a, 'disconnected', 4, 'no_keepalive', cause, touch, events);
  }

  /** reset-agents-connection (its request at `requestNs`) for one agent: active or pending → disconnected, code 5. */
  private reset(id: number, requestNs: bigint, cause: EventCause, touch: Touch, events: AgentEvent[]): void {
    const a = this.agents.get(id);
    if (a === undefined || (a.status !== 'active' && a.status !== 'pending')) return;
    if (this.newerThan(id, requestNs)) return;
    this.inferred(a, 'disconnected', 5, 'manager_reset', cause, touch, events);
  }

  /** Whether UPDATEs of the agent are held (views wait behind them: defers); never while they are replayed. */
  private waits(id: number): boolean {
    return !this.replaying && (this.unheld.has(id) || this.asking.has(id));
  }

  /** The agents `waits` is true of. */
  private waiting(): number[] {
    if (this.replaying) return [];
    return [...new Set([...this.asking.keys(), ...this.unheld.keys()])];
  }

  /** One wazuh-db row: names and addresses always; the status only when nothing newer is known. */
  private applyRow(row: AgentSyncRow, requestNs: bigint, cause: EventCause, events: AgentEvent[], adoptUnknown = false): void {
    if (row.id === 0 || this.removedSince(row.id, requestNs)) return; // the row predates its removal
    if (this.waits(row.id)) {
      this.defers(row.id, (evs) => this.applyRow(row, requestNs, cause, evs, adoptUnknown));
      return;
    }
    const a = this.record(row.id);
    if (!a) return;
    copyRow(a, row);
    if (row.connection_status === undefined || this.changedSince(row.id, requestNs)) return;
    const code = row.status_code ?? a.status_code;
    // Learning an agent's status for the first time (wazuh-db appeared after the tap started) is
    // not a transition: adopted silently, as at start (seedTable).
    if (row.connection_status === a.status || (adoptUnknown && a.status === 'unknown')) {
      this.setStatus(a, row.connection_status);
      a.status_code = code;
      return;
    }
    this.counters.corrections++;
    this.transition(a, row.connection_status, code, driftReason(row.connection_status, code), { ...cause, sync: row.sync_status ?? cause.sync }, events);
  }

  /** A transition the request did not name for this agent (a list, a reset). */
  private inferred(
    a: AgentRow,
    to: ConnectionStatus,
    code: number,
    reason: StatusReason,
    cause: EventCause,
    touch: Touch,
    events: AgentEvent[],
  ): void {
    this.agents.setTouch(a.slot, this.sinceEpoch(touch.start), this.sinceEpoch(touch.end));
    if (this.clusterNode !== null && a.node !== null && a.node !== this.clusterNode) {
      // Another node's agent (a master's copy): that node publishes its own transitions.
      if (a.status !== to) this.counters.silent++;
      this.setStatus(a, to);
      a.status_code = code;
      return;
    }
    this.transition(a, to, code, reason, cause, events);
  }

  /**
   * Applies a status and code; pushes one status event when the status changed, or (codeEvent) when
   * only the code changed to a new non-zero value.
   */
  private transition(
    a: AgentRow,
    to: ConnectionStatus,
    code: number,
    reason: StatusReason,
    cause: EventCause,
    events: AgentEvent[],
    codeEvent = false,
  ): void {
    const previous = a.status;
    const previousCode = a.status_code;
    a.status_code = code;
    if (previous !== to) {
      this.setStatus(a, to);
      this.emitStatus(a, { previous, current: to, code, reason }, cause, events);
    } else if (codeEvent && code !== 0 && code !== previousCode) {
      this.emitStatus(a, { previous, current: to, code, reason, codeOnly: true }, cause, events);
    }
  }

  private emitStatus(a: AgentRow, ch: Parameters<typeof statusChangeEvent>[2], cause: EventCause, events: AgentEvent[]): void {
    this.counters.statusEvents++;
    events.push(statusChangeEvent(this.managerNode, a, ch, cause));
  }

  private keepalive(a: AgentRow, groupConfigStatus: string | null, cause: EventCause, events: AgentEvent[]): void {
    this.counters.keepaliveEvents++;
    events.push(keepaliveEvent(this.managerNode, a, groupConfigStatus, cause));
  }

  /**
   * The record an UPDATE of wazuh-db changes — none for an agent removed lately and not seen since:
   * wazuh-db answers `ok` to an UPDATE that matched no row (its statement ran), and remoted sends a
   * removed agent's keepalives until it reloads client.keys, seconds later. Taken as a change, such a
   * keepalive brought the agent back, `unknown → active`, while wazuh-db had no row for it. (While the
   * table holds every agent wazuh-db listed, an UPDATE of an agent it does not hold never comes here:
   * apply holds it, see `holds`.)
   */
  private updated(id: number, t: Touch, status = true): AgentRow | null {
    if (!this.agents.has(id) && this.removals.has(id)) {
      this.counters.afterRemoval++;
      return null;
    }
    const a = this.touch(id, t);
    if (a && status) this.agents.setUpdateStart(a.slot, this.sinceEpoch(t.start)); // `status`: it writes connection_status
    return a;
  }

  /** An UPDATE whose request began after `ns` was applied to the agent (see apply). */
  private superseded(id: number, ns: bigint): boolean {
    const s = this.agents.slotOf(id);
    return s !== undefined && this.agents.updateStart(s) > this.sinceEpoch(ns); // NaN: none yet
  }

  /** The agent's record, noting that a request changed it. */
  private touch(id: number, t: Touch): AgentRow | null {
    const a = this.record(id);
    if (a) this.agents.setTouch(a.slot, this.sinceEpoch(t.start), this.sinceEpoch(t.end));
    return a;
  }

  /** A change from a request that started after `ns` was applied: `ns`'s view is older. */
  private newerThan(id: number, ns: bigint): boolean {
    const s = this.agents.slotOf(id);
    if (s !== undefined && this.agents.touchStart(s) > this.sinceEpoch(ns)) return true; // NaN: never touched
    const r = this.removalOf(id);
    return r !== undefined && r.start > this.sinceEpoch(ns);
  }

  /** A change was applied whose round trip was not over before `ns`: a listing made at `ns` may predate it. */
  private changedSince(id: number, ns: bigint): boolean {
    const s = this.agents.slotOf(id);
    return (s !== undefined && this.agents.touchEnd(s) >= this.sinceEpoch(ns)) || this.removedSince(id, ns);
  }

  /** The agent's removal was not over before `ns`: a view of wazuh-db at `ns` predates it. */
  private removedSince(id: number, ns: bigint): boolean {
    const r = this.removalOf(id);
    return r !== undefined && r.end >= this.sinceEpoch(ns);
  }

  /**
   * The agent's last removal, while it stands: the agent is not tracked, or only as client.keys or an
   * older view named it since (no captured request touched it after the removal). Registered again —
   * a captured insert-agent — it is a new agent, and the removal no longer counts.
   */
  private removalOf(id: number): { start: number; end: number } | undefined {
    const r = this.removals.get(id);
    if (r === undefined) return undefined;
    const s = this.agents.slotOf(id);
    return s !== undefined && this.agents.touchStart(s) >= r.start ? undefined : r; // NaN: never touched
  }

  private sinceEpoch(ns: bigint): number {
    return Number(ns - this.epochNs);
  }

  private record(id: number): AgentRow | null {
    let a = this.agents.get(id);
    if (!a) {
      // The decoder lets no other id through; this keeps every agent's id a subject token whatever the caller.
      if (!isAgentId(id)) return null;
      if (this.agents.size >= this.maxAgents) {
        this.counters.overflow++;
        return null;
      }
      a = this.agents.add(id);
      this.byStatus.set('unknown', (this.byStatus.get('unknown') ?? 0) + 1);
    }
    return a;
  }

  /** Forget a removed agent, remembering when it was removed (`removals`). */
  private forget(a: AgentRow, removal: Touch): void {
    this.byStatus.set(a.status, (this.byStatus.get(a.status) ?? 1) - 1);
    this.agents.delete(a.id);
    this.rememberRemoval(a.id, removal);
  }

  private rememberRemoval(id: number, removal: Touch): void {
    const end = this.sinceEpoch(removal.end);
    this.removals.delete(id); // re-inserted last: the map stays (about) oldest first
    this.removals.set(id, { start: this.sinceEpoch(removal.start), end });
    for (const [old, r] of this.removals) {
      if (r.end >= end - REMOVAL_MEMORY_NS && this.removals.size <= MAX_REMOVALS) break;
      this.removals.delete(old);
    }
  }

  private setStatus(a: AgentRow, to: ConnectionStatus): void {
    if (a.status === to) return;
    this.byStatus.set(a.status, (this.byStatus.get(a.status) ?? 1) - 1);
    this.byStatus.set(to, (this.byStatus.get(to) ?? 0) + 1);
    a.status = to;
  }
}

function agentOf(r: WdbRequest): number | null {
  switch (r.cmd) {
    case 'update-agent-data':
      return r.data.id;
    case 'update-keepalive':
    case 'update-connection-status':
    case 'update-status-code':
    case 'insert-agent':
    case 'delete-agent':
    case 'update-agent-name':
    case 'get-agent-info':
      return r.id;
    default:
      return null;
  }
}

function syncOf(r: WdbRequest): string | null {
  switch (r.cmd) {
    case 'update-agent-data':
      return r.data.sync_status ?? null;
    case 'update-keepalive':
    case 'update-connection-status':
    case 'update-status-code':
    case 'reset-agents-connection':
    case 'disconnect-agents':
      return r.sync_status;
    default:
      return null;
  }
}

/** Columns of a wazuh-db row the table keeps (never the status: callers decide about that). */
function copyRow(a: AgentRow, row: AgentSyncRow): void {
  if (row.name !== undefined) a.name = row.name;
  // wazuh-db's `ip` is the last live address; register_ip is a fallback only when it is one too.
  const ip = liveAddress(row.ip) ?? (a.ip === null ? liveAddress(row.register_ip) : null);
  if (ip !== null) a.ip = ip;
  if (row.last_keepalive !== undefined) a.last_keepalive = row.last_keepalive;
  // The words most agents share, interned (util/intern.ts): one copy for the fleet.
  const shared: ProfileChanges = {};
  if (row.version !== undefined) shared.version = intern(row.version);
  if (row.node_name !== undefined) shared.node = intern(row.node_name);
  if (row.sync_status !== undefined) shared.sync_status = intern(row.sync_status);
  if (row.group_config_status !== undefined) shared.group_config_status = intern(row.group_config_status);
  if (row.group !== undefined) shared.groups = row.group.split(',').filter((g) => g !== '').map((g) => intern(g));
  const os = pickOs({ name: intern(row.os_name), version: intern(row.os_version), platform: intern(row.os_platform), arch: intern(row.os_arch) });
  if (os) shared.os = sharedOs(os);
  a.share(shared);
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

/** A status learned from wazuh-db's own row: its code names the reason when it can, else initial_sync. */
function driftReason(to: ConnectionStatus, code: number): StatusReason {
  return to === 'disconnected' ? (codeReason(code) ?? 'initial_sync') : 'initial_sync';
}

/** Whether an update-agent-data names a shared column (Profile) whose value differs from the agent's. */
function dataDiffers(a: AgentRow, d: AgentDataUpdate): boolean {
  return (d.version !== undefined && d.version !== a.version) || (d.node_name !== undefined && d.node_name !== a.node)
    || (d.sync_status !== undefined && d.sync_status !== a.sync_status)
    || (d.group_config_status !== undefined && d.group_config_status !== a.group_config_status) || osDiffers(a.os, d);
}

/**
 * The shared columns an update-agent-data sets: those it names; a new os object only when it changed
 * (events share it: it is never changed in place). Field by field: written as spreads of conditional
 * literals it was ~7 % of the pipeline's cost of an agent's first keepalive (each spread a throwaway object and a runtime call).
 */
function dataChanges(os: AgentOs | null, d: AgentDataUpdate): ProfileChanges {
  const c: ProfileChanges = {};
  if (d.version !== undefined) c.version = d.version;
  if (d.node_name !== undefined) c.node = d.node_name;
  if (d.sync_status !== undefined) c.sync_status = d.sync_status;
  if (d.group_config_status !== undefined) c.group_config_status = d.group_config_status;
  if (osDiffers(os, d)) {
    const next: AgentOs = { ...os };
    if (d.os_name !== undefined) next.name = d.os_name;
    if (d.os_version !== undefined) next.version = d.os_version;
    if (d.os_platform !== undefined) next.platform = d.os_platform;
    if (d.os_arch !== undefined) next.arch = d.os_arch;
    c.os = sharedOs(next);
  }
  return c;
}

/** Whether an update-agent-data names an os field that differs from what the agent has. */
function osDiffers(os: AgentOs | null, d: AgentDataUpdate): boolean {
  return (d.os_name !== undefined && d.os_name !== os?.name) || (d.os_version !== undefined && d.os_version !== os?.version)
    || (d.os_platform !== undefined && d.os_platform !== os?.platform) || (d.os_arch !== undefined && d.os_arch !== os?.arch);
}

/**
 * One os object for the agents that run the same system (most of a fleet): never changed in place (the
 * state replaces an agent's), so records and events share it, and the JSON of it is made once
 * (publish/event-json.ts). Bounded like intern().
 */
const osPool = new SharedPool<AgentOs>();

function sharedOs(os: AgentOs | null): AgentOs | null {
  if (os === null) return null;
  return osPool.of(`${os.name ?? '\u0001'}\u0000${os.version ?? '\u0001'}\u0000${os.platform ?? '\u0001'}\u0000${os.arch ?? '\u0001'}`, () => os);
}

function pickOs(os: AgentOs): AgentOs | null {
  const out: AgentOs = {};
  if (typeof os.name === 'string') out.name = os.name;
  if (typeof os.version === 'string') out.version = os.version;
  if (typeof os.platform === 'string') out.platform = os.platform;
  if (typeof os.arch === 'string') out.arch = os.arch;
  return Object.keys(out).length > 0 ? out : null;
}

/** Drops the oldest entries `which` picks until at most `max` are left. */
function dropOldest<T>(list: T[], which: (x: T) => boolean, max: number): void {
  let n = 0;
  for (const x of list) if (which(x)) n++;
  for (let i = 0; n > max && i < list.length;) {
    if (which(list[i])) {
      list.splice(i, 1);
      n--;
    } else i++;
  }
}
