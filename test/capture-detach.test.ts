// Detaching waits for the kernel's RCU grace periods: the agent does it on a libuv thread
// (Capture.detachAsync). Those threads are shared with file work, and a hung disk can hold them all:
// the stop's own detach, on the event loop, must still remove every hook, and close() must not wait
// for the queued one for ever nor free the handle under it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { ROOT } from './helpers/tap-process.js';
import { tapLinksOf, tapProgramsOf } from './helpers/bpf.js';

t.test('libuv\'s threads all held (a hung disk): the detach queued for one waits; the stop\'s detach removes every hook and close() returns', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-detach-'));
  new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home }); // lays the home out
  const capture = Capture.open({ ...artefacts(), home });
  capture.start(() => {}, (e) => t.fail(e.message));
  capture.attach();
  t.ok(tapLinksOf(process.pid) > 0, 'attached');
  // Every libuv thread blocked in a read of a FIFO nobody writes (the default pool has 4).
  const fifos = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, (_, i) => join(home, `fifo-${i}`));
  for (const f of fifos) execFileSync('mkfifo', [f]);
  const held = fifos.map((f) => readFile(f).catch(() => null));
  const release = () => {
    for (const f of fifos) {
      try { closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK)); } catch { /* its reader is gone already */ }
    }
  };
  t.teardown(async () => { release(); await Promise.all(held); });
  await new Promise((r) => setTimeout(r, 100));

  const queued = capture.detachAsync();
  await new Promise((r) => setTimeout(r, 300));
  t.ok(capture.detachingNow, 'the async detach waits for a thread');
  t.ok(tapLinksOf(process.pid) > 0, 'its links still there');
  capture.detach(); // the stop's: on this thread
  t.equal(tapLinksOf(process.pid), 0, 'every hook removed all the same');
  const t0 = Date.now();
  await capture.close();
  t.ok(Date.now() - t0 < 3000, `close() returned (${Date.now() - t0} ms) without the queued detach`);
  // The threads freed: the queued detach runs on a handle still allocated (not freed under it), finds nothing.
  release();
  await queued;
  t.equal(tapLinksOf(process.pid), 0, 'nothing left');
  await new Promise((r) => setImmediate(r));
  t.equal(tapProgramsOf(process.pid).length, 0, 'and the programs freed once the queued detach ran');
});
