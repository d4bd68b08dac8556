// One line of wazuh-analysisd's alerts.json → the alert event of SPEC §4. Pure: no file, no
// clock read unless the alert has no usable timestamp; the same line always gives the same
// event_id, so a line read again after a restart is de-duplicated by JetStream (Nats-Msg-Id).
import { hash } from 'node:crypto';
import { eventId, eventTime } from '../state/format.js';
import { escapeUnsafe } from '../util/printable.js';

export type Severity = 'low' | 'medium' | 'high' | 'critical';
export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** Lowest rule level of each severity above `low` (`<alert_thresholds>`, default 7,10,13). */
export interface AlertThresholds { medium: number; high: number; critical: number }
export const DEFAULT_THRESHOLDS: AlertThresholds = { medium: 7, high: 10, critical: 13 };

export interface AlertEvent {
  event_id: string;
  event_type: 'alert';
  /** A number when Wazuh's rule id (a string in alerts.json) is all digits, else the string. */
  rule_id: number | string | null;
  level: number | null;
  severity: Severity;
  description: string | null;
  agent_id: string | null;
  agent_name: string | null;
  /** Unix seconds and RFC 3339 UTC of the alert's own `timestamp`. */
  timestamp: number;
  time: string;
  source_ip: string | null;
  user: string | null;
  manager_node: string;
  groups: string[];
  /** The alert as analysisd wrote it. */
  alert: Record<string, unknown>;
}

export interface AlertRules {
  managerNode: string;
  thresholds: AlertThresholds;
  /** `<alerts_min_level>`: alerts below it are not published. */
  minLevel: number;
}

/** Why a line gave no event: counted by the caller, never thrown. */
export type AlertSkip = 'invalid_json' | 'not_an_object' | 'too_deep' | 'below_min_level';

/**
 * Nesting allowed in an alert. Wazuh's are about 5 deep; JSON.parse reads any depth, but
 * JSON.stringify (publishing) recurses and throws past a few thousand, so a hostile line is
 * refused before it is parsed.
 */
export const MAX_ALERT_DEPTH = 64;

/** Deepest nesting of objects and arrays in a JSON text (strings skipped), without recursion. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

/** `repaired`: the line held NUL bytes before the alert (see alertEvent), which was read after them. */
export type AlertResult = { event: AlertEvent; repaired?: true } | { skip: AlertSkip };

export function severityOf(level: number | null, t: AlertThresholds): Severity {
  if (level === null) return 'low';
  if (level >= t.critical) return 'critical';
  if (level >= t.high) return 'high';
  if (level >= t.medium) return 'medium';
  return 'low';
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** A string field (numbers are accepted as their text; anything else is null). */
function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/**
 * A summary field of the event (description, agent, source_ip, user, a rule id that is not a
 * number): text() with every control character (C0, DEL, C1), line or paragraph separator, bidi
 * control and lone surrogate written as a visible `\uXXXX` (util/printable.ts).
 *
 * Not the text exactly as analysisd wrote it, on purpose. These fields are there to be shown — a
 * dashboard, a chat notification, `tail`, `nats sub` on a terminal — and analysisd fills them from
 * the event it alerts on: a rule's description quotes fields of the log line (`$(field)`), which
 * anyone able to write a log line on a monitored agent chooses. JSON escapes only C0 on the wire; C1
 * (U+009B is CSI), U+2028 and the bidi overrides travel raw, and every consumer would have to know
 * to clean them. The exact text is not lost: `alert` is the alert as analysisd wrote it, untouched,
 * for a consumer (an XDR) that needs it byte for byte. Escaped, not removed: whoever reads the
 * summary sees that something was there. Wazuh's own text (an ordinary rule description, an agent
 * name, which authd allows only in [A-Za-z0-9._-]) holds none of these and is unchanged.
 */
function shown(v: unknown): string | null {
  const t = text(v);
  return t === null ? null : escapeUnsafe(t);
}

/** Wazuh writes `rule.level` as a number; a digit string is tolerated. Outside 0..15 is not a level. */
function levelOf(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,2}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 15 ? n : null;
}

function ruleIdOf(v: unknown): number | string | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v !== 'string') return null;
  return /^\d{1,15}$/.test(v) ? Number(v) : escapeUnsafe(v);
}

/**
 * `2024-05-28T12:35:00.123+0000` (analysisd's `%FT%T.mmm%z`, local time) → epoch ms; null when it
 * is not a date. The `+0000` offset has no colon, which Date.parse does not promise to read.
 */
export function parseAlertTimestamp(v: unknown): number | null {
  if (typeof v !== 'string' || v.length > 64) return null;
  const iso = v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * The event of one line. `line` is the text without its newline; `nowMs` is used only when the
 * alert carries no usable timestamp.
 */
export function alertEvent(line: string, rules: AlertRules, nowMs: number): AlertResult {
  // After a power loss on the manager, the end of alerts.json can be NUL bytes (blocks allocated,
  // their data never written: ext4's and XFS's delayed allocation), and analysisd appends its next
  // alert right after them, on the same line. No JSON text holds a raw NUL (a string escapes it),
  // so what comes before the last one is the broken end of an earlier write: the alert is after it.
  const nul = line.lastIndexOf('\0');
  const repaired = nul !== -1;
  if (repaired) line = line.slice(nul + 1);
  if (jsonDepth(line) > MAX_ALERT_DEPTH) return { skip: 'too_deep' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { skip: 'invalid_json' };
  }
  const alert = obj(parsed);
  if (!alert) return { skip: 'not_an_object' };
  const rule = obj(alert.rule) ?? {};
  const agent = obj(alert.agent) ?? {};
  const data = obj(alert.data) ?? {};
  const level = levelOf(rule.level);
  if (rules.minLevel > 0 && (level === null || level < rules.minLevel)) return { skip: 'below_min_level' };
  const groups = Array.isArray(rule.groups) ? rule.groups.filter((g): g is string => typeof g === 'string') : [];
  const ms = parseAlertTimestamp(alert.timestamp) ?? nowMs;
  return {
    event: {
      // The alert's own id (`1716897300.12345`: time and offset in analysisd's output) and a hash
      // of the whole line: two alerts that share an id (after a manager reinstall) stay apart, and
      // the same line read twice gets the same id.
      event_id: eventId([rules.managerNode, 'alert', text(alert.id) ?? '', hash('sha256', line, 'hex')]),
      event_type: 'alert',
      rule_id: ruleIdOf(rule.id),
      level,
      severity: severityOf(level, rules.thresholds),
      description: shown(rule.description),
      agent_id: shown(agent.id),
      agent_name: shown(agent.name),
      ...eventTime(ms),
      source_ip: shown(data.srcip),
      user: shown(data.dstuser) ?? shown(data.srcuser),
      manager_node: rules.managerNode,
      groups,
      alert,
    },
    ...(repaired ? { repaired: true as const } : {}),
  };
}
