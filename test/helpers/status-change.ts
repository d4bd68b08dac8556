// A status change's body exactly as the tap writes one (state/events.ts, publish/event-json.ts): what
// kv.pending takes back (spooled-status.ts statusVerdict). `n` is its instant, in seconds: read it back
// with nOf.
import { statusChangeEvent } from '../../controller/src/state/events.js';
import { statusJson } from '../../controller/src/publish/event-json.js';
import type { AgentRecord } from '../../controller/src/types.js';

export function statusChangeBody(agent: string, n: number, o: { name?: string | null; node?: string } = {}): string {
  const a = { id: Number(agent), name: o.name === undefined ? `agent-${agent}` : o.name, ip: '10.0.0.1' } as AgentRecord;
  return statusJson(statusChangeEvent(o.node ?? 'node01', a, { previous: 'disconnected', current: 'active', code: 0, reason: 'keepalive' },
    { tsNs: BigInt(n), ms: n * 1000, source: 'remoted', sync: 'synced' }));
}

/** The `n` a statusChangeBody was made with. */
export const nOf = (json: string | Uint8Array): number =>
  (JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8')) as { timestamp: number }).timestamp;
