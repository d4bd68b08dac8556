// Requests are text written by other processes and are the tap's attack surface: every value is
// type-checked and bounded here, so later stages can trust the shapes in types.ts.
//
// What a value must be is in values.ts (what Wazuh can write). What happens when it is not depends on
// what the value is for:
// - ids, statuses, status codes, names and addresses say which agent changed and how: a request whose
//   value Wazuh could not have written is not Wazuh's, so the whole request is `invalid` (never applied,
//   counted as malformed by the decoder).
// - version, os fields, node names, sync_status and group_config_status are text an agent reports about
//   itself (relayed by remoted) or labels: the wrong type or an over-long value still makes the request
//   invalid (a 4.x request is at most 2 KiB), but text Wazuh would not write there (control characters;
//   for a version, anything but short printable ASCII) only loses that field (named in `dropped`, counted
//   by the decoder): one agent's odd uname must not hide its status change.
// - a value shaped like an agent key (64 hex digits, redact.ts) is taken for one in a name or in that
//   text: a text field loses it (named in `dropped`), a registration keeps its agent without the name,
//   and a rename to one is `invalid`.

import { intern, own } from '../util/intern.js';
import type { AgentDataUpdate, AgentSyncRow, WazuhConnectionStatus, WdbRequest } from '../types.js';
import { isKeyShaped, redactText } from './redact.js';
import { agentRow, MAX_ROWS } from './wdb-rows.js';
import {
  agentIdOfWord, connectionStatusOf, isAgentId, isAgentIp, isAgentName, isLabel, isStatusCode, isText, isVersion, MAX_SHORT, MAX_TEXT,
} from './values.js';

// The shapes live in types.ts with the other stage boundaries; re-exported for callers of this module.
export type { AgentDataUpdate, WdbRequest } from '../types.js';

const GLOBAL = 'global ';
/** Wazuh's command names are lower-case words with dashes; anything else is not a real command. */
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const MAX_NAME = 64;
/** Versions (`Wazuh v4.7.5`) are far shorter; a longer one only loses the field (see isVersion). */
const MAX_VERSION = MAX_TEXT;

class Invalid extends Error {}

type Json = Record<string, unknown>;

export function parseRequest(payload: string): WdbRequest {
  if (!payload.startsWith(GLOBAL)) return { cmd: 'non-global', name: firstWord(payload) };
  const rest = payload.slice(GLOBAL.length);
  const sp = rest.indexOf(' ');
  // The name is interned: as a substring of the payload it kept the whole request alive wherever the
  // parse was kept (a cmd of 17 characters holding 900 bytes, an agent's worth, in the fast path's map).
  const name = intern(sp < 0 ? rest : rest.slice(0, sp));
  const args = sp < 0 ? '' : rest.slice(sp + 1);
  if (!NAME_RE.test(name)) return { cmd: 'invalid', name: clip(name), reason: 'bad command name' };
  try {
    switch (name) {
      case 'update-keepalive': {
        const o = object(args);
        const dropped: string[] = [];
        return withDropped({
          cmd: name,
          id: agentId(o),
          connection_status: status(o, true),
          sync_status: label(o, 'sync_status', dropped) ?? null,
        }, dropped);
      }
      case 'update-agent-data': {
        const dropped: string[] = [];
        return withDropped({ cmd: name, data: agentData(object(args), dropped) }, dropped);
      }
      case 'update-connection-status': {
        const o = object(args);
        const dropped: string[] = [];
        return withDropped({
          cmd: name,
          id: agentId(o),
          connection_status: status(o, true),
          sync_status: label(o, 'sync_status', dropped) ?? null,
          status_code: code(o, false),
        }, dropped);
      }
      case 'update-status-code': {
        const o = object(args);
        const dropped: string[] = [];
        return withDropped({
          cmd: name,
          id: agentId(o),
          status_code: code(o, true),
          version: cosmetic(o, 'version', MAX_VERSION, isVersion, dropped) ?? null,
          sync_status: label(o, 'sync_status', dropped) ?? null,
          connection_status: status(o, false),
        }, dropped);
      }
      case 'insert-agent': {
        // The object is read once, field by field; internal_key is never copied out of it.
        const o = object(args);
        return {
          cmd: name,
          id: agentId(o),
          name: agentName(o) ?? null,
          ip: address(o, 'ip') ?? null,
          register_ip: address(o, 'register_ip') ?? null,
          date_add: int(o, 'date_add'),
        };
      }
      case 'update-agent-name': {
        const o = object(args);
        const n = agentName(o);
        if (n === undefined) {
          const raw = field(o, 'name');
          throw new Invalid(typeof raw === 'string' && isKeyShaped(raw) ? 'name is shaped like an agent key' : 'name missing');
        }
        return { cmd: name, id: agentId(o), name: n };
      }
      case 'delete-agent':
        return { cmd: name, id: idWord(args.trim(), 'id') };
      case 'get-agent-info':
        return { cmd: name, id: idWord(args.trim(), 'id') };
      case 'reset-agents-connection': {
        const w = words(args, 0, 1);
        return { cmd: name, sync_status: w[0] === undefined ? null : short(w[0]) };
      }
      case 'disconnect-agents': {
        // `<last_id> <threshold> [<sync_status>]` (the sync status came with 4.2).
        const w = words(args, 2, 3);
        return {
          cmd: name,
          last_id: idWord(w[0], 'last_id'),
          threshold: word(w[1], 'threshold'),
          sync_status: w[2] === undefined ? null : short(w[2]),
        };
      }
      case 'get-agents-by-connection-status': {
        // `<last_id> <status> [<node> [<limit>]]`: with a node, wazuh-db lists that node's agents only.
        const w = words(args, 2, 4);
        // The shared copy of the status: the word is a slice of the request (review helper-87).
        const st = connectionStatusOf(w[1]);
        if (st === null) throw new Invalid('unknown connection_status');
        let limit: number | null = null;
        if (w[3] !== undefined) {
          if (!/^-?(0|[1-9][0-9]{0,8})$/.test(w[3])) throw new Invalid('limit is not an integer');
          limit = Number(w[3]);
        }
        return {
          cmd: name,
          last_id: idWord(w[0], 'last_id'),
          status: st,
          node: w[2] === undefined ? null : short(w[2]),
          limit,
        };
      }
      case 'get-all-agents': {
        const w = words(args, 2, 2);
        if (w[0] !== 'last_id') throw new Invalid('expected last_id <n>');
        return { cmd: name, last_id: idWord(w[1], 'last_id') };
      }
      case 'sync-agent-info-set': {
        let v: unknown;
        try {
          v = JSON.parse(args);
        } catch {
          throw new Invalid('invalid JSON');
        }
        return { cmd: name, agents: syncRows(v) };
      }
      default:
        return { cmd: 'other', name, args: redactText(args) };
    }
  } catch (e) {
    // Invalid carries our own reason; anything else (it should not happen) must still not escape.
    return { cmd: 'invalid', name, reason: e instanceof Invalid ? e.message : 'unparsable' };
  }
}

function agentData(o: Json, dropped: string[]): AgentDataUpdate {
  const d: AgentDataUpdate = { id: agentId(o) };
  // Copy field by field: only names we chose can ever land in the result (no prototype keys, no secrets).
  const st = status(o, false);
  if (st !== null) d.connection_status = st;
  // remoted writes the address the agent connected from: never text an agent chose.
  const ip = address(o, 'agent_ip');
  if (ip !== undefined) d.agent_ip = ip;
  // The words most agents share are interned (util/intern.ts): the state and the kept parses hold one copy.
  for (const k of ['sync_status', 'group_config_status'] as const) {
    const v = label(o, k, dropped);
    if (v !== undefined) d[k] = intern(v);
  }
  const version = cosmetic(o, 'version', MAX_VERSION, isVersion, dropped);
  if (version !== undefined) d.version = intern(version);
  const long = [
    'node_name', 'manager_host', 'os_name', 'os_version', 'os_major', 'os_codename', 'os_platform', 'os_arch', 'os_uname',
  ] as const;
  for (const k of long) {
    const v = cosmetic(o, k, MAX_TEXT, isText, dropped);
    if (v !== undefined) d[k] = k === 'os_uname' ? v : intern(v); // uname names the host: the agent's own
  }
  return d;
}

/** `dropped` is only present when a field was left out, so a clean request keeps its plain shape. */
function withDropped<R extends object>(r: R, dropped: string[]): R & { dropped?: string[] } {
  return dropped.length > 0 ? { ...r, dropped } : r;
}

/**
 * `sync-agent-info-set` rows, as wazuh-clusterd copies them from a worker's database: every row must be
 * an agent with a valid id (a row that is not is not Wazuh's: the request is invalid, not half-applied).
 * A column whose value Wazuh could not have written is left out of its row (agentRow).
 */
function syncRows(v: unknown): AgentSyncRow[] {
  if (!Array.isArray(v) || v.length > MAX_ROWS) throw new Invalid('argument is not a JSON array of agents');
  const rows: AgentSyncRow[] = [];
  for (const x of v) {
    const r = agentRow(x);
    if (r === null) throw new Invalid('a row is not an agent with a valid id');
    rows.push(r);
  }
  return rows;
}

function object(args: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw new Invalid('invalid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Invalid('argument is not a JSON object');
  // JSON.parse keeps a repeated key's last value, wazuh-db's cJSON its first: the tap would apply
  // `"id":2,"active"` where wazuh-db applied `"id":1,"disconnected"`. Wazuh never repeats a key.
  if (repeatsKey(args, Object.keys(v).length)) throw new Invalid('a key appears twice');
  return v as Json;
}

/**
 * The object text (valid JSON: JSON.parse took it) names more top-level keys than the `distinct` it
 * parsed to. A walk of the text: strings are skipped whole (an escaped quote never ends one), and a
 * string at depth 1 right after `{` or `,` is a key.
 */
function repeatsKey(text: string, distinct: number): boolean {
  let depth = 0;
  let keys = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // "
      if (depth === 1 && expectKey) keys++;
      expectKey = false;
      i = stringEnd(text, i);
    } else if (c === 0x7b || c === 0x5b) { // { [
      depth++;
      expectKey = c === 0x7b && depth === 1;
    } else if (c === 0x7d || c === 0x5d) { // } ]
      depth--;
    } else if (c === 0x2c) { // ,
      expectKey = depth === 1;
    }
  }
  return keys > distinct;
}

/**
 * Where the JSON string opened at `open` ends (its closing quote): the next quote not escaped, found by
 * indexOf — strings are most of a request's text (a label, a uname), and a loop over their characters
 * was the largest part of an agent's first keepalive's decode. A quote is escaped when an odd number
 * of backslashes precede it. Valid JSON (JSON.parse took it) always closes the string.
 */
function stringEnd(text: string, open: number): number {
  let q = text.indexOf('"', open + 1);
  for (;;) {
    if (q < 0) return text.length;
    let b = q - 1;
    while (text.charCodeAt(b) === 0x5c) b--; // the quote at `open` stops it
    if ((q - 1 - b) % 2 === 0) return q;
    q = text.indexOf('"', q + 1);
  }
}

/** Own properties only: a key like `constructor` must not resolve to Object.prototype's. */
function field(o: Json, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function agentId(o: Json): number {
  const v = field(o, 'id');
  if (!isAgentId(v)) throw new Invalid('id is not an agent id (an integer from 0 to 999999999)');
  return v;
}

/** An agent name (insert-agent, update-agent-name): Wazuh validated it before sending. */
function agentName(o: Json): string | undefined {
  const v = text(o, 'name', MAX_TEXT);
  if (v !== undefined && !isAgentName(v)) throw new Invalid('name is not an agent name');
  return v !== undefined && isKeyShaped(v) ? undefined : v; // a key, for all it looks like a name (redact.ts): never kept
}

/** An address (`agent_ip`, `ip`, `register_ip`): `any`, an IP address or a network. */
function address(o: Json, k: string): string | undefined {
  const v = text(o, k, MAX_SHORT);
  if (v !== undefined && !isAgentIp(v)) throw new Invalid(`${k} is not an address`);
  return v;
}

/**
 * A text field that only describes (see the top of this file): the wrong type or length makes the
 * request invalid, a value that fails `ok` is left out and named in `dropped`.
 */
function cosmetic(o: Json, k: string, max: number, ok: (v: string) => boolean, dropped: string[]): string | undefined {
  const v = text(o, k, max);
  // A key-shaped value is taken for a key whatever the field (redact.ts): dropped and counted, as a bad one.
  if (v === undefined || (ok(v) && !isKeyShaped(v))) return v;
  dropped.push(k);
  return undefined;
}

/** sync_status, group_config_status: short words (`synced`, `syncreq`, `not synced`). */
function label(o: Json, k: string, dropped: string[]): string | undefined {
  return cosmetic(o, k, MAX_SHORT, isLabel, dropped);
}

function code(o: Json, required: true): number;
function code(o: Json, required: false): number | null;
function code(o: Json, required: boolean): number | null {
  const v = field(o, 'status_code');
  if (v === undefined || v === null) {
    if (required) throw new Invalid('status_code missing');
    return null;
  }
  if (!isStatusCode(v)) throw new Invalid('status_code is not a status code (an integer from 0 to 999)');
  return v;
}

function status(o: Json, required: true): WazuhConnectionStatus;
function status(o: Json, required: false): WazuhConnectionStatus | null;
function status(o: Json, required: boolean): WazuhConnectionStatus | null {
  const v = field(o, 'connection_status');
  if (v === undefined || v === null) {
    if (required) throw new Invalid('connection_status missing');
    return null;
  }
  const st = connectionStatusOf(v); // the one copy of its text: the agent's row keeps it
  if (st === null) throw new Invalid('unknown connection_status');
  return st;
}

/** A string field; absent and JSON null (which 5.x may emit) are both "not given". */
function text(o: Json, k: string, max: number): string | undefined {
  const v = field(o, k);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Invalid(`${k} is not a string`);
  if (v.length > max) throw new Invalid(`${k} is too long`);
  return own(v); // detached from the request's text, which is not kept
}

const INT_RE = /^(0|[1-9][0-9]{0,14})$/;

/** A non-negative decimal integer as wazuh-db's strtol-based parsers accept it (no sign, no junk). */
function word(w: string | undefined, what: string): number {
  if (w === undefined || !INT_RE.test(w)) throw new Invalid(`${what} is not a non-negative integer`);
  return Number(w);
}

/** An agent id as a word: the rule of isAgentId, in wazuh-db's `%d` form. */
function idWord(w: string | undefined, what: string): number {
  const id = w === undefined ? null : agentIdOfWord(w);
  if (id === null) throw new Invalid(`${what} is not an agent id (an integer from 0 to 999999999)`);
  return id;
}

/** Splits blank-separated arguments, requiring between min and max of them. */
function words(args: string, min: number, max: number): string[] {
  const w = args.split(' ').filter((x) => x !== '');
  if (w.length < min || w.length > max) throw new Invalid(`expected ${min === max ? min : `${min} to ${max}`} arguments`);
  return w;
}

function short(w: string): string {
  if (w.length > MAX_SHORT) throw new Invalid('argument is too long');
  // A word of the request is a slice of its text: kept (a status, a label the events carry and the
  // caches of their JSON remember), it kept the whole request alive — up to 64 KiB a word (review helper-86).
  return own(clip(w));
}

function int(o: Json, k: string): number | null {
  const v = field(o, k);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Invalid(`${k} is not an integer`);
  return v;
}

function firstWord(payload: string): string {
  const sp = payload.indexOf(' ');
  return clip(sp < 0 ? payload : payload.slice(0, sp));
}

/** Names end up in logs and metrics labels: keep them short and printable. */
function clip(s: string): string {
  return s.slice(0, MAX_NAME).replace(/[^\x21-\x7e]/g, '?');
}
