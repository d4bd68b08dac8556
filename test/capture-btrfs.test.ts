// A home on btrfs (the default root filesystem of Fedora and openSUSE). The kernel matched a
// directory by its superblock's device, user space gave it the device stat(2) reports, and on
// btrfs the two always differ (every subvolume, the top one too, reports a device of its own):
// this home's socket was taken for another home's and nothing was captured, with no loss counted.
// Its subvolumes number their inodes each from 256: two homes laid out alike in two subvolumes
// have the same inode numbers, and only the device tells them apart — this home's is captured,
// the other's never. A btrfs of our own on a loop device (root only); mkfs.btrfs from btrfs-progs
// (scripts/ensure-deps.sh --test).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { WdbDecoder } from '../controller/src/decode/index.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'agent1', ip: '10.0.0.1' };
const B = { id: 2, name: 'agent2', ip: '10.0.0.2' };

/** A btrfs on a sparse file of 256 MiB, mounted on a new directory; unmounted at teardown. */
function mountBtrfs(t: Tap.Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-btrfs-'));
  const img = join(dir, 'img');
  const fd = openSync(img, 'w');
  ftruncateSync(fd, 256 * 1024 * 1024);
  closeSync(fd);
  execFileSync('mkfs.btrfs', ['-q', img], { stdio: 'ignore' });
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  execFileSync('mount', ['-o', 'loop', img, mnt]); // a loop device of its own, freed at umount (autoclear)
  t.teardown(() => {
    try { execFileSync('umount', [mnt]); } catch { execFileSync('umount', ['-l', mnt]); }
    rmSync(dir, { recursive: true, force: true });
  });
  return mnt;
}

t.test('a home on btrfs is captured; a home laid out alike in another subvolume is not', async (t) => {
  const mnt = mountBtrfs(t);
  execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'other')], { stdio: 'ignore' });
  const mine = new SimManager({ binDir, home: join(mnt, 'ossec') }); // in the top subvolume
  const other = new SimManager({ binDir, home: join(mnt, 'other/ossec') });
  const id = (p: string) => { const st = statSync(p); return { dev: st.dev, ino: st.ino }; };
  const [m, o] = [id(join(mine.home, 'queue/db')), id(join(other.home, 'queue/db'))];
  t.equal(m.ino, o.ino, `both homes' queue/db have inode number ${m.ino}`);
  t.not(m.dev, o.dev, 'stat tells them apart by device');

  const capture = Capture.open({ ...artefacts(), home: mine.home });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await mine.stop(); await other.stop(); await capture.close(); });
  await mine.start();
  await other.start();
  const mineClient = await mine.spawnClient('wazuh-authd');
  const otherClient = await other.spawnClient('wazuh-authd');
  await otherClient.startup(B);
  await otherClient.keepalive(B);
  await mineClient.startup(A);
  await mineClient.keepalive(A);

  const exchanges = () => {
    const d = new WdbDecoder();
    return [...records].sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1)).flatMap((r) => d.push(r));
  };
  await waitFor(() => exchanges().some((e) => e.tgid === mineClient.pid && (e.request as { cmd: string }).cmd === 'update-agent-data'),
    5000, 'this home\'s keepalive').catch(() => {});
  const c = capture.counters();
  t.ok(exchanges().some((e) => e.tgid === mineClient.pid), `this home's requests captured (${JSON.stringify(c)})`);
  t.ok(exchanges().some((e) => e.tgid === mine.pids()['wazuh-remoted']), 'and its remoted\'s, followed from its exec');
  const otherPids = new Set([otherClient.pid, ...Object.values(other.pids())]);
  t.equal(records.filter((r) => otherPids.has(r.tgid)).length, 0, 'nothing of the other subvolume\'s home');
  t.notOk(capture.targets().some((p) => otherPids.has(p)), 'none of its daemons is a target');
});
