// The shim's O(1) oldest entry time of its queue (bpf/shim/minq.c, what wdbtap_delivered reads while a
// resynchronisation waits for the capture to settle) against a walk of the queue, under ASan and UBSan:
// test/helpers/minq-check.c. Its appends take records older than the newest (the fast path's held
// keepalives) and ties, as the shim's queue has.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/tap-process.js';

const dir = join(ROOT, 'build/test');
mkdirSync(dir, { recursive: true });
const bin = join(dir, 'minq-check');
execFileSync('clang', ['-g', '-O1', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-Wall', '-Wextra', '-Werror',
  '-o', bin, join(ROOT, 'test/helpers/minq-check.c'), join(ROOT, 'bpf/shim/minq.c')], { stdio: ['ignore', 'pipe', 'pipe'] });

t.test('the oldest entry time is the walk\'s after every append and take, over several seeds', async (t) => {
  for (const seed of [1, 2, 3, 7, 1234567, Date.now() % 1_000_000]) {
    const r = spawnSync(bin, [String(seed), '100000'], { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `seed ${seed}: ${(r.stdout + r.stderr).trim().split('\n').slice(-1)[0]}`);
  }
});
