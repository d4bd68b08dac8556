// What Wazuh can write, value by value (decode/values.ts), and each parser that applies the rules:
// requests (a whole request is invalid, or only a descriptive field is dropped), reply rows, id lists,
// client.keys and the status journal.
import t from 'tap';
import { heapUsedAfterGc } from './helpers/gc.js';
import {
  agentIdOfWord, isAgentId, isAgentIp, isAgentName, isCleanText, isStatusCode, isVersion, MAX_AGENT_ID,
} from '../controller/src/decode/values.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { agentRow, parseAgentRows, parseIdList } from '../controller/src/decode/wdb-rows.js';
import { parseClientKeys } from '../controller/src/state/sources/client-keys-parse.js';
import { parseJournal } from '../controller/src/state/sources/status-journal.js';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { sourceOf } from '../controller/src/state/format.js';
import { initialSync } from '../controller/src/state/sources/initial-sync.js';
import { encodeFrame, FrameReader } from '../controller/src/state/sources/wdb-wire.js';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const KEY = 'ab'.repeat(32);
/** A value as a test message: ASCII only (a raw NEL or U+2028 would break the TAP stream). */
const show = (v: unknown) => String(JSON.stringify(v)).slice(0, 60).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test('agent ids: integers 0 to 999,999,999', async (t) => {
  for (const ok of [0, 1, 999, 1000, 123_456_789, MAX_AGENT_ID]) t.ok(isAgentId(ok), String(ok));
  for (const bad of [-1, 1_000_000_000, 99_999_999_999, 1e21, 1.5, Number.NaN, Infinity, '1', null, undefined, 2 ** 53]) {
    t.notOk(isAgentId(bad), String(bad));
  }
  t.equal(agentIdOfWord('0'), 0);
  t.equal(agentIdOfWord('999999999'), MAX_AGENT_ID);
  for (const bad of ['1000000000', '-1', '+1', '01', '1.0', '1e3', '', ' 1', '0x1']) t.equal(agentIdOfWord(bad), null, bad);
});

t.test('status codes: integers 0 to 999', async (t) => {
  for (const ok of [0, 1, 5, 999]) t.ok(isStatusCode(ok));
  for (const bad of [-1, 1000, 1.5, '3']) t.notOk(isStatusCode(bad), String(bad));
});

t.test("agent names: Wazuh's OS_IsValidName alphabet, 1 to 128 characters", async (t) => {
  for (const ok of ['a', 'web-server-01', 'db.02', 'spaced_5', 'x'.repeat(128), 'A.b-C_9']) t.ok(isAgentName(ok), show(ok));
  for (const bad of ['', 'x'.repeat(129), 'a b', 'a*', 'a>', 'a.*', 'a.>', 'café', 'a\nb', '!gone', '#old', 'a/b', 'a\u0000', 'x'.repeat(10_000), 7]) {
    t.notOk(isAgentName(bad), show(bad));
  }
});

t.test('addresses: any, IPv4, IPv6, a network', async (t) => {
  const ok = [
    'any', '127.0.0.1', '192.168.56.21', '10.0.0.0/24', '10.0.0.0/0', '10.0.0.0/32', '10.0.0.0/255.255.255.0',
    '::1', 'fe80::1', '2001:db8::/32', '2001:db8::1/128', '::ffff:10.0.0.1',
  ];
  for (const v of ok) t.ok(isAgentIp(v), v);
  const bad = [
    '', 'ANY', 'anywhere', 'localhost', 'host.example.com', '256.0.0.1', '1.2.3', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/024',
    '2001:db8::/129', '::1/255.255.255.0', 'fe80::1%eth0', '10.0.0.1 ', ' 10.0.0.1', '10.0.0.1\n', '*', '>', '1'.repeat(100),
    `${'1:'.repeat(40)}1`, 5,
  ];
  for (const v of bad) t.notOk(isAgentIp(v), show(v));
});

t.test('versions: short printable ASCII', async (t) => {
  for (const ok of ['Wazuh v4.7.5', 'Wazuh v5.0.0', 'v4.14.7-rc1']) t.ok(isVersion(ok), ok);
  for (const bad of ['', 'x'.repeat(65), 'Wazuh\tv4', 'Wazuh v4\n', 'Wazuh v4\u00e9', 'Wazuh\u202ev4', 4]) t.notOk(isVersion(bad), show(bad));
});

t.test('free text: bounded, no control, separator, bidi override or lone surrogate; other Unicode is fine', async (t) => {
  for (const ok of ['', 'Debian GNU/Linux', 'Microsoft Windows 10 Professionnel', 'Microsoft Windows 10 专业版', 'not synced', 'Linux |vm |6.1 |#1 SMP |x86_64', '😀']) {
    t.ok(isCleanText(ok, 1024), show(ok));
  }
  for (const bad of ['a\u0000', 'a\tb', 'a\nb', 'a\u001b[31m', 'a\u007f', 'a\u0085', 'a\u2028', 'a\u202eb', 'a\u2066', '\ud800', 'x\udc00', 'x'.repeat(1025)]) {
    t.notOk(isCleanText(bad, 1024), show(bad));
  }
});

t.test('requests: an invalid id, status code, name or address makes the whole request invalid', async (t) => {
  const bad: [string, RegExp][] = [
    ['global update-keepalive {"id":99999999999,"connection_status":"pending","sync_status":"synced"}', /id is not an agent id/],
    ['global update-keepalive {"id":1000000000,"connection_status":"pending"}', /id is not an agent id/],
    ['global update-keepalive {"id":1e21,"connection_status":"pending"}', /id is not an agent id/],
    ['global update-agent-data {"id":1000000000,"agent_ip":"10.0.0.1"}', /id is not an agent id/],
    ['global update-connection-status {"id":1,"connection_status":"disconnected","status_code":1000}', /status_code/],
    ['global update-status-code {"id":1,"status_code":4096}', /status_code/],
    ['global insert-agent {"id":1000000000,"name":"a","register_ip":"any"}', /id/],
    ['global insert-agent {"id":5,"name":"web.*","register_ip":"any"}', /name is not an agent name/],
    ['global insert-agent {"id":5,"name":"web 05","register_ip":"any"}', /name is not an agent name/],
    ['global insert-agent {"id":5,"name":"wéb","register_ip":"any"}', /name is not an agent name/],
    [`global insert-agent {"id":5,"name":"${'x'.repeat(129)}","register_ip":"any"}`, /name is not an agent name/],
    ['global insert-agent {"id":5,"name":"web05","register_ip":"anywhere"}', /register_ip is not an address/],
    ['global insert-agent {"id":5,"name":"web05","ip":"10.0.0.1>x"}', /ip is not an address/],
    ['global update-agent-name {"id":5,"name":"a.>"}', /name is not an agent name/],
    ['global update-agent-name {"id":5,"name":""}', /name is not an agent name/],
    ['global update-agent-data {"id":1,"agent_ip":"evil.example"}', /agent_ip is not an address/],
    ['global update-agent-data {"id":1,"agent_ip":"10.0.0.1\\n"}', /agent_ip is not an address/],
    ['global delete-agent 1000000000', /id is not an agent id/],
    ['global delete-agent 01', /id is not an agent id/],
    ['global get-agent-info 99999999999', /id is not an agent id/],
    ['global disconnect-agents 1000000000 1795796741 synced', /last_id is not an agent id/],
    ['global disconnect-agents -1 1795796741 synced', /last_id/],
    ['global get-agents-by-connection-status 1000000000 active node01 -1', /last_id/],
    ['global get-all-agents last_id 1000000000', /last_id/],
    ['global sync-agent-info-set [{"id":1},{"id":1000000000,"name":"w"}]', /row is not an agent with a valid id/],
    ['global sync-agent-info-set [{"id":1},{"name":"no id"}]', /row is not an agent with a valid id/],
    ['global sync-agent-info-set [{"id":1},7]', /row is not an agent with a valid id/],
  ];
  for (const [wire, reason] of bad) {
    const r = parseRequest(wire);
    t.equal(r.cmd, 'invalid', wire.slice(0, 80));
    t.match(r.cmd === 'invalid' ? r.reason : '', reason, wire.slice(0, 80));
  }
  // The edges that are valid.
  t.match(parseRequest(`global update-keepalive {"id":${MAX_AGENT_ID},"connection_status":"pending"}`), { cmd: 'update-keepalive', id: MAX_AGENT_ID });
  t.match(parseRequest('global update-keepalive {"id":0,"connection_status":"active"}'), { cmd: 'update-keepalive', id: 0 });
  t.match(parseRequest('global delete-agent 999999999'), { cmd: 'delete-agent', id: MAX_AGENT_ID });
  t.match(parseRequest('global disconnect-agents 0 99999999999999 synced'), { cmd: 'disconnect-agents', last_id: 0, threshold: 99999999999999 },
    'the threshold is a timestamp, not an id');
  t.same(parseRequest('global insert-agent {"id":5,"name":"web.05","ip":"10.0.0.0/24","register_ip":"any"}'),
    { cmd: 'insert-agent', id: 5, name: 'web.05', ip: '10.0.0.0/24', register_ip: 'any', date_add: null });
  t.same(parseRequest('global update-agent-data {"id":1,"agent_ip":"2001:db8::7"}'), { cmd: 'update-agent-data', data: { id: 1, agent_ip: '2001:db8::7' } });
});

t.test('requests: a descriptive field Wazuh would not write is dropped and named; the rest is applied', async (t) => {
  const r = parseRequest(String.raw`global update-agent-data {"id":7,"version":"Wazuh v4.7.5\u001b[2J","agent_ip":"10.0.0.7","connection_status":"active","sync_status":"synced","group_config_status":"not\nsynced","os_name":"Ubuntu\u202e","os_version":"22.04","node_name":"node01\u0000","os_arch":"x86_64"}`);
  t.same(r, {
    cmd: 'update-agent-data',
    data: { id: 7, agent_ip: '10.0.0.7', connection_status: 'active', sync_status: 'synced', os_version: '22.04', os_arch: 'x86_64' },
    dropped: ['group_config_status', 'version', 'node_name', 'os_name'],
  });
  t.same(parseRequest(String.raw`global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced\r"}`),
    { cmd: 'update-keepalive', id: 1, connection_status: 'pending', sync_status: null, dropped: ['sync_status'] });
  t.same(parseRequest(`global update-status-code {"id":1,"status_code":1,"version":"${'v'.repeat(65)}"}`),
    { cmd: 'update-status-code', id: 1, status_code: 1, version: null, sync_status: null, connection_status: null, dropped: ['version'] },
    'a version longer than any Wazuh writes');
  t.same(parseRequest('global update-agent-data {"id":1,"os_name":"Microsoft Windows 10 专业版"}'),
    { cmd: 'update-agent-data', data: { id: 1, os_name: 'Microsoft Windows 10 专业版' } }, 'Unicode is fine');
});

t.test('reply rows: a row needs a valid id; a bad column is left out of its row', async (t) => {
  t.equal(agentRow({ id: 1_000_000_000, name: 'x' }), null);
  t.equal(agentRow({ id: -1 }), null);
  t.same(agentRow({ id: MAX_AGENT_ID }), { id: MAX_AGENT_ID });
  t.same(agentRow({
    id: 2, name: 'agent 2', ip: 'not-an-ip', register_ip: 'any', version: 'Wazuh\nv4', node_name: 'node01', os_name: 'Debian\u0007',
    os_platform: 'debian', sync_status: 'synced', group_config_status: 'synced', group: 'default,web', connection_status: 'active', status_code: 4096,
  }), {
    id: 2, register_ip: 'any', node_name: 'node01', os_platform: 'debian', sync_status: 'synced', group_config_status: 'synced', group: 'default,web',
    connection_status: 'active',
  });
  t.same(parseAgentRows('[{"id":99999999999,"name":"big"},{"id":3,"name":"three","ip":"10.0.0.3"}]'), [{ id: 3, name: 'three', ip: '10.0.0.3' }]);
});

t.test('id lists: one id that is not an agent id makes the list unreadable', async (t) => {
  t.same(parseIdList(`[{"id":1},{"id":${MAX_AGENT_ID}}]`), [1, MAX_AGENT_ID]);
  t.equal(parseIdList('[{"id":1},{"id":1000000000}]'), null);
  t.equal(parseIdList('[{"id":1},{"id":-1}]'), null);
  t.equal(parseIdList('[{"id":1},{"id":1e21}]'), null);
  t.equal(parseIdList('[{"id":1.5}]'), null);
  t.same(parseIdList('[{"id":1},{"id":99999999999},{"id":-1},{"id":2}]', { skipInvalid: true }), [1, 2], 'skipping: integers out of range left out');
  t.equal(parseIdList('[{"id":1},{"id":"2"}]', { skipInvalid: true }), null, 'skipping: still not a list of ids');
});

t.test('initial sync: a row wazuh-db holds with an impossible id is skipped, the others are learned', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-wdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wdb');
  const answers: Record<string, string> = {
    'global get-all-agents last_id 0': 'ok [{"id":0},{"id":1},{"id":99999999999},{"id":2}]',
    'global get-agent-info 1': 'ok [{"id":1,"name":"web-01","connection_status":"active"}]',
    'global get-agent-info 2': 'ok [{"id":2,"name":"db.02","connection_status":"disconnected","status_code":4}]',
  };
  const asked: string[] = [];
  const srv = net.createServer((c) => {
    const r = new FrameReader();
    c.on('data', (d: Buffer) => {
      for (const q of r.push(d)) {
        asked.push(q);
        c.write(encodeFrame(answers[q] ?? 'err unknown'));
      }
    });
  });
  await new Promise<void>((ok) => srv.listen(file, ok));
  t.teardown(() => srv.close());
  const res = await initialSync({ socketPath: file, timeoutMs: 3000 });
  t.equal(res.reason, null);
  t.same(res.ids, [1, 2]);
  t.same(res.agents.map((a) => [a.id, a.name, a.connection_status]), [[1, 'web-01', 'active'], [2, 'db.02', 'disconnected']]);
  t.notOk(asked.some((q) => q.includes('99999999999')), 'the impossible id was never asked about');
});

t.test('initial sync with onRows: the rows of a sync that stopped early are handed over too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-wdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'wdb');
  const srv = net.createServer((c) => {
    const r = new FrameReader();
    c.on('data', (d: Buffer) => {
      for (const q of r.push(d)) {
        if (q === 'global get-all-agents last_id 0') c.write(encodeFrame('ok [{"id":1},{"id":2},{"id":3}]'));
        else if (q === 'global get-agent-info 1') c.write(encodeFrame('ok [{"id":1,"name":"web-01","connection_status":"active"}]'));
        else c.destroy(); // wazuh-db went away before describing agent 2
      }
    });
  });
  await new Promise<void>((ok) => srv.listen(file, ok));
  t.teardown(() => srv.close());
  const handed: number[] = [];
  const res = await initialSync({ socketPath: file, timeoutMs: 3000, pipeline: 1, onRows: (rows) => { handed.push(...rows.map((r) => r.id)); } });
  t.equal(res.complete, false);
  t.match(res.reason, /closed|reset|EPIPE/);
  t.same(res.ids, [1, 2, 3]);
  t.same(handed, [1], 'the one row read before wazuh-db went away was handed over');
  t.equal(res.described, 1);
});

t.test('client.keys: names and addresses follow the same rules, removed entries too', async (t) => {
  const keys = parseClientKeys([
    `001 web-01 any ${KEY}`,
    `002 db.02 10.0.0.0/24 ${KEY}`,
    `003 !gone any ${KEY}`,
    `004 #old 2001:db8::1 ${KEY}`,
    `005 bad*name any ${KEY}`,
    `006 !bad>name any ${KEY}`,
    `007 !! any ${KEY}`,
    `008 ok host.example.com ${KEY}`,
    `009 ok 10.0.0.1%eth0 ${KEY}`,
    `1000000000 big any ${KEY}`,
    `999999999 edge any ${KEY}`,
    `010 ${'n'.repeat(129)} any ${KEY}`,
  ].join('\n'));
  t.same(keys.agents, [{ id: 1, name: 'web-01', ip: 'any' }, { id: 2, name: 'db.02', ip: '10.0.0.0/24' }, { id: MAX_AGENT_ID, name: 'edge', ip: 'any' }]);
  t.same(keys.removed, [3, 4]);
  t.equal(keys.malformed, 7);
});

t.test('status journal: ids of at most 9 digits, status codes of at most 3', async (t) => {
  const j = parseJournal(`1 active 0\n${MAX_AGENT_ID} pending 0\n1000000000 active 0\n2 disconnected 1000\n`);
  t.same([...j.keys()], [1, MAX_AGENT_ID]);
});

t.test('the state never tracks an id that is not an agent id, whoever hands it in', async (t) => {
  const s = new AgentStateTable({ managerNode: 'n', wallClockMs: () => 0 });
  s.setKnown({ id: 1_000_000_000, name: 'x' });
  s.setKnown({ id: -5, name: 'x' });
  s.setKnown({ id: 0, name: 'manager' });
  t.equal(s.size, 0);
  t.same(s.resync([{ id: 1_000_000_000, connection_status: 'active' }], 0n), []);
  t.equal(s.size, 0);
});

t.test("an event's source is printable: a process names itself (prctl), so an unknown comm is cleaned", async (t) => {
  t.equal(sourceOf('wazuh-remoted'), 'remoted');
  t.equal(sourceOf('my-daemon'), 'my-daemon');
  t.equal(sourceOf('evil\u001b[2J\n'), 'evil?[2J?');
  t.equal(sourceOf('wéb'), 'w?b');
  t.equal(sourceOf(''), '?');
  t.equal(sourceOf('x'.repeat(40)).length, 16);
});

t.test('client.keys: the names and addresses kept hold none of the file\'s text (its keys) alive (review helper-87)', async (t) => {
  const used = heapUsedAfterGc;
  const kept: string[] = [];
  const counts: number[] = [];
  const one = (f: number): void => {
    // A file of 5,000 agents (~0.5 MB): names and addresses of 13 characters and more (V8 slices those).
    const text = Array.from({ length: 5000 }, (_, i) => `${String(i + 1).padStart(3, '0')} agent-name-${f}-${i} 192.168.${i >> 8}.${i & 255} ${'ab'.repeat(32)}`).join('\n');
    const keys = parseClientKeys(text);
    counts.push(keys.agents.length);
    kept.push(keys.agents[0].name, keys.agents[4999].ip); // as the table keeps them: one file's worth would be 0.5 MB
  };
  one(0); // warm: what the first call compiles is not what is measured
  const before = used();
  for (let f = 1; f <= 20; f++) one(f);
  const grew = used() - before;
  t.ok(grew < 2 * 2 ** 20, `two fields of each of 20 files hold ${(grew / 2 ** 20).toFixed(1)} MB (the files: ~10 MB)`);
  t.same(kept.slice(0, 2), ['agent-name-0-0', '192.168.19.135']);
  t.ok(counts.every((n) => n === 5000), 'every agent of each file parsed');
});
