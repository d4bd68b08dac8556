// A path reached through another process's view of the file system, `/proc/<pid>/root/…` (a
// container's root as the host reaches it: --home for a manager in a container), or `cwd`, `fd/<n>`…
// What lies below it is that process's — its container's root user's, whatever its uid — and the
// path dies with the process, whose pid can come to name another.
import { lstatSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
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

/**
 * `path` with the symbolic links on it resolved by hand, the kernel's way, up to where it enters another
 * process's view (`/proc/<pid>/…`, not the tap's own: its `/proc/self/root` is `/`). The kernel, following
 * a host link to a directory *below* a container's root, resolves the container's own absolute links on
 * the way against the tap's root — into the host's directories the container chose — and what it lands
 * on is on a host mount: only the text of the path, resolved so, says a container is on the way. So: the
 * path resolved up to the view and the rest as it is, when it enters one (the callers treat everything
 * from the view on as the container's: foreignViewOf); else the path as given, for the kernel and the
 * callers' own rules; null when it cannot be told (more than 40 links, a name too long once resolved, the
 * tap's own cwd or fd/<n>): the callers refuse it. `stopAt`: a directory whose links are not followed
 * (the spool's walk: one others may write — it refuses the link; followed here, its target would stand in
 * for it unseen).
 */
export function throughViews(path: string, o: { stopAt?: (dir: Stats) => boolean } = {}): string | null {
  const given = resolve(path);
  const parts = (p: string) => p.split('/').filter((x) => x && x !== '.');
  const own = `/proc/(self|thread-self|${process.pid})`;
  const ownEntry = new RegExp(`^${own}/([^/]+)$`);
  const ownPath = new RegExp(`^${own}(/|$)`);
  let todo = parts(given);
  let at = '';
  for (let hops = 0; todo.length > 0;) {
    const name = todo.shift()!;
    if (name === '..') {
      at = at.slice(0, at.lastIndexOf('/'));
      continue;
    }
    const next = `${at}/${name}`;
    // The tap's own root (and its threads'): read as `/` below. Its other entries (cwd, fd/<n>…) lead
    // where a readlink's text cannot say (a directory in another namespace): not followed, refused.
    const entry = ownEntry.exec(next)?.[2];
    if (entry !== undefined && entry !== 'root' && entry !== 'task') return null;
    // Another process's view: the rest is theirs, the path resolved so far is what the caller goes by.
    if (foreignViewOf(next) && !ownPath.test(next)) return [next, ...todo].join('/');
    let st;
    try {
      st = lstatSync(next);
    } catch (e) {
      // Not there (yet): no view on the way. Anything else (a name too long once resolved, a loop):
      // it cannot be told, and what cannot be told is refused.
      // ENOTDIR: a file on the way — nothing goes through it, and the caller says what it is.
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' ? given : null;
    }
    if (!st.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++hops > 40) return null; // the kernel's own bound: past it, a loop or a chain built to outlast it
    if (o.stopAt) {
      let parent;
      try {
        parent = statSync(at || '/');
      } catch {
        return null;
      }
      if (o.stopAt(parent)) return given; // theirs: the caller refuses it
    }
    let target: string;
    try {
      target = readlinkSync(next); // the tap's own /proc/self/root reads `/`
    } catch {
      return null;
    }
    if (target.startsWith('/')) at = '';
    todo = [...target.split('/').filter((x) => x && x !== '.'), ...todo];
  }
  return given; // no view on the way: the path as given, the kernel's to resolve
}

/**
 * Whether the kernel's own walk of `path` is refused for want of a permission (EACCES, EPERM): a path
 * throughViews could not follow for that reason is no container's, only closed to this user — said as
 * "permission denied" by the read that follows, as for any other file.
 */
export function walkDenied(path: string): boolean {
  try {
    lstatSync(path);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM';
  }
}
