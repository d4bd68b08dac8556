// An agent's `ip_address` is where it connects from (SPEC §3): the live `agent_ip` of
// its keepalives. What registration writes (`any`, a CIDR such as `10.0.0.0/8`, in
// client.keys, insert-agent or wazuh-db's register_ip) is which addresses may
// register, not an address: it never replaces one, and alone it gives null. Pure.
import { isIP } from 'node:net';

/** Every keepalive names its agent's address again: the answer for a string is remembered (bounded). */
const answers = new Map<string, string | null>();
const ANSWERS_MAX = 65_536;

export function liveAddress(ip: string | null | undefined): string | null {
  if (typeof ip !== 'string') return null;
  let a = answers.get(ip);
  if (a === undefined) {
    a = isIP(ip) !== 0 ? ip : null;
    if (answers.size >= ANSWERS_MAX) answers.clear();
    answers.set(ip, a);
  }
  return a;
}
