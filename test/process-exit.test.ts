// How `run` ends its process (agent/process-exit.ts): with a thread of libuv's pool held by a disk
// that hangs (an fdatasync that never returns: helpers/slow-sync.c), process.exit() would wait for
// that thread forever; the tap's exit does not, and the 'exit' listeners (pino's flush) still run.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { slowSyncLib } from './helpers/slow-sync.mjs';
import { waitFor } from './helpers/wait.js';

async function child(t: Tap.Test, how: 'now' | 'idle', held: boolean, code: number) {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-exit-'));
  const hold = join(tmp, 'hold');
  if (held) writeFileSync(hold, '');
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const p = spawn(process.execPath, [...loader, join(import.meta.dirname, 'helpers/exit-child.ts'), how, join(tmp, 'f'), String(code)], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', LD_PRELOAD: slowSyncLib(), SLOW_SYNC_HOLD: hold },
  });
  t.teardown(() => p.kill('SIGKILL'));
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const t0 = Date.now();
  const exit = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  let ended = false;
  void exit.then(() => { ended = true; });
  await waitFor(() => ended, 10_000, `the child to exit: ${err}`);
  if (held) t.ok(existsSync(`${hold}.entered`), 'its fdatasync was held the whole time');
  return { code: await exit, ms: Date.now() - t0, out };
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
