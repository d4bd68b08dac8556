// The instance lock (agent/instance-lock.ts) is the flock; the pid in its file only names the
// holder. On a full disk, where the first start has no file to rewrite, the pid cannot be written:
// the lock is taken all the same (it stopped the tap: exit 1, ENOSPC, restarted by systemd for
// ever), and a second instance is refused without a name rather than with a wrong one.
//
// The spool's lock is looked at in the directory the tap opened, by device and inode: whoever may write
// spool_dir's parent (`<home>/var` is root:wazuh 0770) renaming it does not stop the tap (it did: "lost
// lock", exit 1, every restart), and a symbolic link put in its place is not followed at the next start.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, constants, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync,
  statSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlreadyRunning, InstanceLock } from '../controller/src/agent/instance-lock.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';
import { ROOT, runTap, startTap } from './helpers/tap-process.js';
import { spooled } from './helpers/spooled.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

t.test('a lock taken on a full disk: held, unnamed; a second instance refused', async (t) => {
  const mnt = mountTmpfs(t, '256k');
  const dir = join(mnt, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const free = fillDisk(mnt);
  const lock = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.teardown(() => lock.release());
  t.doesNotThrow(() => lock.acquire(), 'taken: no room for the pid is no reason to stop');
  t.ok(lock.held());
  t.equal(statSync(join(dir, 'lock')).size, 0, 'the file left empty');
  const second = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.throws(() => second.acquire(), new AlreadyRunning(`another wazuh-nats-tap already runs on the spool ${dir} (lock ${join(dir, 'lock')})`),
    'refused, naming no pid');
  lock.release();
  free();
  const third = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.teardown(() => third.release());
  third.acquire();
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`, 'with room, the pid names the holder');
});

t.test('a part of a pid (no newline: a write cut short) names no one', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-lock-')), 'lock');
  const holder = new InstanceLock(path, 'the spool x');
  t.teardown(() => holder.release());
  holder.acquire();
  writeFileSync(path, '12'); // what a short write of "12345\n" leaves
  t.throws(() => new InstanceLock(path, 'the spool x').acquire(), { message: /^another wazuh-nats-tap already runs on the spool x/ });
  writeFileSync(path, '12345\n');
  t.throws(() => new InstanceLock(path, 'the spool x').acquire(), { message: /^another wazuh-nats-tap \(pid 12345\) already runs/ });
});

t.test('the lock reached through its directory opened: held when the directory is renamed; lost when the file is removed or replaced', async (t) => {
  const b = mkdtempSync(join(tmpdir(), 'wnt-lock-'));
  const dir = join(b, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  t.teardown(() => closeSync(fd));
  const lock = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`, { at: `/proc/self/fd/${fd}/lock` });
  t.teardown(() => lock.release());
  lock.acquire();
  t.ok(lock.held());
  const moved = join(b, 'moved');
  renameSync(dir, moved);
  t.ok(lock.held(), 'the directory renamed: still held');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'lock'), '');
  t.ok(lock.held(), 'another directory with another lock at its path: changes nothing');
  linkSync(join(moved, 'lock'), join(b, 'lock.kept'));
  unlinkSync(join(moved, 'lock'));
  t.notOk(lock.held(), 'its file removed: lost');
  symlinkSync(join(b, 'lock.kept'), join(moved, 'lock'));
  t.notOk(lock.held(), 'a link to it in its place: lost (another file)');
  unlinkSync(join(moved, 'lock'));
  writeFileSync(join(moved, 'lock'), '');
  t.notOk(lock.held(), 'another file in its place: lost');
  rmSync(b, { recursive: true, force: true });
});

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
const WAZUH = 65534; // stands in for the wazuh user

/** A home whose var/ is as Wazuh makes it, root:wazuh 0770, with the simulated manager running. */
async function wazuhHome(t: Tap.Test): Promise<{ h: string; sim: SimManager; asWazuh: (cmd: string) => void }> {
  const h = mkdtempSync(join(tmpdir(), 'wnt-lock-home-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  chmodSync(h, 0o755);
  writeOssecConf(h);
  mkdirSync(join(h, 'var'), { recursive: true });
  chownSync(join(h, 'var'), 0, WAZUH);
  chmodSync(join(h, 'var'), 0o770);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home: h, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const asWazuh = (cmd: string) => { execFileSync('setpriv', [`--reuid=${WAZUH}`, `--regid=${WAZUH}`, '--clear-groups', 'sh', '-c', cmd]); };
  return { h, sim, asWazuh };
}

t.test('the wazuh user renames the spool directory: the tap runs on, writing in the directory it opened; a link put in its place is refused at the next start', async (t) => {
  const { h, sim, asWazuh } = await wazuhHome(t);
  const args = ['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')];
  const tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  const spool = join(h, 'var/nats-tap');
  const moved = join(h, 'var/moved');
  // A root-owned directory that is not group/other-writable, holding a file of its own (/etc/sudoers.d…).
  const victim = join(h, 'root-only');
  mkdirSync(victim, { mode: 0o755 });
  writeFileSync(join(victim, 'README'), 'root\'s own\n');
  const status = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', join(h, 'tap.sock')])).stdout);
  t.equal((await status()).spool.dir_moved, false, 'status before: spool_dir where it was');
  asWazuh(`mv ${spool} ${moved} && ln -s ${victim} ${spool}`);
  await new Promise((r) => setTimeout(r, 5000)); // the lock is looked at every 2 s
  t.equal(tap.proc.exitCode, null, `still running: ${tap.stderr().slice(0, 300)}`);
  t.notMatch(tap.stderr(), /removed or replaced/, 'no lost lock said');
  t.equal(tap.logs.filter((l) => /^spool_dir leads to another directory/.test(String(l.msg))).length, 1, 'the rename said, once');
  t.equal((await status()).spool.dir_moved, true, 'status --json: spool.dir_moved');
  t.match((await runTap(['status', '--control-socket', join(h, 'tap.sock')])).stdout, /^spool .*MOVED: spool_dir leads elsewhere now/m, 'status: the spool row says it');
  await sim.startup(A); // a status change, spooled (NATS is away)
  await new Promise((r) => setTimeout(r, 1500));
  const r = await tap.stop('SIGTERM');
  t.same([r.code, r.signal], [0, null], 'stopped by the signal, exit 0');
  t.same(readdirSync(victim), ['README'], 'nothing written where the link points while it ran');
  t.ok(spooled(moved).some((e) => e.kind === 'status'), 'the status change spooled in the directory opened, renamed');
  t.ok(lstatSync(spool).isSymbolicLink(), 'the link left as it is');

  const again = await runTap(args);
  t.equal(again.code, 2, 'the next start: exit 2');
  t.match(again.stderr, new RegExp(`spool_dir ${spool} is a symbolic link to ${victim}, in ${join(h, 'var')}, a directory its group \\(gid ${WAZUH}\\) may write`),
    'naming the link and why');
  t.same(readdirSync(victim), ['README'], 'nothing made where the link points (lock, segments, agents.status…)');
  t.equal(statSync(victim).mode & 0o7777, 0o755, 'its mode as it was');
});

t.test('the directory holding spool_dir gone (a container\'s home whose path died): the tap stops, exit 1', async (t) => {
  const { h } = await wazuhHome(t);
  const tap = await startTap(['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  renameSync(join(h, 'var'), join(h, 'var.old')); // root only: <home> is not the wazuh user's to write
  await waitFor(() => tap.proc.exitCode !== null, 15_000, 'the tap to stop');
  t.equal(tap.proc.exitCode, 1);
  t.match(tap.stderr(), /the directory .*\/var that holds spool_dir is gone or another directory now: stopping/);
});

t.test('a lock that is a second name of another file, or another user\'s, is refused: never truncated nor written', async (t) => {
  // With fs.protected_hardlinks=0 the Wazuh user could link a root file (in a directory it moved there)
  // as the spool's lock: root truncated it and wrote its pid in it (found by a review).
  const dir = mkdtempSync(join(tmpdir(), 'wnt-lock-link-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'root: precious\n', { mode: 0o600 });
  linkSync(victim, join(dir, 'lock'));
  t.throws(() => new InstanceLock(join(dir, 'lock'), `the spool ${dir}`).acquire(), /a file with 2 names \(hard links\): remove it/);
  t.equal(readFileSync(victim, 'utf8'), 'root: precious\n', 'the other file untouched');
  rmSync(join(dir, 'lock'));
  writeFileSync(join(dir, 'lock'), '');
  chownSync(join(dir, 'lock'), 65534, 65534);
  t.throws(() => new InstanceLock(join(dir, 'lock'), `the spool ${dir}`).acquire(), /owned by uid 65534, not root: remove it/);
  rmSync(join(dir, 'lock'));
  const ok = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  ok.acquire();
  t.teardown(() => ok.release());
  t.pass('a lock of its own is taken');
});

t.test('the wazuh user renames the spool directory while the tap is stopped: the next start says the last run\'s spool is not there, and where it is', async (t) => {
  const { h, sim, asWazuh } = await wazuhHome(t);
  const args = ['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')];
  const replacedLines = (logs: Record<string, unknown>[]) => logs.filter((l) => /^spool_dir is not the directory the last run used/.test(String(l.msg)));
  const first = await startTap(args);
  t.teardown(() => first.stop('SIGKILL'));
  await sim.startup(A); // a status change, spooled (NATS is away)
  await waitFor(() => spooled(join(h, 'var/nats-tap')).some((e) => e.kind === 'status'), 5000, 'the change spooled');
  t.same(replacedLines(first.logs), [], 'a first run: nothing to say');
  t.same((await first.stop('SIGTERM')), { code: 0, signal: null });

  const again = await startTap(args); // the same directory: nothing to say
  t.same(replacedLines(again.logs), [], 'the same directory: nothing said');
  await again.stop('SIGTERM');

  asWazuh(`mv ${join(h, 'var/nats-tap')} ${join(h, 'var/elsewhere')}`); // while the tap is stopped
  const third = await startTap(args);
  t.teardown(() => third.stop('SIGKILL'));
  const said = replacedLines(third.logs);
  t.equal(said.length, 1, 'said at the start');
  t.match(said[0], { level: 50, spool_dir: join(h, 'var/nats-tap'), found_at: join(h, 'var/elsewhere') }, 'an error naming where the old one is');
  t.match(String(said[0].msg), /it is at .*var\/elsewhere .*put it back at spool_dir/);
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', join(h, 'tap.sock')])).stdout);
  t.match(st.spool.replaced, { found_at: join(h, 'var/elsewhere') }, 'status --json: spool.replaced');
  t.match((await runTap(['status', '--control-socket', join(h, 'tap.sock')])).stdout, /^spool .*NOT THE LAST RUN'S: the spool and statuses it held are at .*var\/elsewhere/m, 'status: the spool row says it');
  await third.stop('SIGTERM');

  const fourth = await startTap(args); // said once: the new directory is noted now
  t.same(replacedLines(fourth.logs), [], 'the next start: the new directory is the noted one');
  await fourth.stop('SIGTERM');
});

// Review rr-poison-files F12: the renamed directory's name is the wazuh group's to choose, and `status`
// quoted it raw — an OSC sets root's window title (or writes the clipboard, OSC 52), a CR and ESC [2K
// overwrite the warning with a fake "all delivered" row. The table shows every such character escaped;
// `status --json` keeps the exact name (JSON-escaped).
t.test('a spool directory renamed to a name with ESC, BEL, CR and an OSC sequence: status shows it escaped, never raw', async (t) => {
  const { h } = await wazuhHome(t);
  const sock = join(h, 'tap.sock');
  const args = ['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', sock];
  const first = await startTap(args);
  t.teardown(() => first.stop('SIGKILL'));
  t.same(await first.stop('SIGTERM'), { code: 0, signal: null }, 'a first run notes its spool directory');
  const evil = 'x\u001b]0;PWNED\u0007\r\u001b[2Kspool     0 events, all delivered';
  // As the wazuh user, no shell between: the name is exactly this.
  execFileSync('setpriv', [`--reuid=${WAZUH}`, `--regid=${WAZUH}`, '--clear-groups', 'mv', '--', join(h, 'var/nats-tap'), join(h, 'var', evil)]);
  const tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  const human = await runTap(['status', '--control-socket', sock]);
  t.equal(human.code, 0);
  // eslint-disable-next-line no-control-regex
  t.notMatch(human.stdout.replace(/\n/g, ''), /[\u0000-\u001f\u007f-\u009f]/, 'no raw control character in the table (but its line ends)');
  const row = human.stdout.split('\n').filter((l) => l.startsWith('spool'));
  t.equal(row.length, 1, 'one spool row: no fake one');
  t.ok(row[0].includes(`are at ${join(h, 'var')}/x\\u001b]0;PWNED\\u0007\\u000d\\u001b[2Kspool     0 events, all delivered (see the log)`),
    `the name shown with visible escapes: ${JSON.stringify(row[0])}`);
  const json = await runTap(['status', '--json', '--control-socket', sock]);
  t.equal(JSON.parse(json.stdout).spool.replaced.found_at, join(h, 'var', evil), 'status --json: the exact name');
  // eslint-disable-next-line no-control-regex
  t.notMatch(json.stdout.replace(/\n$/, ''), /[\u0000-\u001f\u007f-\u009f]/, 'status --json: escaped, nothing raw');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a second instance the lock refuses notes nothing: the next start of the tap still says its spool was moved', async (t) => {
  const { h, asWazuh } = await wazuhHome(t);
  const args = ['run', '--home', h, '--nats-url', 'nats://127.0.0.1:1', '--control-socket', join(h, 'tap.sock')];
  const replacedLines = (logs: Record<string, unknown>[]) => logs.filter((l) => /^spool_dir is not the directory the last run used/.test(String(l.msg)));
  const first = await startTap(args);
  t.teardown(() => first.stop('SIGKILL'));
  asWazuh(`mv ${join(h, 'var/nats-tap')} ${join(h, 'var/elsewhere')}`); // while it runs: it goes on in the directory it opened
  const second = await runTap([...args.slice(0, -1), join(h, 'tap2.sock')]);
  t.not(second.code, 0, `a second instance for the home is refused (exit ${second.code})`);
  t.match(second.stderr, /another instance|lock/i, 'by the lock');
  t.same(await first.stop('SIGTERM'), { code: 0, signal: null });
  const third = await startTap(args);
  t.teardown(() => third.stop('SIGKILL'));
  t.match(replacedLines(third.logs), [{ found_at: join(h, 'var/elsewhere') }], 'the next start says it, naming where it is');
  await third.stop('SIGTERM');
});
