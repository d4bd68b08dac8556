// End to end with real eBPF: the simulated wazuh-remoted sends requests whose values Wazuh cannot
// write (an 11-digit agent id, an address that is a subject wildcard), wazuh-db (the simulator)
// answers `ok`, and the tap — which used to exit 1 on the first of them — keeps running, counts them
// as malformed in `status` and /metrics, and publishes the agent's next real transitions.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, natsCollecting } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };

t.test('hostile ids and addresses from remoted: the tap survives, counts them, and publishes the next startup', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-e2e-validate-'));
  writeOssecConf(home);
  const sock = join(home, 'tap.sock');
  const metricsPort = await freePort();
  // Installed (bin/, queue/db/), not running: the tap starts first, as systemd usually orders it.
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'node-v', '--control-socket', sock,
    '--metrics', `127.0.0.1:${metricsPort}`]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.start();
  // remoted speaks once the tap asked wazuh-db, as on a real manager (remoted starts after wazuh-db).
  await waitFor(() => tap.logs.some((l) => l.why === 'wazuh-db socket appeared'), 5000, 'the tap to ask wazuh-db as it appears');

  t.match(await sim.rawreq('global update-keepalive {"id":99999999999,"connection_status":"pending","sync_status":"synced"}'), /^ok/,
    'wazuh-db (the simulator) accepts the 11-digit id');
  t.match(await sim.rawreq('global update-agent-data {"id":1,"agent_ip":"evil.>","sync_status":"synced"}'), /^ok/);
  await sim.startup(A);
  await sim.keepalive(A);
  const status = () => got.filter((m) => m.body.event_type === 'status_change' && m.body.agent_id === '001');
  await waitFor(() => status().length >= 2, 10_000, 'agent 001 pending, then active')
    .catch((e) => { t.comment(JSON.stringify({ got, logs: tap.logs }).slice(0, 4000)); throw e; });

  t.same({ exitCode: tap.proc.exitCode, signal: tap.proc.signalCode }, { exitCode: null, signal: null }, 'the tap is still running');
  t.same(status().map((m) => [m.subject, m.body.previous_status, m.body.current_status]), [
    ['wazuh.agent.001.status', 'never_connected', 'pending'],
    ['wazuh.agent.001.status', 'pending', 'active'],
  ]);
  t.equal(status()[1].body.ip_address, A.ip, 'the refused address never became the agent\'s');
  t.notOk(got.some((m) => /99999999999|evil/.test(m.subject + JSON.stringify(m.body))), 'nothing of the refused requests was published');
  t.ok(got.every((m) => /^wazuh\.(agent\.[0-9]{3,9}\.(status|keepalive)|agent\.batch\.keepalive|tap\.node-v\.events)$/.test(m.subject)), 'only valid subjects (keepalives batched by default)');

  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', sock])).stdout);
  t.ok(st.decoder.malformed >= 2 && st.decoder.invalidRequests >= 2, `status counts the refused requests as malformed: ${JSON.stringify(st.decoder)}`);
  t.same(st.errors, { records: 0, unpublishable: 0 }, 'validation refused them: no guard was needed');
  // Every exchange placed by wazuh-db's read of it; the first reply wazuh-db wrote after the tap
  // attached (the one that marks it as the server) may lack one, if a client's came first.
  t.ok(st.decoder.placedByWrite <= 1, `status: placed by their writes, at most wazuh-db's first: ${JSON.stringify(st.decoder)}`);
  const table = (await runTap(['status', '--control-socket', sock])).stdout;
  t.match(table, /decoder\s+frames \d+, malformed [1-9]/);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  t.match(metrics, /wazuh_nats_tap_frames_total\{outcome="malformed"\} [1-9]/);
  t.match(metrics, /wazuh_nats_tap_errors_total\{kind="records"\} 0/);
  t.equal(Number(/^wazuh_nats_tap_placed_by_write_total (\d+)$/m.exec(metrics)?.[1]), st.decoder.placedByWrite, '/metrics: the exchanges placed by their writes, as status says');

  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null }, 'a clean stop: exit 0');
});
