// The status an agent's spooled status change carries, read back when the spool is opened.
//
// A status change is written to the spool, then its line to the status journal (agents.status): two
// files, two writes. A tap killed between them (SIGKILL, a crash) leaves the spool with a change the
// journal lacks; the next start replays it to the consumers, yet compared wazuh-db with the journal's
// older status — and told the change again from the wrong previous_status, or not at all (found by
// test/chaos-e2e.test.ts: `was active, event says disconnected → active`). What an earlier run left
// in the spool is what the consumers are about to receive, so it is newer than the journal: the state
// part takes each agent's last spooled status over the journal's (agent/parts/state.ts).
import type { ConnectionStatus } from '../types.js';
import { isConnectionStatus, isStatusCode } from '../decode/values.js';
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

/**
 * Whether `body` is a status change of `agent` (its subject token, e.g. `001`) as the tap spools it
 * under `prefix`: a value read back from kv.pending (kv-latest.ts) is put into the KV bucket only then.
 */
export function isStatusOf(agent: string, body: Uint8Array, prefix: string, key?: EncryptionKey): boolean {
  // A body that cannot be one is told without a thrown parse (a file of millions of them held the start).
  if (key ? body.length < SEALED_MIN : body[0] !== 0x7b /* { */) return false;
  // The subject agentSubject() gives a status change: an encrypted body is bound to it.
  return readStatus({ kind: 'status', subject: `${prefix}.agent.${agent}.status`, body }, key)?.token === agent;
}

/** The status change a record holds, and its agent_id as written (the subject token). */
function readStatus(e: Pick<SpoolEntry, 'kind' | 'subject' | 'body'>, key?: EncryptionKey): { status: SpooledStatus; token: string } | null {
  if (e.kind !== 'status') return null;
  try {
    const text = key ? decrypt(key, e.subject, e.body) : Buffer.from(e.body.buffer, e.body.byteOffset, e.body.byteLength).toString('utf8');
    const ev = JSON.parse(text) as Record<string, unknown>;
    const id = ev.agent_id;
    const code = ev.status_code;
    const status = ev.current_status;
    // The event's agent_id is the subject token (3 to 9 digits, padded); `unknown` is a removal's status.
    if (ev.event_type !== 'status_change' || typeof id !== 'string' || !/^\d{1,9}$/.test(id)) return null;
    if (!(isConnectionStatus(status) || status === 'unknown') || !isStatusCode(code)) return null;
    return { status: { agentId: Number(id), status: status as ConnectionStatus, statusCode: code }, token: id };
  } catch {
    return null;
  }
}
