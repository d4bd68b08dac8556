// packaging/wazuh-nats-tap.service: what the unit sets, why, and that systemd's own checker
// accepts it. (This machine runs no systemd: test/install.test.ts and test/vagrant.test.ts check
// the unit as installed; what the tap does under it is approximated below where it can be.)
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SimManager } from '../scripts/sim/manager.mjs';
import { unitEnvironment } from '../scripts/unit-environment.mjs';
import { BIN, ROOT, startTapCommand } from './helpers/tap-process.js';
import { natsCollecting } from './helpers/nats-server.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const run = promisify(execFile);
const UNIT = readFileSync(join(ROOT, 'packaging/wazuh-nats-tap.service'), 'utf8');

/** The values of a setting in the unit's [Service] section, in order. */
function setting(name: string): string[] {
  return [...UNIT.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
}

t.test('systemd-analyze verify accepts the unit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-unit-'));
  symlinkSync(BIN, join(dir, 'wazuh-nats-tap'));
  const unit = join(dir, 'wazuh-nats-tap.service');
  writeFileSync(unit, UNIT.replaceAll('@BINDIR@', dir).replaceAll('@DOCDIR@', join(ROOT, 'docs')));
  const r = await run('systemd-analyze', ['verify', '--man=no', unit]).catch((e) => e as { code: number; stderr: string });
  t.same([(r as { code?: number }).code ?? 0, r.stderr], [0, '']);
});

t.test('LimitMEMLOCK=infinity: the perf buffer is locked memory, past systemd\'s 8 MiB from ~16 CPUs on', async (t) => {
  // Without it the unit's tap exits 3 ("cannot create the perf buffer: Operation not permitted") on
  // a large host: a service has no CAP_IPC_LOCK (test/kernel-readiness.test.ts shows the refusal).
  t.same(setting('LimitMEMLOCK'), ['infinity']);
  t.notMatch(setting('CapabilityBoundingSet').join(' '), /CAP_IPC_LOCK/, 'the limit, not a capability that lifts every limit');
});

t.test('Restart=on-failure, except the exits that no restart mends: 2 (configuration, usage) and 3 (privileges, kernel)', async (t) => {
  const { EXIT } = await import('../controller/src/cli.js');
  const { ConfigError, KernelSupportError } = await import('../controller/src/errors.js');
  t.same(setting('Restart'), ['on-failure']);
  t.same(setting('RestartPreventExitStatus'), [`${EXIT.usage} ${EXIT.kernel}`], 'exit 2 and 3 are not restarted');
  t.equal(new ConfigError('x').exitCode, EXIT.usage, 'a configuration error (and another tap holding the lock) exits 2');
  t.equal(new KernelSupportError('x').exitCode, EXIT.kernel, 'missing privileges or kernel support exit 3');
  t.notMatch(setting('RestartPreventExitStatus').join(' '), new RegExp(`\\b${EXIT.runtime}\\b`), 'a runtime failure (exit 1) is restarted');
});

t.test('the capabilities the tap uses, no more; README lists them', async (t) => {
  const caps = setting('CapabilityBoundingSet').at(-1)!.split(/\s+/);
  t.notOk(caps.includes('CAP_DAC_READ_SEARCH'), 'no CAP_DAC_READ_SEARCH: CAP_DAC_OVERRIDE covers reading and searching');
  t.notOk(caps.includes('CAP_SYS_RESOURCE'), 'no CAP_SYS_RESOURCE: systemd sets the limits before the capabilities go, and the tap raises none');
  for (const c of ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_DAC_OVERRIDE']) t.ok(caps.includes(c), `${c} (the sandbox run below needs it)`);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const requirements = readme.slice(readme.indexOf('## Requirements'), readme.indexOf('\n## ', readme.indexOf('## Requirements') + 1));
  for (const c of caps) t.match(requirements, `\`${c}\``, `README's requirements name ${c}`);
  t.match(requirements, /`LimitMEMLOCK=infinity`/, 'and the locked memory');
});

t.test('hardening the tap runs under (the sandbox run below approximates each)', async (t) => {
  for (const name of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelLogs', 'ProtectKernelModules', 'ProtectControlGroups']) {
    t.same(setting(name), ['yes'], `${name}=yes`);
  }
  t.same(setting('ProtectSystem'), ['strict']);
  // /run itself: the control socket's default, /run/wazuh-nats-tap.sock (SPEC), is made there.
  t.same(setting('ReadWritePaths'), ['-/var/ossec/var -/var/wazuh-manager/var /run']);
  // /var/lib/wazuh-nats-tap: which directory each spool_dir was (agent/spool-note.ts), root's alone.
  t.same(setting('StateDirectory'), ['wazuh-nats-tap']);
  t.same(setting('StateDirectoryMode'), ['0700']);
});

// ---- The tap under the unit's sandbox, approximated without systemd ----------------------------------
// What the unit's settings do to the process, done by hand in a mount namespace of its own (nothing
// of it reaches the host's mounts): ProtectSystem=strict and ReadWritePaths (every mount read-only but
// /dev, /proc and /sys; the paths given made writable again, /var/ossec standing for the test's home),
// ProtectKernelTunables (/sys and /proc/sys… read-only, /proc/kallsyms and /proc/kcore emptied),
// ProtectKernelLogs and ProtectKernelModules (/proc/kmsg, /dev/kmsg, /usr/lib/modules emptied),
// ProtectHome (/home, /root, /run/user emptied), PrivateDevices (a /dev of the pseudo-devices only),
// then the unit's UMask, Environment, LimitMEMLOCK, NoNewPrivileges and CapabilityBoundingSet
// (setpriv: root keeps only those). Not approximated: PrivateTmp (the test's home is under /tmp) and
// what systemd does with seccomp (RestrictAddressFamilies, RestrictNamespaces, SystemCallArchitectures…).
const MARK = bpfMark();
const yes = (name: string) => setting(name).at(-1) === 'yes';

/** The shell that sets up the sandbox in its own mount namespace, then execs "$@" as the unit would. */
function sandboxScript(home: string, o: { unmountTracefs?: boolean } = {}): string {
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  // Made first: /tmp is read-only once ProtectSystem is applied.
  const lines = ['set -eu', 'empty=$(mktemp -d) && chmod 0 "$empty" && emptyf=$(mktemp) && chmod 0 "$emptyf" && dev=$(mktemp -d)',
    // Mount points as /proc/self/mountinfo has them (field 5), deepest last.
    'mounts() { awk \'{ print $5 }\' /proc/self/mountinfo | sort -u; }',
    'ro() { mount -o remount,bind,ro "$1" 2>/dev/null || mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"; }',
    'hide() { [ -e "$1" ] || return 0; if [ -d "$1" ]; then mount --bind "$empty" "$1"; else mount --bind "$emptyf" "$1"; fi; }'];
  // StateDirectory=: systemd makes /var/lib/<name> (the mode StateDirectoryMode says) and leaves it
  // writable; a directory of the test's stands for it (the machine's /var/lib is left alone).
  const stateDir = setting('StateDirectory').at(-1);
  if (stateDir) lines.push(`state=$(mktemp -d) && chmod ${setting('StateDirectoryMode').at(-1) ?? '0755'} "$state"`);
  if (o.unmountTracefs) {
    lines.push('for m in /sys/kernel/debug/tracing /sys/kernel/debug /sys/kernel/tracing; do',
      '  while grep -q " $m " /proc/self/mounts; do umount "$m"; done', 'done');
  }
  // ProtectSystem=strict: everything read-only but the API file systems.
  lines.push('for m in $(mounts); do case "$m" in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) ;; *) mount -o remount,bind,ro "$m" 2>/dev/null || true ;; esac; done');
  if (stateDir) lines.push('mount --bind "$state" "$state" && mount -o remount,bind,rw "$state"', 'export WAZUH_NATS_TAP_STATE_DIR="$state"');
  for (const p of (setting('ReadWritePaths').at(-1) ?? '').split(/\s+/).filter(Boolean)) {
    const optional = p.startsWith('-');
    const path = p.replace(/^-/, '').replace(/^\/var\/ossec(?=\/|$)/, home);
    lines.push(`if [ -e ${q(path)} ]; then mount --bind ${q(path)} ${q(path)} && mount -o remount,bind,rw ${q(path)}; `
      + `${optional ? '' : `else echo "missing ReadWritePaths ${path}" >&2; exit 226; `}fi`);
  }
  if (yes('ProtectKernelTunables')) {
    lines.push('for m in $(mounts); do case "$m" in /sys|/sys/*) ro "$m" ;; esac; done',
      'for p in /proc/sys /proc/sysrq-trigger /proc/acpi /proc/apm /proc/asound /proc/bus /proc/fs /proc/irq /proc/latency_stats /proc/mtrr /proc/scsi /proc/timer_stats; do [ ! -e "$p" ] || ro "$p"; done',
      'hide /proc/kallsyms; hide /proc/kcore');
  }
  if (yes('ProtectKernelLogs')) lines.push('hide /proc/kmsg; hide /dev/kmsg');
  if (yes('ProtectKernelModules')) lines.push('hide /usr/lib/modules; hide /lib/modules');
  if (yes('ProtectHome')) {
    // Not over the checkout the tap runs from (a checkout under /root or /home is not a real layout).
    for (const d of ['/home', '/root', '/run/user']) if (!ROOT.startsWith(`${d}/`)) lines.push(`hide ${d}`);
  }
  if (yes('PrivateDevices')) {
    lines.push('mount -t tmpfs -o mode=755,nosuid tmpfs "$dev"',
      'for n in null zero full random urandom tty; do touch "$dev/$n" && mount --bind "/dev/$n" "$dev/$n"; done',
      'for d in pts shm mqueue hugepages; do [ ! -d "/dev/$d" ] || { mkdir "$dev/$d" && mount --bind "/dev/$d" "$dev/$d"; }; done',
      'ln -s pts/ptmx "$dev/ptmx"; ln -s /run/systemd/journal/dev-log "$dev/log"; ln -s /proc/self/fd "$dev/fd"',
      'mount --move "$dev" /dev');
  }
  const umask = setting('UMask').at(-1);
  if (umask) lines.push(`umask ${umask}`);
  for (const [k, v] of Object.entries(unitEnvironment(UNIT))) lines.push(`export ${k}=${q(v)}`);
  // LimitMEMLOCK=infinity: unlimited where this machine may raise the hard limit (CAP_SYS_RESOURCE),
  // else its hard limit, the most a process here can have.
  const memlock = setting('LimitMEMLOCK').at(-1);
  if (memlock === 'infinity') {
    lines.push('if prlimit --memlock=unlimited:unlimited true 2>/dev/null; then ml=unlimited; else ml=$(( $(ulimit -Hl) * 1024 )); fi');
  } else if (memlock) lines.push(`ml=${memlock}`);
  const caps = setting('CapabilityBoundingSet').at(-1)!.split(/\s+/).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
  lines.push(`exec prlimit ${memlock ? '--memlock="$ml:$ml"' : ''} -- `
    + `setpriv --bounding-set=-all,${caps.join(',')} ${yes('NoNewPrivileges') ? '--no-new-privs' : ''} "$@"`);
  return lines.join('\n');
}

for (const unmountTracefs of [false, true]) {
  // The unit's own lock directory (/run/wazuh-nats-tap, writable in its sandbox), not the test run's (read-only there).
  const { WAZUH_NATS_TAP_LOCK_DIR: _runLocks, WAZUH_NATS_TAP_STATE_DIR: _state, ...unitEnv } = process.env;
  t.test(`the tap under the unit's sandbox${unmountTracefs ? ', tracefs not mounted (it mounts it, in its own namespace)' : ''}: attaches, publishes, spools, answers status, stops cleanly`, async (t) => {
    const home = mkdtempSync(join(tmpdir(), 'wnt-unit-home-'));
    mkdirSync(join(home, 'var'));
    writeOssecConf(home);
    const A = { id: 843, name: 'unit-agent', ip: '192.168.56.43' };
    // The daemons run as another user, who owns the home (0700), queue/db and the wdb socket (0660),
    // as Wazuh's do: reaching them takes CAP_DAC_OVERRIDE and CAP_SYS_PTRACE.
    const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A], uid: 65534, gid: 65534 });
    t.teardown(() => sim.stop());
    await sim.start();
    const { nats, got } = await natsCollecting(t, 'wazuh.>');
    // The control socket where the default one is (/run), under a name of this test's.
    const sock = `/run/wnt-unit-sandbox-${process.pid}-${unmountTracefs ? 1 : 0}.sock`;
    const tracefsMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - (tracefs|debugfs) /.test(l) || l.includes(home));
    const hostMounts = tracefsMounts();
    const tap = await startTapCommand(['unshare', '-m', '--propagation', 'private', 'sh', '-c', sandboxScript(home, { unmountTracefs }), 'sh', process.execPath, BIN],
      ['run', '--home', home, '--nats-url', nats.url, '--control-socket', sock], /^attached/, unitEnv);
    t.teardown(() => tap.stop('SIGKILL'));

    // The sandbox is what the tap runs in: its capabilities are the unit's, its limit the unit's.
    const status = readFileSync(`/proc/${tap.proc.pid}/status`, 'utf8');
    const bits = (text: string, name: string) => BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(text)![1]}`);
    const names = (mask: bigint) => spawnSync('capsh', [`--decode=${mask.toString(16)}`], { encoding: 'utf8' }).stdout.trim().split('=')[1]
      .split(',').filter(Boolean).map((c) => c.toUpperCase()).sort();
    // The unit's set, less what this machine's own bounding set lacks (no process here can have it).
    const machine = names(bits(readFileSync('/proc/self/status', 'utf8'), 'CapBnd'));
    const unitCaps = setting('CapabilityBoundingSet').at(-1)!.split(/\s+/).sort();
    t.same(names(bits(status, 'CapBnd')), unitCaps.filter((c) => machine.includes(c)), `the bounding set is the unit's${unitCaps.every((c) => machine.includes(c)) ? '' : ` (less ${unitCaps.filter((c) => !machine.includes(c)).join(' ')}: not this machine's)`}`);
    t.equal(bits(status, 'CapEff'), bits(status, 'CapBnd'), 'root keeps exactly that set');
    t.match(readFileSync(`/proc/${tap.proc.pid}/limits`, 'utf8'), /^Max locked memory\s+(unlimited\s+unlimited|(\d+)\s+\2)\s/m, 'LimitMEMLOCK (or this machine\'s most)');
    t.match(status, /^NoNewPrivs:\s*1$/m);

    // troubleshooting.md's coredumpctl command selects this process's cores (systemd-coredump records
    // COREDUMP_UNIT, COREDUMP_COMM — the 15-byte comm —, COREDUMP_EXE); a bare word matches COREDUMP_COMM.
    const doc = readFileSync(join(ROOT, 'docs/troubleshooting.md'), 'utf8');
    const match = /`coredumpctl info ([^`]+)`/.exec(doc)?.[1] ?? '';
    const fields: Record<string, string> = {
      COREDUMP_UNIT: 'wazuh-nats-tap.service', COREDUMP_COMM: readFileSync(`/proc/${tap.proc.pid}/comm`, 'utf8').replace(/\n$/, ''),
      COREDUMP_EXE: readlinkSync(`/proc/${tap.proc.pid}/exe`),
    };
    const [field, value] = match.includes('=') ? match.split('=', 2) : [match.includes('/') ? 'COREDUMP_EXE' : 'COREDUMP_COMM', match];
    t.equal(value, fields[field], `\`coredumpctl info ${match}\` matches the tap's ${field} (${JSON.stringify(fields[field])})`);

    await sim.startup(A);
    await sim.keepalive(A);
    const statuses = () => got.filter((m) => m.subject === 'wazuh.agent.843.status').map((m) => m.body.current_status);
    await waitFor(() => statuses().length >= 2, 15_000, 'two status events').catch((e) => { t.comment(JSON.stringify(tap.logs)); throw e; });
    t.same(statuses(), ['pending', 'active'], 'the agent\'s events reach NATS');
    t.same(tap.logs.filter((l) => Number(l.level) >= 40).map((l) => l.msg), [], 'no warning or error in its log');

    // The control socket (in /run, writable) serves `status` from outside the sandbox.
    const st = spawnSync(process.execPath, [BIN, 'status', '--control-socket', sock], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    t.equal(st.status, 0, 'status through the control socket');
    t.match(st.stdout, /^state\s+attached \(sendto\)/m);
    // The spool and the journal beside it (in <home>/var: writable), the unit's UMask on them.
    const spool = join(home, 'var/nats-tap');
    t.ok(existsSync(spool) && readdirSync(spool).length > 0, `the spool is written: ${existsSync(spool) ? readdirSync(spool).join(' ') : 'none'}`);
    t.equal(statSync(spool).mode & 0o777, 0o700);

    t.same(await tap.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit 0');
    t.same(got.filter((m) => m.subject === 'wazuh.tap.node01.events').map((m) => m.body.action), ['started', 'attached', 'stopped']);
    t.notOk(existsSync(sock), 'the control socket removed at the stop');
    t.same(tracefsMounts(), hostMounts, 'nothing of the sandbox reached the host\'s mounts (tracefs, the home)');
    t.same(await leftBehind(MARK), [], 'no BPF program left behind');
  });
}
