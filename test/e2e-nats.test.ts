// End to end, as a user runs it: nats-server, the simulated manager, and
// `wazuh-nats-tap run` with real eBPF. What arrives on NATS is the contract.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting, startNats } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';
import { contractJson } from './helpers/contract.js';

// Tap programs loaded from here on: those a test leaves behind (another tap's are held by it, never counted).
const MARK = bpfMark();

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
const B = { id: 2, name: 'db-server-01', ip: '192.168.56.22' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;


t.test('status changes of simulated agents reach NATS with the JSON of SPEC §4', async (t) => {
  const { nats, nc, got } = await natsCollecting(t, 'wazuh.>');

  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-'));
  // One message per keepalive (keepalive_batch 0): the JSON of SPEC §4 event by event; batches have their own test below.
  writeOssecConf(home, '    <keepalive_batch>0</keepalive_batch>\n'); // a manager's home has etc/ossec.conf (client.keys appears later)
  // Installed (bin/, queue/db/), not running: the tap starts first, as systemd usually orders it.
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  const startedAt = Date.now();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node-e2e']);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.start();
  // On a real manager remoted starts a while after wazuh-db; here at once: let the tap ask wazuh-db first.
  await waitFor(() => tap.logs.some((l) => l.why === 'wazuh-db socket appeared'), 5000, 'the tap to ask wazuh-db as it appears');

  await sim.startup(A);
  await sim.keepalive(A);
  await sim.keepalive(A);
  await sim.startup(B);
  await sim.keepalive(B);
  await sim.shutdown(A);
  await sim.shutdown(B);
  const intruder = await sim.spawnClient('not-wazuh');
  const X = { id: 9, name: 'intruder', ip: '10.9.9.9' };
  await intruder.startup(X);
  await intruder.keepalive(X);
  await intruder.shutdown(X);

  const status = () => got.filter((m) => m.body.event_type === 'status_change');
  await waitFor(() => status().length >= 6, 10_000, 'six status events').catch((e) => { t.comment(JSON.stringify({ got, logs: tap.logs })); throw e; });
  await new Promise((r) => setTimeout(r, 500)); // a seventh would be a defect: give it time to show
  const endedAt = Date.now();

  const seq = (id: string) => status().filter((m) => m.body.agent_id === id)
    .map((m) => [m.body.previous_status, m.body.current_status, m.body.reason, m.body.status_code]);
  // The tap started first: it asked wazuh-db as soon as its socket appeared (SPEC §3), so it knew them registered.
  t.same(seq('001'), [
    ['never_connected', 'pending', 'agent_startup', 0],
    ['pending', 'active', 'keepalive', 0],
    ['active', 'disconnected', 'agent_shutdown', 3],
  ], 'agent 001: startup, keepalive, shutdown');
  t.same(seq('002'), [
    ['never_connected', 'pending', 'agent_startup', 0],
    ['pending', 'active', 'keepalive', 0],
    ['active', 'disconnected', 'agent_shutdown', 3],
  ], 'agent 002: startup, keepalive, shutdown');
  t.equal(status().length, 6, 'exactly one event per transition, none for the intruder');
  t.notOk(got.some((m) => m.body.agent_id === '009'), 'a non-target process writing the same bytes produces nothing');

  for (const m of status()) {
    const b = m.body;
    t.equal(m.subject, `wazuh.agent.${b.agent_id}.status`);
    t.same(m.headers, { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': b.agent_id });
    t.match(b, { event_type: 'status_change', manager_node: 'node-e2e', source: 'remoted', sync_status: 'synced' });
    t.match(b.event_id, UUID);
    t.ok(typeof b.timestamp === 'number' && b.timestamp >= Math.floor(startedAt / 1000) && b.timestamp <= endedAt / 1000, 'unix seconds of the capture');
    t.equal(Math.floor(Date.parse(String(b.time)) / 1000), b.timestamp, 'time and timestamp agree');
    t.match(b.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  t.equal(new Set(status().map((m) => m.body.event_id)).size, 6, 'event ids are unique');
  const active = status().find((m) => m.body.agent_id === '001' && m.body.current_status === 'active')!;
  t.equal(active.body.ip_address, A.ip, 'ip from update-agent-data');
  const down = status().find((m) => m.body.agent_id === '002' && m.body.current_status === 'disconnected')!;
  t.equal(down.body.ip_address, B.ip, 'the last known ip stays with the agent');

  const keepalives = got.filter((m) => m.body.event_type === 'keepalive');
  t.same(keepalives.map((m) => m.body.agent_id), ['001', '001', '002'], 'one keepalive event per update-agent-data');
  t.match(keepalives[0], {
    subject: 'wazuh.agent.001.keepalive',
    body: {
      agent_id: '001', ip_address: A.ip, status: 'active', version: 'Wazuh v4.7.5',
      os: { name: 'Debian GNU/Linux', version: '12', platform: 'debian', arch: 'x86_64' },
      group_config_status: 'synced', sync_status: 'synced', manager_node: 'node-e2e', source: 'remoted',
    },
  });
  t.notOk(got.some((m) => /Agent (started|stopped)/.test(JSON.stringify(m.body))), 'no look-alike traffic leaked');

  // SIGTERM: flush, detach, exit 0, nothing left in the kernel.
  const exit = await tap.stop('SIGTERM');
  t.same(exit, { code: 0, signal: null }, 'exit 0 on SIGTERM');
  await nc.flush();
  const life = got.filter((m) => m.subject === 'wazuh.tap.node-e2e.events').map((m) => m.body.action);
  t.same(life, ['started', 'attached', 'stopped'], 'lifecycle on wazuh.tap.<node>.events');
  t.same(await leftBehind(MARK), [], 'no BPF program left behind');
});

t.test('run: a bad prefix or a bad option is a usage error (exit 2), before anything is loaded', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-bad-'));
  writeOssecConf(home);
  const bad = await runTap(['run', '--home', home, '--prefix', 'bad.*.prefix', '--nats-url', 'nats://127.0.0.1:1']);
  t.match(bad.stderr, /bad\.\*\.prefix/);
  t.equal(bad.code, 2, 'configuration error: exit 2');
  const fatal = `${bad.stdout}\n${bad.stderr}`.split('\n').filter((l) => l.includes('"level":60'));
  t.equal(fatal.length, 1, 'one fatal log line');
  t.notMatch(fatal[0], /"stack"|    at /, 'without a stack: the operator\'s error, not a bug');
  const noConf = await runTap(['run', '--home', join(home, 'none')]);
  t.equal(noConf.code, 2, 'no configuration file: exit 2');
  t.notMatch(`${noConf.stdout}${noConf.stderr}`, /"stack"|    at /, 'said without a stack');
  const unknown = await runTap(['run', '--no-such-flag']);
  t.match(unknown.stderr, /Unknown argument/);
  t.equal(unknown.code, 2);
  const none = await runTap([]);
  t.match(none.stderr, /name a command/);
  t.equal(none.code, 2);
  t.same(await leftBehind(MARK), [], 'nothing loaded');
});

t.test('started beside a running manager: names, addresses and statuses are known before the first transition', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const got: Record<string, unknown>[] = [];
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m: Msg) => { got.push(contractJson(t, m)); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();

  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-sync-'));
  writeOssecConf(home);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.startup(A);
  await sim.keepalive(A); // A is active before the tap exists; B was registered and never connected

  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node-sync']);
  t.teardown(() => tap.stop('SIGKILL'));
  t.ok(tap.logs.some((l) => l.msg === 'initial state from wazuh-db' && l.agents === 2), 'both agents learned from wazuh-db at start');

  await sim.shutdown(A);
  await sim.startup(B);
  await waitFor(() => got.length >= 2, 10_000, 'two status events');
  await new Promise((r) => setTimeout(r, 300));
  t.same(got.map((e) => [e.agent_id, e.agent_name, e.previous_status, e.current_status, e.reason]), [
    ['001', 'web-server-01', 'active', 'disconnected', 'agent_shutdown'],
    ['002', 'db-server-01', 'never_connected', 'pending', 'agent_startup'],
  ], 'previous_status and names come from the start-up sync, not "unknown"');
  t.equal(got[0].ip_address, A.ip, 'address learned at start');
  t.notOk(JSON.stringify(got).match(/[0-9a-f]{64}/), 'no internal_key anywhere');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a cluster master: wazuh-clusterd (python3, requests without a NUL) writes a worker\'s agent — applied, not published', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-cluster-'));
  writeOssecConf(home);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node01', '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  const agents = async () => JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout).agents as Record<string, number>;
  t.match(await agents(), { never_connected: 1, active: 0 });
  const cluster = await sim.spawnClusterd();
  await cluster.syncSet({ id: 20, name: 'w20', ip: '10.2.0.20' }, 'active', 'worker01');
  await cluster.syncSet({ id: 21, name: 'w21', ip: '10.2.0.21' }, 'pending', 'worker01');
  await waitFor(async () => (await agents()).active === 1 && (await agents()).pending === 1, 10_000, 'the synced agents in the state');
  await sim.startup(A); // the master's own agent: published, proof the tap was publishing
  await waitFor(() => got.some((m) => m.body.agent_id === '001'), 10_000, 'agent 001');
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(got.some((m) => m.body.agent_id === '020' || m.body.agent_id === '021'), 'nothing published for the workers\' agents');
});

t.test('a manager restart (wazuh-db on a new socket, remoted\'s reset, an agent back): one event per transition, in order', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.*.status');
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-restart-'));
  writeOssecConf(home);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B], persistDb: true });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node-restart']);
  t.teardown(() => tap.stop('SIGKILL'));
  for (const a of [A, B]) {
    await sim.startup(a);
    await sim.keepalive(a);
  }
  await waitFor(() => got.length >= 4, 10_000, 'four status events before the restart');
  await sim.restartManager({ reconnect: [A] });
  const seq = () => got.map((m) => `${m.body.agent_id}:${m.body.previous_status}>${m.body.current_status}/${m.body.status_code}/${m.body.reason}`);
  await waitFor(() => got.length >= 8, 15_000, 'the restart\'s four status events').catch((e) => { t.comment(seq().join('\n')); throw e; });
  await new Promise((r) => setTimeout(r, 1000)); // a ninth would be a duplicate
  const after = seq().slice(4);
  const of = (id: string) => after.filter((x) => x.startsWith(`${id}:`));
  t.same(of('001'), ['001:active>disconnected/5/manager_reset', '001:disconnected>pending/0/agent_startup', '001:pending>active/0/keepalive'],
    'agent 1: reset, then back');
  t.same(of('002'), ['002:active>disconnected/5/manager_reset'], 'agent 2: reset');
  t.equal(after.length, 4, `nothing else: ${after.join(', ')}`);
});

t.test('keepalive events carry each agent\'s own version and os; a keepalive wazuh-db refused (cut at 2,048 bytes) publishes nothing', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-versions-'));
  writeOssecConf(home, '    <keepalive_batch>0</keepalive_batch>\n');
  const A2 = { ...A, version: 'Wazuh v4.9.2', os: { name: 'Ubuntu', version: '24.04', platform: 'ubuntu', arch: 'aarch64' } };
  const B2 = { ...B, version: 'Wazuh v4.7.5', os: { name: 'Rocky Linux', version: '9.4', platform: 'rocky', arch: 'x86_64' } };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node-versions']);
  t.teardown(() => tap.stop('SIGKILL'));
  for (const a of [A2, B2]) {
    await sim.startup(a);
    await sim.keepalive(a);
    await sim.keepalive(a);
  }
  const kas = (id: string) => got.filter((m) => m.subject === `wazuh.agent.${id}.keepalive`).map((m) => m.body);
  await waitFor(() => kas('001').length >= 2 && kas('002').length >= 2, 10_000, 'two keepalives each');
  t.match(kas('001').at(-1), { version: 'Wazuh v4.9.2', os: { name: 'Ubuntu', version: '24.04', platform: 'ubuntu', arch: 'aarch64' } });
  t.match(kas('002').at(-1), { version: 'Wazuh v4.7.5', os: { name: 'Rocky Linux', version: '9.4', platform: 'rocky', arch: 'x86_64' } });
  // An upgrade: the next keepalive says so (it is no tick: its bytes changed).
  await sim.keepalive({ ...A2, version: 'Wazuh v4.10.0' });
  await waitFor(() => kas('001').at(-1)?.version === 'Wazuh v4.10.0', 10_000, 'the new version');
  // Labels too long: remoted's helper cuts the request at 2,048 bytes, wazuh-db answers err: no event.
  const n = kas('001').length;
  await t.rejects(sim.keepalive({ ...A2, version: 'Wazuh v9.9.9', labels: { big: 'x'.repeat(2000) } }), /err Invalid JSON/);
  await sim.keepalive({ ...A2, version: 'Wazuh v4.10.0' }); // and the next good one is heard
  await waitFor(() => kas('001').length > n, 10_000, 'the keepalive after the refused one');
  await new Promise((r) => setTimeout(r, 300));
  t.same(kas('001').slice(n).map((k) => k.version), ['Wazuh v4.10.0'], 'the refused keepalive published nothing');
});

t.test('keepalive_batch in the configuration: the agent\'s keepalives arrive batched, its status changes one by one and in order', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-batch-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <keepalive_batch>50</keepalive_batch>\n    <keepalive_batch_interval>1</keepalive_batch_interval>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A); // pending → active, and a keepalive
  await sim.keepalive(A);
  await sim.startup(B);
  await sim.keepalive(B);
  await sim.shutdown(A); // A's keepalives wait in the open batch: it is sent first
  const ours = () => got.filter((m) => m.body.agent_id === '001' || m.body.agent_id === '002' || m.body.event_type === 'keepalive_batch');
  const kaIn = () => ours().flatMap((m) => (m.body.event_type === 'keepalive_batch' ? (m.body.events as { agent_id: string }[]) : []));
  await waitFor(() => kaIn().filter((e) => e.agent_id === '002').length >= 1 && ours().some((m) => m.body.current_status === 'disconnected'),
    10_000, 'the keepalives of both agents and the shutdown').catch((e) => { t.comment(JSON.stringify({ got, logs: tap.logs })); throw e; });
  t.notOk(got.some((m) => m.body.event_type === 'keepalive'), 'no keepalive on its own');
  const batches = ours().filter((m) => m.body.event_type === 'keepalive_batch');
  t.ok(batches.every((m) => m.subject === 'wazuh.agent.batch.keepalive' && m.headers['Wazuh-Event-Count'] === String(m.body.count)), 'batch subject and count header');
  t.equal(kaIn().filter((e) => e.agent_id === '001').length, 2, 'agent 001: both keepalives, once each');
  // What a consumer sees for agent 001, in arrival order.
  const seq001 = ours().flatMap((m) => (m.body.event_type === 'keepalive_batch'
    ? (m.body.events as { agent_id: string }[]).filter((e) => e.agent_id === '001').map(() => 'keepalive')
    : m.body.agent_id === '001' ? [`${m.body.current_status}`] : []));
  t.same(seq001, ['pending', 'active', 'keepalive', 'keepalive', 'disconnected'], 'its keepalives before its shutdown');
});
