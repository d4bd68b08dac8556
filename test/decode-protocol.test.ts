// The real frames of WAZUH-PROTOCOL.md §9 (a running Wazuh 4.7.5 manager), end to end through the decoder.
import t from 'tap';
import { WdbDecoder, StreamReassembler, parseRequest, parseReply } from '../controller/src/decode/index.js';
import type { CaptureRecord, Direction } from '../controller/src/types.js';
import { wire } from './helpers/frames.js';
import { Pipeline } from '../controller/src/pipeline.js';
import { AgentStateTable } from '../controller/src/state/agents.js';

const SECRET = 'deadbeef'.repeat(8); // stands in for the document's <64-hex secret>

interface Real {
  name: string;
  comm: string;
  header: number;
  request: string; // without the trailing NUL, which every one of these 4.x requests carries
  reply: string;
}

const REAL: Real[] = [
  { name: 'get-distinct-groups', comm: 'wazuh-remoted', header: 28,
    request: String.raw`global get-distinct-groups `,
    reply: String.raw`ok [{"group":"default","group_hash":"37a8eec1"}]` },
  { name: 'reset-agents-connection', comm: 'wazuh-remoted', header: 38,
    request: String.raw`global reset-agents-connection synced`, reply: 'ok' },
  { name: 'task set_timeout', comm: 'wazuh-modulesd', header: 51,
    request: String.raw`task set_timeout {"now":1795796712,"interval":900}`,
    reply: String.raw`ok {"error":0,"timestamp":1795797612}` },
  { name: 'task delete_old', comm: 'wazuh-modulesd', header: 41,
    request: String.raw`task delete_old {"timestamp":1795191912}`, reply: String.raw`ok {"error":0}` },
  { name: 'update-agent-name', comm: 'wazuh-modulesd', header: 46,
    request: String.raw`global update-agent-name {"id":0,"name":"vm"}`, reply: 'ok' },
  { name: 'update-agent-data (manager)', comm: 'wazuh-modulesd', header: 388,
    request: String.raw`global update-agent-data {"id":0,"version":"Wazuh v4.7.5","manager_host":"vm","node_name":"node01","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`,
    reply: 'ok' },
  { name: 'get-all-agents', comm: 'wazuh-modulesd', header: 32,
    request: String.raw`global get-all-agents last_id 0`, reply: String.raw`ok [{"id":1},{"id":2},{"id":3}]` },
  { name: 'select-groups', comm: 'wazuh-modulesd', header: 21,
    request: String.raw`global select-groups`, reply: String.raw`ok [{"name":"default"}]` },
  { name: 'find-group', comm: 'wazuh-modulesd', header: 26,
    request: String.raw`global find-group default`, reply: String.raw`ok [{"id":1}]` },
  { name: 'mitre sql', comm: 'wazuh-analysisd', header: 257,
    request: String.raw`mitre sql SELECT technique.id, technique.name, reference.external_id FROM technique LEFT JOIN reference ON technique.id = reference.id WHERE technique.revoked_by IS NULL AND NOT technique.deprecated AND reference.source = 'mitre-attack' LIMIT 100 OFFSET 0;`,
    reply: String.raw`ok [{"id":"attack-pattern--a93494bb-4b80-4ea1-8695-3236a49916fd","name":"Brute Force","external_id":"T1110"},{"id":"attack-pattern--ac08589e-ee59-4935-8667-d845e38fe579","name":"Disable or Modify Tools","external_id":"T1562.001"}]` },
  { name: 'insert-agent', comm: 'wazuh-authd', header: 169,
    request: String.raw`global insert-agent {"id":4,"name":"agent4","register_ip":"any","internal_key":"` + SECRET + String.raw`","date_add":1795796717}`,
    reply: 'ok' },
  { name: 'update-keepalive pending', comm: 'wazuh-remoted', header: 86,
    request: String.raw`global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}`, reply: 'ok' },
  { name: 'get-labels', comm: 'wazuh-analysisd', header: 20,
    request: String.raw`global get-labels 1`,
    reply: String.raw`ok [{"id":1,"key":"#\"_agent_ip\"","value":"127.0.0.1"},{"id":1,"key":"#\"_manager_hostname\"","value":"vm"},{"id":1,"key":"#\"_node_name\"","value":"node01"},{"id":1,"key":"#\"_wazuh_version\"","value":"Wazuh v4.7.5"}]` },
  { name: 'select-agent-group', comm: 'wazuh-remoted', header: 28,
    request: String.raw`global select-agent-group 1`, reply: String.raw`ok [{"group":"default"}]` },
  { name: 'update-agent-data', comm: 'wazuh-remoted', header: 628,
    request: String.raw`global update-agent-data {"id":1,"version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","agent_ip":"127.0.0.1","labels":"#\"_manager_hostname\":vm\n#\"_agent_ip\":127.0.0.1\n#\"_node_name\":node01\n#\"_wazuh_version\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`,
    reply: 'ok' },
  { name: 'set-agent-groups', comm: 'wazuh-remoted', header: 108,
    request: String.raw`global set-agent-groups {"mode":"empty_only","sync_status":"synced","data":[{"id":3,"groups":["default"]}]}`,
    reply: 'ok' },
  { name: 'update-agent-data (first connection)', comm: 'wazuh-remoted', header: 553,
    request: String.raw`global update-agent-data {"id":3,"version":"Wazuh v4.7.5","merged_sum":"x","manager_host":"vm","node_name":"node01","agent_ip":"127.0.0.1","labels":"#\"_manager_hostname\":vm\n#\"_agent_ip\":127.0.0.1\n#\"_node_name\":node01\n#\"_wazuh_version\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"not synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`,
    reply: 'ok' },
  { name: 'get-agents-by-connection-status', comm: 'wazuh-remoted', header: 58,
    request: String.raw`global get-agents-by-connection-status 0 active node01 -1`, reply: String.raw`ok [{"id":1},{"id":2},{"id":3}]` },
  { name: 'update-connection-status', comm: 'wazuh-remoted', header: 115,
    request: String.raw`global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}`,
    reply: 'ok' },
  { name: 'disconnect-agents (empty)', comm: 'wazuh-monitord', header: 45,
    request: String.raw`global disconnect-agents 0 1795796721 synced`, reply: 'ok []' },
  { name: 'task upgrade_cancel_tasks', comm: 'wazuh-modulesd', header: 44,
    request: String.raw`task upgrade_cancel_tasks {"node":"node01"}`, reply: String.raw`ok {"error":0}` },
  { name: 'disconnect-agents (hit)', comm: 'wazuh-monitord', header: 45,
    request: String.raw`global disconnect-agents 0 1795796741 synced`, reply: String.raw`ok [{"id":2}]` },
  { name: 'get-agent-info', comm: 'wazuh-monitord', header: 24,
    request: String.raw`global get-agent-info 2`,
    reply: String.raw`ok [{"id":2,"name":"agent2","ip":"127.0.0.1","register_ip":"any","internal_key":"` + SECRET + String.raw`","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64","version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","date_add":1795795441,"last_keepalive":1795796736,"group":"default","group_hash":"37a8eec1","group_sync_status":"synced","sync_status":"synced","connection_status":"disconnected","disconnection_time":1795796761,"group_config_status":"synced","status_code":4}]` },
  { name: 'find-agent', comm: 'wazuh-monitord', header: 47,
    request: String.raw`global find-agent {"name":"agent2","ip":"any"}`, reply: String.raw`ok [{"id":2}]` },
];

const enc = new TextEncoder();


function rec(direction: Direction, data: Uint8Array, comm: string, tsNs: bigint): CaptureRecord {
  const client = direction === 'request';
  return {
    tsNs, tgid: client ? 100 : 200, tid: client ? 101 : 201, comm: client ? comm : 'wazuh-db',
    localIno: client ? 5001 : 6001, peerIno: client ? 6001 : 5001, direction,
    syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto',
  };
}

t.test('the §9 headers match the payloads as copied (4.x requests count their NUL)', async (t) => {
  for (const f of REAL) t.equal(enc.encode(f.request).length + 1, f.header, f.name);
});

t.test('each real request and reply comes out of the reassembler whole, NUL removed', async (t) => {
  const r = new StreamReassembler();
  let ts = 1n;
  for (const f of REAL) {
    const q = r.push(rec('request', wire(f.request, true), f.comm, ts++));
    t.same(q.map((x) => x.payload), [f.request], `${f.name} request`);
    t.equal(q[0].comm, f.comm);
    t.equal(q[0].connId, '5001');
    const a = r.push(rec('reply', wire(f.reply, false), f.comm, ts++));
    t.same(a.map((x) => x.payload), [f.reply], `${f.name} reply`);
    t.equal(a[0].connId, '5001', 'both directions share the connection id');
  }
  t.equal(r.stats().malformed, 0);
  t.equal(r.stats().frames, REAL.length * 2);
});

t.test('parsing every real request', async (t) => {
  const byName = new Map(REAL.map((f) => [f.name, parseRequest(f.request)]));
  t.same(byName.get('update-keepalive pending'), {
    cmd: 'update-keepalive', id: 1, connection_status: 'pending', sync_status: 'synced',
  });
  t.same(byName.get('update-connection-status'), {
    cmd: 'update-connection-status', id: 1, connection_status: 'disconnected', sync_status: 'synced', status_code: 3,
  });
  t.same(byName.get('update-agent-data'), {
    cmd: 'update-agent-data',
    data: {
      id: 1, version: 'Wazuh v4.7.5', agent_ip: '127.0.0.1', connection_status: 'active', sync_status: 'synced',
      group_config_status: 'synced', node_name: 'node01', manager_host: 'vm', os_name: 'Debian GNU/Linux',
      os_version: '12', os_major: '12', os_codename: 'bookworm', os_platform: 'debian', os_arch: 'x86_64',
      os_uname: 'Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64',
    },
  });
  const first = byName.get('update-agent-data (first connection)');
  t.equal(first?.cmd === 'update-agent-data' && first.data.group_config_status, 'not synced');
  const mgr = byName.get('update-agent-data (manager)');
  t.equal(mgr?.cmd === 'update-agent-data' && mgr.data.id, 0);
  t.same(byName.get('reset-agents-connection'), { cmd: 'reset-agents-connection', sync_status: 'synced' });
  t.same(byName.get('disconnect-agents (hit)'), { cmd: 'disconnect-agents', last_id: 0, threshold: 1795796741, sync_status: 'synced' });
  t.same(byName.get('get-distinct-groups'), { cmd: 'other', name: 'get-distinct-groups', args: '' });
  t.same(byName.get('select-groups'), { cmd: 'other', name: 'select-groups', args: '' });
  t.same(byName.get('get-agent-info'), { cmd: 'get-agent-info', id: 2 });
  t.same(byName.get('task set_timeout'), { cmd: 'non-global', name: 'task' });
  t.same(byName.get('mitre sql'), { cmd: 'non-global', name: 'mitre' });
  t.same(byName.get('insert-agent'), { cmd: 'insert-agent', id: 4, name: 'agent4', ip: null, register_ip: 'any', date_add: 1795796717 },
    'insert-agent keeps everything but internal_key');
  for (const [name, req] of byName) t.notMatch(JSON.stringify(req), /internal_key|deadbeef/, name);
});

t.test('parsing every real reply', async (t) => {
  for (const f of REAL) {
    const r = parseReply(f.reply);
    t.equal(r.status, 'ok', f.name);
    t.equal(r.malformed, false);
    t.notMatch(r.payload, /internal_key|deadbeef/, `${f.name}: no secret`);
  }
  const info = parseReply(REAL.find((f) => f.name === 'get-agent-info')!.reply);
  const row = JSON.parse(info.payload)[0];
  t.equal(row.name, 'agent2');
  t.equal(row.connection_status, 'disconnected');
  t.equal(row.status_code, 4);
  t.equal(row.internal_key, undefined);
  t.same(parseReply('ok []'), { status: 'ok', payload: '[]', malformed: false });
});

t.test('the decoder pairs every real exchange on one long-lived connection', async (t) => {
  const d = new WdbDecoder();
  let ts = 1000n;
  const names: string[] = [];
  for (const f of REAL) {
    t.same(d.push(rec('request', wire(f.request, true), f.comm, ts++)), []);
    const ex = d.push(rec('reply', wire(f.reply, false), f.comm, ts++));
    t.equal(ex.length, 1, f.name);
    t.equal(ex[0].comm, f.comm, 'the exchange names the requester, not wazuh-db');
    t.equal(ex[0].tgid, 100);
    t.equal(ex[0].reply.status, 'ok');
    names.push(ex[0].request.cmd);
  }
  t.equal(names.filter((c) => c === 'non-global').length, 4);
  const s = d.stats();
  t.equal(s.pairer.paired, REAL.length);
  t.equal(s.pairer.unpaired, 0);
  t.equal(s.reassembler.malformed, 0);
});

t.test('5.x framing: no trailing NUL, same payloads', async (t) => {
  const r = new StreamReassembler();
  for (const f of REAL) {
    const got = r.push(rec('request', wire(f.request, false), f.comm, 1n));
    t.equal(got[0]?.payload, f.request, f.name);
  }
});

t.test('the pipeline hands the events of one batch of records to the sink, then flushes once per batch', async (t) => {
  const state = new AgentStateTable({ managerNode: 'node01', wallClockMs: (ns) => Number(ns / 1_000_000n) });
  const calls: string[] = [];
  const p = new Pipeline(new WdbDecoder(), state, {
    event: (ev) => calls.push(`${ev.event_type}:${ev.agent_id}`),
    flush: () => calls.push('flush'),
  });
  const insert = REAL.find((f) => f.name === 'insert-agent')!;
  let ts = 10n;
  const batch = [rec('request', wire(insert.request, true), insert.comm, ts++), rec('reply', wire(insert.reply, false), insert.comm, ts++)];
  p.push(batch);
  p.push([]);
  t.match(calls[calls.length - 1], 'flush', 'the batch ends with one flush');
  t.equal(calls.filter((c) => c === 'flush').length, 2, 'one flush per push, empty or not');
  t.ok(calls.indexOf('flush') > 0 && calls.slice(0, calls.indexOf('flush')).every((c) => c.startsWith('status_change:')),
    'the registration\'s event came before the first flush');
  t.equal(p.records, 2);
});
