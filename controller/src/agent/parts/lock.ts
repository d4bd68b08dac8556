// One tap per Wazuh home and per spool: flock(2) on `<spool>/lock` and on a
// lock named after the home's identity under /run (another spool_dir for the
// same home is still the same home). Lost (the file removed or replaced): the
// agent stops, since a second instance could now start beside it.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Part } from '../lifecycle.js';
import { InstanceLock } from '../instance-lock.js';
import type { Tap } from '../tap.js';

/** Where the per-home locks live; a test may move it. */
export const HOME_LOCK_DIR = process.env.WAZUH_NATS_TAP_LOCK_DIR ?? '/run/wazuh-nats-tap';

export function lockPart(tap: Tap): Part {
  const locks: InstanceLock[] = [];
  let timer: NodeJS.Timeout | null = null;
  return {
    name: 'instance lock',
    start() {
      const spool = new InstanceLock(join(tap.spoolDir, 'lock'), `the spool ${tap.spoolDir}`);
      spool.acquire();
      locks.push(spool);
      let home: { dev: bigint; ino: bigint } | null = null;
      try {
        home = statSync(tap.opts.home, { bigint: true });
      } catch { /* not installed yet: the spool's lock alone */ }
      if (home) {
        const byHome = new InstanceLock(join(HOME_LOCK_DIR, `home-${home.dev}-${home.ino}.lock`), `the Wazuh home ${tap.opts.home}`);
        byHome.acquire();
        locks.push(byHome);
      }
      timer = setInterval(() => {
        const lost = locks.find((l) => !l.held());
        if (lost) tap.life.requestStop({ why: 'lost lock', code: 1, err: new Error(`the lock ${lost.path} was removed or replaced: stopping (one tap per home is no longer guaranteed)`) });
      }, 2000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      for (const l of locks.splice(0).reverse()) l.release();
    },
  };
}
