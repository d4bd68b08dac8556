// etc/client.keys, as authd writes it: one agent per line, `ID NAME IP KEY`. A name starting with `!`
// or `#` marks a removed entry. The KEY is the agent's secret: it is never copied out of the line being
// parsed — no field, no log, no error message ever holds it. Pure: no I/O here.

import type { AgentStateTable } from '../agents.js';
import { isAgentIp, isAgentName } from '../../decode/values.js';
import { own } from '../../util/intern.js';

export interface ClientKeyEntry {
  id: number;
  name: string;
  /** Registration address as authd stored it: an IP, a network, or `any`. */
  ip: string;
}

export interface ClientKeys {
  agents: ClientKeyEntry[];
  /** Ids of removed entries (`!name` / `#name`). */
  removed: number[];
  /** Lines that were not `ID NAME IP KEY` (counted; their content is never kept: it may hold a key). */
  malformed: number;
}

/** authd writes ids `%03d`; the rule of decode/values.ts (0 to 999,999,999) in that form. */
const ID_RE = /^[0-9]{1,9}$/;

export function parseClientKeys(text: string, maxEntries = 2_000_000): ClientKeys {
  const out: ClientKeys = { agents: [], removed: [], malformed: 0 };
  const seen = new Set<number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    if (out.agents.length + out.removed.length >= maxEntries) {
      out.malformed++;
      continue;
    }
    // Only the first three fields are looked at; the fourth (the key) is checked to exist, never kept.
    const f = line.split(/[ \t]+/, 4);
    // A removed entry's name is the agent's name behind `!` or `#`: the same rule holds for what follows.
    const removed = f.length >= 2 && (f[1][0] === '!' || f[1][0] === '#');
    if (f.length < 4 || !ID_RE.test(f[0]) || !isAgentName(removed ? f[1].slice(1) : f[1]) || !isAgentIp(f[2]) || f[3] === '') {
      out.malformed++;
      continue;
    }
    const id = Number(f[0]);
    if (seen.has(id)) {
      out.malformed++;
      continue;
    }
    seen.add(id);
    if (removed) out.removed.push(id);
    // Copies: a field is a slice of the file's text, which it would keep alive — every agent's key with it.
    else out.agents.push({ id, name: own(f[1]), ip: own(f[2]) });
  }
  return out;
}

/**
 * Feeds names (and registration addresses) into the table, without events. The registration address
 * (`any`, a network) is only a fallback: it never replaces an address the table learned otherwise (the
 * live `agent_ip` of a keepalive, a wazuh-db row). Removed entries are left alone: the `delete-agent`
 * that wazuh-db sees is what publishes a removal. Returns the number of agents fed.
 */
export function applyClientKeys(table: AgentStateTable, keys: ClientKeys): number {
  let n = 0;
  for (const e of keys.agents) {
    if (e.id === 0) continue;
    const known = table.get(e.id);
    if (known && known.ip !== null) table.setKnown({ id: e.id, name: e.name });
    else table.setKnown({ id: e.id, name: e.name, ip: e.ip });
    n++;
  }
  return n;
}
