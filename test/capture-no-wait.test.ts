// The controller's thread never waits for the shim's reader (SPEC §2: Node's event loop never blocks).
// wdbtap_take only tried the rounds' lock, but wdbtap_rest and wdbtap_delivered took it waiting: while
// the reader was in a long round (a full release after a stall: up to 1 MiB a CPU into the heap), the
// event loop — NATS, timers, signals — stood still as long. Here the reader is made slow on purpose
// (test/helpers/slow-reader.c, preloaded: 300 ms inside the lock of every round, one round per 100 ms
// idle look), and both calls are timed from a process of their own.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/tap-process.js';
import { spawnTsChild } from './helpers/ts-child.js';

t.test('rest() and delivered() come back at once while the reader holds the rounds\' lock', async (t) => {
  const dir = join(ROOT, 'build/test');
  mkdirSync(dir, { recursive: true });
  const so = join(dir, `slow-reader-${process.pid}.so`);
  t.teardown(() => rmSync(so, { force: true }));
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-o', so, join(ROOT, 'test/helpers/slow-reader.c'), '-ldl']);
  const child = spawnTsChild(join(ROOT, 'test/helpers/no-wait-child.ts'), [], {
    env: { LD_PRELOAD: so, SLOW_READER_MS: '300' },
  });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  let errText = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { errText += d; });
  const code = await new Promise<number | null>((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (c) => { clearTimeout(timer); res(c); });
  });
  t.equal(code, 0, `the child ran to its end ${errText.trim()}`);
  const { rest, delivered } = JSON.parse(out) as { rest: number; delivered: number };
  // The reader holds the lock 300 ms of every ~400: a call that waited for it waited 150 ms on average.
  t.ok(rest < 100, `rest() never waited for the reader (longest ${rest.toFixed(1)} ms)`);
  t.ok(delivered < 100, `delivered() never waited for the reader (longest ${delivered.toFixed(1)} ms)`);
});
