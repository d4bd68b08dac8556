// An agent's `ip_address` is where it connects from (SPEC §3): the live `agent_ip` of
// its keepalives. What registration writes (`any`, a CIDR such as `10.0.0.0/8`, in
// client.keys, insert-agent or wazuh-db's register_ip) is which addresses may
// register, not an address: it never replaces one, and alone it gives null. Pure.
// Not cached: a keepalive whose address is the agent's already never asks (state/agents.ts
// compares first), and a cache of every address a fleet has was ~3.5 MB at 100,000 agents —
// its table and the strings it kept — for an isIP of ~0.1 µs at an agent's first keepalive.
import { isIP } from 'node:net';

export function liveAddress(ip: string | null | undefined): string | null {
  return typeof ip === 'string' && isIP(ip) !== 0 ? ip : null;
}
