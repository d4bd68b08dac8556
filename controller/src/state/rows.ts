// The agent table's rows as columns by agent (util/id-slots.ts): a slot an agent in arrays of its
// values — its name, address, status and code, last keepalive, the profile it shares with the fleet, and
// the capture times of the last change a request made to it. One object an agent (84 bytes, and 8 more
// in the map by id; 136 before item 19, with boxed times) was the largest share of the heap V8 grows
// around at 100,000 agents; its columns are ~45 bytes (docs/performance.md, item 31).
// AgentRow is a cursor on one slot, made where a row is used and dropped at once (a young-generation
// object, never kept): the table's code reads and writes a row's fields as it did an object's.

import { CONNECTION_STATUSES, type AgentOs, type AgentRecord, type ConnectionStatus } from '../types.js';
import { SharedPool } from '../util/intern.js';
import { grownTo, IdSlots } from '../util/id-slots.js';

/** Agents without groups share one list (a fleet's records are most of the tap's memory). */
const NO_GROUPS: string[] = Object.freeze([]) as unknown as string[];

/**
 * What most of a fleet has in common — version, os, node, groups, sync and group-config status — as one
 * frozen object that every row with those values points to: one field a row instead of six (~40 bytes
 * an agent, 4 MB at 100,000). Never changed in place: a row that changes some of them points to another
 * (profileWith, all of an operation's changes at once), found again by its values. Bounded like
 * intern(): past PROFILES_MAX distinct ones the pool starts again, which costs sharing, never
 * correctness; a profile whose values are long (an agent's own text: its os and node may be 1 KB each)
 * is its row's alone, never pooled — a hostile agent's distinct values pinned the pool's keys of
 * kilobytes each (helper-74: 115 MB). With keys of 256 characters at most and 8,192 profiles, what one
 * agent's stream of distinct values pins is ~10 MB (14 of two-byte text; helper-75's probe).
 */
interface Profile {
  readonly version: string | null;
  readonly os: AgentOs | null;
  readonly node: string | null;
  readonly groups: string[];
  readonly sync_status: string | null;
  readonly group_config_status: string | null;
}

const PROFILES_MAX = 8192;
/** Keys longer than this (of an agent's own long text) are not pooled, as intern() keeps long strings out. */
const PROFILE_KEY_MAX = 256;
const profiles = new SharedPool<Profile>(PROFILES_MAX);
const NO_PROFILE: Profile = Object.freeze({ version: null, os: null, node: null, groups: NO_GROUPS, sync_status: null, group_config_status: null });

export type ProfileChanges = { -readonly [k in keyof Profile]?: Profile[k] };

/**
 * `p` with `changes` applied: `p` itself when they change nothing, else the pooled profile of those
 * values. Called once an operation (a row, a seed, an agent's new keepalive data), not once a field:
 * field by field, a new row made five throwaway profiles on its way to its own, and a fleet of a few
 * thousand distinct ones filled the pool with them (helper-74).
 */
function profileWith(p: Profile, changes: ProfileChanges): Profile {
  const next: { -readonly [k in keyof Profile]: Profile[k] } = { ...p, ...changes };
  if (next.groups.length === 0) next.groups = NO_GROUPS;
  if (next.version === p.version && next.os === p.os && next.node === p.node && sameList(next.groups, p.groups)
    && next.sync_status === p.sync_status && next.group_config_status === p.group_config_status) return p;
  const own = (): Profile => {
    if (next.groups !== NO_GROUPS) next.groups = Object.freeze([...next.groups]) as unknown as string[]; // shared: never changed
    return Object.freeze(next);
  };
  const os = next.os;
  const key = JSON.stringify([next.version, os && [os.name, os.version, os.platform, os.arch], next.node, next.groups,
    next.sync_status, next.group_config_status]);
  return key.length > PROFILE_KEY_MAX ? own() : profiles.of(key, own);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const STATUS_INDEX = Object.fromEntries(CONNECTION_STATUSES.map((st, i) => [st, i])) as Readonly<Record<ConnectionStatus, number>>;
const FIRST_SLOTS = 1024;

/**
 * Every row's columns. The capture times of the last change a request made to a row — its request's
 * and its reply's, and the request's of the last UPDATE applied to it — are nanoseconds after the
 * table's epoch (NaN: no request changed it yet), three doubles a row: numbers, not bigints (a bigint
 * was a new object each keepalive that lived ten seconds, to the next one, and so outlived the young
 * generation). Exact for 104 days after the table was made, then to 2 ns, 4 ns…: far below the time
 * between two syscalls compared here. A forgotten row's slot is used again (IdSlots).
 */
export class AgentRows {
  private readonly slots = new IdSlots();
  /** The columns, by slot (AgentRow reads and writes them). */
  readonly names: (string | null)[] = [];
  readonly ips: (string | null)[] = [];
  readonly profiles: Profile[] = [];
  statuses = new Uint8Array(FIRST_SLOTS);
  codes = new Float64Array(FIRST_SLOTS);
  /** Unix seconds; NaN: none. */
  keepalives = new Float64Array(FIRST_SLOTS);
  private times = new Float64Array(3 * FIRST_SLOTS).fill(Number.NaN);

  get size(): number {
    return this.slots.size;
  }

  has(id: number): boolean {
    return this.slots.of(id) !== undefined;
  }

  /** The agent's slot (for the capture times), or undefined. */
  slotOf(id: number): number | undefined {
    return this.slots.of(id);
  }

  /** The agent's status, without a cursor (the keepalive path asks it of every UPDATE); undefined: no row. */
  statusOf(id: number): ConnectionStatus | undefined {
    const s = this.slots.of(id);
    return s === undefined ? undefined : CONNECTION_STATUSES[this.statuses[s]];
  }

  /** The agent's cluster node, without a cursor; null: none known, or no row. */
  nodeOf(id: number): string | null {
    const s = this.slots.of(id);
    return s === undefined ? null : this.profiles[s].node;
  }

  /**
   * The nodes the agents are on, those with the most agents first: a light look lists the first few
   * (state/sources/listed-statuses.ts MAX_LISTED_NODES), and reads the rows of the others' agents.
   */
  nodes(): string[] {
    const counts = new Map<string, number>();
    for (const [, s] of this.slots.entries()) {
      const node = this.profiles[s].node;
      if (node !== null) counts.set(node, (counts.get(node) ?? 0) + 1);
    }
    return [...counts].sort((a, b) => b[1] - a[1]).map(([node]) => node);
  }

  get(id: number): AgentRow | undefined {
    const s = this.slots.of(id);
    return s === undefined ? undefined : new AgentRow(this, s, id);
  }

  /** A new row for `id` (which has none): status unknown, code 0, nothing else known, never touched. */
  add(id: number): AgentRow {
    const s = this.slots.add(id);
    const n = this.slots.length;
    this.statuses = grownTo(this.statuses, n);
    this.codes = grownTo(this.codes, n);
    this.keepalives = grownTo(this.keepalives, n);
    this.times = grownTo(this.times, 3 * n, Number.NaN);
    this.fill(s, null, null, NO_PROFILE);
    this.statuses[s] = STATUS_INDEX.unknown;
    this.codes[s] = 0;
    this.keepalives[s] = Number.NaN;
    this.times.fill(Number.NaN, 3 * s, 3 * s + 3);
    return new AgentRow(this, s, id);
  }

  /** Forgets the row (its cursors must not be used after). */
  delete(id: number): void {
    const s = this.slots.delete(id);
    if (s !== undefined) this.fill(s, null, null, NO_PROFILE); // nothing kept alive by a free slot
  }

  /** Every row, by id (the ids a manager hands out first, as IdMap). Not while rows are added or deleted. */
  *rows(): Generator<AgentRow> {
    for (const [id, s] of this.slots.entries()) yield new AgentRow(this, s, id);
  }

  touchStart(slot: number): number {
    return this.times[3 * slot];
  }

  touchEnd(slot: number): number {
    return this.times[3 * slot + 1];
  }

  /** The request time of the last UPDATE that wrote the status (superseded). */
  updateStart(slot: number): number {
    return this.times[3 * slot + 2];
  }

  setTouch(slot: number, start: number, end: number): void {
    this.times[3 * slot] = start;
    this.times[3 * slot + 1] = end;
  }

  setUpdateStart(slot: number, start: number): void {
    this.times[3 * slot + 2] = start;
  }

  /** Plain arrays filled in slot order, never with holes (V8 keeps them packed). */
  private fill(s: number, name: string | null, ip: string | null, p: Profile): void {
    if (s === this.names.length) {
      this.names.push(name);
      this.ips.push(ip);
      this.profiles.push(p);
    } else {
      this.names[s] = name;
      this.ips[s] = ip;
      this.profiles[s] = p;
    }
  }
}

/**
 * One row, read and written through its slot's columns. A setter given the value the row has changes
 * nothing (the keepalive path). Made where it is used, never kept past its row's delete (the slot goes
 * to the next new agent).
 */
export class AgentRow implements AgentRecord {
  constructor(private readonly t: AgentRows, readonly slot: number, readonly id: number) {}

  get name(): string | null { return this.t.names[this.slot]; }
  set name(v: string | null) { this.t.names[this.slot] = v; }
  get ip(): string | null { return this.t.ips[this.slot]; }
  set ip(v: string | null) { this.t.ips[this.slot] = v; }
  get status(): ConnectionStatus { return CONNECTION_STATUSES[this.t.statuses[this.slot]]; }
  set status(v: ConnectionStatus) { this.t.statuses[this.slot] = STATUS_INDEX[v]; }
  get status_code(): number { return this.t.codes[this.slot]; }
  set status_code(v: number) { this.t.codes[this.slot] = v; }
  get last_keepalive(): number | null {
    const v = this.t.keepalives[this.slot];
    return Number.isNaN(v) ? null : v;
  }

  set last_keepalive(v: number | null) { this.t.keepalives[this.slot] = v ?? Number.NaN; }

  /** Several of the shared columns at once (one profile looked up, not one a column). */
  share(changes: ProfileChanges): void {
    const p = this.t.profiles[this.slot];
    const next = profileWith(p, changes);
    if (next !== p) this.t.profiles[this.slot] = next;
  }

  private get p(): Profile { return this.t.profiles[this.slot]; }
  get version(): string | null { return this.p.version; }
  set version(v: string | null) { if (v !== this.p.version) this.share({ version: v }); }
  get os(): AgentOs | null { return this.p.os; }
  set os(v: AgentOs | null) { if (v !== this.p.os) this.share({ os: v }); }
  get node(): string | null { return this.p.node; }
  set node(v: string | null) { if (v !== this.p.node) this.share({ node: v }); }
  get groups(): string[] { return this.p.groups; }
  set groups(v: string[]) { if (!sameList(v, this.p.groups)) this.share({ groups: v }); }
  get sync_status(): string | null { return this.p.sync_status; }
  set sync_status(v: string | null) { if (v !== this.p.sync_status) this.share({ sync_status: v }); }
  get group_config_status(): string | null { return this.p.group_config_status; }
  set group_config_status(v: string | null) { if (v !== this.p.group_config_status) this.share({ group_config_status: v }); }
}

/** The record alone (a copy): what callers see of a row. */
export function recordOf(a: AgentRow): AgentRecord {
  return {
    id: a.id, name: a.name, ip: a.ip, status: a.status, status_code: a.status_code, version: a.version, os: a.os,
    last_keepalive: a.last_keepalive, node: a.node, groups: a.groups, sync_status: a.sync_status, group_config_status: a.group_config_status,
  };
}
