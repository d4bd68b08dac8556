// attach, detach and status from the CLI to a running agent, through its control socket.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, startNats } from './helpers/nats-server.js';
import { BIN, runTap, startTap, ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind, tapLinksOf } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';
import { contractJson } from './helpers/contract.js';
import { sendControl } from '../controller/src/control/client.js';

// Tap programs loaded from here on: those a test leaves behind (another tap's are held by it, never counted).
const MARK = bpfMark();

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };

t.test('status, detach and attach a running agent', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const events: Record<string, unknown>[] = [];
  const sub = nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => { events.push({ subject: m.subject, ...contractJson<object>(t, m) }); } });
  t.teardown(() => sub.unsubscribe());

  const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-e2e-'));
  writeOssecConf(home);
  const sock = join(home, 'tap.sock');
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.startup(A);
  await sim.keepalive(A);

  const metricsPort = await freePort();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'n1', '--control-socket', sock,
    '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  const ctl = (...args: string[]) => runTap([...args, '--control-socket', sock]);

  const st = await ctl('status', '--json');
  t.equal(st.code, 0);
  const s = JSON.parse(st.stdout);
  t.match(s, { attached: true, hooks: ['sendto'], node: 'n1', agents: { active: 1 }, nats: { connected: true, rejected: 0 } });
  // What the kernel's verifier took on the longest program loaded (capture-paths holds the margin).
  t.match(s.verifier, { program: /^tp_exit_sendto$/, instructions: Number, limit: 1_000_000 }, 'status says what verifying took');
  // The spool's disk (its faults are shown in e2e-disk-full and spool-disk-full): healthy here.
  t.match(s.spool, { records: Number, bytes: Number, disk_full: false, write_errors: 0, read_errors: 0 });
  t.ok(s.spool.bound_bytes > 0 && s.spool.bound_bytes <= 512 * 1024 * 1024, `the bound in force: spool_max_size, or what the disk holds (${s.spool.bound_bytes})`);
  const pids = sim.pids();
  t.same(s.targets, [
    { pid: pids['wazuh-db'], name: 'wazuh-db' },
    { pid: pids['wazuh-remoted'], name: 'wazuh-remoted' },
  ], 'the running daemons, without their threads');

  const table = await ctl('status');
  t.equal(table.code, 0);
  t.match(table.stdout, /^state\s+attached \(sendto\), up \d+s$/m, 'a short table, not JSON');
  t.match(table.stdout, /^targets\s+wazuh-db \d+, wazuh-remoted \d+$/m);
  t.match(table.stdout, /^agents\s+active 1$/m);
  // published: every publish (resends included), as on /metrics; acknowledged: what NATS confirmed.
  t.match(table.stdout, /^nats\s+connected to 127\.0\.0\.1:\d+ \(configured: nats:\/\/127\.0\.0\.1:\d+\), published \d+, acknowledged \d+, shed \(spool full\) 0$/m, 'acknowledged beside published; the server in use');
  t.match(s.nats, { server: /^127\.0\.0\.1:\d+$/, mode: 'core', shed: 0, failed: 0, failures: 0, resent: 0, last_failure: null, in_flight: Number, stream_ready: null },
    'status --json: the server in use, the shed count (and `failed`, its old name), publish failures and resends');
  t.ok(s.nats.acknowledged <= s.nats.published, `acknowledged ${s.nats.acknowledged} of ${s.nats.published} published`);
  t.match(table.stdout, new RegExp(`^metrics\\s+http://127\\.0\\.0\\.1:${metricsPort}/metrics$`, 'm'), 'where Prometheus scrapes');
  t.match(s.metrics, { address: `127.0.0.1:${metricsPort}`, listening: true, error: null });
  t.match(table.stdout, /^spool\s+\d+ events, \d+ bytes of \d+$/m, 'the spool and its bound, no fault to tell');

  const det = await ctl('detach');
  t.equal(det.code, 0);
  t.match(det.stdout, /detached: no hook in the kernel/);
  t.equal(tapLinksOf(tap.proc.pid!), 0, 'no hook left while detached');
  // Detached, the daemons are not followed: not "none running" (they run).
  t.match((await ctl('status')).stdout, /^targets\s+not followed while detached \(no hook in the kernel\)$/m);
  t.equal(JSON.parse((await ctl('status', '--json')).stdout).targets, null, '--json: null, not an empty list');
  await sim.shutdown(A); // while detached: not captured
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(events.some((e) => e.event_type === 'status_change'), 'nothing captured while detached');

  const att = await ctl('attach', '--json');
  t.equal(att.code, 0);
  t.match(JSON.parse(att.stdout), { attached: true });
  await waitFor(() => events.some((e) => e.event_type === 'status_change'), 10_000, 'the resync after attach');
  t.match(events.find((e) => e.event_type === 'status_change'), {
    agent_id: '001', previous_status: 'active', current_status: 'disconnected', status_code: 3,
  }, 'what changed while detached is corrected after attach');
  const life = events.filter((e) => e.subject === 'wazuh.tap.n1.events').map((e) => e.action);
  t.same(life, ['started', 'attached', 'detached', 'attached']);

  // Prometheus text, scraped over HTTP.
  await sim.startup(A);
  await waitFor(() => events.filter((e) => e.event_type === 'status_change').length >= 2, 5000, 'the startup event');
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /text\/plain/);
  const text = await res.text();
  const metric = (re: RegExp) => Number(re.exec(text)?.[1]);
  t.equal(metric(/^wazuh_nats_tap_attached (\d+)$/m), 1);
  t.equal(metric(/^wazuh_nats_tap_nats_connected (\d+)$/m), 1);
  t.equal(metric(/^wazuh_nats_tap_agents\{status="pending"\} (\d+)$/m), 1, 'agents by status');
  t.equal(metric(/^wazuh_nats_tap_events_total\{type="status_change"\} (\d+)$/m), 2, 'events by type');
  t.ok(metric(/^wazuh_nats_tap_records_total\{outcome="captured"\} (\d+)$/m) > 0, 'records captured');
  t.equal(metric(/^wazuh_nats_tap_records_total\{outcome="lost"\} (\d+)$/m), 0);
  t.ok(metric(/^wazuh_nats_tap_frames_total\{outcome="decoded"\} (\d+)$/m) > 0);
  t.ok(metric(/^wazuh_nats_tap_delivery_total\{outcome="published"\} (\d+)$/m) >= 6);
  t.equal(metric(/^wazuh_nats_tap_spool_disk_full (\d+)$/m), 0, 'the spool\'s disk is not full');
  t.ok(metric(/^wazuh_nats_tap_spool_bound_bytes (\d+)$/m) > 0, 'the bound in force');
  t.equal(metric(/^wazuh_nats_tap_spool_errors_total\{op="write"\} (\d+)$/m), 0, 'no spool write failed');
  t.equal(metric(/^wazuh_nats_tap_spool_errors_total\{op="read"\} (\d+)$/m), 0, 'no spool read failed');
  t.equal(metric(/^wazuh_nats_tap_log_dropped_lines_total (\d+)$/m), 0, 'no log line dropped');
  t.ok(metric(/^wazuh_nats_tap_log_pending_bytes (\d+)$/m) >= 0, 'log bytes waiting, a gauge');
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/nope`)).status, 404);
  // The startup event came from a capture: timed from the daemon's syscall to its publishing, and its
  // acknowledgement from the publishing (status, the table and /metrics).
  const lat = JSON.parse((await ctl('status', '--json')).stdout).nats.latency_ms;
  t.ok(lat.capture_to_publish.count >= 1 && lat.capture_to_publish.max > 0 && lat.capture_to_publish.max < 10_000,
    `syscall → NATS timed (${JSON.stringify(lat.capture_to_publish)})`);
  t.ok(lat.publish_to_ack.count >= lat.capture_to_publish.count, 'every published message\'s acknowledgement timed');
  t.match((await ctl('status')).stdout, /^latency\s+syscall → NATS p50 [\d.]+ p99 [\d.]+ ms, publish → ack p50 [\d.]+ p99 [\d.]+ ms$/m);
  const delay = metric(/^wazuh_nats_tap_capture_delay_ms ([\d.e+-]+)$/m);
  t.ok(delay > 0 && delay < 10_000, `wazuh_nats_tap_capture_delay_ms ${delay}`);

  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  t.same(await leftBehind(MARK), []);
  const gone = await ctl('status');
  t.equal(gone.code, 1);
  t.match(gone.stderr, /agent is not running/);
});

t.test('detach waits for the kernel off the event loop: status answers meanwhile (detached); an attach sent during it ends attached', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-detach-'));
  writeOssecConf(home, '    <server_url>nats://127.0.0.1:1</server_url>\n');
  const sock = join(home, 'tap.sock');
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  for (let round = 0; round < 3; round++) {
    const order: string[] = [];
    // Removing the links waits for RCU grace periods (170–250 ms here): on the event loop, the status
    // asked right after the detach waited for all of it, and answered after it.
    const detach = sendControl(sock, 'detach').then((r) => { order.push('detach'); return r; });
    await new Promise((r) => setTimeout(r, 5));
    const status = sendControl(sock, 'status').then((r) => { order.push('status'); return r; });
    const [d, st] = await Promise.all([detach, status]);
    t.same([d.ok, st.ok], [true, true]);
    t.same(order, ['status', 'detach'], `round ${round}: status answered while the detach was under way`);
    t.match(st, { attached: false, detaching: true }, 'and said detaching (its links are going), not detached');
    t.equal(tapLinksOf(tap.proc.pid!), 0, 'the detach answered once no hook is left');
    // An attach sent while a detach is under way waits for it, then attaches.
    const d2 = sendControl(sock, 'detach');
    const a2 = sendControl(sock, 'attach');
    t.same([(await d2).ok, (await a2).ok], [true, true]);
    t.ok(tapLinksOf(tap.proc.pid!) > 0, 'attached at the end');
    t.equal(JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout).attached, true);
  }
  // detach, attach, detach in quick succession: done in that order — it ends detached (each waited only
  // for the detach under way, and the attach behind it ran after the last detach: attached, 6 links).
  const ops = ['detach', 'attach', 'detach'] as const;
  const replies = await Promise.all(ops.map(async (op, i) => {
    await new Promise((r) => setTimeout(r, i * 10));
    return sendControl(sock, op);
  }));
  t.same(replies.map((r) => r.ok), [true, true, true]);
  t.match(replies[2], { attached: false }, 'the last detach answers detached');
  t.equal(tapLinksOf(tap.proc.pid!), 0, 'and no hook is left');
  t.equal(tap.proc.exitCode, null, 'still running');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('SIGHUP reloads the configuration; a broken file keeps the running one', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const keepalives: unknown[] = [];
  const sub = nc.subscribe('wazuh.agent.*.keepalive', { callback: (_e, m: Msg) => { keepalives.push(contractJson(t, m)); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();

  const home = mkdtempSync(join(tmpdir(), 'wnt-hup-'));
  const url = `    <server_url>${nats.url}</server_url>\n`;
  const conf = writeOssecConf(home, url);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));

  await sim.keepalive(A);
  await waitFor(() => keepalives.length === 1, 5000, 'a keepalive event');

  const sock = join(home, 'tap.sock');
  const status = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  t.equal((await status()).capture_interval_ms, 1, 'records taken every millisecond by default');
  writeOssecConf(home, `${url}    <keepalive_events>no</keepalive_events>\n    <capture_interval>7ms</capture_interval>\n`);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.some((l) => l.msg === 'configuration reloaded'), 5000, 'the reload');
  t.match(tap.logs.find((l) => l.msg === 'configuration reloaded'), { keepalive_events: false, capture_interval_ms: 7, needs_restart: [] });
  t.equal((await status()).capture_interval_ms, 7, 'capture_interval: applied without a restart');
  t.match((await runTap(['status', '--control-socket', sock])).stdout, /attached \(sendto\), records taken every 7 ms/);
  await sim.keepalive(A);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(keepalives.length, 1, 'keepalive_events no: applied without a restart');

  // What a reload does not apply is named, each setting, with no value: encryption turned on (which
  // went on in clear, said "reloaded", needs_restart []), the spool, JetStream, reconnection, the URL.
  const KEY = 'a1'.repeat(32);
  writeFileSync(join(home, 'etc/key'), `${KEY}\n`, { mode: 0o600 });
  const changed = `    <server_url>${nats.url.replace('://', '://alice:R3LOAD-SECRET@')}</server_url>\n`
    + '    <keepalive_events>no</keepalive_events>\n    <capture_interval>7ms</capture_interval>\n'
    + '    <encrypt_messages>yes</encrypt_messages>\n    <encryption_key>etc/key</encryption_key>\n'
    + '    <jetstream>yes</jetstream>\n    <stream>OTHER</stream>\n    <spool_max_size>2MB</spool_max_size>\n'
    + '    <reconnect_delay>5</reconnect_delay>\n    <max_reconnects>3</max_reconnects>\n    <discover_servers>no</discover_servers>\n'
    + `    <spool_dir>${join(home, 'spool2')}</spool_dir>\n    <keepalive_batch>0</keepalive_batch>\n`;
  const NAMED = ['server_url', 'max_reconnects', 'reconnect_delay', 'discover_servers', 'encrypt_messages', 'encryption_key', 'jetstream',
    'stream', 'spool_dir', 'spool_max_size', 'keepalive_batch'];
  const restartLines = () => tap.logs.filter((l) => Array.isArray(l.needs_restart) && (l.needs_restart as string[]).length);
  for (const round of [1, 2]) {
    writeOssecConf(home, changed);
    tap.proc.kill('SIGHUP');
    await waitFor(() => restartLines().length === round, 5000, `reload ${round}`);
    const line = restartLines()[round - 1];
    t.same(line.needs_restart, NAMED, `reload ${round}: every setting not applied is named (still, while it runs with the old ones)`);
    t.equal(line.level, 40, 'a warning');
    t.match(line.msg, /apply only after a restart.*: server_url, max_reconnects, .*encrypt_messages, encryption_key/, 'the message says so');
  }
  t.notMatch(JSON.stringify(tap.logs), /R3LOAD-SECRET|a1a1a1/, 'names only: neither the URL\'s password nor the key');
  t.same((await status()).restart_needed, NAMED, 'status --json: what waits for a restart');
  t.match((await runTap(['status', '--control-socket', sock])).stdout, /^config\s+RESTART NEEDED: the configuration file changed server_url, max_reconnects, /m,
    'status: the file is not what runs');

  writeOssecConf(home, `${url}    <no_such_element>1</no_such_element>\n`);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.some((l) => l.msg === 'configuration reload failed: keeping the running configuration'), 5000, 'the refused reload');
  t.match(JSON.stringify(tap.logs), /Invalid element in the configuration: 'no_such_element'/);
  // The refusal goes to the journal: a URL's password masked in it.
  writeOssecConf(home, `    <server_url>nats://alice:R3LOAD-SECRET@127.0.0.1:4999,</server_url>\n`);
  tap.proc.kill('SIGHUP');
  const refusals = () => tap.logs.filter((l) => l.msg === 'configuration reload failed: keeping the running configuration');
  await waitFor(() => refusals().length === 2, 5000, 'the second refused reload');
  t.match(refusals()[1].err, /'nats:\/\/alice:\*\*\*@127\.0\.0\.1:4999,' — comma-separated URLs, none empty/);
  t.notMatch(JSON.stringify(tap.logs), /R3LOAD-SECRET/, 'the password of the refused file is not in the log');
  t.equal(tap.proc.exitCode, null, 'still running');
  t.ok(conf);
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('SIGHUP reads the file the start read: nats-tap.conf gone for an instant is a failed reload, not ossec.conf\'s "disabled"; a file too large is refused', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-hup-file-'));
  mkdirSync(join(home, 'etc'));
  // Wazuh's own ossec.conf, without <nats>: read for the node name only.
  writeFileSync(join(home, 'etc/ossec.conf'), '<ossec_config><cluster><node_name>n1</node_name></cluster></ossec_config>\n');
  const own = join(home, 'etc/nats-tap.conf');
  const body = '<ossec_config><nats><enabled>yes</enabled><server_url>nats://127.0.0.1:1</server_url><metrics>no</metrics>'
    + '<alerts>no</alerts></nats></ossec_config>\n';
  writeFileSync(own, body, { mode: 0o640 });
  const tap = await startTap(['run', '--home', home, '--no-attach', '--control-socket', join(home, 'tap.sock')], /^started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  const refusals = () => tap.logs.filter((l) => l.msg === 'configuration reload failed: keeping the running configuration');

  renameSync(own, `${own}.editing`); // an editor's or a deployment's moment without the file
  tap.proc.kill('SIGHUP');
  await waitFor(() => refusals().length === 1, 5000, 'the refused reload');
  t.match(refusals()[0].err, /nats-tap\.conf' does not exist/, 'the missing file is said');
  t.notOk(tap.logs.some((l) => /disabled/.test(String(l.msg))), 'not taken for <enabled>no</enabled>');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(tap.proc.exitCode, null, 'still running');
  renameSync(`${own}.editing`, own);
  tap.proc.kill('SIGHUP');
  await waitFor(() => tap.logs.some((l) => l.msg === 'configuration reloaded'), 5000, 'the file back: reloaded');

  // A configuration of 2 MiB (the bound is 1 MiB): refused at once, not parsed for seconds on the event loop.
  writeFileSync(own, body.replace('</nats>', `</nats><!-- ${'x'.repeat(2 << 20)} -->`));
  const t0 = Date.now();
  tap.proc.kill('SIGHUP');
  await waitFor(() => refusals().length === 2, 5000, 'the refused reload');
  t.match(refusals()[1].err, /is \d+ bytes, more than the 1048576 allowed/, 'said');
  t.ok(Date.now() - t0 < 5000, 'bounded');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null }, 'a clean stop');
});

t.test('the control socket removed while the agent runs is made again', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-rm-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${await freePort()}</server_url>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  t.equal((await runTap(['status', '--control-socket', sock])).code, 0);
  unlinkSync(sock); // a tmp cleaner, an administrator's rm
  // Unreachable while it is gone — unless the agent made it again first (its check runs every second:
  // under load the status command, a new Node process, can start after it did).
  const gone = await runTap(['status', '--control-socket', sock]);
  t.ok(gone.code !== 0 || existsSync(sock), 'unreachable while it is gone');
  await waitFor(() => existsSync(sock), 10_000, 'the socket made again').catch(() => {});
  t.equal((await runTap(['status', '--control-socket', sock])).code, 0, 'status reaches the agent again, no restart');
  t.ok(tap.logs.some((l) => l.msg === 'control socket: it was removed: made again'), 'said');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
  t.notOk(existsSync(sock), 'removed at the stop');
});

t.test('a control socket that cannot be made at the start is fatal: no agent attached that nothing reaches', async (t) => {
  // SPEC §8: never a half-alive process (hooks attached, no control socket). It used to log an error
  // and run on, attached, with status, detach and attach unable to reach it (a path the unit's
  // sandbox cannot write, a file planted there). A file, a directory or a link there is a
  // configuration error: exit 2, which the unit's RestartPreventExitStatus=2 3 does not restart
  // every 2 s (it did with exit 1, for a problem no restart can fix).
  const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-bad-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${await freePort()}</server_url>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const cases: [string, (p: string) => void][] = [
    ['a file', (p) => writeFileSync(p, 'not a socket')],
    ['a directory', (p) => mkdirSync(p)],
    ['a symbolic link', (p) => symlinkSync('/etc/passwd', p)],
    ['a dangling symbolic link', (p) => symlinkSync(join(home, 'nothing'), p)],
  ];
  for (const [what, make] of cases) {
    const sock = join(home, `${what.replace(/ /g, '-')}.sock`);
    make(sock);
    const tap = await startTap(['run', '--home', home, '--control-socket', sock], null);
    t.teardown(() => tap.stop('SIGKILL'));
    const end = await new Promise<{ code: number | null }>((r) => {
      const timer = setTimeout(() => { tap.proc.kill('SIGKILL'); r({ code: null }); }, 20_000);
      tap.proc.once('exit', (code) => { clearTimeout(timer); r({ code }); });
    });
    t.equal(end.code, 2, `${what}: exit 2`);
    t.match(tap.stderr(), new RegExp(`control socket unavailable: .*${what.replace(/ /g, '-')}\\.sock exists and is not a socket`), `${what}: said why`);
    if (what === 'a file') t.equal(readFileSync(sock, 'utf8'), 'not a socket', 'what was at the path is left alone');
    t.same(await leftBehind(MARK), [], `${what}: no hook left behind`);
  }
  t.equal(readFileSync('/etc/passwd', 'utf8').length > 0, true, 'the link\'s target untouched');
});

t.test('an empty --control-socket is a usage error (exit 2) for run, status, attach and detach', async (t) => {
  for (const cmd of ['status', 'attach', 'detach']) {
    const r = await runTap([cmd, '--control-socket', '']);
    t.equal(r.code, 2, `${cmd}: exit 2`);
    t.match(r.stderr, new RegExp(`wazuh-nats-tap ${cmd}: --control-socket: empty`), `${cmd}: says what is wrong (not "Port should be >= 0")`);
  }
  const long = await runTap(['status', '--control-socket', `/tmp/${'x'.repeat(120)}`]);
  t.equal(long.code, 2, 'longer than a socket path can be: exit 2');
  t.match(long.stderr, /longer than a UNIX socket's path can be \(107\)/);
  const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-empty-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${await freePort()}</server_url>\n`);
  const run = await runTap(['run', '--home', home, '--control-socket', '', '--no-attach']);
  t.equal(run.code, 2, 'run: exit 2, before anything is opened (it ran on with no control socket at all)');
  t.match(run.stderr, /--control-socket: empty/);
});

t.test('a metrics port taken at the start is tried again, said in status, and served once it is free', async (t) => {
  // It was tried once: a port a local user took at boot (or in the seconds of a restart) left the tap
  // without metrics for good, status silent about it, and Prometheus scraping whatever that user served.
  const port = await freePort();
  const squatter = createHttpServer((_q, r) => r.writeHead(200).end('wazuh_nats_tap_attached 1\nwazuh_nats_tap_nats_connected 1\n'));
  await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
  let squatting = true;
  t.teardown(() => { if (squatting) squatter.close(); });
  const home = mkdtempSync(join(tmpdir(), 'wnt-metrics-squat-'));
  writeOssecConf(home);
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--nats-url', `nats://127.0.0.1:${await freePort()}`, '--control-socket', sock,
    '--no-attach', '--metrics', `127.0.0.1:${port}`], /^started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  const status = async () => JSON.parse((await ctl(sock, 'status', '--json')).stdout);
  await waitFor(async () => (await status()).metrics?.failures >= 1, 10_000, 'a failed listen');
  t.match((await status()).metrics, { address: `127.0.0.1:${port}`, listening: false, error: /EADDRINUSE/ }, 'status --json says it');
  t.match((await ctl(sock, 'status')).stdout, new RegExp(`^metrics\\s+UNAVAILABLE on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE.*tried again every 5 s`, 'm'), 'the table says it');
  t.ok(tap.logs.some((l) => /^metrics endpoint unavailable: trying again every 5 s/.test(String(l.msg)) && l.level === 50), 'said in the log');
  await new Promise((r) => squatter.close(r));
  squatting = false;
  await waitFor(async () => (await status()).metrics?.listening === true, 15_000, 'the tap to take the port once it is free');
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  t.match(text, /^wazuh_nats_tap_attached 0$/m, 'the tap\'s own metrics now (detached: 0)');
  t.match(text, /^process_start_time_seconds \d+$/m);
  t.ok(tap.logs.some((l) => l.msg === 'metrics endpoint listening now, after failed attempts: serving /metrics'), 'said when it listens');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('config check prints the effective configuration and never a secret', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cfgcheck-'));
  const token = 's3cr3t-T0KEN-value-that-must-not-leak';
  const tokenFile = join(home, 'etc/nats.token');
  writeOssecConf(home, `    <token_file>${tokenFile}</token_file>\n    <server_url>nats://user:hunter2@127.0.0.1:4222</server_url>\n`);
  writeFileSync(tokenFile, token, { mode: 0o600 });
  for (const json of [false, true]) {
    const r = await runTap(['config', 'check', '--home', home, ...(json ? ['--json'] : [])]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /token_file/);
    t.notMatch(r.stdout, token, 'the token never appears');
    t.notMatch(r.stdout, /hunter2/, 'nor the URL password');
  }
  writeFileSync(tokenFile, token, { mode: 0o644 });
  chmodSync(tokenFile, 0o644);
  const bad = await runTap(['config', 'check', '--home', home]);
  t.equal(bad.code, 2, 'a secret file others can read: configuration error');
  t.match(bad.stderr, /token_file/);
  t.notMatch(bad.stderr, token);
});

t.test('credentials in the NATS URL are never shown: not in the log, status, status --json, nor tail', async (t) => {
  const port = await freePort(); // nothing listens: the tap says it cannot connect, with the servers
  const cases = [
    { url: `nats://alice:s3cret-pw-41@127.0.0.1:${port}`, secret: 's3cret-pw-41', shown: `nats://alice:***@127.0.0.1:${port}` },
    { url: `nats://sometoken-8d2@127.0.0.1:${port}`, secret: 'sometoken-8d2', shown: `nats://***@127.0.0.1:${port}` },
  ];
  for (const c of cases) {
    const home = mkdtempSync(join(tmpdir(), 'wnt-ctl-mask-'));
    writeOssecConf(home);
    const sock = join(home, 'tap.sock');
    const tap = await startTap(['run', '--home', home, '--nats-url', c.url, '--control-socket', sock, '--no-attach'], /^started detached/);
    t.teardown(() => tap.stop('SIGKILL'));
    await waitFor(() => tap.logs.some((l) => l.msg === 'cannot connect to NATS: retrying (events wait in the spool)'), 10_000, 'the connection warning');
    t.same(tap.logs.find((l) => l.msg === 'cannot connect to NATS: retrying (events wait in the spool)')?.servers, [c.shown], 'the servers, masked');
    // ps, and /proc/<pid>/cmdline that every user reads: the command line is the title, masked.
    const cmdline = readFileSync(`/proc/${tap.proc.pid}/cmdline`, 'utf8');
    t.match(cmdline, `wazuh-nats-tap run --home ${home} --nats-url ${c.shown} `, 'the process title');
    const json = await ctl(sock, 'status', '--json');
    t.equal(json.code, 0);
    t.same(JSON.parse(json.stdout).nats.servers, [c.shown]);
    const table = await ctl(sock, 'status');
    t.match(table.stdout, new RegExp(`^nats\\s+DISCONNECTED \\(configured: ${c.shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`, 'm'));
    t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
    const tail = await runTap(['tail', '--nats-url', c.url, '--duration', '1']);
    t.not(tail.code, 0, 'tail cannot connect');
    for (const [what, text] of [['the log', JSON.stringify(tap.logs) + tap.stderr()], ['status --json', json.stdout + json.stderr],
      ['status', table.stdout + table.stderr], ['tail', tail.stdout + tail.stderr], ['/proc/<pid>/cmdline', cmdline]]) {
      t.notOk(text.includes(c.secret), `${c.secret} is not in ${what}`);
    }
  }
});

t.test('a server_url with credentials that is refused is quoted masked: config check, run, --nats-url', async (t) => {
  const LONG = `ThisIsAVeryLongPasswordThatIsSecretAndLongerThanEightyCharacters${'X'.repeat(40)}`;
  const cases = [
    { url: 'nats://alice:hunter2@127.0.0.1:4222,', secret: 'hunter2', why: /comma-separated URLs, none empty/ },
    { url: 'nats://alice:Kx9#pQ2/zz@127.0.0.1:4222', secret: 'Kx9', why: /not a URL/ },
    { url: 'nats://alice:Q/w?e#r@127.0.0.1:4222', secret: 'Q/w', why: /./ },
    { url: `nats://alice:${LONG}@127.0.0.1:4222,`, secret: LONG.slice(0, 12), why: /none empty/ },
    { url: `nats://alice:${LONG}@127.0.0.1:4222/x`, secret: LONG.slice(0, 12), why: /no path/ },
    { url: 'nats://alice:Zq8,Wv7@127.0.0.1:4222', secret: 'Zq8', why: /not a URL/ },
  ];
  for (const c of cases) {
    const home = mkdtempSync(join(tmpdir(), 'wnt-url-err-'));
    writeOssecConf(home, `    <server_url>${c.url}</server_url>\n`);
    const check = await runTap(['config', 'check', '--home', home]);
    const run = await runTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock')]);
    writeOssecConf(home);
    const flag = await runTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--nats-url', c.url]);
    for (const [what, r] of [['config check', check], ['run', run], ['run --nats-url', flag]] as const) {
      t.equal(r.code, 2, `${what}: a configuration error`);
      t.match(r.stderr, /nats:\/\/alice:\*\*\*@/, `${what}: the URL quoted, masked`);
      t.match(r.stderr, c.why);
      t.notOk((r.stderr + r.stdout).includes(c.secret), `${what}: ${c.url.slice(0, 40)}… — its password nowhere`);
    }
  }
});

t.test('the process title masks --nats-url\'s credentials (/proc/<pid>/cmdline is every user\'s to read)', async (t) => {
  // A listener that never speaks NATS: tail waits, long enough to be looked at.
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const port = (silent.address() as AddressInfo).port;
  for (const args of [['--nats-url', `nats://alice:T1tle-pw@127.0.0.1:${port}`], [`--nats-url=nats://T1tle-token@127.0.0.1:${port}`]]) {
    const proc = spawn(process.execPath, [BIN, 'tail', ...args, '--duration', '5'], { stdio: 'ignore' });
    const exited = new Promise((r) => proc.once('exit', r));
    t.teardown(() => proc.kill('SIGKILL'));
    let cmdline = '';
    await waitFor(() => (cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8')).startsWith('wazuh-nats-tap'), 5000, 'the title');
    t.match(cmdline, /^wazuh-nats-tap tail --nats-url[ =]nats:\/\/(alice:)?\*\*\*@127\.0\.0\.1:\d+ --duration 5\0*$/, 'masked');
    t.notMatch(cmdline, /T1tle/, 'neither the password nor the token');
    proc.kill('SIGTERM');
    await exited;
  }
});

function ctl(sock: string, ...args: string[]) {
  return runTap([...args, '--control-socket', sock]);
}
