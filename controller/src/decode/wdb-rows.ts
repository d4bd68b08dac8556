// The JSON rows wazuh-db returns (`get-agent-info`, `disconnect-agents`, `get-agents-by-connection-status`,
// `get-all-agents`) and the cluster writes (`sync-agent-info-set`). Rows are copied column by column into
// fresh objects: only the columns listed here can ever come out, so `internal_key` (and any other secret
// or prototype key) never does. Every column is checked against what Wazuh writes there (values.ts):
// a bad column is dropped (the row is still wazuh-db's view of the agent's status), a row without a
// valid agent id is skipped, and an id list with one invalid id is unreadable as a whole.

import { own } from '../util/intern.js';
import type { AgentSyncRow } from '../types.js';
import { isKeyShaped } from './redact.js';
import { connectionStatusOf, isAgentId, isAgentIp, isAgentName, isLabel, isStatusCode, isText, isVersion } from './values.js';

/** Rows in one reply: a 64 KiB reply of `{"id":N}` holds fewer than 10,000 of them. */
export const MAX_ROWS = 100_000;

type TextColumn =
  | 'name' | 'ip' | 'register_ip' | 'version' | 'node_name' | 'os_name' | 'os_version' | 'os_platform' | 'os_arch'
  | 'sync_status' | 'group_config_status' | 'group';

/** Each text column and what its value must be. */
const TEXT_COLUMNS: readonly [TextColumn, (v: string) => boolean][] = [
  ['name', isAgentName],
  ['ip', isAgentIp],
  ['register_ip', isAgentIp],
  ['version', isVersion],
  ['node_name', isText],
  ['os_name', isText],
  ['os_version', isText],
  ['os_platform', isText],
  ['os_arch', isText],
  ['sync_status', isLabel],
  ['group_config_status', isLabel],
  ['group', isText],
];

/** One agent row from a parsed JSON value, or null when it is not an object with a valid agent id. */
export function agentRow(v: unknown): AgentSyncRow | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const id = Object.hasOwn(o, 'id') ? o.id : undefined;
  if (!isAgentId(id)) return null;
  const row: AgentSyncRow = { id };
  for (const [k, ok] of TEXT_COLUMNS) {
    const x = Object.hasOwn(o, k) ? o[k] : undefined;
    // A key-shaped value is taken for a key whatever its column (redact.ts): rows are read without the
    // redaction's pass, as requests are.
    if (typeof x === 'string' && ok(x) && !isKeyShaped(x)) row[k] = own(x); // detached from the reply's text (util/intern.ts)
  }
  const cs = connectionStatusOf(Object.hasOwn(o, 'connection_status') ? o.connection_status : undefined);
  if (cs !== null) row.connection_status = cs;
  const lk = Object.hasOwn(o, 'last_keepalive') ? o.last_keepalive : undefined;
  if (typeof lk === 'number' && Number.isSafeInteger(lk)) row.last_keepalive = lk;
  const sc = Object.hasOwn(o, 'status_code') ? o.status_code : undefined;
  if (isStatusCode(sc)) row.status_code = sc;
  return row;
}

/** Rows of a parsed JSON array; null when the value is not an array (or is too long). */
export function agentRows(v: unknown): AgentSyncRow[] | null {
  if (!Array.isArray(v) || v.length > MAX_ROWS) return null;
  const out: AgentSyncRow[] = [];
  for (const x of v) {
    const r = agentRow(x);
    if (r) out.push(r);
  }
  return out;
}

function parse(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    return undefined;
  }
}

/** The rows of a reply payload (`[{"id":2,"name":"agent2",…}]`); null when it is not a JSON array. */
export function parseAgentRows(payload: string): AgentSyncRow[] | null {
  if (payload.length === 0 || payload.length > 4 * 65536) return null;
  return agentRows(parse(payload));
}

/**
 * The ids of a reply payload (`[{"id":1},{"id":7}]`), in order, duplicates kept out; null when the payload
 * is not a JSON array of such objects (an `[redacted]` payload, a truncated reply) or when an id is not
 * an agent id: such a list is not wazuh-db's, and nothing is inferred from any of it.
 * `skipInvalid`: an integer id outside the agent range is left out instead (the tap's own listing of
 * wazuh-db's table at start: one impossible row must not cost every agent its known status).
 */
export function parseIdList(payload: string, opts: { skipInvalid?: boolean } = {}): number[] | null {
  if (payload.length === 0 || payload.length > 4 * 65536) return null;
  const v = parse(payload);
  if (!Array.isArray(v) || v.length > MAX_ROWS) return null;
  const seen = new Set<number>();
  for (const x of v) {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return null;
    const id = Object.hasOwn(x, 'id') ? (x as { id: unknown }).id : undefined;
    if (!isAgentId(id)) {
      if (opts.skipInvalid && Number.isInteger(id)) continue;
      return null;
    }
    seen.add(id);
  }
  return [...seen];
}
