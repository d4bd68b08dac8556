// How values look in published events. Pure: the same inputs always give the same text.

import { hash } from 'node:crypto';

/** Wazuh's own agent id form: at least three digits (`001`, `1234`). */
export function agentIdText(id: number): string {
  return String(id).padStart(3, '0');
}

const SOURCES: Readonly<Record<string, string>> = {
  'wazuh-remoted': 'remoted',
  'wazuh-monitord': 'monitord',
  'wazuh-authd': 'authd',
  'wazuh-modulesd': 'modulesd',
  'wazuh-analysisd': 'analysisd',
  'wazuh-db': 'wazuh-db',
  'wazuh-clusterd': 'clusterd',
  'wazuh-apid': 'apid',
  // wazuh-clusterd and wazuh-apid are Python; of the two only the cluster writes agent state.
  python3: 'clusterd',
  // 5.x: binaries `wazuh-manager-<daemon>`, comm cut to 15 characters (`wazuh-manager-` + one letter).
  'wazuh-manager-r': 'remoted',
  'wazuh-manager-d': 'wazuh-db',
  'wazuh-manager-c': 'clusterd',
  // `-m` is monitord or modulesd. Of the two only monitord changes agents' status (modulesd writes
  // agent 000, which is never published), so a status event with this comm comes from monitord.
  'wazuh-manager-m': 'monitord',
  // `-a` is analysisd, authd or apid: nothing tells them apart without the executable path.
  'wazuh-manager-a': 'wazuh-manager',
};

/** Full 5.x executable names (from /proc/<pid>/exe) resolve what the cut comm cannot. */
const EXE_PREFIX_5X = 'wazuh-manager-';

/**
 * The daemon that caused an event, from the requester's 15-character comm and, when the capture layer
 * resolved it, its executable's basename (which disambiguates 5.x `wazuh-manager-a`/`-m`).
 */
export function sourceOf(comm: string, exe?: string): string {
  if (typeof exe === 'string' && exe !== '') {
    const base = exe.slice(exe.lastIndexOf('/') + 1);
    if (base.startsWith(EXE_PREFIX_5X) && base.length > EXE_PREFIX_5X.length) {
      const daemon = base.slice(EXE_PREFIX_5X.length);
      if (/^[a-z]{1,32}$/.test(daemon)) return daemon === 'db' ? 'wazuh-db' : daemon;
    }
    if (base.startsWith('wazuh-') && Object.hasOwn(SOURCES, base)) return SOURCES[base];
  }
  if (Object.hasOwn(SOURCES, comm)) return SOURCES[comm];
  // Any other comm is whatever the process named itself (prctl): printable ASCII only, as comm is short.
  return comm.slice(0, 16).replace(/[^\x20-\x7e]/g, '?') || '?';
}

export interface EventTime {
  timestamp: number;
  time: string;
}

// Events of one poll often share their millisecond: the last formatted one is kept
// (toISOString was 3 % of the controller's time at 9,000 frames/s).
let lastMs = Number.NaN;
let lastIso = '';

export function eventTime(ms: number): EventTime {
  // A broken clock must not make toISOString throw in the middle of the pipeline.
  const t = Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? Math.trunc(ms) : 0;
  if (t !== lastMs) {
    lastIso = new Date(t).toISOString();
    lastMs = t;
  }
  return { timestamp: Math.floor(t / 1000), time: lastIso };
}

/**
 * A UUID-shaped id (RFC 9562 version 8, "custom") hashed from what makes the event itself, so a replay
 * after a reconnect or restart derives the same id and JetStream de-duplicates it.
 */
export function eventId(parts: readonly (string | number | bigint)[]): string {
  // One-shot hash to hex: about three times faster than createHash().digest() at keepalive rates.
  const x = hash('sha256', parts.join('\u0000'), 'hex');
  const variant = ((parseInt(x[16], 16) & 0x3) | 0x8).toString(16);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-8${x.slice(13, 16)}-${variant}${x.slice(17, 20)}-${x.slice(20, 32)}`;
}
