// Subjects of SPEC §4. Every token is validated here, so nothing captured from
// the wire can add, remove or wildcard a token of a subject.
import type { AgentEvent } from '../types.js';
import { SEVERITIES, type Severity } from '../alerts/alert-event.js';
import { ConfigError } from '../errors.js';
import { clip } from '../util/clip.js';

/** A subject token's characters (a prefix's, a node's): letters, digits, '-' and '_'. */
const TOKEN_CHARS = 'A-Za-z0-9_-';
const TOKEN = new RegExp(`^[${TOKEN_CHARS}]+$`);
const NOT_TOKEN_CHAR = new RegExp(`[^${TOKEN_CHARS}]`, 'g');
/** A subject prefix's length at most. */
const MAX_PREFIX = 200;
/** A node name's token's length at most (nodeToken). */
const NODE_TOKEN_MAX = 64;
const AGENT_ID = /^[0-9]{3,9}$/;

export function validatePrefix(prefix: string): string {
  if (!prefix || prefix.length > MAX_PREFIX || !prefix.split('.').every((t) => TOKEN.test(t))) {
    throw new ConfigError(`invalid subject prefix '${clip(prefix)}': dot-separated tokens of letters, digits, '-' and '_'`);
  }
  return prefix;
}

/**
 * A subject to subscribe to (`tail`), by NATS's rules: dot-separated tokens, none empty, no white
 * space or control character; `*` only as a whole token, `>` only as the whole last token.
 */
export function validateSubjectFilter(subject: string): string {
  const bad = (why: string): never => {
    throw new ConfigError(`invalid subject '${clip(subject)}': ${why} (e.g. wazuh.>, 'wazuh.agent.*.status')`);
  };
  if (subject === '') bad('empty');
  if (subject.length > 1024) bad('longer than 1024 characters');
  if (/[\s\x00-\x1f\x7f]/.test(subject)) bad('white space or a control character in it (tokens are separated by dots)');
  const tokens = subject.split('.');
  tokens.forEach((t, i) => {
    if (t === '') bad('an empty token (two dots in a row, or a dot at an end)');
    if (t.includes('*') && t !== '*') bad('\'*\' stands for a whole token');
    if (t.includes('>') && (t !== '>' || i !== tokens.length - 1)) bad('\'>\' stands for the whole last token(s)');
  });
  return subject;
}

/** A node name as a single subject token: anything outside the token alphabet becomes '_'. */
export function nodeToken(node: string): string {
  const t = node.replace(NOT_TOKEN_CHAR, '_').slice(0, NODE_TOKEN_MAX);
  return t || '_';
}

/** Wazuh's zero-padded agent id, the only form that goes into a subject or an agent header. */
export function isAgentIdToken(id: string): boolean {
  return AGENT_ID.test(id);
}

/** Throws unless `id` may go into a subject (the text it quotes is clipped: the id may be hostile). */
export function assertAgentIdToken(id: string): void {
  if (!isAgentIdToken(id)) throw new Error(`refusing agent id '${clip(id, 32)}' as a subject token`);
}

/**
 * A subject the tap makes — `<prefix>.agent.<id>.status|keepalive`, `<prefix>.agent.batch.keepalive`,
 * `<prefix>.tap.<node>.events`, `<prefix>.security.alerts.<severity>` — its prefix the first group. One
 * regex: a spool replay checks every record read back (split, slice and a regex a token cost it a
 * third more time; review helper-92).
 */
const TAP_SUBJECT = new RegExp(`^((?:[${TOKEN_CHARS}]+\\.)*[${TOKEN_CHARS}]+)\\.(?:agent\\.(?:[0-9]{3,9}\\.(?:status|keepalive)|batch\\.keepalive)`
  + `|tap\\.[${TOKEN_CHARS}]{1,${NODE_TOKEN_MAX}}\\.events|security\\.alerts\\.(?:${SEVERITIES.join('|')}))$`);

/**
 * The prefix of a subject the tap makes, or null for any other subject. A spool record read back is
 * published only if the tap could have written it (publish/publishable.ts): the spool's checksum is no
 * signature.
 */
export function tapSubjectPrefix(subject: string): string | null {
  if (subject.length > 2 * MAX_PREFIX) return null; // a prefix at its bound and the longest tail (a node's token)
  const m = TAP_SUBJECT.exec(subject);
  return m !== null && m[1].length <= MAX_PREFIX ? m[1] : null;
}

/**
 * The prefix of a subject tapSubjectPrefix took: all but its last three tokens (every tail the tap
 * makes has three), without a second parse.
 */
export function prefixOfTapSubject(subject: string): string {
  return subject.slice(0, subject.lastIndexOf('.', subject.lastIndexOf('.', subject.lastIndexOf('.') - 1) - 1));
}

export function agentSubject(prefix: string, ev: AgentEvent): string {
  assertAgentIdToken(ev.agent_id);
  const kind = ev.event_type === 'status_change' ? 'status' : 'keepalive';
  return `${prefix}.agent.${ev.agent_id}.${kind}`;
}

/** Where batched keepalives go (`keepalive_batch`): beside the per-agent keepalive subjects. */
export function keepaliveBatchSubject(prefix: string): string {
  return `${prefix}.agent.batch.keepalive`;
}

export function tapSubject(prefix: string, node: string): string {
  return `${prefix}.tap.${nodeToken(node)}.events`;
}

/** `<prefix>.security.alerts.<severity>`: the severity is one of four fixed words, never text from the file. */
export function alertSubject(prefix: string, severity: Severity): string {
  if (!SEVERITIES.includes(severity)) throw new Error(`refusing severity '${String(severity)}' as a subject token`);
  return `${prefix}.security.alerts.${severity}`;
}
