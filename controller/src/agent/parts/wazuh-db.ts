// wazuh-db's view whenever its socket (re)appears: a tap started before the
// manager (systemd's usual order) or across a wazuh-db restart learns every
// agent's status as soon as wazuh-db listens, so the first transitions carry
// the real previous_status, not `unknown` (SPEC §3). inotify on queue/db says
// at once; a check every second covers a directory created later, or a missed
// event.
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { statInView, withPathInView } from '../../util/in-view.js';
import { isTransient } from '../../util/errno.js';
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';

/**
 * The socket as it is now: a re-created one differs in its birth time, even with its inode number
 * reused. Not its ctime: wazuh-db's own chmod and chown after bind(2), or an administrator's, change
 * that, and each would be taken for a new wazuh-db (every agent asked again). ctime only where the
 * filesystem keeps no birth time (statx gives 0).
 */
function socketKey(home: string): string | null | undefined {
  try {
    const st = statInView(join(home, 'queue/db/wdb')); // below a container's root: as it resolves the path
    return st.isSocket() ? `${st.dev}:${st.ino}:${st.birthtimeMs || st.ctimeMs}` : null;
  } catch (e) {
    // undefined: not known now (util/errno isTransient — EAGAIN: a container's `..` walk that renames kept
    // racing, util/in-view.ts) — taken for "gone", the next look's socket was a new wazuh-db and every
    // agent was asked again.
    return isTransient(e) ? undefined : null;
  }
}

export function wazuhDbPart(tap: Tap): Part {
  const dir = join(tap.opts.home, 'queue/db');
  let last: string | null = null;
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;

  const check = () => {
    const now = socketKey(tap.opts.home);
    if (now === undefined || now === last) return;
    // The socket of another home the path leads to now (a container's pid reused): not this home's
    // wazuh-db, never asked (tap.homePin says so). Not taken as seen either: this home's, if the path
    // comes back to it, is compared with the last this home had.
    if (now && !tap.homePin.holds()) return;
    last = now;
    if (now) void tap.resync('wazuh-db socket appeared', 5000, true);
  };
  const watchDir = () => {
    if (watcher) return;
    try {
      watcher = withPathInView(dir, (p) => watch(p, { persistent: false }, (_e, name) => { if (name === null || String(name) === 'wdb') check(); }));
      watcher.on('error', () => { watcher?.close(); watcher = null; });
    } catch {
      watcher = null; // no queue/db yet: the timer looks again
    }
  };

  return {
    name: 'wazuh-db watch',
    start() {
      last = socketKey(tap.opts.home) ?? null; // the state part asked the wazuh-db of now
      watchDir();
      timer = setInterval(() => { watchDir(); check(); }, 1000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      watcher?.close();
      watcher = null;
    },
  };
}
