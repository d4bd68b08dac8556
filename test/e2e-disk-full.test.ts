// The real tap with its spool on a 1 MB tmpfs (issue 14, item 2), the three runs of the issue:
// NATS down and load until the disk is full (it died on ENOSPC in Spool.append), a restart with
// NATS still down (it died in the status journal's compaction), a restart with NATS up (it died
// saving the ack cursor while draining). Now the spool stops short of the disk (a reserve stays
// free for the cursor, the journal and the alerts position; a write that fails all the same is
// survived), each run stops with exit 0 on SIGTERM, and in the end every alert that waited (in
// the spool, or refused and left in alerts.json) is delivered. `status` (JSON and table) and
// /metrics show the full disk while it lasts, and not after the drain.
import t from 'tap';
import { mkdirSync, mkdtempSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, startNatsServer } from './helpers/nats-server.js';
import { ROOT, runTap, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';
import { waitFor } from './helpers/wait.js';

const AGENTS = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, name: `agent-${i + 1}`, ip: `10.0.0.${i + 1}` }));
const ALERTS = 1500;

t.test('spool on a full 1 MB tmpfs: load with NATS down, a restart with NATS down, a restart with NATS up', async (t) => {
  const mnt = mountTmpfs(t);
  const spool = join(mnt, 'spool');
  const free = () => { const st = statfsSync(mnt); return st.bavail * st.bsize; };
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'wnt-diskfull-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${port}</server_url>\n    <reconnect_delay>1</reconnect_delay>\n`
    + `    <spool_dir>${spool}</spool_dir>\n    <spool_max_size>16MB</spool_max_size>\n    <alerts_min_level>0</alerts_min_level>\n`);
  const sock = join(home, 'tap.sock');
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: AGENTS });
  t.teardown(() => sim.stop());
  await sim.start();
  const status = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  const table = async () => (await runTap(['status', '--control-socket', sock])).stdout;
  const metricsPort = await freePort();
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
  };

  // 1. NATS down, load until the disk is full.
  const tap1 = await startTap(['run', '--home', home, '--control-socket', sock, '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap1.stop('SIGKILL'));
  for (const a of AGENTS) await sim.startup(a);
  await sim.writeAlerts(ALERTS, 10);
  await waitFor(() => free() < 256 * 1024 || tap1.proc.exitCode !== null, 30_000, 'the disk to fill')
    .catch((e) => { t.comment(JSON.stringify({ free: free(), logs: tap1.logs.slice(-15) })); throw e; });
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(tap1.proc.exitCode, null, 'still running on a full disk');
  t.ok(tap1.logs.some((l) => /^spool: (the disk is full|cannot write)/.test(String(l.msg))), 'said why it refuses events');
  for (const a of AGENTS) await sim.shutdown(a); // status changes on a full disk: shed and counted
  for (const a of AGENTS) await sim.keepalive(a);
  const st1 = await status();
  t.match(st1, { attached: true, nats: { connected: false } }, 'status answers');
  t.ok(st1.nats.shed > 0, `shed events counted (${st1.nats.shed})`);
  t.equal(st1.nats.failed, st1.nats.shed, '`failed`, the old name of the shed count, kept for its readers');
  t.match(st1.spool, { disk_full: true, write_errors: Number, read_errors: 0 }, 'status: the disk is full');
  t.ok(st1.spool.bound_bytes < 1 << 20, `status: the bound in force is what the disk holds, not spool_max_size (${st1.spool.bound_bytes})`);
  t.match(await table(), /^spool\s+\d+ events, \d+ bytes of \d+,(?: the oldest waiting [^,]+,)? DISK FULL: new events refused \(counted\) until there is room/m, 'the table says it');
  t.equal(await metric('wazuh_nats_tap_spool_disk_full'), 1, '/metrics: disk full');
  t.ok(await metric('wazuh_nats_tap_spool_bound_bytes') < 1 << 20, '/metrics: the bound in force');
  t.ok(await metric('wazuh_nats_tap_spool_errors_total{op="write"}') >= 0, '/metrics: write errors counted');
  t.same(await tap1.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM on a full disk: exit 0');

  // 2. Restarted with NATS still down: on the full disk (the journal's compaction, the spool's new segment).
  const tap2 = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap2.stop('SIGKILL'));
  const st2 = await status();
  t.match(st2, { attached: true, nats: { connected: false } });
  t.ok(st2.spool.records > 0, `the spool as it was left (${st2.spool.records} records)`);
  t.same(await tap2.stop('SIGTERM'), { code: 0, signal: null });

  // 3. Restarted with NATS up: it drains (saving the ack cursor on a full disk), then the alerts
  // that waited in alerts.json follow.
  const nats = await startNatsServer({ port });
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const alerts = new Set<string>();
  nc.subscribe('wazuh.security.alerts.>', { callback: (_e, m: Msg) => { alerts.add(m.json<{ event_id: string }>().event_id); } });
  await nc.flush();
  const tap3 = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap3.stop('SIGKILL'));
  await waitFor(() => alerts.size >= ALERTS || tap3.proc.exitCode !== null, 60_000, `all ${ALERTS} alerts (${alerts.size})`);
  t.equal(alerts.size, ALERTS, 'every alert delivered: those in the spool and those that waited in alerts.json');
  await waitFor(() => tap3.proc.exitCode !== null || tap3.logs.some((l) => l.msg === 'NATS connected: draining the spool'), 5000, 'connected');
  const st3 = await status();
  t.match(st3, { nats: { connected: true } });
  // Full no more once drained, without a restart (said within a tick of the ack timer).
  let st3b = st3;
  for (const end = Date.now() + 5000; st3b.spool.disk_full && Date.now() < end;) {
    await new Promise((r) => setTimeout(r, 200));
    st3b = await status();
  }
  t.match(st3b.spool, { disk_full: false, read_errors: 0 }, 'status: the disk has room again after the drain');
  t.notMatch(await table(), /DISK FULL/, 'the table no longer says it');
  t.same(await tap3.stop('SIGTERM'), { code: 0, signal: null });
  t.notOk([tap1, tap2, tap3].some((p) => p.logs.some((l) => l.level === 60)), 'no fatal log line in any run');
});

t.test('the first start on a full disk (no lock file yet, no room for the pid): the tap starts, and stops with exit 0', async (t) => {
  const mnt = mountTmpfs(t, '512k');
  const spool = join(mnt, 'spool');
  mkdirSync(spool, { mode: 0o700 });
  fillDisk(mnt); // gone with the tmpfs
  const home = mkdtempSync(join(tmpdir(), 'wnt-diskfull-start-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${await freePort()}</server_url>\n    <spool_dir>${spool}</spool_dir>\n`);
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  t.match(JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout),
    { attached: true, spool: { disk_full: true } }, 'running, on a full disk');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});
