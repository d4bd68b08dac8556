// `wazuh-nats-tap tail`: what a person watches events with.
import t from 'tap';
import { spawn } from 'node:child_process';
import { connect } from '@nats-io/transport-node';
import { startNats } from './helpers/nats-server.js';
import { BIN } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const STATUS = {
  event_id: 'e1', event_type: 'status_change', agent_id: '001', agent_name: 'web01', previous_status: 'active',
  current_status: 'disconnected', status_code: 3, reason: 'agent_shutdown', ip_address: '10.0.0.1',
  timestamp: 1795800853, time: '2026-11-27T17:34:13.531Z', manager_node: 'n1', source: 'remoted', sync_status: 'synced',
};

for (const json of [false, true]) {
  t.test(`tail ${json ? '--json' : '(readable)'} prints what arrives and stops after --count`, async (t) => {
    const nats = await startNats();
    t.teardown(() => nats.stop());
    const p = spawn(process.execPath, [BIN, 'tail', 'wazuh.agent.>', '--nats-url', nats.url, '--count', '2', ...(json ? ['--json'] : [])]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const exit = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    t.teardown(() => p.kill('SIGKILL'));
    await waitFor(() => err.includes('Ctrl-C'), 10_000, 'tail to subscribe');
    const nc = await connect({ servers: nats.url });
    nc.publish('wazuh.tap.n1.events', JSON.stringify({ event_type: 'tap', action: 'started' })); // not subscribed
    nc.publish('wazuh.agent.001.status', JSON.stringify(STATUS));
    nc.publish('wazuh.agent.001.keepalive', JSON.stringify({ event_type: 'keepalive', agent_id: '001', agent_name: 'web01', status: 'active', version: 'Wazuh v4.7.5', ip_address: '10.0.0.1', time: STATUS.time }));
    await nc.drain();
    t.equal(await exit, 0);
    const lines = out.trim().split('\n');
    t.equal(lines.length, 2);
    if (json) {
      t.same(JSON.parse(lines[0]), { subject: 'wazuh.agent.001.status', ...STATUS });
      t.match(JSON.parse(lines[1]), { subject: 'wazuh.agent.001.keepalive', event_type: 'keepalive' });
    } else {
      t.equal(lines[0], '2026-11-27T17:34:13.531Z  wazuh.agent.001.status  agent 001 (web01) active -> disconnected  reason=agent_shutdown code=3 ip=10.0.0.1 via remoted');
      t.equal(lines[1], '2026-11-27T17:34:13.531Z  wazuh.agent.001.keepalive  agent 001 (web01) active Wazuh v4.7.5 ip=10.0.0.1');
    }
  });
}
