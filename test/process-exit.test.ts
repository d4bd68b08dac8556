// How `run` ends its process (agent/process-exit.ts): with a thread of libuv's pool held by a disk
// that hangs (an fdatasync that never returns: helpers/slow-sync.c), process.exit() would wait for
// that thread forever; the tap's exit does not, and the 'exit' listeners (pino's flush) still run.
// And with the event loop itself held in a call (where no timer fires), the kernel keeps the deadline.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { slowSyncEnv } from './helpers/slow-sync.mjs';
import { spawnTsChild } from './helpers/ts-child.js';
import { waitFor } from './helpers/wait.js';

async function child(t: Tap.Test, how: 'now' | 'idle' | 'listener' | 'shutdown', held: boolean, code: number) {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-exit-'));
  const hold = join(tmp, 'hold');
  if (held) writeFileSync(hold, '');
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const p = spawnTsChild(join(import.meta.dirname, 'helpers/exit-child.ts'), [how, join(tmp, 'f'), String(code)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: slowSyncEnv(hold) });
  t.teardown(() => p.kill('SIGKILL'));
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const t0 = Date.now();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.once('exit', (c, sig) => r({ code: c, signal: sig })));
  let ended = false;
  void exit.then(() => { ended = true; });
  await waitFor(() => ended, 10_000, `the child to exit: ${err}`);
  if (held) t.ok(existsSync(`${hold}.entered`), 'its fdatasync was held the whole time');
  const { code: c, signal } = await exit;
  return { code: c, signal, ms: Date.now() - t0, out };
}

t.test('a thread held by the disk: the process still ends with its code, after its exit listeners', async (t) => {
  const now = await child(t, 'now', true, 7);
  t.equal(now.code, 7, `exitNow: code 7 (${now.ms} ms)`);
  t.match(now.out, /exit listener 7/, 'the exit listeners ran');
  t.notMatch(now.out, /synced/, 'the sync never returned');
  const idle = await child(t, 'idle', true, 5);
  t.equal(idle.code, 5, `exitWhenIdle: waits its bound, then exits all the same (${idle.ms} ms)`);
  t.match(idle.out, /exit listener 5/);
});

t.test('nothing held: exitWhenIdle lets the sync finish and exits as process.exit does', async (t) => {
  const r = await child(t, 'idle', false, 3);
  t.equal(r.code, 3);
  t.match(r.out, /synced\nexit listener 3/, 'the sync returned before the exit');
});

t.test('the event loop held in a call: the kernel keeps the deadline (SIGALRM), in the shutdown and in the exit', async (t) => {
  const shut = await child(t, 'shutdown', false, 0);
  t.match(shut.out, /stop holds/, 'the part\'s stop held the loop');
  t.notMatch(shut.out, /returned/, 'the shutdown never returned');
  t.equal(shut.signal, 'SIGALRM', `ended by the kernel (${shut.ms} ms: the 300 ms deadline, 2 s more, whole seconds)`);
  t.ok(shut.ms < 6000, 'long before the 30 s the loop was held');
  const listener = await child(t, 'listener', false, 4);
  t.match(listener.out, /listener holds/);
  t.equal(listener.signal, 'SIGALRM', `an exit listener that holds: ended by the kernel (${listener.ms} ms)`);
  t.ok(listener.ms < 6000);
});
