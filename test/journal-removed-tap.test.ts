// agents.status names the agents the tap last published; at start, one it names and wazuh-db no longer
// lists was removed while the tap was down, and gets one `removed` status event. A journal naming many
// agents wazuh-db never had (another manager's, one made by hand) makes that a flood: the tap says so,
// once (review rr-poison-files F11). The tap as users run it, against the sim manager.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startNatsServer } from './helpers/nats-server.js';
import { startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';
import { manyRemoved } from '../controller/src/agent/parts/state.js';

const WARNING = 'agents.status named many more agents than wazuh-db lists: each unlisted one was published as removed (is it this manager\'s journal?)';

t.test('many removals at start are said once: more than wazuh-db lists, and a hundred at least', async (t) => {
  t.notOk(manyRemoved(3, 1), 'a few agents removed while the tap was down');
  t.notOk(manyRemoved(500, 600), 'many, but fewer than remain');
  t.ok(manyRemoved(300, 2));
});

t.test('a journal naming 300 agents wazuh-db never had: each published as removed, and said once', async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const removed: string[] = [];
  nc.subscribe('wazuh.agent.*.status', {
    callback: (_e, m: Msg) => {
      const b = m.json<Record<string, string>>();
      if (b.reason === 'removed') removed.push(b.agent_id);
    },
  });
  await nc.flush();
  const home = mkdtempSync(join(tmpdir(), 'wnt-journal-removed-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <keepalive_events>no</keepalive_events>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [{ id: 1, name: 'agent1', ip: '10.0.0.1' }, { id: 2, name: 'agent2', ip: '10.0.0.2' }] });
  t.teardown(() => sim.stop());
  await sim.start();
  const spool = join(home, 'var/nats-tap');
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  chmodSync(spool, 0o700);
  const fake = Array.from({ length: 300 }, (_, i) => 700_000_000 + i);
  writeFileSync(join(spool, 'agents.status'), ['1 never_connected 0', '2 never_connected 0', ...fake.map((id) => `${id} active 0`)].join('\n') + '\n', { mode: 0o600 });
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--node', 'n1'], /^attached/);
  t.teardown(() => tap.stop('SIGKILL'));
  await waitFor(() => removed.length >= fake.length, 15_000, 'the removed events');
  await waitFor(() => tap.logs.some((l) => l.msg === 'initial state from wazuh-db'), 15_000, 'the initial sync');
  const said = tap.logs.filter((l) => l.msg === WARNING);
  t.equal(said.length, 1, 'said once');
  t.match(said[0], { level: 40, removed: 300, listed: 2 }, 'a warning with the counts');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});
