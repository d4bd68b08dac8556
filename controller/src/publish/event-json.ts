// A keepalive event's JSON, built as a fixed shape (one is built per keepalive): the same text
// JSON.stringify gives, key for key, without walking the object. Strings go through
// JSON.stringify (escaping is its business); everything else is a number, a constant or null.
// test/event-json.test.ts holds it equal to JSON.stringify.
//
// Most of a keepalive repeats from one to the next — the version, the os, the group and sync
// statuses, the node and the source are shared by thousands of agents — so those runs of the
// text are remembered whole, keyed by the values themselves (bounded), and a keepalive costs a
// few lookups and one concatenation.
import type { KeepaliveEvent } from '../types.js';

/** Characters JSON leaves as they are (printable ASCII but `"` and `\`): such a string is quoted, not escaped. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** Strings quoted before (versions, statuses, os fields, nodes: values agents share), bounded. */
const quoted = new Map<string, string>();
const QUOTED_MAX = 65_536;

function q(s: string | null | undefined): string {
  if (s === null || s === undefined) return 'null';
  let j = quoted.get(s);
  if (j === undefined) {
    j = q1(s);
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
  out = `{${out}}`;
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
  const text = `"version":${q(ev.version)},"os":${osJson(ev.os)},"group_config_status":${q(ev.group_config_status)},"sync_status":${q(ev.sync_status)}`;
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
  const text = `"manager_node":${q(ev.manager_node)},"source":${q(ev.source)}}`;
  if (!remembered()) return text;
  let a = ends.get(ev.manager_node);
  if (!a) ends.set(ev.manager_node, (a = new Map()));
  a.set(ev.source, text);
  return text;
}

/** Events of one batch share their millisecond: the last time quoted is kept. */
let lastTime = '';
let lastTimeText = '""';

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
 * garbage a keepalive).
 */
export function keepaliveJsonAt(ev: KeepaliveEvent, out: string[], at: number): number {
  if (ev.time !== lastTime) {
    lastTimeText = q1(ev.time);
    lastTime = ev.time;
  }
  const id = q1(ev.event_id);
  const agent = q1(ev.agent_id);
  const name = qOnce(ev.agent_name);
  const ip = qOnce(ev.ip_address);
  const status = q(ev.status);
  const mid = middle(ev);
  const ts = JSON.stringify(ev.timestamp);
  const tail = end(ev);
  out[at] = P_ID; out[at + 1] = id; out[at + 2] = P_AGENT; out[at + 3] = agent; out[at + 4] = P_NAME; out[at + 5] = name;
  out[at + 6] = P_IP; out[at + 7] = ip; out[at + 8] = P_STATUS; out[at + 9] = status; out[at + 10] = ','; out[at + 11] = mid;
  out[at + 12] = P_TS; out[at + 13] = ts; out[at + 14] = P_TIME; out[at + 15] = lastTimeText; out[at + 16] = ','; out[at + 17] = tail;
  return FIXED + id.length + agent.length + name.length + ip.length + status.length + mid.length + ts.length + lastTimeText.length + tail.length;
}
const P_ID = '{"event_id":';
const P_AGENT = ',"event_type":"keepalive","agent_id":';
const P_NAME = ',"agent_name":';
const P_IP = ',"ip_address":';
const P_STATUS = ',"status":';
const P_TS = ',"timestamp":';
const P_TIME = ',"time":';
const FIXED = P_ID.length + P_AGENT.length + P_NAME.length + P_IP.length + P_STATUS.length + 1 + P_TS.length + P_TIME.length + 1;

/**
 * An agent's own value (its name, its address): quoted without remembering it. Remembered, a fleet
 * larger than QUOTED_MAX emptied the cache every few seconds and every quote outlived a scavenge.
 */
function qOnce(s: string | null): string {
  return s === null ? 'null' : q1(s);
}

/** A string seen once (an id, a time): quoted without remembering it. */
function q1(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}
