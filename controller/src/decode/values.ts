// What Wazuh can write, for every value that leaves the tap. All the tap's parsers (wdb requests and
// replies, client.keys, the status journal) check with these, so one rule holds everywhere: a value
// Wazuh could not have written did not come from Wazuh. Pure; no value here throws.

import { isIP } from 'node:net';
import type { WazuhConnectionStatus } from '../types.js';
import { LONE_SURROGATE as LONE_SURROGATE_SRC, UNSAFE_CLASS } from '../util/printable.js';

/**
 * Agent ids are integers, 0 being the manager itself. Wazuh formats them `%03d` and refuses ids of more
 * than 8 digits (OS_IsValidID); a subject token holds 3 to 9 digits. Anything above is not an agent.
 */
export const MAX_AGENT_ID = 999_999_999;

/**
 * Agents the tap keeps at most: its table (state/agents.ts), and what it reads back of its own files
 * (agents.status, kv.pending). A fleet is far smaller; a hand-made file of more ids must not grow memory
 * without bound.
 */
export const MAX_AGENTS = 2_000_000;

export function isAgentId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_AGENT_ID;
}

/** An id written as a word (`delete-agent 5`, a `last_id`): wazuh-db prints `%d`, so no sign, no padding. */
const ID_WORD = /^(0|[1-9][0-9]{0,8})$/;

export function agentIdOfWord(w: string): number | null {
  return ID_WORD.test(w) ? Number(w) : null;
}

/** Wazuh's status_code is one of a few small numbers (0 to 5 today); the status journal keeps three digits. */
export const MAX_STATUS_CODE = 999;

export function isStatusCode(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_STATUS_CODE;
}

/**
 * Wazuh's OS_IsValidName: letters, digits, `-`, `_`, `.`, at most 128 (authd also wants 2 at least; one
 * is accepted, as client.keys parsing does). No space, no `*` or `>`, nothing outside ASCII.
 */
const NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function isAgentName(v: unknown): v is string {
  return typeof v === 'string' && NAME.test(v);
}

/** Longest address text kept: an IPv6 address with a prefix is under 50 characters. */
export const MAX_IP = 64;
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

/**
 * An agent address as Wazuh stores it: `any`, an IPv4 or IPv6 address, or a network (`/prefix`, or for
 * IPv4 a dotted netmask, which OS_IsValidIP also takes). No IPv6 zone (`%eth0`): inet_ntop never
 * writes one.
 */
export function isAgentIp(v: unknown): v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_IP) return false;
  if (v === 'any') return true;
  if (v.includes('%')) return false;
  const slash = v.indexOf('/');
  const family = isIP(slash < 0 ? v : v.slice(0, slash));
  if (family === 0) return false;
  if (slash < 0) return true;
  const p = v.slice(slash + 1);
  if (PREFIX.test(p)) return Number(p) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(p) === 4;
}

/** `Wazuh v4.7.5`: what agents report is short printable ASCII. */
const VERSION = /^[\x20-\x7e]{1,64}$/;

export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && VERSION.test(v);
}

/**
 * Control characters (C0, DEL, C1), line and paragraph separators, bidirectional overrides and isolates,
 * and lone UTF-16 surrogates: nothing a log line, a terminal or a dashboard should be handed.
 * Other Unicode is fine: a localised Windows reports its os_name in its own language.
 */
const UNSAFE = new RegExp(UNSAFE_CLASS);
const LONE_SURROGATE = new RegExp(LONE_SURROGATE_SRC);

/** One character class scans fast; surrogates (emoji and the like) are then checked in pairs. */
const SUSPECT = new RegExp(`${UNSAFE_CLASS.slice(0, -1)}\\ud800-\\udfff]`);

/** Free text (os fields, node names, sync_status, group_config_status): bounded, nothing unsafe. */
export function isCleanText(v: unknown, max: number): v is string {
  if (typeof v !== 'string' || v.length > max) return false;
  if (!SUSPECT.test(v)) return true; // the usual case: one scan
  return !UNSAFE.test(v) && !LONE_SURROGATE.test(v);
}

/** 4.x requests are at most 2 KiB, so no honest text field comes near this. */
export const MAX_TEXT = 1024;
/** Statuses and IPs are short; a long one is hostile or corrupt. */
export const MAX_SHORT = 64;

/** Free text of a wdb field (os fields, node names, groups). */
export const isText = (v: string): boolean => isCleanText(v, MAX_TEXT);
/** A short word of a wdb field (sync_status, group_config_status). */
export const isLabel = (v: string): boolean => isCleanText(v, MAX_SHORT);

/** Each status, mapped to its one copy: a parsed value is a new string, and a row kept per agent held its own. */
const CONNECTION_STATUSES: ReadonlyMap<string, WazuhConnectionStatus> = new Map(
  (['never_connected', 'pending', 'active', 'disconnected'] as const).map((s) => [s, s]),
);

/** One of the connection statuses wazuh-db keeps. */
export function isConnectionStatus(v: unknown): v is WazuhConnectionStatus {
  return typeof v === 'string' && CONNECTION_STATUSES.has(v);
}

/**
 * The status `v` names, as the one shared copy of its text (null: none). 100,000 agents listed at the
 * tap's start held 100,000 copies of `never_connected` (4.5 MB of the 33 MB live): JSON.parse makes
 * every value a string of its own.
 */
export function connectionStatusOf(v: unknown): WazuhConnectionStatus | null {
  return typeof v === 'string' ? CONNECTION_STATUSES.get(v) ?? null : null;
}
