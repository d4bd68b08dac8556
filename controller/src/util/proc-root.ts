// A path reached through another process's view of the file system, `/proc/<pid>/root/…` (a
// container's root as the host reaches it: --home for a manager in a container), or `cwd`, `fd/<n>`…
// What lies below it is that process's — its container's root user's, whatever its uid — and the
// path dies with the process, whose pid can come to name another.
import { readFileSync } from 'node:fs';
import { normalize, resolve } from 'node:path';

/** `<procRoot>/<pid>/root` when `home` is reached through one, else null. */
export function procRootOf(home: string, procRoot = '/proc'): string | null {
  const base = normalize(procRoot).replace(/\/+$/, '');
  const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([0-9]+)/root(?:/|$)`).exec(normalize(home));
  return m ? `${base}/${m[1]}/root` : null;
}

/**
 * The start of `path` that leads into another process's view — `/proc/<pid>/<entry>` (`root`, `cwd`,
 * `task`…; not `self`, the tap's own) — when the path goes through one, else null. Everything below it
 * may be a container's, changed by its root user at will: never trusted as the host administrator's.
 */
export function foreignViewOf(path: string): string | null {
  const m = /^\/proc\/([0-9]+)(?:\/([^/]+))?(?:\/|$)/.exec(resolve(path));
  return m ? `/proc/${m[1]}${m[2] ? `/${m[2]}` : ''}` : null;
}

/**
 * Whether the open file `fd` lies on a mount that is not in the tap's own mount namespace: reached
 * through another process's view (a container's root) whatever the path's text said — a host
 * symbolic link to `/proc/<pid>/root/…` is one. The kernel names the mount in fdinfo (`mnt_id`);
 * the tap's namespace lists its own in mountinfo. Unknown (no /proc): false.
 */
export function onForeignMount(fd: number): boolean {
  let id: string | undefined;
  try {
    id = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  } catch {
    return false;
  }
  if (id === undefined) return false;
  try {
    return !readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.slice(0, l.indexOf(' ')) === id);
  } catch {
    return false;
  }
}
