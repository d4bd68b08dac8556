// kernel.pid_max raised while the tap runs: the shim sized the kernel's per-pid marks (the write
// path's one array load, bpf/wdbtap.bpf.c target_mark) to pid_max at load, so a daemon given a pid
// above it was listed as a target but never captured, and marking it from /proc failed (E2BIG) and
// ended the rescan. Here the capture runs in a pid namespace of its own whose pid_max is 1024 (a
// namespace's own since Linux 6.14): its marks hold pids below 1024, and the daemons' pids (in the
// kernel's first namespace, what BPF sees) are above — the same as pid_max raised after the load.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SimManager } from '../scripts/sim/manager.mjs';
import { spawnTsChild } from './helpers/ts-child.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'agent1', ip: '10.0.0.1' };
const B = { id: 2, name: 'agent2', ip: '10.0.0.2' };
const MARKS = 1024;

/** Processes started until the kernel hands out pids above `floor` (bounded: pids wrap at pid_max). */
function pidsAbove(floor: number): number {
  for (let i = 0; i < 40_000; i++) {
    const pid = spawnSync('/bin/true').pid ?? 0;
    if (pid > floor) return pid;
  }
  throw new Error(`no pid above ${floor} in 40,000 processes`);
}

t.test('daemons whose pids are past the marks are captured, found at exec and in /proc', async (t) => {
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-pidmax-')) });
  t.teardown(() => sim.stop());
  await sim.start();
  pidsAbove(MARKS + 200);
  const before = await sim.spawnClient('wazuh-authd'); // running when the capture starts: found in /proc

  const child = spawnTsChild(join(ROOT, 'test/helpers/capture-child.ts'), [sim.home], {
    wrap: ['unshare', '--pid', '--fork', 'sh', '-c', `echo ${MARKS} > /proc/sys/kernel/pid_max && exec "$0" "$@"`],
  });
  t.teardown(() => { child.stdin?.end(); setTimeout(() => child.kill('SIGKILL'), 5000).unref(); });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const tgids = new Set<number>();
  let ready: { pidMax: number } | null = null;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const m = JSON.parse(l) as { ready?: boolean; pidMax: number; tgid: number };
    if (m.ready) ready = m;
    else tgids.add(m.tgid);
  });
  await waitFor(() => ready !== null || child.exitCode !== null, 30_000, 'the capture attached');
  t.same(ready, { ready: true, pidMax: MARKS }, `the capture's pid_max is its namespace's (${stderr})`);

  const after = await sim.spawnClient('wazuh-authd'); // started after: followed from its exec
  for (const c of [before, after]) t.ok(c.pid! > MARKS, `daemon pid ${c.pid} is past the marks`);
  await before.startup(A);
  await after.startup(B);
  await waitFor(() => tgids.has(before.pid!) && tgids.has(after.pid!), 5000,
    'requests of both daemons captured').catch(() => {});
  t.ok(tgids.has(before.pid!), 'the daemon found in /proc is captured');
  t.ok(tgids.has(after.pid!), 'the daemon followed from its exec is captured');
  t.equal(stderr, '', 'no capture error (marking a pid past the marks is no failure)');
});
