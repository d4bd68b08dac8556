// Which tasks the kernel treats as targets when a daemon's threads do what the process tracepoints
// fire for: sched_process_exit fires for each thread, and sched_process_exec from any thread.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'agent1', ip: '10.0.0.1' };

/** The state letter of a task (R, S, Z…), or '' once it is gone. */
function taskState(pid: number, tid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

async function session(t: Tap.Test) {
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-threads-')) });
  // The periodic rescan must not be what keeps or drops a mark here.
  const capture = Capture.open({ ...artefacts(), home: sim.home, rescanMs: 60_000 });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  return { sim, capture, records };
}

t.test('a daemon whose first thread ends first is followed until its last thread ends', async (t) => {
  // The first thread's exit (tid = tgid) cleared the process's mark while its other threads went on:
  // nothing of theirs was captured again, and the rescan could not mark it back (a zombie leader's
  // /proc/<pid>/exe reads ENOENT). Review #2.
  const { sim, capture, records } = await session(t);
  const client = await sim.spawnClient('wazuh-authd');
  const pid = client.pid!;
  t.ok(capture.targets().includes(pid), 'a target from its exec');
  const tid = Number(await client.proc.command('leader-exit'));
  t.not(tid, pid, 'the commands go on in another thread');
  await waitFor(() => taskState(pid, pid) === 'Z', 3000, 'the first thread ended (a zombie)');
  t.ok(capture.targets().includes(pid), 'still a target: a thread of it lives');
  await client.keepalive(A);
  const sent = (r: CaptureRecord) => r.tgid === pid && r.tid === tid && Buffer.from(r.data).includes('update-agent-data');
  await waitFor(() => records.some(sent), 3000, 'its keepalive, written by the thread left');
  await waitFor(() => records.some((r) => r.direction === 'reply' && r.peerIno === records.find(sent)!.localIno
    && r.tsNs > records.find(sent)!.tsNs), 3000, 'and wazuh-db\'s reply to it');
  await client.quit();
  await waitFor(() => !capture.targets().includes(pid) && !capture.targets().includes(tid), 3000,
    'neither the process nor its thread a target once its last thread ended');
});

t.test('an exec from a thread other than the first leaves no thread id behind as a target', async (t) => {
  // The exec'ing thread takes the process's id; its own id, marked when the thread was created, was never
  // cleared: the next process given that pid was a target, its records labelled with the daemon's name.
  // Review #6.
  const { sim, capture } = await session(t);
  const client = await sim.spawnClient('wazuh-authd');
  const pid = client.pid!;
  const tid = Number(await client.proc.command(`thread-exec ${join(sim.home, 'bin/not-wazuh')}`));
  t.not(tid, pid, 'a thread other than the first execs');
  await waitFor(() => existsSync(`/proc/${pid}/comm`) && readFileSync(`/proc/${pid}/comm`, 'utf8') === 'not-wazuh\n', 3000, 'the exec done');
  t.equal(taskState(pid, tid), '', 'that thread\'s id names no task now');
  await waitFor(() => !capture.targets().includes(pid), 3000, 'the process, now not a daemon of the home, is no target');
  await waitFor(() => !capture.targets().includes(tid), 3000, 'nor is the exec\'ing thread\'s old id');
  await client.kill('SIGKILL');
});

t.test('a daemon whose first thread had ended before the capture started is found and followed', async (t) => {
  // The rescan at attach read /proc/<pid>/exe, which a zombie leader does not have (ENOENT): such a daemon,
  // started and past its pthread_exit from main before the tap, was never a target.
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-threads-')) });
  t.teardown(() => sim.stop());
  await sim.start();
  const client = await sim.spawnClient('wazuh-authd');
  const pid = client.pid!;
  const tid = Number(await client.proc.command('leader-exit'));
  await waitFor(() => taskState(pid, pid) === 'Z', 3000, 'the first thread ended (a zombie)');
  const capture = Capture.open({ ...artefacts(), home: sim.home, rescanMs: 60_000 });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(() => capture.close());
  await waitFor(() => capture.targets().includes(pid), 3000, 'the process a target from the scan at attach');
  await client.keepalive(A);
  await waitFor(() => records.some((r) => r.tgid === pid && r.tid === tid && Buffer.from(r.data).includes('update-agent-data')),
    3000, 'its keepalive, written by the thread left, captured');
  await client.quit();
});
