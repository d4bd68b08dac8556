// Kernel readiness (SPEC §2, §7): the tap mounts tracefs itself when it is missing, and a missing
// privilege or kernel facility is a precise message and exit code 3, with nothing left in the kernel.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { openToOthers, unprivilegedEnv } from './helpers/unprivileged.js';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { BIN, ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

// Tap programs loaded from here on: those a test leaves behind (another tap's are held by it, never counted).
const MARK = bpfMark();

const A = { id: 1, name: 'agent1', ip: '127.0.0.1' };

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command to its end, killed after timeoutMs; onStderr sees stderr as it comes. */
function run(cmd: string, args: string[], timeoutMs = 20_000, onStderr?: (all: string) => void): Promise<Run> {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: unprivilegedEnv() });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); onStderr?.(stderr); });
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => p.once('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

const tap = (...args: string[]) => [process.execPath, BIN, ...args];
openToOthers(ROOT); // the unprivileged runs below must be able to read the program

async function nothingLeft(t: Pick<typeof import('tap').default, 'same' | 'equal'>, what: string) {
  t.same(await leftBehind(MARK), [], `no tap program left (${what})`);
}

/** Shell: unmount tracefs, and debugfs whose tracing/ would automount it, in the script's own mount namespace. */
const UNMOUNT_TRACEFS = `for m in /sys/kernel/debug/tracing /sys/kernel/debug /sys/kernel/tracing; do
      while grep -q " $m " /proc/self/mounts; do umount "$m" || exit 90; done
    done`;

const has = (bin: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

t.test('tracefs missing: the tap mounts it itself and captures', async (t) => {
  t.ok(has('unshare'), 'unshare (util-linux) is installed');
  const home = mkdtempSync(join(tmpdir(), 'wnt-ready-'));
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();

  // In a private mount namespace: unmount tracefs (and debugfs, whose tracing/ would automount it),
  // show it is gone, run the tap, then show what is mounted after it.
  const script = `
    set -u
    ${UNMOUNT_TRACEFS}
    echo "BEFORE tracefs=$(grep -c ' tracefs ' /proc/self/mounts) events=$(test -e /sys/kernel/tracing/events && echo yes || echo no)" >&2
    "$@"
    echo "RC=$?" >&2
    echo "AFTER $(grep ' tracefs ' /proc/self/mounts | cut -d' ' -f2 | tr '\\n' ' ')" >&2
  `;
  const READY = 'Ctrl-C to stop';
  let ready = false;
  const done = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh',
    ...tap('capture', '--json', '--count', '1', '--duration', '10', '--home', home)], 30_000,
  (err) => { ready ||= err.includes(READY); });
  let finished = false;
  void done.then(() => { finished = true; });
  await waitFor(() => ready || finished, 20_000, 'the tap to attach in the namespace');
  t.ok(ready, 'attached without tracefs mounted beforehand');
  await sim.keepalive(A); // select-agent-group, update-agent-data: --count 1 stops after the first
  const r = await done;

  t.match(r.stderr, /^BEFORE tracefs=0 events=no$/m, 'tracefs really was absent in the namespace before the tap ran');
  t.match(r.stderr, /^RC=0$/m, 'the tap exited 0');
  t.match(r.stderr, /^AFTER \/sys\/kernel\/tracing $/m, 'the tap mounted tracefs on /sys/kernel/tracing');
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { command: string; comm: string });
  t.same(lines.map((l) => [l.comm, l.command]), [['wazuh-remoted', 'select-agent-group']], 'and captured traffic');
  t.ok(existsSync('/sys/kernel/tracing/events'), 'tracefs outside the namespace is untouched');
  await nothingLeft(t, 'tracefs mounted by the tap');
});

t.test('tracefs unmounted while the tap runs detached: `attach` mounts it again, as the start does', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-ready-'));
  writeOssecConf(home);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  // The tap runs in the background of the script: should the script not stop it, the test does.
  t.teardown(() => { try { execFileSync('pkill', ['-KILL', '-f', '--', `--control-socket ${sock}`]); } catch { /* none left */ } });
  const cli = (cmd: string) => `${process.execPath} ${BIN} ${cmd} --control-socket ${sock}`;
  // In a private mount namespace: the tap runs and attaches, is detached, tracefs (and debugfs) is
  // unmounted under it, and `attach` is asked for.
  const script = `
    set -u
    ${process.execPath} ${BIN} run --home ${home} --control-socket ${sock} --nats-url nats://127.0.0.1:1 > ${home}/tap.log 2>&1 &
    pid=$!
    for i in $(seq 1 150); do grep -q '"msg":"attached: ' ${home}/tap.log && break; sleep 0.1; done
    ${cli('detach')} > /dev/null; echo "DETACH=$?" >&2
    ${UNMOUNT_TRACEFS}
    echo "BEFORE tracefs=$(grep -c ' tracefs ' /proc/self/mounts)" >&2
    ${cli('attach')} >&2; echo "ATTACH=$?" >&2
    echo "AFTER $(grep ' tracefs ' /proc/self/mounts | cut -d' ' -f2 | tr '\\n' ' ')" >&2
    ${cli('status')} | grep '^state' >&2
    kill -TERM $pid; wait $pid; echo "RC=$?" >&2
  `;
  const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], 40_000);
  t.match(r.stderr, /^DETACH=0$/m, 'detached');
  t.match(r.stderr, /^BEFORE tracefs=0$/m, 'tracefs really was gone before the attach');
  t.match(r.stderr, /^ATTACH=0$/m, `attached again (${r.stderr.split('\n').find((l) => /attach/.test(l)) ?? ''})`);
  t.match(r.stderr, /^AFTER \/sys\/kernel\/tracing $/m, 'the tap mounted tracefs again');
  t.match(r.stderr, /^state\s+attached/m, 'status says attached');
  t.match(r.stderr, /^RC=0$/m, 'and the tap stopped cleanly');
  await nothingLeft(t, 'attached again after tracefs was unmounted');
});

t.test('tracefs missing and not mountable: exit 3 naming what is missing', async (t) => {
  // Without CAP_SYS_ADMIN the tap cannot mount tracefs; CAP_BPF and CAP_PERFMON get it past the privilege check.
  const script = `
    ${UNMOUNT_TRACEFS}
    echo "BEFORE tracefs=$(grep -c ' tracefs ' /proc/self/mounts)" >&2
    exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+bpf,+perfmon --ambient-caps=+bpf,+perfmon "$@"
  `;
  const r = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh',
    ...tap('capture', '--count', '1', '--duration', '2')]);
  t.match(r.stderr, /^BEFORE tracefs=0$/m, 'tracefs was absent');
  t.equal(r.code, 3, 'exit 3');
  t.match(r.stderr, /wazuh-nats-tap: tracefs is not mounted on \/sys\/kernel\/tracing and mounting it failed: Operation not permitted; mount it first \(mount -t tracefs tracefs \/sys\/kernel\/tracing\) or run as root/);
  await nothingLeft(t, 'tracefs not mountable');
});

t.test('missing privileges: exit 3 naming the missing privilege', async (t) => {
  t.ok(has('setpriv'), 'setpriv (util-linux) is installed');
  const cases: [string, string[], RegExp][] = [
    ['nobody', ['--reuid=65534', '--regid=65534', '--clear-groups'],
      /wazuh-nats-tap: missing privileges: this process \(uid 65534\) lacks CAP_BPF and CAP_PERFMON; run as root, or with CAP_BPF and CAP_PERFMON/],
    ['root without capabilities', ['--inh-caps=-all', '--bounding-set=-sys_admin,-bpf,-perfmon'],
      /missing privileges: this process \(uid 0\) lacks CAP_BPF and CAP_PERFMON/],
    ['nobody with CAP_BPF only', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+bpf', '--ambient-caps=+bpf'],
      /missing privileges: this process \(uid 65534\) lacks CAP_PERFMON;/],
    ['nobody with CAP_BPF and CAP_PERFMON (tracefs is root-only)',
      ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+bpf,+perfmon', '--ambient-caps=+bpf,+perfmon'],
      /cannot read the syscall tracepoint \/sys\/kernel\/tracing\/events\/syscalls\/sys_enter_sendto\/id: Permission denied; tracefs is readable by root only: run as root \(or add CAP_DAC_READ_SEARCH\)/],
  ];
  for (const [who, opts, message] of cases) {
    const r = await run('setpriv', [...opts, ...tap('capture', '--count', '1', '--duration', '2')]);
    t.equal(r.code, 3, `${who}: exit 3`);
    t.match(r.stderr, message, `${who}: the message names what is missing`);
    t.equal(r.stdout, '', `${who}: nothing on stdout`);
    await nothingLeft(t, who);
  }
  // The same check guards `run`, before it touches NATS.
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups',
    ...tap('run', '--nats-url', 'nats://127.0.0.1:1', '--home', '/nonexistent')]);
  t.equal(r.code, 3, 'run as nobody: exit 3');
  t.match(r.stderr, /missing privileges: this process \(uid 65534\) lacks CAP_BPF and CAP_PERFMON/);
});

t.test('perf events or bpf() refused (a seccomp profile, as in containers): exit 3 naming it', async (t) => {
  t.ok(has('gcc'), 'gcc is installed (a build dependency)');
  const dir = mkdtempSync(join(tmpdir(), 'wnt-deny-'));
  const src = join(dir, 'deny.c');
  writeFileSync(src, `
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
/* deny SYSCALL ERRNO cmd...: run cmd with one syscall failing with ERRNO. */
int main(int argc, char **argv)
{
	if (argc < 4) return 2;
	int nr = !strcmp(argv[1], "perf_event_open") ? SYS_perf_event_open : !strcmp(argv[1], "bpf") ? SYS_bpf : -1;
	if (nr < 0) return 2;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (atoi(argv[2]) & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) return 2;
	execvp(argv[3], argv + 3);
	return 127;
}
`);
  const deny = join(dir, 'deny');
  execFileSync('gcc', ['-O2', '-o', deny, src]);

  const perf = await run(deny, ['perf_event_open', '13', ...tap('capture', '--count', '1', '--duration', '2')]);
  t.equal(perf.code, 3, 'perf_event_open refused: exit 3');
  t.match(perf.stderr, /wazuh-nats-tap: perf_event_open is refused \(Permission denied\): the tap needs perf events for its tracepoints and its record buffer; kernel\.perf_event_paranoid is -?\d+/);
  await nothingLeft(t, 'perf refused');

  const bpf = await run(deny, ['bpf', '1', ...tap('capture', '--count', '1', '--duration', '2')]);
  t.equal(bpf.code, 3, 'bpf() refused: exit 3');
  t.match(bpf.stderr, /wazuh-nats-tap: the kernel refused to load a BPF program \(bpf\(\): Operation not permitted\): a seccomp profile \(containers\) or kernel lockdown may forbid eBPF/);
  await nothingLeft(t, 'bpf refused');
});

t.test('the perf buffer refused for locked memory (no CAP_IPC_LOCK, a low RLIMIT_MEMLOCK): exit 3 naming the limit and the fix', async (t) => {
  t.ok(has('prlimit') && has('setpriv'), 'prlimit and setpriv (util-linux) are installed');
  // As a service without CAP_IPC_LOCK: the kernel charges the perf buffer's pages past
  // perf_event_mlock_kb to RLIMIT_MEMLOCK (64 KiB here: too little on any number of CPUs).
  const r = await run('prlimit', ['--memlock=65536:65536', '--', 'setpriv', '--bounding-set=-ipc_lock',
    ...tap('capture', '--count', '1', '--duration', '2')]);
  t.equal(r.code, 3, 'exit 3');
  t.match(r.stderr, /wazuh-nats-tap: cannot create the perf buffer: Operation not permitted: the kernel would not lock the buffer's memory \(\d+ CPUs × 1028 KiB, beyond kernel\.perf_event_mlock_kb a CPU shared by the user's processes\): the locked-memory limit \(RLIMIT_MEMLOCK, 64 KiB\) is too low and the process lacks CAP_IPC_LOCK; under systemd set LimitMEMLOCK=infinity/);
  await nothingLeft(t, 'perf buffer refused');

  // The same limit with CAP_IPC_LOCK (a root shell): the limit does not apply, the tap attaches.
  const ok = await run('prlimit', ['--memlock=65536:65536', '--', ...tap('capture', '--count', '1', '--duration', '2')]);
  t.equal(ok.code, 0, 'with CAP_IPC_LOCK: runs');
  t.match(ok.stderr, /capturing wazuh-db traffic/);
  await nothingLeft(t, 'with CAP_IPC_LOCK');
});
