// Subjects of SPEC §4. Every token is validated here, so nothing captured from
// the wire can add, remove or wildcard a token of a subject.
import type { AgentEvent } from '../types.js';
import { SEVERITIES, type Severity } from '../alerts/alert-event.js';
import { ConfigError } from '../errors.js';
import { clip } from '../util/clip.js';

const TOKEN = /^[A-Za-z0-9_-]+$/;
const AGENT_ID = /^[0-9]{3,9}$/;

export function validatePrefix(prefix: string): string {
  if (!prefix || prefix.length > 200 || !prefix.split('.').every((t) => TOKEN.test(t))) {
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
  const t = node.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
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
 * The prefix of a subject the tap makes — `<prefix>.agent.<id>.status|keepalive`,
 * `<prefix>.agent.batch.keepalive`, `<prefix>.tap.<node>.events`, `<prefix>.security.alerts.<severity>`
 * — or null for any other subject. A spool record read back is published only if the tap could have
 * written it (publish/publishable.ts): the spool's checksum is no signature.
 */
export function tapSubjectPrefix(subject: string): string | null {
  if (subject.length > 400) return null; // a prefix of 200 and the longest tail (a node of 64)
  const t = subject.split('.');
  if (t.length < 4) return null;
  const [a, b, c] = t.slice(-3);
  const ours = (a === 'agent' && (c === 'status' || c === 'keepalive') && AGENT_ID.test(b))
    || (a === 'agent' && b === 'batch' && c === 'keepalive')
    || (a === 'tap' && c === 'events' && b.length <= 64 && TOKEN.test(b))
    || (a === 'security' && b === 'alerts' && (SEVERITIES as readonly string[]).includes(c));
  if (!ours) return null;
  const prefix = t.slice(0, -3).join('.');
  return prefix.length <= 200 && t.slice(0, -3).every((x) => TOKEN.test(x)) ? prefix : null;
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
