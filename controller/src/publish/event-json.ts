// A keepalive event's JSON, built as a fixed shape (one is built per keepalive): the same text
// JSON.stringify gives, key for key, without walking the object. Strings go through
// JSON.stringify (escaping is its business); everything else is a number, a constant or null.
// test/event-json.test.ts holds it equal to JSON.stringify.
import type { KeepaliveEvent } from '../types.js';

/** Characters JSON leaves as they are (printable ASCII but `"` and `\`): such a string is quoted, not escaped. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** The strings that repeat from event to event (versions, os names, node, source, statuses), escaped once. */
const seen = new Map<string, string>();

function q(s: string | null | undefined): string {
  if (s === null || s === undefined) return 'null';
  if (PLAIN.test(s)) return `"${s}"`;
  let j = seen.get(s);
  if (j === undefined) {
    j = JSON.stringify(s);
    if (seen.size < 4096) seen.set(s, j);
  }
  return j;
}

function osJson(os: KeepaliveEvent['os']): string {
  if (os === null) return 'null';
  let out = '';
  // In the order the state builds it (name, version, platform, arch); absent keys are left out.
  for (const k of Object.keys(os) as (keyof typeof os)[]) {
    const v = os[k];
    if (v === undefined) continue;
    out += `${out ? ',' : ''}${JSON.stringify(k)}:${q(v)}`;
  }
  return `{${out}}`;
}

export function keepaliveJson(ev: KeepaliveEvent): string {
  return `{"event_id":${q(ev.event_id)},"event_type":"keepalive","agent_id":${q(ev.agent_id)},"agent_name":${q(ev.agent_name)},`
    + `"ip_address":${q(ev.ip_address)},"status":${q(ev.status)},"version":${q(ev.version)},"os":${osJson(ev.os)},`
    + `"group_config_status":${q(ev.group_config_status)},"sync_status":${q(ev.sync_status)},"timestamp":${JSON.stringify(ev.timestamp)},`
    + `"time":${q(ev.time)},"manager_node":${q(ev.manager_node)},"source":${q(ev.source)}}`;
}
