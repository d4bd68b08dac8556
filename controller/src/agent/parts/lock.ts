// One tap per Wazuh home and per spool: flock(2) on `<spool>/lock` and on a
// lock named after the home's identity under /run (another spool_dir for the
// same home is still the same home). Lost (the file removed or replaced): the
// agent stops, since a second instance could now start beside it.
//
// spool_dir is opened here, first of all (publish/spool-dir.ts: a symbolic link
// in its place is refused when others than root may write its parent), and its
// files — the lock, the spool's, agents.status, alerts.position — are reached
// through that descriptor (tap.spoolAt) for the tap's life. Whoever may write
// the parent (on Wazuh, `<home>/var` is root:wazuh 0770) can rename spool_dir:
// that moves none of the tap's writes and does not stop it (the lock is looked
// at in the directory opened, by device and inode). The parent itself is looked
// at by its path: gone or another directory (a container's home whose path
// died, `/proc/<pid>/root/...`), the spool can no longer be told from a new one
// made there, and the tap stops as for a lost lock.
import { closeSync, fstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Part } from '../lifecycle.js';
import { InstanceLock } from '../instance-lock.js';
import type { Tap } from '../tap.js';
import { notOwnedError, openSpoolDir, procPathOf } from '../../publish/spool-dir.js';
import { checkSpoolNote } from '../spool-note.js';
import { statInView } from '../../util/in-view.js';
import { isTransient } from '../../util/errno.js';

/** Where the per-home locks live; a test may move it. */
export const HOME_LOCK_DIR = process.env.WAZUH_NATS_TAP_LOCK_DIR ?? '/run/wazuh-nats-tap';

export function lockPart(tap: Tap): Part {
  const locks: InstanceLock[] = [];
  let timer: NodeJS.Timeout | null = null;
  let dirFd = -1;
  return {
    name: 'instance lock',
    start() {
      const dir = openSpoolDir(tap.spoolDir);
      dirFd = dir.fd;
      try {
        const st = fstatSync(dir.fd);
        // Checked before the lock is made in it (the spool checks the rest: Spool.pinDir).
        const notOwned = notOwnedError(tap.spoolDir, st);
        if (notOwned) throw notOwned;
        const via = procPathOf(dir.fd, st);
        if (via) tap.spoolAt = via;
        const spool = new InstanceLock(join(tap.spoolDir, 'lock'), `the spool ${tap.spoolDir}`, { at: via ? join(via, 'lock') : undefined });
        spool.acquire();
        locks.push(spool);
        let home: { dev: bigint; ino: bigint } | null = null;
        try {
          home = statInView(tap.opts.home, { bigint: true }); // below a container's root: as it resolves the path
        } catch (e) {
          // Not installed yet: the spool's lock alone. Not known now (util/errno isTransient — EAGAIN: a
          // container's `..` walk that renames kept racing, util/in-view.ts): not started without the
          // home's lock — a restart looks again.
          if (isTransient(e)) throw new Error(`the Wazuh home ${tap.opts.home} could not be looked up now (EAGAIN: its path's links kept being raced by renames): not started without its lock`);
        }
        if (home) {
          const byHome = new InstanceLock(join(HOME_LOCK_DIR, `home-${home.dev}-${home.ino}.lock`), `the Wazuh home ${tap.opts.home}`);
          byHome.acquire();
          locks.push(byHome);
        }
        // Another directory than the last run's (renamed away while the tap was stopped): said, not a silent first run.
        // Once the locks are this run's: a second instance the lock refuses must not note (and so hide) anything.
        const replaced = checkSpoolNote(tap.spoolDir, st, dir.parent.path, {
          onNoteError: (why) => tap.log.warn({ why }, 'the spool\'s note cannot be written: a spool_dir replaced while the tap is stopped will not be noticed at the next start'),
        });
        tap.spoolReplaced = replaced;
        if (replaced) {
          tap.log.error({ spool_dir: tap.spoolDir, was: replaced.was, noted: replaced.noted, found_at: replaced.foundAt },
            `spool_dir is not the directory the last run used: the events it held for NATS and the agents' statuses it kept are not here; ${replaced.foundAt
              ? `it is at ${replaced.foundAt} (renamed by someone who may write ${dir.parent.path}?): stop the tap, put it back at spool_dir, start the tap`
              : `nor anywhere in ${dir.parent.path} (moved elsewhere, or removed): unless it was removed on purpose, find who moved it`}`);
        }
      } catch (e) {
        for (const l of locks.splice(0).reverse()) l.release();
        closeSync(dir.fd);
        dirFd = -1;
        tap.spoolAt = tap.spoolDir;
        throw e;
      }
      const parentHeld = () => leadsTo(dir.parent.path, dir.parent);
      // spool_dir's path leading elsewhere (renamed by whoever may write its parent): said once, and once
      // more when it leads back. The tap goes on in the directory it opened; a restart would make a new one.
      const opened = fstatSync(dir.fd);
      const pathAway = () => !leadsTo(tap.spoolDir, opened);
      timer = setInterval(() => {
        if (pathAway() !== tap.spoolDirMoved) {
          tap.spoolDirMoved = !tap.spoolDirMoved; // status says it too
          if (tap.spoolDirMoved) {
            tap.log.warn({ spool_dir: tap.spoolDir }, 'spool_dir leads to another directory, or to none, now (renamed by someone who may write its parent?): '
              + 'the tap goes on writing the directory it opened; move it back before the next start, or the events it holds are not replayed');
          } else tap.log.info({ spool_dir: tap.spoolDir }, 'spool_dir leads to the directory the tap writes again');
        }
        const lost = locks.find((l) => !l.held());
        if (lost) {
          tap.life.requestStop({ why: 'lost lock', code: 1, err: new Error(`the lock ${lost.path} was removed or replaced: stopping (one tap per home is no longer guaranteed)`) });
        } else if (!parentHeld()) {
          tap.life.requestStop({
            why: 'lost lock', code: 1,
            err: new Error(`the directory ${dir.parent.path} that holds spool_dir is gone or another directory now: stopping (the spool's lock `
              + 'can no longer be told from one made there: one tap per home is no longer guaranteed)'),
          });
        }
      }, 2000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      for (const l of locks.splice(0).reverse()) l.release();
      if (dirFd >= 0) closeSync(dirFd);
      dirFd = -1;
      tap.spoolAt = tap.spoolDir;
      tap.spoolDirMoved = false;
    },
  };
}

/** Whether `path` leads to the directory `id` (its device and inode) now. */
function leadsTo(path: string, id: { dev: number; ino: number }): boolean {
  try {
    const st = statSync(path);
    return st.dev === id.dev && st.ino === id.ino;
  } catch {
    return false;
  }
}
