// Alerts end to end: the simulated wazuh-analysisd writes real-shaped alert lines through
// buffered stdio into logs/alerts/alerts.json and rotates it; the tap (a real `run`) publishes
// them on <prefix>.security.alerts.<severity>, to core NATS and to JetStream, across a kill -9;
// an alerts.json that is not Wazuh's (a symlink, a FIFO, another user's file) is refused.
import t from 'tap';
import { chownSync, mkdtempSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, natsCollecting, startNatsServer, type Received } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { readStream } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';
import { alertLine } from './helpers/alerts.js';
import { mountTmpfs } from './helpers/tmpfs.js';
import { contractJson } from './helpers/contract.js';

const BIN = join(ROOT, 'build/sim/bin');

const seqOf = (g: Received | Record<string, any>) => Number(('body' in g ? g.body : g).alert?.data?.srcport);

t.test('alerts to core NATS: SPEC §4 message, severities, skipped lines, rotation, inotify latency', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.security.alerts.>');

  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <alerts_min_level>3</alerts_min_level>\n`);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  // Alerts written before the tap starts are the past: by default not published.
  await sim.writeAlerts(5, 10);
  const sock = join(home, 'tap.sock');
  const metricsPort = await freePort();
  const tap = await startTap(['run', '--home', home, '--control-socket', sock, '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');

  const w = await sim.writeAlerts(40, 10);
  await waitFor(() => got.length >= 40, 10_000, '40 alerts');
  t.same(got.map(seqOf), Array.from({ length: 40 }, (_, i) => w.first + i), 'each new alert once, in order, none from before the start');
  const first = got[0];
  t.equal(first.subject, 'wazuh.security.alerts.high');
  t.match(first.headers, { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'alert', 'Wazuh-Agent-Id': /^00[123]$/ });
  t.match(first.body, {
    event_type: 'alert', rule_id: 5715, level: 10, severity: 'high', description: 'sshd: authentication success.',
    agent_id: /^00[123]$/, agent_name: /^agent[123]$/, source_ip: '192.168.1.50', user: 'admin', manager_node: 'node01',
    groups: ['syslog', 'sshd', 'authentication_success'], timestamp: Number, time: /Z$/, event_id: /^[0-9a-f-]{36}$/,
  });
  t.equal(first.body.alert.rule.id, '5715', 'the original alert, whole');

  // Severities by the default thresholds; alerts_min_level 3 keeps level 2 out.
  got.length = 0;
  for (const level of [2, 3, 7, 13]) await sim.writeAlerts(1, level);
  await waitFor(() => got.length >= 3, 5000, 'three alerts');
  await new Promise((r) => setTimeout(r, 200));
  t.same(got.map((g) => [g.body.level, g.subject.split('.').pop()]), [[3, 'low'], [7, 'medium'], [13, 'critical']]);

  // A broken line and a line that is JSON but no alert: counted, skipped, the next alert still published.
  got.length = 0;
  await sim.writeAlertBytes('{"rule": {"level": 5, "descr\n[1,2,3]\n');
  const after = await sim.writeAlerts(1, 10);
  await waitFor(() => got.length >= 1, 5000, 'the alert after the broken lines');
  t.equal(seqOf(got[0]), after.first);
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  t.match(st.alerts, { enabled: true, following: true, invalid_json: 1, not_an_object: 1, below_min_level: 1 });
  const table = (await runTap(['status', '--control-socket', sock])).stdout;
  t.match(table, /alerts\s+following .*alerts\.json, published \d+, not alerts 2/);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(metrics, /wazuh_nats_tap_alerts_total\{outcome="invalid_json"\} 1/);
  t.match(metrics, new RegExp(`wazuh_nats_tap_alerts_total\\{outcome="published"\\} ${st.alerts.published}`));
  t.match(metrics, /wazuh_nats_tap_events_total\{type="alert"\} [1-9]/);

  // Daily rotation: the new day's file is followed from its start.
  got.length = 0;
  const before = await sim.writeAlerts(3, 10);
  await sim.rotateAlerts();
  const next = await sim.writeAlerts(3, 10);
  await waitFor(() => got.length >= 6, 5000, 'alerts across the rotation');
  t.same(got.map(seqOf), [before.first, before.first + 1, before.first + 2, next.first, next.first + 1, next.first + 2]);

  // Latency, one alert at a time: inotify, not the 1 s poll.
  const lat: number[] = [];
  for (let i = 0; i < 20; i++) {
    got.length = 0;
    const t0 = performance.now();
    await sim.writeAlerts(1, 10);
    await waitFor(() => got.length >= 1, 5000, 'one alert');
    lat.push(got[0].at - t0);
  }
  lat.sort((a, b) => a - b);
  t.ok(lat[10] < 100, `median append → subscriber ${lat[10].toFixed(1)} ms (max ${lat[19].toFixed(1)} ms) is under 100 ms`);
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('alerts no: nothing published, the file not followed', async (t) => {
  const nats = await startNatsServer({});
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  let n = 0;
  nc.subscribe('wazuh.security.alerts.>', { callback: (_e, m) => { contractJson(t, m); n++; } });
  await nc.flush();
  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <alerts>no</alerts>\n`);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.writeAlerts(10, 12);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(n, 0, 'no alert published');
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  t.match(st.alerts, { enabled: false });
  // SIGHUP with alerts yes: followed from here on.
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <alerts>yes</alerts>\n`);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'alerts followed after the reload');
  await sim.writeAlerts(2, 12);
  await waitFor(() => n === 2, 5000, 'the two new alerts');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('the alerts counters never go down in one process: alerts turned off and on again by SIGHUP', async (t) => {
  // They lived in the follower, dropped with <alerts>no</alerts>: wazuh_nats_tap_alerts_total read 0
  // after the reload (a counter going down), and a new follower counted from 0 again — untrusted_file,
  // a security signal, vanished with them.
  const { nats, got } = await natsCollecting(t, 'wazuh.security.alerts.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-hup-'));
  const url = `    <server_url>${nats.url}</server_url>\n`;
  writeOssecConf(home, url);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const metricsPort = await freePort();
  const tap = await startTap(['run', '--home', home, '--control-socket', sock, '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');
  const first = await sim.writeAlerts(2, 10);
  await sim.rotateAlerts();
  await sim.writeAlerts(2, 10);
  await waitFor(() => got.length >= 4, 5000, 'alerts across the rotation');
  t.ok(first.first >= 0);
  const status = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout).alerts;
  const rotations = async () => {
    await new Promise((r) => setTimeout(r, 1100)); // past the body /metrics keeps for a second
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number(/^wazuh_nats_tap_alerts_total\{outcome="rotations"\} (\d+)$/m.exec(text)?.[1]);
  };
  const before = await status();
  t.ok(before.rotations >= 1, `a rotation counted (${before.rotations})`);
  t.equal(await rotations(), before.rotations, 'on /metrics too');

  writeOssecConf(home, `${url}    <alerts>no</alerts>\n`);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.some((l) => l.msg === 'alerts: no longer followed'), 5000, 'alerts turned off');
  const off = await status();
  t.match(off, { enabled: false, rotations: before.rotations, lines: before.lines }, 'turned off: the counters kept');
  t.equal(await rotations(), before.rotations, '/metrics: not gone down');

  writeOssecConf(home, url);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.filter((l) => l.msg === 'following Wazuh\'s alerts').length === 2, 5000, 'alerts turned on again');
  await sim.rotateAlerts();
  await sim.writeAlerts(1, 10);
  await waitFor(async () => (await status()).rotations > before.rotations, 5000, 'the next rotation counted');
  const on = await status();
  t.equal(on.rotations, before.rotations + 1, 'a new follower adds to the counters, from where they were');
  t.ok(on.lines >= before.lines, `lines ${on.lines} ≥ ${before.lines}`);
  t.equal(await rotations(), on.rotations, '/metrics: the same');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('alerts.json that is not Wazuh\'s (symlink to a root-only file, FIFO, another user\'s file): refused, counted, said once; a real file is followed', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.security.alerts.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-trust-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n`);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start(); // queue/db is root's here: the Wazuh user is root, uid 65534 is nobody to Wazuh
  const file = sim.alertsFile;
  // A root-only file of real alert lines, which the Wazuh user (owner of logs/alerts) links to.
  const secret = join(home, 'root-only.json');
  const marker = 'ROOT-ONLY-CONTENT-7f3a';
  writeFileSync(secret, [1, 2, 3].map((n) => alertLine({ n, level: 12, srcuser: marker })).join('\n') + '\n', { mode: 0o600 });
  const sock = join(home, 'tap.sock');
  const metricsPort = await freePort();
  const tap = await startTap(['run', '--home', home, '--control-socket', sock, '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  const status = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');
  const first = await sim.writeAlerts(1, 10);
  await waitFor(() => got.length === 1, 5000, 'an alert from the real file');
  t.equal(seqOf(got[0]), first.first);
  got.length = 0;

  // The Wazuh user replaces alerts.json with the link while it is followed (like a rotation).
  symlinkSync(secret, `${file}.new`);
  renameSync(`${file}.new`, file);
  await waitFor(() => tap.logs.some((l) => /refused a file that is not Wazuh's/.test(String(l.msg))), 5000, 'the refusal');
  await new Promise((r) => setTimeout(r, 2500)); // more polls
  t.equal(got.length, 0, 'nothing published');
  t.notMatch(JSON.stringify(tap.logs), marker, 'nothing of the file in the log');
  t.equal(tap.logs.filter((l) => /refused a file that is not Wazuh's/.test(String(l.msg))).length, 1, 'said once, not at every poll');
  t.match((await status()).alerts, { following: false, refusing: 'a symbolic link', untrusted_file: 1 });

  // A FIFO: the tap does not hang on it (it answers status), and refuses it.
  unlinkSync(file);
  execFileSync('mkfifo', ['-m', '0640', file]);
  await waitFor(() => tap.logs.filter((l) => /refused a file that is not Wazuh's/.test(String(l.msg))).length === 2, 5000, 'the FIFO refused');
  t.match((await status()).alerts, { following: false, refusing: 'not a regular file (a FIFO)', untrusted_file: 2 });

  // Another user's regular file (made aside, then moved in: never root's at alerts.json).
  writeFileSync(`${file}.new`, `${alertLine({ n: 9, level: 12, srcuser: marker })}\n`);
  chownSync(`${file}.new`, 65534, 65534);
  renameSync(`${file}.new`, file);
  await waitFor(() => tap.logs.filter((l) => /refused a file that is not Wazuh's/.test(String(l.msg))).length === 3, 5000, 'the file of uid 65534 refused');
  const st = await status();
  t.match(st.alerts, { following: false, refusing: /^owned by uid 65534/, untrusted_file: 3 });
  const table = (await runTap(['status', '--control-socket', sock])).stdout;
  t.match(table, /alerts\s+waiting for \S+alerts\.json \(refused: owned by uid 65534.*files refused \(not Wazuh's\) 3/);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(metrics, /wazuh_nats_tap_alerts_total\{outcome="untrusted_file"\} 3/);

  // analysisd links alerts.json to a new day's file again: followed, from its first line.
  await sim.rotateAlerts();
  const w = await sim.writeAlerts(3, 10);
  await waitFor(() => got.length >= 3, 10_000, 'alerts from the real file');
  t.same(got.map(seqOf), [w.first, w.first + 1, w.first + 2]);
  t.match((await status()).alerts, { following: true, refusing: null, untrusted_file: 3 });
  t.notMatch(JSON.stringify(tap.logs), marker, 'nothing of the refused files in the log');
  t.notOk(got.some((g) => JSON.stringify(g.body).includes(marker)), 'nor published');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('JetStream: the tap killed in the middle of a burst, a rotation while it is down: every alert once', async (t) => {
  const nats = await startNatsServer({ jetstream: true });
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  let live = 0;
  nc.subscribe('wazuh.security.alerts.>', { callback: (_e, m) => { contractJson(t, m); live++; } });
  await nc.flush();

  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-js-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n`
    + '    <keepalive_events>no</keepalive_events>\n    <alerts_from_beginning>yes</alerts_from_beginning>\n');
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  const early = await sim.writeAlerts(50, 7); // before the first start: alerts_from_beginning publishes them
  const args = ['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--node', 'n1'];
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));

  // A burst of 3000 alerts over ~3 s; the tap is killed once some hundreds are through.
  const burst = sim.writeAlerts(3000, 10, 1000, 30_000);
  let burstDone = false;
  void burst.then(() => { burstDone = true; }, () => {});
  await waitFor(() => live >= 400, 15_000, 'part of the burst published');
  const atKill = live;
  const doneAtKill = burstDone;
  await tap.stop('SIGKILL');
  tap = await startTap(args);
  const b = await burst;
  t.notOk(doneAtKill, `killed in the middle of the burst (${atKill} published by then)`);

  // Down again; the day rotates while nothing follows the file.
  await tap.stop('SIGKILL');
  const tail = await sim.writeAlerts(20, 13);
  await sim.rotateAlerts();
  const newDay = await sim.writeAlerts(20, 5);
  tap = await startTap(args);

  const total = newDay.last - early.first + 1;
  let alerts: Record<string, any>[] = [];
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    alerts = (await readStream(nc, 'WAZUH', 20_000, (m) => contractJson(t, m)).catch(() => [])).filter((e: any) => e.event_type === 'alert');
    if (alerts.length >= total) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, 1500)); // a late duplicate would be stored by now
  alerts = (await readStream(nc, 'WAZUH', 20_000, (m) => contractJson(t, m))).filter((e: any) => e.event_type === 'alert');
  const seqs = alerts.map(seqOf);
  t.equal(alerts.length, total, `every alert in the stream once (${total}: 50 early, 3000 burst, 20 + 20 around the rotation)`);
  t.equal(new Set(seqs).size, total, 'no alert twice');
  t.same([...seqs].sort((x, y) => x - y), Array.from({ length: total }, (_, i) => early.first + i), 'none missing');
  t.ok(alerts.every((e: any) => e.msgId === e.event_id), 'Nats-Msg-Id = event_id');
  t.equal(b.last - b.first + 1, 3000);
  t.equal(alerts.filter((e: any) => seqOf(e) >= tail.first && seqOf(e) <= tail.last && e.subject === 'wazuh.security.alerts.critical').length, 20,
    'the rotated day\'s last alerts (level 13: critical), read from the old file after the restart');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a huge alerts.json at the first start: the tap starts at its end', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.security.alerts.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-big-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n`);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.writeAlerts(100_000, 10, 0, 60_000); // ~90 MB
  const sock = join(home, 'tap.sock');
  const t0 = Date.now();
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');
  // A very long line (2 MiB, over the 512 KiB bound) among them: dropped and counted, never buffered whole.
  await sim.writeAlertBytes(`{"rule":{"level":12},"full_log":"${'y'.repeat(2 * 1024 * 1024)}"}\n`);
  const w = await sim.writeAlerts(3, 10);
  await waitFor(() => got.length >= 3, 10_000, 'the new alerts');
  t.same(got.map(seqOf), [w.first, w.first + 1, w.first + 2], 'only the new alerts');
  t.ok(Date.now() - t0 < 20_000, 'without reading the past');
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  t.match(st.alerts, { too_long: 1, published: 3 });
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

/**
 * NATS away and alerts fill the spool (`conf`: its bound), then NATS comes back: every alert waits in
 * alerts.json until the spool has room, and reaches the stream once.
 */
async function alertsWaitForRoom(t: Tap.Test, conf: string): Promise<void> {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'wnt-alerts-full-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${port}</server_url>\n    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n`
    + `    <reconnect_delay>1</reconnect_delay>\n    <keepalive_events>no</keepalive_events>\n${conf}`);
  const sim = new SimManager({ binDir: BIN, home });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => tap.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');
  // ~2,000 alerts of ~2.5 KiB spooled each: several times what the spool holds.
  const w = await sim.writeAlerts(2000, 10, 0, 20_000);
  await waitFor(() => tap.logs.some((l) => l.msg === 'spool full: alerts wait in alerts.json until it has room'), 10_000, 'the spool full');

  const nats = await startNatsServer({ port, jetstream: true });
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  let alerts: Record<string, any>[] = [];
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    alerts = (await readStream(nc, 'WAZUH', 20_000, (m) => contractJson(t, m)).catch(() => [])).filter((e: any) => e.event_type === 'alert');
    if (alerts.length >= 2000) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const seqs = new Set(alerts.map(seqOf));
  t.equal(seqs.size, 2000, 'every alert reached the stream');
  t.equal(alerts.length, 2000, 'once each');
  t.ok([...seqs].every((s) => s >= w.first && s <= w.last));
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
}

t.test('NATS away and the spool full: alerts wait in alerts.json, none lost', async (t) => {
  await alertsWaitForRoom(t, '    <spool_max_size>1MB</spool_max_size>\n');
});

// The disk is the bound, not spool_max_size (a 2 MB file system under the default 512 MB): the spool
// stops short of the disk (its reserve), alerts wait in alerts.json, and once NATS is back the drain
// frees the disk's room for them (the spool's segments are an eighth of spool_max_size, larger than
// this disk: the room comes from the segments a refusal's compaction cut, then deleted once acknowledged).
t.test('the disk, not spool_max_size, bounds the spool: alerts wait in alerts.json, then NATS back: none lost', async (t) => {
  const spool = mountTmpfs(t, '2m');
  await alertsWaitForRoom(t, `    <spool_dir>${spool}</spool_dir>\n`);
});
