// A keepalive event's JSON, built as a fixed shape (one is built per keepalive): the same text
// JSON.stringify gives, key for key, without walking the object. Strings go through
// JSON.stringify (escaping is its business); everything else is a number, a constant or null.
// test/event-json.test.ts holds it equal to JSON.stringify.
//
// Most of a keepalive repeats from one to the next — the version, the os, the group and sync
// statuses, the node and the source are shared by thousands of agents — so those runs of the
// text are remembered whole, keyed by the values themselves (bounded), and a keepalive costs a
// few lookups and one concatenation.
import type { KeepaliveEvent, StatusChangeEvent } from '../types.js';

/** Characters JSON leaves as they are (printable ASCII but `"` and `\`): such a string is quoted, not escaped. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** Strings quoted before (versions, statuses, os fields, nodes: values agents share), bounded. */
const quoted = new Map<string, string>();
const QUOTED_MAX = 65_536;

function q(s: string | null | undefined): string {
  if (s === null || s === undefined) return 'null';
  let j = quoted.get(s);
  if (j === undefined) {
    j = flat(`"${inner(s)}"`);
    if (quoted.size >= QUOTED_MAX) quoted.clear();
    quoted.set(s, j);
  }
  return j;
}

/** The os objects are shared and never changed in place (the state replaces them): their JSON is kept with them. */
const osTexts = new WeakMap<object, string>();

function osJson(os: KeepaliveEvent['os']): string {
  if (os === null) return 'null';
  let out = osTexts.get(os);
  if (out !== undefined) return out;
  out = '';
  // In the order the state builds it (name, version, platform, arch); absent keys are left out.
  for (const k of Object.keys(os) as (keyof typeof os)[]) {
    const v = os[k];
    if (v === undefined) continue;
    out += `${out ? ',' : ''}${JSON.stringify(k)}:${q(v)}`;
  }
  out = flat(`{${out}}`);
  osTexts.set(os, out);
  return out;
}

/** `"version":…,"os":…,"group_config_status":…,"sync_status":…` by its four values. */
type Middles = Map<string | null, Map<object | null, Map<string | null, Map<string | null, string>>>>;
const middles: Middles = new Map();
/** `"manager_node":…,"source":…}` by its two values. */
const ends = new Map<string, Map<string, string>>();
/** Runs remembered, all levels together: past this, everything is forgotten (hostile values cannot grow it). */
let runs = 0;
const RUNS_MAX = 4096;

function remembered(): boolean {
  if (++runs <= RUNS_MAX) return true;
  runs = 1;
  middles.clear();
  ends.clear();
  return false;
}

function middle(ev: KeepaliveEvent): string {
  // Four plain lookups (no closure made per call: this runs once a keepalive).
  const byOs = middles.get(ev.version);
  const byGroup = byOs?.get(ev.os);
  const bySync = byGroup?.get(ev.group_config_status);
  const hit = bySync?.get(ev.sync_status);
  if (hit !== undefined) return hit;
  const text = flat(`"version":${q(ev.version)},"os":${osJson(ev.os)},"group_config_status":${q(ev.group_config_status)},"sync_status":${q(ev.sync_status)}`);
  if (!remembered()) return text;
  let a = middles.get(ev.version);
  if (!a) middles.set(ev.version, (a = new Map()));
  let b = a.get(ev.os);
  if (!b) a.set(ev.os, (b = new Map()));
  let c = b.get(ev.group_config_status);
  if (!c) b.set(ev.group_config_status, (c = new Map()));
  c.set(ev.sync_status, text);
  return text;
}

function end(ev: KeepaliveEvent): string {
  const hit = ends.get(ev.manager_node)?.get(ev.source);
  if (hit !== undefined) return hit;
  const text = flat(`"manager_node":${q(ev.manager_node)},"source":${q(ev.source)}}`);
  if (!remembered()) return text;
  let a = ends.get(ev.manager_node);
  if (!a) ends.set(ev.manager_node, (a = new Map()));
  a.set(ev.source, text);
  return text;
}

/** The pieces keepaliveJsonAt writes: always this many. */
export const KEEPALIVE_PIECES = 18;

export function keepaliveJson(ev: KeepaliveEvent): string {
  keepaliveJsonAt(ev, scratch, 0); // written over, never emptied: emptied, its store was made again each call
  return scratch.join('');
}
const scratch: string[] = new Array<string>(KEEPALIVE_PIECES).fill('');

/**
 * The same text as keepaliveJson, as pieces written at out[at], …, out[at + KEEPALIVE_PIECES - 1]
 * (at ≤ out.length); returns its length. A batch joins the pieces of all its events once: no string of
 * each event is made and copied again (with the intermediate strings of building it, ~800 bytes of
 * garbage a keepalive). The quotes around the event's own strings are in the constant pieces beside
 * them, so a plain string is a piece as it is: quoted, it was a new two-level rope for the join to walk.
 */
export function keepaliveJsonAt(ev: KeepaliveEvent, out: string[], at: number): number {
  const id = inner(ev.event_id);
  const agent = inner(ev.agent_id);
  const name = ev.agent_name === null ? '' : inner(ev.agent_name);
  const ip = ev.ip_address === null ? '' : inner(ev.ip_address);
  const pName = ev.agent_name === null ? P_NAME_NULL : P_NAME;
  const pIp = P_IP[(ev.agent_name === null ? 0 : 2) + (ev.ip_address === null ? 0 : 1)];
  const pStatus = ev.ip_address === null ? P_STATUS : P_STATUS_Q;
  const status = q(ev.status);
  const mid = middle(ev);
  const ts = JSON.stringify(ev.timestamp);
  const time = inner(ev.time);
  const tail = end(ev);
  out[at] = P_ID; out[at + 1] = id; out[at + 2] = P_AGENT; out[at + 3] = agent; out[at + 4] = pName; out[at + 5] = name;
  out[at + 6] = pIp; out[at + 7] = ip; out[at + 8] = pStatus; out[at + 9] = status; out[at + 10] = ','; out[at + 11] = mid;
  out[at + 12] = P_TS; out[at + 13] = ts; out[at + 14] = P_TIME; out[at + 15] = time; out[at + 16] = P_TIME_END; out[at + 17] = tail;
  return FIXED + id.length + agent.length + pName.length + name.length + pIp.length + ip.length + pStatus.length + status.length
    + mid.length + ts.length + time.length + tail.length;
}
const P_ID = '{"event_id":"';
const P_AGENT = '","event_type":"keepalive","agent_id":"';
const P_NAME = '","agent_name":"';
const P_NAME_NULL = '","agent_name":null';
/** Closes the name's quotes (if it has them) and opens the address's (if it has one): [name?, ip?]. */
const P_IP = [',"ip_address":null', ',"ip_address":"', '","ip_address":null', '","ip_address":"'];
const P_STATUS = ',"status":';
const P_STATUS_Q = '","status":';
const P_TS = ',"timestamp":';
const P_TIME = ',"time":"';
const P_TIME_END = '",';
const FIXED = P_ID.length + P_AGENT.length + 1 + P_TS.length + P_TIME.length + P_TIME_END.length;

/**
 * A status change's JSON (state/events.ts statusChangeEvent makes every one, keys in this order), the
 * same text as JSON.stringify: at a manager's restart every agent's first keepalive is one, and walked
 * by JSON.stringify each was ~4 % of the tap's work for it. The statuses and the reason, of the tap's
 * own few words, are quoted once and remembered (q); everything else is escaped where needed (inner),
 * never remembered: a label or a source a process chose would fill and empty the cache the keepalives
 * share (review helper-86).
 */
export function statusJson(ev: StatusChangeEvent): string {
  return `{"event_id":"${inner(ev.event_id)}","event_type":"status_change","agent_id":"${inner(ev.agent_id)}","agent_name":${
    ev.agent_name === null ? 'null' : `"${inner(ev.agent_name)}"`},"previous_status":${q(ev.previous_status)},"current_status":${
    q(ev.current_status)},"status_code":${JSON.stringify(ev.status_code)},"reason":${q(ev.reason)},"ip_address":${
    ev.ip_address === null ? 'null' : `"${inner(ev.ip_address)}"`},"timestamp":${JSON.stringify(ev.timestamp)},"time":"${
    inner(ev.time)}","manager_node":"${inner(ev.manager_node)}","source":"${inner(ev.source)}","sync_status":${
    ev.sync_status === null ? 'null' : `"${inner(ev.sync_status)}"`}}`;
}

/**
 * What goes between a string's quotes in JSON: the string itself when nothing in it needs escaping.
 * An agent's own values (its name, its address) go through it unremembered: kept in `quoted`, a fleet
 * larger than QUOTED_MAX emptied the cache every few seconds and every quote outlived a scavenge.
 */
function inner(s: string): string {
  return PLAIN.test(s) ? s : JSON.stringify(s).slice(1, -1);
}

/**
 * A flat copy of s. A string built by concatenation is a tree of pieces (a rope) until something
 * flattens it, and a join walks the tree again every time: the texts kept and joined at every
 * keepalive (the middle, the end, an os, a quoted status) are flattened once, when kept. A join of
 * ~130 pieces, a batch of 7 keepalives, took 3.9 µs with ropes among them, 2.2 µs with flat strings.
 */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

