// Which Wazuh home the path `--home` names: the one it named when first seen, for the tap's whole
// run. The path is looked up again and again (the rescan every 2 s, wazuh-db's socket every second,
// client.keys, alerts.json), and a path can come to name another home. The case that matters: a
// manager in a container, `--home /proc/<pid>/root/var/ossec`. When that process ends the path dies;
// when the kernel gives the pid to a process of another container (another tenant's manager, a
// worker pod on the same node) or of the host, the same text names that one's /var/ossec — its
// wazuh-db, its daemons, its alerts. Followed, they were published under this tap's prefix and node,
// and this manager's agents were "removed" by the other's listing (SPEC §2, trust boundary).
//
// So once seen, these identities (device and inode) are the home's, and a path that leads elsewhere
// is refused, never adopted: nothing of the other home is captured, read or asked; the tap keeps
// following what it followed (now gone, usually) and says so, loudly and in `status`, until it is
// restarted with the new container's pid.
//   - the root of /proc/<pid>/root, for a home reached through one (the container's root: another
//     container, or the host, is another root), pinned from the start even before anything is
//     installed under it;
//   - `<home>/queue/db` and `<home>/bin`, the home's own directories (only root can replace them:
//     queue/ and the home are root's). A Wazuh upgrade replaces the executables in bin/, not bin/
//     itself: those are looked up by name in the pinned bin/ at every rescan, and the kernel
//     matches an exec by its directory and name, so an upgraded daemon is followed as before. A
//     home removed and installed again (a purge and a reinstall) is other directories: a restart.
// What appears later under a pinned home (bin/ or queue/db created after the tap started, the
// framework's Python directory replaced by an upgrade) is taken as it comes.
// Each pinned directory is held open for the run (held-dirs.ts): an identity is numbers, and the
// numbers of a directory removed or a filesystem unmounted (the container's root, once its process
// ended) would otherwise go to the next one made — a tree built to match could pass the pin.
import { join } from 'node:path';
import { procRootOf } from '../util/proc-root.js';
import { statInView } from '../util/in-view.js';
import { formatFsId, sameFsId, type FsId } from './targets.js';
import { HeldDirs } from './held-dirs.js';

/** A look that found the home's path leading to another home. */
export interface HomeMove {
  /** What differs: `/proc/<pid>/root`, `queue/db` or `bin`. */
  what: string;
  /** The identity followed (pinned) and the one the path leads to now, as `status` shows them. */
  followed: string;
  found: string;
  /** Date.now() of the first look that found this. */
  since: number;
}

export interface HomePinOptions {
  /** Where /proc is (tests: a directory whose <pid>/root is a symbolic link standing for the kernel's). */
  procRoot?: string;
  /** Each look that found the path leading elsewhere (the caller rate-limits what it says). */
  onMoved?: (m: HomeMove) => void;
}

function statDir(path: string): FsId | null {
  try {
    const st = statInView(path, { bigint: true }); // below a container's root: as it resolves the path
    return st.isDirectory() ? { dev: st.dev, ino: st.ino } : null;
  } catch {
    return null; // gone (the process ended), not installed yet, or unreadable: nothing to compare
  }
}

export class HomePin {
  /** The path's parts compared, and the identity pinned for each (null: not seen yet). */
  private readonly parts: { what: string; path: string; id: FsId | null }[];
  private readonly onMoved: (m: HomeMove) => void;
  /** The last look's move (null: the path leads to this home, or to nothing). */
  moved: HomeMove | null = null;
  /** Looks that found the path leading elsewhere. */
  refused = 0;
  /** The pinned directories, held open for the run (see the top of this file). */
  private readonly held = new HeldDirs();

  constructor(readonly home: string, opts: HomePinOptions = {}) {
    const root = procRootOf(home, opts.procRoot);
    this.parts = [
      ...(root ? [{ what: root, path: root, id: null }] : []),
      { what: 'queue/db', path: join(home, 'queue/db'), id: null },
      { what: 'bin', path: join(home, 'bin'), id: null },
    ];
    this.onMoved = opts.onMoved ?? (() => {});
    this.holds(); // what the path names now is the home
  }

  /** Lets go of the pinned directories: the pin's owner is done with the home (Capture.close, for a pin of its own). */
  release(): void {
    this.held.keepOnly([]);
  }

  /**
   * Whether the path still leads to the pinned home (or to nothing of it: a path that died). Pins
   * what it sees for the first time. `seen`: identities just looked up by the caller (no second stat).
   */
  holds(seen: { 'queue/db'?: FsId | null; bin?: FsId | null } = {}): boolean {
    const now = this.parts.map((p) => (p.what in seen ? seen[p.what as keyof typeof seen] ?? null : statDir(p.path)));
    const i = this.parts.findIndex((p, k) => p.id !== null && now[k] !== null && !sameFsId(p.id, now[k]));
    if (i < 0) {
      // Pinned at first sight, and held open when it can be (EMFILE: pinned all the same, by its numbers).
      this.parts.forEach((p, k) => {
        if (p.id !== null || now[k] === null) return;
        p.id = now[k];
        this.held.hold(p.path, p.id);
      });
      this.moved = null;
      return true;
    }
    const p = this.parts[i];
    const found = formatFsId(now[i])!;
    if (this.moved?.what !== p.what || this.moved.found !== found) {
      this.moved = { what: p.what, followed: formatFsId(p.id)!, found, since: Date.now() };
    }
    this.refused++;
    this.onMoved(this.moved);
    return false;
  }
}
