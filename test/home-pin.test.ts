// A manager in a container is followed as `--home /proc/<pid>/root/var/ossec`. When that process ends
// the path dies; when the kernel gives the pid to a process of another container (or of the host), the
// same text names that one's home. The tap looked the path up every second or two and took whatever it
// named: the other manager's wazuh-db was asked (its listing removed this manager's agents), its daemons
// captured, its alerts followed — all published under this tap's prefix and node, and for good. Now the
// home is pinned at start (capture/home-pin.ts): another home the path leads to is refused and said.
// A symbolic link stands for the kernel's /proc/<pid>/root (path resolution follows both alike).
import t from 'tap';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { HomePin } from '../controller/src/capture/home-pin.js';
import { procRootOf } from '../controller/src/util/proc-root.js';
import { formatFsId } from '../controller/src/capture/targets.js';
import { artefacts } from '../controller/src/paths.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const binDir = join(ROOT, 'build/sim/bin');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idOf = (p: string) => { const s = statSync(p, { bigint: true }); return formatFsId({ dev: s.dev, ino: s.ino }); };

function scratch(t: Tap.Test, tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `wnt-pin-${tag}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** `<base>/proc/4242/root` pointing at `to` (or at nothing: the process ended). */
function pointPid(link: string, to: string | null) {
  rmSync(link, { force: true });
  if (to) symlinkSync(to, link);
}

t.test('procRootOf: a home reached through /proc/<pid>/root', async (t) => {
  t.equal(procRootOf('/proc/4242/root/var/ossec'), '/proc/4242/root');
  t.equal(procRootOf('/proc//4242/root/var/ossec/'), '/proc/4242/root', 'as the kernel reads it');
  t.equal(procRootOf('/proc/4242/root'), '/proc/4242/root');
  t.equal(procRootOf('/var/ossec'), null);
  t.equal(procRootOf('/proc/self/root/var/ossec'), null, 'self: the tap\'s own root, never reused');
  t.equal(procRootOf('/x/proc/7/root/var/ossec', '/x/proc'), '/x/proc/7/root');
});

t.test('the pin: another root, another queue/db or bin/ is refused; executables replaced, a path that died, are not', async (t) => {
  const base = scratch(t, 'unit');
  const [rootA, rootB] = ['A', 'B'].map((c) => { const r = join(base, c); mkdirSync(join(r, 'var/ossec'), { recursive: true }); return r; });
  for (const d of ['queue/db', 'bin']) mkdirSync(join(rootB, 'var/ossec', d), { recursive: true });
  mkdirSync(join(base, 'proc/4242'), { recursive: true });
  const link = join(base, 'proc/4242/root');
  pointPid(link, rootA);
  const home = `${link}/var/ossec`;
  const moves: unknown[] = [];
  const pin = new HomePin(home, { procRoot: join(base, 'proc'), onMoved: (m) => moves.push(m) });

  t.ok(pin.holds(), 'A, nothing installed yet: holds');
  pointPid(link, rootB); // the pid reused by a process of container B, whose manager is installed
  t.notOk(pin.holds(), 'B\'s root: refused, although A had no queue/db or bin/ to compare');
  t.match(pin.moved, { what: link, followed: idOf(rootA), found: idOf(rootB) }, 'what differs, and both identities');
  t.equal(moves.length, 1, 'said');
  pointPid(link, null); // that process ended too
  t.ok(pin.holds(), 'the path died: nothing to refuse');
  t.equal(pin.moved, null);

  pointPid(link, rootA);
  for (const d of ['queue/db', 'bin']) mkdirSync(join(rootA, 'var/ossec', d), { recursive: true });
  t.ok(pin.holds(), 'installed in A since: taken, and pinned');
  // An upgrade: a daemon's executable replaced (a new inode under the same bin/).
  writeFileSync(join(home, 'bin/wazuh-db.new'), 'v2');
  renameSync(join(home, 'bin/wazuh-db.new'), join(home, 'bin/wazuh-db'));
  t.ok(pin.holds(), 'an executable replaced in bin/: the same home');
  // queue/db made again (only root can: queue/ is root's) — other directories, another home's or not.
  renameSync(join(home, 'queue/db'), join(home, 'queue/db.old'));
  mkdirSync(join(home, 'queue/db'));
  t.notOk(pin.holds(), 'queue/db made again: refused');
  t.match(pin.moved, { what: 'queue/db' });
  t.equal(pin.refused, 2, 'each refusing look counted');
});

t.test('Capture: the kernel keeps this home\'s directories when the path leads to another home', async (t) => {
  const base = scratch(t, 'capture');
  const homes = ['A', 'B'].map((c) => join(base, c));
  for (const h of homes) new SimManager({ binDir, home: h }); // a home laid out as installed: bin/, queue/db
  mkdirSync(join(base, 'proc/4242'), { recursive: true });
  const link = join(base, 'proc/4242/root');
  pointPid(link, homes[0]);
  const capture = Capture.open({ ...artefacts(), home: link });
  t.teardown(() => capture.close());
  const followed = () => { const id = capture.identity(); return { wdb: id.wdb_dir, bin: id.exe_dirs.map((d) => d.id) }; };
  const a = followed();
  t.match(a.wdb, idOf(join(homes[0], 'queue/db')), 'A\'s queue/db');

  pointPid(link, null); // container A's process ended
  capture.rescan();
  t.same(followed(), a, 'the path died: A\'s kept');
  pointPid(link, homes[1]); // its pid reused by container B's
  capture.rescan();
  t.same(followed(), a, 'B\'s not taken: A\'s kept');
  t.match(capture.identity().moved, { what: 'queue/db', found: idOf(join(homes[1], 'queue/db')) }, 'and shown');
  t.equal(capture.identity().wdb_socket, null, 'B\'s socket is not shown as this home\'s');
  pointPid(link, null); // the reusing process ended too
  capture.rescan();
  t.same(followed(), a, 'still A\'s (it was B\'s for good)');
  t.equal(capture.identity().moved, null);
});

t.test('the tap: nothing of the other home is asked, captured or followed, and it is said', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const base = scratch(t, 'tap');
  const [homeA, homeB] = ['A', 'B'].map((c) => join(base, c));
  const A1 = { id: 1, name: 'a-one', ip: '10.0.1.1' };
  const A77 = { id: 77, name: 'a-seventy-seven', ip: '10.0.1.77' };
  const agentsB = Array.from({ length: 10 }, (_, i) => ({ id: i + 1, name: `b${i + 1}`, ip: `10.0.2.${i + 1}` }));
  // The spool outside the home, as the docs ask of a tap per container (inside it, its lock is lost with the
  // path when the process ends, and the tap stops).
  writeOssecConf(homeA, `    <spool_dir>${join(base, 'spool')}</spool_dir>\n`);
  const simA = new SimManager({ binDir, home: homeA, agents: [A1, A77] });
  const simB = new SimManager({ binDir, home: homeB, agents: agentsB });
  t.teardown(() => simA.stop());
  t.teardown(() => simB.stop());
  await simA.start();
  await simB.start();
  mkdirSync(join(base, 'proc/4242'), { recursive: true });
  const link = join(base, 'proc/4242/root');
  pointPid(link, homeA);
  const sock = join(base, 'tap.sock');
  const tap = await startTap(['run', '--home', link, '--nats-url', nats.url, '--node', 'node-a', '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));

  await simA.startup(A1);
  await waitFor(() => got.some((m) => m.body.agent_id === '001' && m.body.current_status === 'pending'), 10_000, 'A\'s agent 001');
  const before = got.length;

  pointPid(link, null); // container A's main process ended…
  await simA.stop();
  await sleep(1500);
  pointPid(link, homeB); // …and its pid went to a process of container B
  await sleep(2500); // the rescan (2 s) and the socket check (1 s) look
  for (const a of agentsB.slice(0, 3)) {
    await simB.startup(a);
    await simB.keepalive(a);
  }
  await simB.writeAlerts(3, 10);
  await sleep(2500);

  const after = got.slice(before).map((m) => m.body);
  t.same(after.filter((b) => b.event_type !== 'tap'), [], 'nothing of B published: no correction from its listing, no removal of 077, none of its traffic or alerts');
  const said = tap.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('the Wazuh home\'s path leads to another home now'));
  t.ok(said.length >= 1 && said.length <= 2, `said as an error, once a minute at most (${said.length})`);
  t.match(said[0], { level: 50, what: 'queue/db', found: idOf(join(homeB, 'queue/db')) });
  const r = await runTap(['status', '--json', '--control-socket', sock]);
  t.equal(r.code, 0, `status answers ${r.stderr}`);
  const st = JSON.parse(r.stdout) as Record<string, any>;
  t.match(st.home_moved, { what: 'queue/db', followed: idOf(join(homeA, 'queue/db')) }, 'in status');
  t.match(st.identity.wdb_dir, idOf(join(homeA, 'queue/db')), 'the kernel still follows A\'s queue/db');
  t.notOk((st.targets as { pid: number }[]).some((p) => Object.values(simB.pids()).includes(p.pid)), 'none of B\'s daemons is a target');
  const text = await runTap(['status', '--control-socket', sock]);
  t.match(text.stdout, /MOVED: .* leads to another Wazuh home .*restart the tap with the new container's pid/, 'status says what to do');
  t.equal((await tap.stop()).code, 0);
});

t.test('Capture: the directories the kernel matches are held open: their numbers go to nobody else while it has them', async (t) => {
  // A home on a filesystem of its own (a container's overlay, a tmpfs) that is unmounted while the tap
  // runs: the kernel keeps its device and inode numbers (a path that died keeps its identity), and an
  // anonymous device number freed went to the next filesystem mounted — an unprivileged user's tmpfs in
  // a user namespace, inode numbers counted up to the kept ones, and its fake wazuh-db was this manager's
  // (capture/held-dirs.ts). Held open, the filesystem stays alive and its device number taken.
  const { execFileSync } = await import('node:child_process');
  const { readdirSync, readlinkSync } = await import('node:fs');
  const mounts: string[] = [];
  const mount = () => {
    const d = mkdtempSync(join(tmpdir(), 'wnt-pin-fs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', d]);
    mounts.push(d);
    return d;
  };
  t.teardown(() => {
    for (const d of mounts) {
      try { execFileSync('umount', ['-l', d], { stdio: 'ignore' }); } catch { /* detached already */ }
      rmSync(d, { recursive: true, force: true });
    }
  });
  const mnt = mount();
  const home = join(mnt, 'var/ossec');
  new SimManager({ binDir, home }); // lays the home out
  const dev = statSync(join(home, 'queue/db'), { bigint: true }).dev;
  const capture = Capture.open({ ...artefacts(), home });
  let closed = false;
  t.teardown(() => (closed ? undefined : capture.close()));
  const open = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });
  t.ok(open().includes(join(home, 'queue/db')) && open().includes(join(home, 'bin')), 'queue/db and bin/ are open');
  const kept = capture.identity().wdb_dir;
  execFileSync('umount', ['-l', mnt]); // the container's overlay detached, as a runtime does
  t.not(statSync(mount(), { bigint: true }).dev, dev, 'the next filesystem mounted does not get the home\'s device number');
  capture.rescan();
  t.equal(capture.identity().wdb_dir, kept, 'the kernel still has the home\'s identity (a path that died keeps it)');
  await capture.close();
  closed = true;
  t.notOk(open().some((p) => p.endsWith('/queue/db') || p.endsWith('/bin')), 'let go with the capture');
});

t.test('the pin holds its directories open: the root of /proc/<pid>/root too, for the run', async (t) => {
  // The container's root, once its process ended, freed its numbers for the next filesystem mounted;
  // a tree built to match (the same device and inode numbers) passed the pin (found by a review).
  const { readdirSync, readlinkSync } = await import('node:fs');
  const base = scratch(t, 'held');
  const proc = join(base, 'proc');
  mkdirSync(join(proc, '4242'), { recursive: true });
  const rootA = join(base, 'rootA');
  mkdirSync(join(rootA, 'var/ossec/queue/db'), { recursive: true });
  mkdirSync(join(rootA, 'var/ossec/bin'), { recursive: true });
  pointPid(join(proc, '4242/root'), rootA);
  const open = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });
  const pin = new HomePin(join(proc, '4242/root/var/ossec'), { procRoot: proc });
  t.ok(pin.holds());
  for (const d of [rootA, join(rootA, 'var/ossec/queue/db'), join(rootA, 'var/ossec/bin')]) t.ok(open().includes(d), `${d} held open`);
});
