// The periodic rescan (Capture.rescan): the home's identity is looked at every rescanMs, but /proc is
// walked again only when a walk can find what the kernel did not mark — the daemons' executables changed
// (an upgrade, a new bin/) — or the last walk is WALK_EVERY_MS old. A walk stats every process's
// executable on the loop's thread (~14 µs a process: 40 ms for 20,000 every 2 s before).
import t from 'tap';
import { copyFileSync, linkSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, WALK_EVERY_MS } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('/proc is walked at attach and when the daemons\' executables change, not at every rescan', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-rescan-'));
  const sim = new SimManager({ binDir, home });
  const capture = Capture.open({ ...artefacts(), home, rescanMs: 20 });
  t.teardown(async () => { await sim.stop(); await capture.close(); rmSync(home, { recursive: true, force: true }); });
  await sim.start();
  capture.attach();
  t.equal(capture.walks, 1, 'attach walks /proc: the daemons started before it are marked');
  t.ok(capture.targets().includes(sim.db!.pid!), 'wazuh-db, started before the tap, a target');
  await sleep(300); // 15 rescans
  // That walk marked processes the kernel had not: their children forked meanwhile may be unmarked, so
  // the next rescan walks again — and finds nothing new.
  t.equal(capture.walks, 2, 'one walk more after one that marked new processes, then none');
  const client = await sim.spawnClient('wazuh-authd');
  t.ok(capture.targets().includes(client.pid!), 'a daemon started since: marked by the kernel at its exec');
  await sleep(300);
  t.equal(capture.walks, 2, 'nothing changed: no walk at the rescans');
  // An upgrade writes a daemon's new executable and renames it over the old one: a new file.
  const exe = join(home, 'bin/wazuh-authd');
  copyFileSync(exe, `${exe}.new`);
  renameSync(`${exe}.new`, exe);
  await waitFor(() => capture.walks === 3, 3000, 'a walk once an executable changed');
  await sleep(300);
  t.equal(capture.walks, 3, 'one walk for one change (no process runs the new file)');
  // A daemon's file with a second name elsewhere: a process run through that name is the kernel's
  // no more (it matches the directory and name of the file run), only a walk finds it.
  const other = join(home, 'wazuh-authd');
  linkSync(exe, other);
  await sleep(300);
  t.ok(capture.walks >= 3 + 10, `a walk at every rescan while a daemon's file has another name (${capture.walks - 3} in 300 ms)`);
  unlinkSync(other);
  await sleep(100);
  const settled = capture.walks;
  await sleep(300);
  t.equal(capture.walks, settled, 'and none once it has not');
  t.ok(WALK_EVERY_MS >= 10_000 && WALK_EVERY_MS <= 60_000, `and one every ${WALK_EVERY_MS} ms at least, as a safety net`);
  capture.detach();
  capture.attach();
  t.equal(capture.walks, settled + 1, 'attached again: walked again (the marks were cleared)');
});
