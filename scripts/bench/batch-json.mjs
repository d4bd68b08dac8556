// The keepalive batcher alone, warm: add() of 7 keepalives then take() (the batch's id, envelope and
// join), ns a keepalive, six rounds of 140,000. Real-shaped events: laid-out ids, 2,000 agents sharing
// one os object, as the state hands them over. Needs `dist/` (`node scripts/build.mjs`).
// `node scripts/bench/batch-json.mjs` (add `--cpu-prof` to split it by function; docs/performance.md
// item 25).
import { KeepaliveBatcher } from '../../dist/publish/keepalive-batch.js';
import { keepaliveEventId } from '../../dist/state/format.js';

const OS = { name: 'Ubuntu', platform: 'ubuntu', version: '22.04' };
const ka = (agent, ns) => ({
  event_id: keepaliveEventId('node01', agent, ns, 'active'), event_type: 'keepalive', agent_id: String(agent).padStart(3, '0'),
  agent_name: `wazuh-agent-host-${agent}`, ip_address: `10.0.${agent >> 8}.${agent & 255}`, status: 'active', version: 'Wazuh v4.7.5',
  os: OS, group_config_status: 'synced', sync_status: 'synced', timestamp: 1716897300, time: '2026-12-05T01:02:03.123Z',
  manager_node: 'node01', source: 'remoted',
});
const evs = Array.from({ length: 7000 }, (_, i) => ka((i % 2000) + 1, BigInt(1e12 + i)));
const b = new KeepaliveBatcher({ maxEvents: 1000, maxBytes: 1 << 19, manager_node: 'node01' });
let bytes = 0;
for (let r = 0; r < 6; r++) {
  const t = process.hrtime.bigint();
  for (let k = 0; k < 20; k++) {
    for (let i = 0; i < evs.length; i += 7) {
      for (let j = 0; j < 7; j++) b.add(evs[i + j]);
      bytes += b.take().body.length;
    }
  }
  console.log(`add + take: ${(Number(process.hrtime.bigint() - t) / (20 * evs.length)).toFixed(0)} ns a keepalive`);
}
if (!bytes) throw new Error('no batch');
