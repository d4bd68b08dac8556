// A path reached through a process's root, `/proc/<pid>/root/…`: a container's root as the host
// reaches it (--home for a manager in a container). What lies below it is the container's root
// user's, whatever its uid; the path dies with the process and its pid can come to name another.
import { normalize } from 'node:path';

/** `<procRoot>/<pid>/root` when `home` is reached through one, else null. */
export function procRootOf(home: string, procRoot = '/proc'): string | null {
  const base = normalize(procRoot).replace(/\/+$/, '');
  const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([0-9]+)/root(?:/|$)`).exec(normalize(home));
  return m ? `${base}/${m[1]}/root` : null;
}
