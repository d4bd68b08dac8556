// The status an agent's spooled status change carries, read back when the spool is opened.
//
// A status change is written to the spool, then its line to the status journal (agents.status): two
// files, two writes. A tap killed between them (SIGKILL, a crash) leaves the spool with a change the
// journal lacks; the next start replays it to the consumers, yet compared wazuh-db with the journal's
// older status — and told the change again from the wrong previous_status, or not at all (found by
// test/chaos-e2e.test.ts: `was active, event says disconnected → active`). What an earlier run left
// in the spool is what the consumers are about to receive, so it is newer than the journal: the state
// part takes each agent's last spooled status over the journal's (agent/parts/state.ts).
//
// The same reader tells whether a value an earlier run saved for the KV bucket (kv.pending) is a status
// change the tap writes, before it is put with the tap's credentials (statusVerdict).
import { STATUS_REASONS, type ConnectionStatus, type StatusChangeEvent } from '../types.js';
import { isAgentIp, isAgentName, isConnectionStatus, isLabel, isStatusCode } from '../decode/values.js';
import { statusJson } from './event-json.js';
import { decrypt, type EncryptionKey } from './encryption.js';
import type { SpoolEntry } from './spool.js';

export interface SpooledStatus {
  agentId: number;
  status: ConnectionStatus;
  statusCode: number;
}

/**
 * The agent and status of a spooled status change, or null for any other record and for one that
 * cannot be read (encrypted with another key than today's, damaged): the journal's status stands.
 */
export function spooledStatus(e: Pick<SpoolEntry, 'kind' | 'subject' | 'body'>, key?: EncryptionKey): SpooledStatus | null {
  return readStatus(e, key)?.status ?? null;
}

/** The shortest sealed body: base64 of a nonce (12 bytes) and a tag (16), encryption.ts. */
const SEALED_MIN = 40;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * What a value read back from kv.pending (kv-latest.ts) is, before it is put into the KV bucket with
 * the tap's credentials: `take`, a status change of `agent` (its subject token, e.g. `001`) exactly as
 * the tap writes one under `prefix` — every field a value the tap makes, the text statusJson's, byte
 * for byte (no other field, key twice, order or spacing: review helper-93 K2); `unreadable`, a value
 * today's `encrypt_messages` setting cannot read — sealed while it was on, with another key, or
 * plain before it was turned on (not put in clear: K1); `refuse`, anything else.
 */
export function statusVerdict(agent: string, body: Uint8Array, prefix: string, key?: EncryptionKey): 'take' | 'unreadable' | 'refuse' {
  // A body that cannot be one is told without a thrown parse (a file of millions of them held the start).
  const plain = body[0] === 0x7b; /* { */
  if (key && plain) return 'unreadable'; // saved before encrypt_messages was turned on: never put in clear
  if (!key && !plain) return looksSealed(body) ? 'unreadable' : 'refuse'; // saved while it was on
  if (key && body.length < SEALED_MIN) return 'refuse';
  const subject = `${prefix}.agent.${agent}.status`;
  let text: string;
  try {
    // The subject agentSubject() gives a status change: an encrypted body is bound to it.
    text = key ? decrypt(key, subject, body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  } catch {
    return 'unreadable'; // sealed with another key (or damaged: a seal cannot tell)
  }
  const read = parseStatus(text);
  return read?.token === agent && isExactly(read.ev, text) ? 'take' : 'refuse';
}

function looksSealed(body: Uint8Array): boolean {
  return body.length >= SEALED_MIN && BASE64.test(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1'));
}

/** The status change a record holds, and its agent_id as written (the subject token). */
function readStatus(e: Pick<SpoolEntry, 'kind' | 'subject' | 'body'>, key?: EncryptionKey): Parsed | null {
  if (e.kind !== 'status') return null;
  try {
    return parseStatus(key ? decrypt(key, e.subject, e.body) : Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength).toString('utf8'));
  } catch {
    return null;
  }
}

interface Parsed {
  status: SpooledStatus;
  token: string;
  ev: Record<string, unknown>;
}

function parseStatus(text: string): Parsed | null {
  let ev: Record<string, unknown>;
  try {
    ev = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (ev === null || typeof ev !== 'object') return null;
  const id = ev.agent_id;
  const code = ev.status_code;
  const status = ev.current_status;
  // The event's agent_id is the subject token (3 to 9 digits, padded); `unknown` is a removal's status.
  if (ev.event_type !== 'status_change' || typeof id !== 'string' || !/^\d{1,9}$/.test(id)) return null;
  if (!isStatus(status) || !isStatusCode(code)) return null;
  return { status: { agentId: Number(id), status, statusCode: code }, token: id, ev };
}

const isStatus = (v: unknown): v is ConnectionStatus => isConnectionStatus(v) || v === 'unknown';
const REASONS: ReadonlySet<unknown> = new Set(STATUS_REASONS);
/** state/format.ts eventId: a UUID of version 8 from a hash. */
const EVENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** state/format.ts sourceOf: a daemon's name (32 letters at most), or a process's own comm as printable ASCII (16); the tap's words. */
const SOURCE = /^[\x20-\x7e]{1,32}$/;

/**
 * Whether ev, parsed from text, is a status change the tap makes (state/events.ts) with every field a
 * value it gives, and text is what statusJson writes for it — so nothing else is in the text.
 */
function isExactly(ev: Record<string, unknown>, text: string): boolean {
  const { agent_name: name, ip_address: ip, timestamp, time, manager_node: node, source, sync_status: sync } = ev;
  if (typeof ev.event_id !== 'string' || !EVENT_ID.test(ev.event_id)) return false;
  if (!(name === null || isAgentName(name)) || !(ip === null || isAgentIp(ip))) return false;
  if (!isStatus(ev.previous_status) || !REASONS.has(ev.reason)) return false;
  // The node is the configuration's or the host's name, whatever it holds (an empty host name too: review helper-95 K3).
  if (typeof node !== 'string' || typeof source !== 'string' || !SOURCE.test(source)) return false;
  // A request's sync_status: a label, or a word of printable ASCII (decode/wdb-request.ts).
  if (!(sync === null || (typeof sync === 'string' && isLabel(sync)))) return false;
  // eventTime(): the instant's whole seconds and its ISO text.
  if (!Number.isSafeInteger(timestamp) || typeof time !== 'string') return false;
  const ms = Date.parse(time);
  if (!Number.isFinite(ms) || new Date(ms).toISOString() !== time || Math.floor(ms / 1000) !== timestamp) return false;
  return statusJson(ev as unknown as StatusChangeEvent) === text;
}
