// A table-driven corpus of real-shaped frames, every `global` command the tap reads and every reply,
// in 4.x form (cJSON key order, trailing NUL) and 5.x form (sorted keys, no NUL), through the whole
// decoder (reassembly, parsing, pairing).
import t from 'tap';
import { WdbDecoder, parseIdList, parseAgentRows, redactText } from '../controller/src/decode/index.js';
import type { CaptureRecord, WdbRequest } from '../controller/src/types.js';

const K = 'ab12'.repeat(16);
type Case = [name: string, v4: string, v5: string, want: WdbRequest];
const CORPUS: Case[] = [
  ['update-keepalive', '{"id":1,"connection_status":"pending","sync_status":"synced"}', '{"connection_status":"pending","id":1,"sync_status":"synced"}',
    { cmd: 'update-keepalive', id: 1, connection_status: 'pending', sync_status: 'synced' }],
  ['update-connection-status', '{"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}', '{"connection_status":"disconnected","id":1,"status_code":3,"sync_status":"synced"}',
    { cmd: 'update-connection-status', id: 1, connection_status: 'disconnected', sync_status: 'synced', status_code: 3 }],
  ['update-status-code', '{"id":1,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}', '{"id":1,"status_code":1,"sync_status":"synced","version":"Wazuh v4.15.0"}',
    { cmd: 'update-status-code', id: 1, status_code: 1, version: 'Wazuh v4.15.0', sync_status: 'synced', connection_status: null }],
  ['update-agent-data', '{"id":1,"version":"Wazuh v5.0.0","agent_ip":"10.0.0.1","connection_status":"active","sync_status":"synced","os_name":"Ubuntu","os_arch":"x86_64"}',
    '{"agent_ip":"10.0.0.1","connection_status":"active","id":1,"os_arch":"x86_64","os_name":"Ubuntu","sync_status":"synced","version":"Wazuh v5.0.0"}',
    { cmd: 'update-agent-data', data: { id: 1, version: 'Wazuh v5.0.0', agent_ip: '10.0.0.1', connection_status: 'active', sync_status: 'synced', os_name: 'Ubuntu', os_arch: 'x86_64' } }],
  ['insert-agent', `{"id":5,"name":"web05","ip":"any","register_ip":"any","internal_key":"${K}","date_add":1795796717}`,
    `{"date_add":1795796717,"id":5,"internal_key":"${K}","ip":"any","name":"web05","register_ip":"any"}`,
    { cmd: 'insert-agent', id: 5, name: 'web05', ip: 'any', register_ip: 'any', date_add: 1795796717 }],
  ['update-agent-name', '{"id":5,"name":"web05b"}', '{"id":5,"name":"web05b"}', { cmd: 'update-agent-name', id: 5, name: 'web05b' }],
  ['delete-agent', '5', '5', { cmd: 'delete-agent', id: 5 }],
  ['get-agent-info', '2', '2', { cmd: 'get-agent-info', id: 2 }],
  ['reset-agents-connection', 'synced', 'synced', { cmd: 'reset-agents-connection', sync_status: 'synced' }],
  ['disconnect-agents', '0 1795796741 synced', '7 1795796741 syncreq', { cmd: 'disconnect-agents', last_id: 0, threshold: 1795796741, sync_status: 'synced' }],
  ['get-agents-by-connection-status', '0 active node01 -1', '0 active node01 -1', { cmd: 'get-agents-by-connection-status', last_id: 0, status: 'active', node: 'node01', limit: -1 }],
  ['get-all-agents', 'last_id 0', 'last_id 0', { cmd: 'get-all-agents', last_id: 0 }],
  ['sync-agent-info-set', `[{"id":3,"name":"w3","ip":"10.1.0.3","node_name":"worker01","connection_status":"active","last_keepalive":1795796736,"status_code":0,"internal_key":"${K}","labels":[]}]`,
    `[{"connection_status":"active","id":3,"internal_key":"${K}","ip":"10.1.0.3","last_keepalive":1795796736,"name":"w3","node_name":"worker01","status_code":0}]`,
    { cmd: 'sync-agent-info-set', agents: [{ id: 3, name: 'w3', ip: '10.1.0.3', node_name: 'worker01', connection_status: 'active', last_keepalive: 1795796736, status_code: 0 }] }],
  ['get-labels', '1', '1', { cmd: 'other', name: 'get-labels', args: '1' }],
  ['find-agent', '{"name":"agent2","ip":"any"}', '{"ip":"any","name":"agent2"}', { cmd: 'other', name: 'find-agent', args: '' }],
];
const REPLIES: [string, string, string[]][] = [
  ['ok', 'ok', []], ['ok []', 'ok', []], ['due [{"id":1},{"id":7}]', 'due', ['1', '7']], ['ok [{"id":2}]', 'ok', ['2']],
  ["err Invalid JSON syntax, near '{\"id\":1,\"connection_'", 'err', []], ['ign', 'ign', []], ['unk', 'unk', []],
];

function frame(text: string, nul: boolean): Uint8Array {
  const body = Buffer.from(nul ? `${text}\0` : text);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32LE(body.length);
  body.copy(out, 4);
  return out;
}
let ts = 0n;
const rec = (direction: 'request' | 'reply', data: Uint8Array): CaptureRecord => ({
  tsNs: (ts += 10n), tgid: 1, tid: 1, comm: 'wazuh-remoted', localIno: direction === 'request' ? 11 : 22, peerIno: direction === 'request' ? 22 : 11,
  direction, syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto',
});

t.test('every command, 4.x and 5.x, through reassembly, parsing and pairing', async (t) => {
  for (const [version, nul] of [['4.x', true], ['5.x', false]] as const) {
    const d = new WdbDecoder();
    for (const [name, a4, a5, want] of CORPUS) {
      const text = `global ${name} ${version === '4.x' ? a4 : a5}`;
      const f = frame(text, nul);
      // 5.x: header alone, then the payload in two writes.
      const parts = nul ? [f] : [f.subarray(0, 4), f.subarray(4, 4 + (f.length - 4) / 2), f.subarray(4 + (f.length - 4) / 2)];
      for (const p of parts) t.same(d.push(rec('request', p)), []);
      for (const [reply, status] of REPLIES) {
        const ex = d.push(rec('reply', frame(reply, false)));
        if (reply !== REPLIES[0][0]) continue;
        t.equal(ex.length, 1, `${version} ${name}: paired`);
        const got = ex[0]?.request;
        if (want.cmd === 'other' && got?.cmd === 'other') t.equal(got.name, want.name, `${version} ${name}`);
        else if (name === 'disconnect-agents' && version === '5.x') t.same(got, { ...want, last_id: 7, sync_status: 'syncreq' });
        else t.same(got, want, `${version} ${name}`);
        t.equal(ex[0]?.reply.status, status);
        t.notMatch(JSON.stringify(got), K, 'no key');
      }
      // Remaining replies had no request: they are held then counted, never paired wrongly.
      d.close(String(11));
    }
    t.equal(d.stats().reassembler.malformed, 0);
  }
});

t.test('every reply shape and its rows', async (t) => {
  const d = new WdbDecoder();
  for (const [reply, status, ids] of REPLIES) {
    d.push(rec('request', frame('global get-agents-by-connection-status 0 active node01 -1', true)));
    const [ex] = d.push(rec('reply', frame(reply, false)));
    t.equal(ex.reply.status, status, reply);
    if (ids.length) t.same(parseIdList(ex.reply.payload), ids.map(Number));
  }
  t.same(parseIdList('[]'), []);
  t.same(parseIdList('[{"id":1},{"id":1}]'), [1], 'duplicates once');
  for (const bad of ['', '[redacted]', '{"id":1}', '[{"id":-1}]', '[{"id":"1"}]', '[1]', '[{"id":1}']) t.equal(parseIdList(bad), null, bad);
  const rows = parseAgentRows(`[{"id":2,"name":"agent2","ip":"127.0.0.1","internal_key":"${K}","connection_status":"disconnected","status_code":4,"os_name":"Debian","group":"default,web","bogus":1},{"id":"x"},{"id":3,"connection_status":"offline","status_code":-1}]`);
  t.same(rows, [
    { id: 2, name: 'agent2', ip: '127.0.0.1', os_name: 'Debian', group: 'default,web', connection_status: 'disconnected', status_code: 4 },
    { id: 3 },
  ], 'only known columns; bad columns dropped; rows without an id skipped');
});

t.test('key-shaped values are dropped whatever their key is called', async (t) => {
  t.equal(redactText(`[{"id":2,"internal_kez":"${K}","name":"a"}]`), '[{"id":2,"name":"a"}]');
  t.equal(redactText(`garbage ${K} garbage`), '[redacted]');
  t.equal(redactText('{"config_sum":"ab73af41699f13fdd81903b5f23d8d00"}'), '{"config_sum":"ab73af41699f13fdd81903b5f23d8d00"}', 'md5 sums are not keys');
});
