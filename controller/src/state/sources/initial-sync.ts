// Learns every agent's status, name and address at start (SPEC §3) by asking wazuh-db itself, as a
// client of its own socket `<home>/queue/db/wdb` (like Wazuh's Python framework does), read-only:
//   global get-all-agents last_id <n>      paged until the reply is `ok` (each `due` asks again)
//   global get-agent-info <id>             for each agent: status, status_code, name, ip, version, os…
// or, for a light look (`held`), between the two: the ids by connection status, and by status on each node
//   global get-agents-by-connection-status <last_id> <status>             paged, each of the four statuses
//   global get-agents-by-connection-status <last_id> <status> <node> -1   paged, the same on each node held
// and get-agent-info only for the agents the caller does not hold as listed.
// Bounded in time and in count; a missing socket or a wazuh-db that stops answering is not an error:
// the result says what was learned and why it stopped. `internal_key` (in every get-agent-info row) is
// dropped while parsing: the rows returned hold only AgentSyncRow's columns. Out of file descriptors
// (EMFILE, ENFILE), the connection is tried again every half second while the sync's time lasts.

import net from 'node:net';
import path from 'node:path';
import { parseAgentRows, parseIdList } from '../../decode/wdb-rows.js';
import type { AgentSyncRow, WazuhConnectionStatus } from '../../types.js';
import type { AgentStateTable } from '../agents.js';
import { encodeFrame, FrameReader, parseIdPageText, parseReply } from './wdb-wire.js';
import {
  type HeldAgents, idsToDescribe, isListableNode, LISTED_STATUSES, type Listings, MAX_LISTED_NODES,
} from './listed-statuses.js';
import { isFdExhaustion } from '../../util/errno.js';
import { withPathInView } from '../../util/in-view.js';

const FD_RETRY_MS = 500;

export interface InitialSyncOptions {
  /** The Wazuh home (`/var/ossec`, 5.x `/var/wazuh-manager`): the socket is `<home>/queue/db/wdb`. */
  home?: string;
  /** The socket path itself (overrides home). */
  socketPath?: string;
  /** Whole sync, milliseconds. Default 15,000. */
  timeoutMs?: number;
  /** One round trip, milliseconds. Default 3,000. */
  queryTimeoutMs?: number;
  /** Agents asked about at most. Default 2,000,000. */
  maxAgents?: number;
  /** get-agent-info requests written before their replies are read (one connection). Default 64. */
  pipeline?: number;
  /**
   * Takes the rows as wazuh-db answers, in chunks of `rowsChunk` or a little more (what one pipeline
   * of replies brings; the last chunk shorter), instead of `agents`, which then stays empty: a fleet's
   * rows are never all held. Awaited before more replies are read, its time not counted in
   * `timeoutMs`; `startedNs` is the result's. The rows of a sync that stopped early are handed too.
   * Where it throws, the sync stops and initialSync throws that error: it is the caller's, not a
   * reason of wazuh-db's.
   */
  onRows?: (rows: AgentSyncRow[], startedNs: bigint) => void | Promise<void>;
  /** Rows gathered before onRows is called. Default ROWS_CHUNK. */
  rowsChunk?: number;
  /**
   * A light look: after the listing of ids, wazuh-db's listings by connection status (four short page
   * runs, `get-agents-by-connection-status`), and by status on each node `held` has agents on,
   * and only the agents it does not hold as listed are described (listed-statuses.ts). For a table a
   * complete look filled moments ago: 100,000 agents were 100,000 get-agent-info requests more at each
   * start. Listings wazuh-db will not give: every agent is described.
   */
  held?: HeldAgents;
}

/**
 * Rows handed to onRows at a time. Held until then, a listing of 100,000 agents was ~40 MB of rows
 * at once, which the old generation grew to hold and kept committed after them (docs/performance.md).
 */
export const ROWS_CHUNK = 4096;

export interface InitialSyncResult {
  /** One row per agent wazuh-db described (agent 0, the manager, excluded); empty with onRows. */
  agents: AgentSyncRow[];
  /** Agents wazuh-db described: in `agents`, or handed to onRows. */
  described: number;
  /** Every agent id wazuh-db listed (may be more than `described` when the sync stopped early). */
  ids: number[];
  /** Listed agents not described: a light look found them with the status the caller holds. */
  skipped: number;
  /** Why a light look described every agent after all (wazuh-db would not list by status); else null. */
  statusesRefused: string | null;
  /** Every listed agent was described (a light look: or left as the caller holds it). */
  complete: boolean;
  /** Why it is not complete (null when complete). */
  reason: string | null;
  queries: number;
  /** CLOCK_MONOTONIC ns when the first query was sent (the capture clock): pass to table.resync. */
  startedNs: bigint;
  elapsedMs: number;
}

export function wdbSocketPath(home: string): string {
  return path.join(home, 'queue', 'db', 'wdb');
}

class WdbClient {
  private readonly reader = new FrameReader();
  private readonly waiting: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private readonly early: string[] = [];
  private failure: Error | null = null;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      let frames: string[];
      try {
        frames = this.reader.push(chunk);
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      for (const f of frames) {
        const w = this.waiting.shift();
        if (w) w.resolve(f);
        else this.early.push(f);
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('wazuh-db closed the connection')));
  }

  static connect(file: string, timeoutMs: number): Promise<WdbClient> {
    return new Promise((resolve, reject) => {
      // Below a container's root the socket is looked up as the container resolves the path
      // (util/in-view.ts); connect(2) does its lookup within createConnection, through the descriptor.
      let via = file;
      const sock = withPathInView(file, (p) => { via = p; return net.createConnection({ path: p }); });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new WdbClient(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        if (via !== file) e.message = e.message.split(via).join(file); // the path the user gave, not the descriptor's
        reject(e);
      });
    });
  }

  send(text: string): void {
    if (this.failure) throw this.failure;
    this.sock.write(encodeFrame(text));
  }

  /** Several requests in one write: a fleet's get-agent-info, 64 at a time, was a syscall each (a tenth of the tap's CPU while they went). */
  sendAll(texts: readonly string[]): void {
    if (this.failure) throw this.failure;
    this.sock.write(texts.length === 1 ? encodeFrame(texts[0]) : Buffer.concat(texts.map(encodeFrame)));
  }

  /** The next reply frame, in order. */
  next(timeoutMs: number): Promise<string> {
    const e = this.early.shift();
    if (e !== undefined) return Promise.resolve(e);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        // Replies are matched by order: after a lost one the connection cannot be trusted.
        this.fail(new Error(`no reply within ${timeoutMs} ms`));
        reject(new Error(`no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (s: string) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiting.push(w);
    });
  }

  close(): void {
    this.failure ??= new Error('closed');
    this.sock.destroy();
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
    this.sock.destroy();
  }
}

export async function initialSync(opts: InitialSyncOptions): Promise<InitialSyncResult> {
  const file = opts.socketPath ?? wdbSocketPath(opts.home ?? '/var/ossec');
  const timeoutMs = Math.max(1, opts.timeoutMs ?? 15_000);
  const queryMs = Math.max(1, Math.min(opts.queryTimeoutMs ?? 3_000, timeoutMs));
  const maxAgents = Math.max(0, opts.maxAgents ?? 2_000_000);
  const pipeline = Math.max(1, Math.min(opts.pipeline ?? 64, 1024));
  const chunk = Math.max(1, opts.rowsChunk ?? ROWS_CHUNK);
  const t0 = performance.now();
  const startedNs = process.hrtime.bigint();
  const res: InitialSyncResult = { agents: [], described: 0, ids: [], skipped: 0, statusesRefused: null, complete: false, reason: null, queries: 0, startedNs, elapsedMs: 0 };
  // The time onRows takes (a caller waiting for the capture, say) is the caller's, not the sync's.
  let handMs = 0;
  const left = () => timeoutMs - (performance.now() - t0 - handMs);
  // With onRows, the rows go there a chunk at a time (`all`: whatever is left), never after it threw.
  let thrown: { error: unknown } | null = null;
  const hand = async (all: boolean): Promise<void> => {
    const n = res.agents.length;
    if (!opts.onRows || thrown !== null || n === 0 || (n < chunk && !all)) return;
    const rows = res.agents.splice(0);
    res.described += rows.length;
    const t = performance.now();
    try {
      await opts.onRows(rows, startedNs);
    } catch (e) {
      thrown = { error: e };
      throw e;
    } finally {
      handMs += performance.now() - t;
    }
  };

  let reason: string | null;
  const client = await connectWdb(file, queryMs, left);
  if (typeof client === 'string') reason = client;
  else {
    try {
      reason = await listAndDescribe(client, res, { maxAgents, pipeline, queryMs, left, hand, held: opts.held });
    } catch (e) {
      reason = (e as Error).message;
    } finally {
      client.close();
    }
  }
  // The rows of a sync that stopped early are handed over too: what wazuh-db said is applied.
  await hand(true).catch(() => {});
  if (thrown !== null) throw (thrown as { error: unknown }).error;
  if (!opts.onRows) res.described = res.agents.length;
  res.complete = reason === null;
  res.reason = reason;
  res.elapsedMs = Math.round(performance.now() - t0);
  return res;
}

/** Lists every agent id into `res.ids`, then describes each into `res.agents`: null, or why it stopped. */
async function listAndDescribe(
  client: WdbClient, res: InitialSyncResult,
  o: {
    maxAgents: number; pipeline: number; queryMs: number; left: () => number; hand: (all: boolean) => Promise<void>;
    held?: HeldAgents;
  },
): Promise<string | null> {
  const { maxAgents, queryMs, left } = o;
  // 1. Every agent id, page by page.
  const seen = new Set<number>();
  const listed = await listIds(client, res, (last) => `global get-all-agents last_id ${last}`, 'get-all-agents', queryMs, left, (id) => {
    if (seen.has(id)) return null;
    if (seen.size >= maxAgents) return `more than ${maxAgents} agents`;
    seen.add(id);
    res.ids.push(id);
    return null;
  });
  seen.clear();
  if (listed !== null) return listed;

  // 2. A light look: which of them to describe.
  let ids: readonly number[] = res.ids;
  if (o.held) {
    const light = await listLightly(client, res, o.held, queryMs, left);
    if (typeof light === 'string') return light; // out of time
    if (light !== null) {
      ids = light;
      res.skipped = res.ids.length - ids.length;
    }
  }

  // 3. Each agent's row, several requests in flight on the one connection.
  const d = await describeEach(client, ids, o.pipeline, queryMs, left, (n) => { res.queries += n; }, res.agents, [], () => o.hand(false));
  if (d.stopped !== null) return d.stopped;
  const described = res.described + res.agents.length;
  return described === ids.length ? null : `${ids.length - described} agents were not described`;
}

/**
 * The ids of `res.ids` a light look describes (listed-statuses.ts), from wazuh-db's listings by status
 * and by status on each node the caller holds agents on; null: a listing was refused
 * (`res.statusesRefused` says which), every agent is described; a string: out of time.
 */
async function listLightly(
  client: WdbClient, res: InitialSyncResult, held: HeldAgents, queryMs: number, left: () => number,
): Promise<number[] | string | null> {
  const list = async (what: string, query: (last: number) => string): Promise<number[] | string | null> => {
    const these: number[] = [];
    const why = await listIds(client, res, query, what, queryMs, left, (id) => {
      these.push(id);
      return these.length > res.ids.length + 65_536 ? `more agents in ${what} than agents listed` : null;
    });
    if (why === null) return these;
    if (left() <= 0) return why;
    res.statusesRefused = why; // a wazuh-db without it, an answer not understood
    return null;
  };
  // Each of the four statuses, on every node (null) or on one.
  const byStatus = async (node: string | null): Promise<Listings | string | null> => {
    const out = new Map<WazuhConnectionStatus, number[]>();
    for (const status of LISTED_STATUSES) {
      const on = node === null ? '' : ` ${node}`;
      const limit = node === null ? '' : ' -1'; // remoted's form: every agent of the node
      const these = await list(`get-agents-by-connection-status ${status}${on}`,
        (last) => `global get-agents-by-connection-status ${last} ${status}${on}${limit}`);
      if (these === null || typeof these === 'string') return these;
      out.set(status, these);
    }
    return out;
  };
  const listings = await byStatus(null);
  if (listings === null || typeof listings === 'string') return listings;
  // Each status again on each node the caller's agents are on (a few in a cluster; one, or none, alone):
  // an agent on a node not listed here (past MAX_LISTED_NODES, or a name no command can carry) is described.
  const byNode = new Map<string, Listings>();
  for (const node of held.nodes()) {
    if (byNode.size >= MAX_LISTED_NODES) break;
    if (!isListableNode(node)) continue;
    const these = await byStatus(node);
    if (these === null || typeof these === 'string') return these;
    byNode.set(node, these);
  }
  return idsToDescribe(res.ids, listings, byNode, held);
}

/**
 * A listing of ids, page by page from last id 0 while wazuh-db answers `due`; each id (the manager's,
 * 0, left out) to `take`, which may stop it with a reason. Null, or why it stopped.
 */
async function listIds(
  client: WdbClient, res: InitialSyncResult, query: (lastId: number) => string, what: string, queryMs: number,
  left: () => number, take: (id: number) => string | null,
): Promise<string | null> {
  let lastId = 0;
  for (let page = 0; ; page++) {
    if (left() <= 0) return `timed out listing agents (${what})`;
    if (page > 1_000_000) return `too many pages (${what})`;
    client.send(query(lastId));
    res.queries++;
    const text = await client.next(Math.min(queryMs, left()));
    // An id no agent can have (decode/values.ts) is skipped: the table could never hold it anyway.
    const p = parseIdPageText(text, (payload) => parseIdList(payload, { skipInvalid: true }));
    if (p === null) {
      const reply = parseReply(text); // the refusal's text goes into the reason: redacted
      return `${what} answered ${reply.status}${reply.payload ? ` ${reply.payload.slice(0, 80)}` : ''}`;
    }
    let progressed = false;
    for (const id of p.ids) {
      if (id > lastId) {
        lastId = id;
        progressed = true;
      }
      if (id === 0) continue;
      const stop = take(id);
      if (stop !== null) return stop;
    }
    if (!p.more) return null;
    if (!progressed) return `${what} paging made no progress`;
  }
}

/** wazuh-db's answer about some agents (describeAgents). */
export interface AgentsDescribed {
  /** The rows of the agents wazuh-db has. */
  rows: AgentSyncRow[];
  /** The agents wazuh-db answered it has no row for. */
  absent: number[];
  /** Why not every agent was answered about (null: each was). */
  reason: string | null;
  /** CLOCK_MONOTONIC ns when the first query was sent. */
  startedNs: bigint;
}

/**
 * Asks wazuh-db about the agents `ids` (`global get-agent-info <id>`): the table's question when an
 * UPDATE names an agent it does not hold (AgentStateTable.takeUnheld). Bounded like initialSync.
 */
export async function describeAgents(opts: InitialSyncOptions & { ids: readonly number[] }): Promise<AgentsDescribed> {
  const file = opts.socketPath ?? wdbSocketPath(opts.home ?? '/var/ossec');
  const timeoutMs = Math.max(1, opts.timeoutMs ?? 5_000);
  const queryMs = Math.max(1, Math.min(opts.queryTimeoutMs ?? 3_000, timeoutMs));
  const pipeline = Math.max(1, Math.min(opts.pipeline ?? 64, 1024));
  const t0 = performance.now();
  const left = () => timeoutMs - (performance.now() - t0);
  const res: AgentsDescribed = { rows: [], absent: [], reason: null, startedNs: process.hrtime.bigint() };
  const client = await connectWdb(file, queryMs, left);
  if (typeof client === 'string') return { ...res, reason: client };
  try {
    const ids = opts.ids.filter((id) => id !== 0);
    const d = await describeEach(client, ids, pipeline, queryMs, left, () => {}, res.rows, res.absent);
    res.reason = d.stopped ?? (res.rows.length + res.absent.length === ids.length ? null : 'wazuh-db did not answer about every agent');
  } catch (e) {
    res.reason = (e as Error).message;
  } finally {
    client.close();
  }
  return res;
}

/** A connection to wazuh-db, or why there is none. Out of file descriptors, tried again every FD_RETRY_MS. */
async function connectWdb(file: string, queryMs: number, left: () => number): Promise<WdbClient | string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await WdbClient.connect(file, Math.max(1, Math.min(queryMs, left())));
    } catch (e) {
      if (isFdExhaustion(e) && attempt < 60 && left() > FD_RETRY_MS) {
        await new Promise((r) => setTimeout(r, FD_RETRY_MS));
        continue;
      }
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'wazuh-db socket not found' : code === 'ECONNREFUSED' ? 'wazuh-db is not listening'
        : isFdExhaustion(e) ? `out of file descriptors (${code}) after ${attempt} attempts` : (e as Error).message;
      return `${why}: ${file}`;
    }
  }
}

/**
 * Each agent's row (`global get-agent-info <id>`), `pipeline` requests in flight on the one connection:
 * the rows into `rows`, the ids wazuh-db answered `ok` without a row for into `absent`. `stopped`: why
 * it stopped before the last (time ran out); a failed connection throws.
 */
async function describeEach(
  client: WdbClient, ids: readonly number[], pipeline: number, queryMs: number, left: () => number,
  sent: (n: number) => void, rows: AgentSyncRow[], absent: number[] = [], afterBatch?: () => Promise<void>,
): Promise<{ stopped: string | null }> {
  let described = 0; // `rows` may be emptied by afterBatch as it goes
  for (let i = 0; i < ids.length; i += pipeline) {
    if (left() <= 0) return { stopped: `timed out after describing ${described} of ${ids.length} agents` };
    const batch = ids.slice(i, i + pipeline);
    client.sendAll(batch.map((id) => `global get-agent-info ${id}`));
    sent(batch.length);
    for (const id of batch) {
      // The rows straight from the reply, not through parseReply: parseAgentRows copies only the kept
      // columns (internal_key never comes out), and parseReply's redaction parsed and wrote each row
      // once more — a sixth of the tap's CPU while a fleet's rows came in. The text goes nowhere else.
      const text = await client.next(Math.max(1, Math.min(queryMs, left())));
      if (!text.startsWith('ok ')) continue; // `ok` alone has no rows: as unreadable ones, neither found nor absent
      const found = parseAgentRows(text.slice(3));
      const row = found?.find((r) => r.id === id);
      if (row) {
        rows.push(row);
        described++;
      } else if (found !== null && found.length === 0) absent.push(id);
    }
    await afterBatch?.();
  }
  return { stopped: null };
}

/**
 * Seeds the table with what the sync learned, without events: the first transition after start then
 * reports the right previous_status. Returns the number of agents seeded.
 */
export function seedTable(table: AgentStateTable, rows: readonly AgentSyncRow[]): number {
  let n = 0;
  for (const r of rows) {
    if (r.id === 0) continue;
    const os: { name?: string; version?: string; platform?: string; arch?: string } = {};
    if (r.os_name !== undefined) os.name = r.os_name;
    if (r.os_version !== undefined) os.version = r.os_version;
    if (r.os_platform !== undefined) os.platform = r.os_platform;
    if (r.os_arch !== undefined) os.arch = r.os_arch;
    table.setKnown({
      id: r.id,
      ...(r.name !== undefined && { name: r.name }),
      ...((r.ip ?? r.register_ip) !== undefined && { ip: r.ip ?? r.register_ip }),
      ...(r.connection_status !== undefined && { status: r.connection_status }),
      ...(r.status_code !== undefined && { status_code: r.status_code }),
      ...(r.version !== undefined && { version: r.version }),
      ...(Object.keys(os).length > 0 && { os }),
      ...(r.last_keepalive !== undefined && { last_keepalive: r.last_keepalive }),
      ...(r.node_name !== undefined && { node: r.node_name }),
      ...(r.group !== undefined && { groups: r.group.split(',').filter((g) => g !== '') }),
      ...(r.sync_status !== undefined && { sync_status: r.sync_status }),
      ...(r.group_config_status !== undefined && { group_config_status: r.group_config_status }),
    });
    n++;
  }
  return n;
}
