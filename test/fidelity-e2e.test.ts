// What a consumer sees on a live manager (SPEC §3, §6), through the real eBPF
// path and the simulated daemons: a tap started before the manager knows the
// statuses as soon as wazuh-db listens; registration wildcards are not
// addresses; the tap's own nats-tap.conf beside Wazuh's ossec.conf; and `tail`
// configured by the tap's file alone.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting, startNatsServer } from './helpers/nats-server.js';
import { BIN, runTap, startTap, ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
// Registered by agent-auth with the default `any` (client.keys); their keepalives carry their live address.
const A = { id: 1, name: 'web-server-01', ip: 'any' };
const B = { id: 2, name: 'db-server-01', ip: 'any' };
const live = (a: typeof A, ip: string) => ({ ...a, ip });

/** A manager's home as an install leaves it: Wazuh's ossec.conf (no <nats>: Wazuh would refuse it) and the tap's nats-tap.conf. */
function home(t: Tap.Test, nats: string): string {
  const h = mkdtempSync(join(tmpdir(), 'wnt-fidelity-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  mkdirSync(join(h, 'etc'));
  writeFileSync(join(h, 'etc/ossec.conf'), '<ossec_config>\n  <cluster>\n    <node_name>master-07</node_name>\n    <disabled>yes</disabled>\n  </cluster>\n</ossec_config>\n');
  writeFileSync(join(h, 'etc/nats-tap.conf'), `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n${nats}  </nats>\n</ossec_config>\n`);
  return h;
}

t.test('started before the manager: the first events carry wazuh-db\'s statuses, the live address, the node of ossec.conf', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.*.status');
  const h = home(t, `    <server_url>${nats.url}</server_url>\n    <metrics>no</metrics>\n`);
  const sim = new SimManager({ binDir, home: h, agents: [A, B] }); // installed: bin/, queue/db/, not running
  t.teardown(() => sim.stop());
  const tap = await startTap(['run', '--home', h, '--control-socket', join(h, 'tap.sock')]); // no --config: nats-tap.conf
  t.teardown(() => tap.stop('SIGKILL'));
  t.ok(tap.logs.some((l) => /initial sync incomplete/.test(String(l.msg))), 'nothing to ask at start: wazuh-db is not there yet');

  await sim.start(); // wazuh-db, then remoted (reset-agents-connection)
  await waitFor(() => tap.logs.some((l) => l.why === 'wazuh-db socket appeared' && l.agents === 2), 5000, 'the tap to ask wazuh-db as it appears');
  await sim.startup(A);
  await sim.keepalive(live(A, '192.168.56.21'));
  await sim.startup(B);
  await waitFor(() => got.length >= 3, 10_000, 'three status events');
  const ev = got.map((m) => m.body);
  t.same(ev.map((b) => [b.agent_id, b.previous_status, b.current_status, b.ip_address]), [
    ['001', 'never_connected', 'pending', null],
    ['001', 'pending', 'active', '192.168.56.21'],
    ['002', 'never_connected', 'pending', null],
  ], 'previous_status from wazuh-db (not unknown); `any` is no address (null), then the live agent_ip');
  t.ok(ev.every((b) => b.manager_node === 'master-07'), 'manager_node from Wazuh\'s ossec.conf');
  t.match(tap.logs.find((l) => String(l.msg).startsWith('attached')), { home: h });

  const check = await runTap(['config', 'check', '--home', h]);
  t.equal(check.code, 0);
  t.match(check.stdout, `${h}/etc/nats-tap.conf`, 'config check names the tap\'s own file');
});

t.test('tail on the manager host: server, token, encryption key and prefix from the tap\'s configuration', async (t) => {
  const nats = await startNatsServer({ extra: 'authorization { token: "tail-token-31" }\n' });
  t.teardown(() => nats.stop());
  const h = home(t, '');
  const secret = (name: string, body: string) => {
    const p = join(h, 'etc', name);
    writeFileSync(p, body);
    chmodSync(p, 0o600);
    return p;
  };
  const conf = `    <server_url>${nats.url}</server_url>\n    <token_file>${secret('nats.token', 'tail-token-31\n')}</token_file>\n`
    + `    <encrypt_messages>yes</encrypt_messages>\n    <encryption_key>${secret('nats.key', `${'cd'.repeat(32)}\n`)}</encryption_key>\n`
    + '    <subject_prefix>site7.wazuh</subject_prefix>\n    <metrics>no</metrics>\n';
  writeFileSync(join(h, 'etc/nats-tap.conf'), `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n${conf}  </nats>\n</ossec_config>\n`);
  const sim = new SimManager({ binDir, home: h, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();

  const tail = spawn(process.execPath, [BIN, 'tail', '--home', h, '--count', '1', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => tail.kill('SIGKILL'));
  let out = '';
  let err = '';
  tail.stdout.on('data', (d) => { out += d; });
  tail.stderr.on('data', (d) => { err += d; });
  await waitFor(() => err.includes('Ctrl-C'), 10_000, 'tail to subscribe with the configuration\'s token');
  t.match(err, 'site7.wazuh.>', 'the configuration\'s prefix');
  const tap = await startTap(['run', '--home', h, '--control-socket', join(h, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await waitFor(() => tail.exitCode !== null, 10_000, 'tail to end').catch(() => t.comment(JSON.stringify({ out, err, logs: tap.logs.slice(-8) })));
  const code = tail.exitCode;
  t.equal(code, 0, 'tail ends after --count 1');
  t.match(JSON.parse(out.trim().split('\n')[0]), { event_type: 'tap' }, 'decrypted with the configuration\'s key');
  t.notOk(err.includes('tail-token-31'), 'the token is never shown');
});
