// How values look in published events. Pure: the same inputs always give the same text.

import { hash } from 'node:crypto';

/**
 * Wazuh's own agent id form: at least three digits (`001`, `1234`). Formatted for each event, not
 * kept: a text kept per agent was 3 MB at 100,000 agents, to save ~40 ns an event (formatting one: 41 ns here, reading a kept one 4).
 */
export function agentIdText(id: number): string {
  return String(id).padStart(3, '0');
}

const SOURCES: Readonly<Record<string, string>> = {
  'wazuh-remoted': 'remoted',
  'wazuh-monitord': 'monitord',
  'wazuh-authd': 'authd',
  'wazuh-modulesd': 'modulesd',
  'wazuh-analysisd': 'analysisd',
  'wazuh-db': 'wazuh-db',
  'wazuh-clusterd': 'clusterd',
  'wazuh-apid': 'apid',
  // wazuh-clusterd and wazuh-apid are Python; of the two only the cluster writes agent state.
  python3: 'clusterd',
  // 5.x: binaries `wazuh-manager-<daemon>`, comm cut to 15 characters (`wazuh-manager-` + one letter).
  'wazuh-manager-r': 'remoted',
  'wazuh-manager-d': 'wazuh-db',
  'wazuh-manager-c': 'clusterd',
  // `-m` is monitord or modulesd. Of the two only monitord changes agents' status (modulesd writes
  // agent 000, which is never published), so a status event with this comm comes from monitord.
  'wazuh-manager-m': 'monitord',
  // `-a` is analysisd, authd or apid: nothing tells them apart without the executable path.
  'wazuh-manager-a': 'wazuh-manager',
};

/** Full 5.x executable names (from /proc/<pid>/exe) resolve what the cut comm cannot. */
const EXE_PREFIX_5X = 'wazuh-manager-';

/**
 * The daemon that caused an event, from the requester's 15-character comm and, when the capture layer
 * resolved it, its executable's basename (which disambiguates 5.x `wazuh-manager-a`/`-m`).
 */
export function sourceOf(comm: string, exe?: string): string {
  // One per exchange, from a handful of (exe, comm) pairs: remembered.
  const byComm = sources.get(exe ?? '');
  const known = byComm?.get(comm);
  if (known !== undefined) return known;
  const src = sourceOfUncached(comm, exe);
  if (sources.size < 64 && (byComm?.size ?? 0) < 64) {
    if (byComm) byComm.set(comm, src);
    else sources.set(exe ?? '', new Map([[comm, src]]));
  }
  return src;
}
const sources = new Map<string, Map<string, string>>();

function sourceOfUncached(comm: string, exe?: string): string {
  if (typeof exe === 'string' && exe !== '') {
    const base = exe.slice(exe.lastIndexOf('/') + 1);
    if (base.startsWith(EXE_PREFIX_5X) && base.length > EXE_PREFIX_5X.length) {
      const daemon = base.slice(EXE_PREFIX_5X.length);
      if (/^[a-z]{1,32}$/.test(daemon)) return daemon === 'db' ? 'wazuh-db' : daemon;
    }
    if (base.startsWith('wazuh-') && Object.hasOwn(SOURCES, base)) return SOURCES[base];
  }
  if (Object.hasOwn(SOURCES, comm)) return SOURCES[comm];
  // Any other comm is whatever the process named itself (prctl): printable ASCII only, as comm is short.
  return comm.slice(0, 16).replace(/[^\x20-\x7e]/g, '?') || '?';
}

export interface EventTime {
  timestamp: number;
  time: string;
}

// Events of one poll often share their millisecond: the last formatted one is kept
// (toISOString was 3 % of the controller's time at 9,000 frames/s).
let lastMs = Number.NaN;
let lastIso = '';

export function eventTime(ms: number): EventTime {
  // A broken clock must not make toISOString throw in the middle of the pipeline.
  const t = Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? Math.trunc(ms) : 0;
  if (t !== lastMs) {
    lastIso = new Date(t).toISOString();
    lastMs = t;
  }
  return { timestamp: Math.floor(t / 1000), time: lastIso };
}

const nodeKeys = new Map<string, string>();
const STATUS_NIBBLE: Record<string, string> = { never_connected: '1', pending: '2', active: '3', disconnected: '4', unknown: '5' };

/**
 * A keepalive's event_id without hashing it (one is built per keepalive): a UUID-shaped id
 * (RFC 9562 version 8) laid out from what makes the keepalive itself — 24 bits of a hash of the
 * manager node (computed once), the agent's status, the agent id (30 bits: at most 999,999,999)
 * and the capture time in nanoseconds (64 bits). The same keepalive gives the same id (a replay is
 * de-duplicated by JetStream); two keepalives differ in agent or time. Status changes keep the
 * hashed id of eventId().
 */
export function keepaliveEventId(node: string, agentId: number, tsNs: bigint, status: string): string {
  let nk = nodeKeys.get(node);
  if (nk === undefined) {
    nk = hash('sha256', `keepalive\u0000${node}`, 'hex').slice(0, 6);
    if (nodeKeys.size < 64) nodeKeys.set(node, nk);
  }
  // xxxxxxxx-xxxx-8xxx-Vxxx-xxxxxxxxxxxx: node(6) status(1) id(8) | variant 10 + ts(62). Written as
  // characters into one buffer, and made a string once: with toString(16), padStart, slices and a
  // template it made ten strings to keep one (~780 bytes of garbage a keepalive).
  const b = ID;
  for (let i = 0; i < 6; i++) b[i] = nk.charCodeAt(i);
  b[6] = STATUS_NIBBLE_CODE.get(status) ?? 0x30; // '0': a status without a nibble (a Map: no inherited names)
  const id = agentId >>> 0; // ≤ 30 bits
  hexInto(b, 7, id >>> 28, 1);
  hexInto(b, 9, (id >>> 12) & 0xffff, 4);
  hexInto(b, 15, id & 0xfff, 3);
  // Monotonic nanoseconds since boot stay below 2^62 (146 years): 62 bits hold them. Below 2^53 (104
  // days) a number holds them exactly, and its two halves cost no BigInt.
  let hi: number;
  let lo: number;
  if (tsNs < TWO_53) {
    const n = Number(tsNs);
    hi = Math.floor(n / 4294967296);
    lo = n - hi * 4294967296;
  } else {
    const t = tsNs & 0x3fffffffffffffffn;
    hi = Number(t >> 32n);
    lo = Number(t & 0xffffffffn);
  }
  b[19] = HEX[8 | ((hi >>> 28) & 3)]; // the variant, 10, and the time's top two bits
  hexInto(b, 20, (hi >>> 16) & 0xfff, 3);
  hexInto(b, 24, hi & 0xffff, 4);
  hexInto(b, 28, lo, 8);
  return b.toString('latin1', 0, 36);
}

/**
 * A keepalive batch's event_id: the id of the keepalive that opened it, with `b` where a keepalive's
 * status nibble is (0–5 in every id keepaliveEventId lays out: never a keepalive's id). A keepalive
 * opens one batch at most, so the same batch always has the same id and two batches never share one —
 * without a SHA-256 a batch (one a round; ~1 µs warm, more in a cold round). Another id (a test's) is hashed.
 */
export function keepaliveBatchId(firstId: string): string {
  return firstId.length === 36 ? `${firstId.slice(0, 6)}b${firstId.slice(7)}` : eventId(['keepalive_batch', firstId]);
}

const TWO_53 = 2n ** 53n;
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const STATUS_NIBBLE_CODE = new Map(Object.entries(STATUS_NIBBLE).map(([k, v]) => [k, v.charCodeAt(0)]));
/** The id being written; its dashes never move. */
const ID = Buffer.from('xxxxxxxx-xxxx-8xxx-xxxx-xxxxxxxxxxxx', 'latin1');

/** `digits` hex digits of v (its low 4 × digits bits), most significant first, at b[at…]. */
function hexInto(b: Buffer, at: number, v: number, digits: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    b[at + i] = HEX[v & 15];
    v >>>= 4;
  }
}

/**
 * A UUID-shaped id (RFC 9562 version 8, "custom") hashed from what makes the event itself, so a replay
 * after a reconnect or restart derives the same id and JetStream de-duplicates it.
 */
export function eventId(parts: readonly (string | number | bigint)[]): string {
  // One-shot hash to hex: about three times faster than createHash().digest() at keepalive rates.
  const x = hash('sha256', parts.join('\u0000'), 'hex');
  const variant = ((parseInt(x[16], 16) & 0x3) | 0x8).toString(16);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-8${x.slice(13, 16)}-${variant}${x.slice(17, 20)}-${x.slice(20, 32)}`;
}
