// The LD_PRELOAD library of slow-sync.c (a disk whose fdatasync hangs), built into build/test/ with the
// machine's cc when missing or older than its source. Plain JavaScript: the test
// (spool-slow-disk.test.ts) and the bench probe (scripts/bench/slow-disk.mjs) both load it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

export function slowSyncLib() {
  const src = join(ROOT, 'test/helpers/slow-sync.c');
  const out = join(ROOT, 'build/test/slow-sync.so');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(ROOT, 'build/test'), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', out, src, '-ldl']);
  }
  return out;
}

/**
 * The environment that gives a child process that disk: every fdatasync waits while `hold` exists
 * (`match`: only those of a file whose path contains it); `log`: a file where each fdatasync and
 * rename is traced, one line each, in the order they happened.
 */
export function slowSyncEnv(hold, o = {}) {
  const env = { LD_PRELOAD: slowSyncLib(), SLOW_SYNC_HOLD: hold };
  if (o.match) env.SLOW_SYNC_MATCH = o.match;
  if (o.log) env.SLOW_SYNC_LOG = o.log;
  return env;
}
