#!/usr/bin/env node
// The tap on a disk whose fdatasync hangs (test/helpers/slow-sync.c as LD_PRELOAD, holding every
// fdatasync while a file exists): 8 s of keepalives and status changes at 5,000 frames/s with the
// sync held the whole time; how many messages reached NATS and how many `status` calls were answered
// (docs/performance.md, item 15), then how long a SIGTERM takes to end the tap with the syncs still
// held. A probe: `node scripts/bench/slow-disk.mjs`.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { natsConnect, sleep, startNats, startSim, startTap } from './lib.mjs';
import { slowSyncEnv } from '../../test/helpers/slow-sync.mjs';

const nats = await startNats();
const s = await startSim();
const hold = join(s.home, 'sync-hold');
// Only the tap gets the library (startTap passes this process's environment on).
Object.assign(process.env, slowSyncEnv(hold));
const tap = await startTap({ home: s.home, natsUrl: nats.url, label: 'slow-disk' });
delete process.env.LD_PRELOAD;
const nc = await natsConnect(nats.url);
let got = 0;
const sub = nc.subscribe('wazuh.>');
void (async () => { for await (const _ of sub) got++; })();
try {
  await s.load({ agents: 2000, rate: 2000, count: 2000, maxMs: 5000, statusPermille: 0, ipByAgent: true });
  await sleep(1500);
  writeFileSync(hold, ''); // from now on every fdatasync of the tap waits
  const before = got;
  const loading = s.load({ agents: 2000, rate: 5000, count: 5000 * 8, maxMs: 10_000, statusPermille: 20, ipByAgent: true });
  let answered = 0;
  let asked = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 8000) {
    asked++;
    answered += await Promise.race([tap.status().then(() => 1, () => 0), sleep(1000).then(() => 0)]);
    await sleep(500);
  }
  await loading;
  // Stopped with the syncs still held: the shutdown must not wait on the disk (its deadline is 10 s).
  const t1 = Date.now();
  await tap.stop();
  const stopMs = Date.now() - t1;
  console.log(JSON.stringify({
    sync_held: existsSync(`${hold}.entered`), messages_while_held: got - before, status_answered: `${answered}/${asked}`,
    stop_ms_while_held: stopMs, exit: tap.proc.exitCode ?? tap.proc.signalCode,
  }));
} finally {
  rmSync(hold, { force: true });
  await sleep(500);
  await nc.close();
  await tap.stop();
  await s.stop();
  await nats.stop();
}
