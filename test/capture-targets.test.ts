// The rescan's marks of running daemons (capture/targets.ts markRunning), over a /proc of the test's
// own: /proc/<pid>/exe links to real files, so identities are real stat(2) ones. The race it closes:
// a daemon seen by the scan exits before its mark is made — the kernel clears a mark at a process's
// exit, and this one comes after — and its pid goes to another process, which stayed marked (its
// writes captured as the daemon's, a bogus row in status) until it exited.
import t from 'tap';
import { linkSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kernelFollows, markRunning, resolveHome, scanProcesses } from '../controller/src/capture/targets.js';

function rig(t: Tap.Test) {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-targets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => { const p = join(dir, name); writeFileSync(p, name); return p; };
  const remoted = file('wazuh-remoted');
  const monitord = file('wazuh-monitord');
  const other = file('bash');
  const idOf = (p: string) => { const st = statSync(p, { bigint: true }); return `${st.dev}:${st.ino}`; };
  const trusted = new Map([[idOf(remoted), 1], [idOf(monitord), 3]]);
  const proc = join(dir, 'proc');
  const run = (pid: number, exe: string) => {
    mkdirSync(join(proc, String(pid)), { recursive: true });
    try { unlinkSync(join(proc, String(pid), 'exe')); } catch { /* new */ }
    symlinkSync(exe, join(proc, String(pid), 'exe'));
  };
  const exit = (pid: number) => rmSync(join(proc, String(pid)), { recursive: true, force: true });
  mkdirSync(proc);
  return { trusted, proc, run, exit, remoted, monitord, other };
}

t.test('the running daemons are marked, nothing else', async (t) => {
  const r = rig(t);
  r.run(100, r.remoted);
  r.run(200, r.other);
  r.run(300, r.monitord);
  mkdirSync(join(r.proc, 'self')); // not a pid
  const marks = new Map<number, number>();
  const found = markRunning(r.trusted, (pid, d) => marks.set(pid, d), r.proc);
  t.same([...found].sort(), [[100, 1], [300, 3]]);
  t.same([...marks].sort(), [[100, 1], [300, 3]]);
  t.same([...scanProcesses(r.trusted, r.proc)].sort(), [[100, 1], [300, 3]]);
});

t.test('a daemon gone between the scan and its mark: the process given its pid is unmarked', async (t) => {
  const r = rig(t);
  r.run(100, r.remoted);
  r.run(300, r.monitord);
  const marks = new Map<number, number>();
  const found = markRunning(r.trusted, (pid, d) => {
    // The kernel's view when the mark is made: remoted has exited and its pid is a shell's.
    if (pid === 100 && d === 1) r.run(100, r.other);
    marks.set(pid, d);
  }, r.proc);
  t.equal(marks.get(100), 0, 'the shell holding the old pid is not left marked');
  t.equal(marks.get(300), 3, 'the daemon still running keeps its mark');
  t.same([...found], [[300, 3]], 'only the daemon still running is reported');
});

t.test('a pid gone for good, or running another of the daemons, after the mark', async (t) => {
  const r = rig(t);
  r.run(100, r.remoted);
  r.run(101, r.remoted);
  const marks = new Map<number, number>();
  const found = markRunning(r.trusted, (pid, d) => {
    if (pid === 100 && d === 1) r.exit(100);
    if (pid === 101 && d === 1) r.run(101, r.monitord); // exec'd into monitord (the kernel marked it so at exec)
    marks.set(pid, d);
  }, r.proc);
  t.equal(marks.get(100), 0, 'gone: unmarked (the kernel cleared its mark at exit, before this one)');
  t.equal(marks.get(101), 3, 'the daemon it runs now');
  t.same([...found], [[101, 3]]);
});

t.test('kernelFollows: the exec hook tells a daemon by its file\'s directory and name — not one run through a link out of bin/, a hard link, another filesystem\'s file', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-follows-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const bin = join(home, 'bin');
  const py = join(home, 'framework/python/bin');
  const elsewhere = join(home, 'elsewhere');
  for (const d of [bin, py, elsewhere, join(home, 'queue/db')]) mkdirSync(d, { recursive: true });
  const names = ['wazuh-remoted', 'wazuh-db', 'python3']; // python3: the framework's directory is followed
  writeFileSync(join(bin, 'wazuh-remoted'), 'x');
  writeFileSync(join(bin, 'wazuh-db'), 'x');
  writeFileSync(join(py, 'python3.10'), 'x');
  symlinkSync('python3.10', join(py, 'python3')); // as the framework's Python has it: within its directory
  const follows = () => kernelFollows(resolveHome(home, names), names);
  t.equal(follows(), true, 'regular files, and a link within its directory');
  linkSync(join(bin, 'wazuh-db'), join(elsewhere, 'db-copy'));
  t.equal(follows(), false, 'a hard link elsewhere: a process run through it is not matched by the kernel');
  unlinkSync(join(elsewhere, 'db-copy'));
  t.equal(follows(), true);
  writeFileSync(join(elsewhere, 'wazuh-remoted'), 'x');
  unlinkSync(join(bin, 'wazuh-remoted'));
  symlinkSync(join(elsewhere, 'wazuh-remoted'), join(bin, 'wazuh-remoted'));
  t.equal(follows(), false, 'a daemon\'s name a link out of bin/');
  unlinkSync(join(bin, 'wazuh-remoted'));
  symlinkSync(join(home, 'missing'), join(bin, 'wazuh-remoted'));
  t.equal(follows(), false, 'a link that leads nowhere yet');
  unlinkSync(join(bin, 'wazuh-remoted'));
  t.equal(follows(), true, 'a daemon not installed: nothing to miss');
  symlinkSync(join(elsewhere, 'wazuh-remoted'), join(py, 'python3.11'));
  t.equal(follows(), false, 'the Python directory\'s files too');
});
