// Request parsing: 4.x and 5.x shapes, and hostile arguments that must never throw or leak.
import t from 'tap';
import { heapUsedAfterGc } from './helpers/gc.js';
import { prng } from './helpers/prng.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import type { WdbRequest } from '../controller/src/types.js';

t.test('the four state commands, 4.x key order (WAZUH-PROTOCOL.md §2)', async (t) => {
  const cases: [string, WdbRequest][] = [
    [String.raw`global update-keepalive {"id":1,"connection_status":"active","sync_status":"synced"}`,
      { cmd: 'update-keepalive', id: 1, connection_status: 'active', sync_status: 'synced' }],
    [String.raw`global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}`,
      { cmd: 'update-connection-status', id: 1, connection_status: 'disconnected', sync_status: 'synced', status_code: 3 }],
    [String.raw`global update-status-code {"id":1,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}`,
      { cmd: 'update-status-code', id: 1, status_code: 1, version: 'Wazuh v4.15.0', sync_status: 'synced', connection_status: null }],
    [String.raw`global update-agent-data {"id":1,"version":"Wazuh v4.14.7","agent_ip":"192.168.56.21","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Ubuntu"}`,
      { cmd: 'update-agent-data', data: { id: 1, version: 'Wazuh v4.14.7', agent_ip: '192.168.56.21', connection_status: 'active', sync_status: 'synced', group_config_status: 'synced', os_name: 'Ubuntu' } }],
  ];
  for (const [wire, want] of cases) t.same(parseRequest(wire), want, wire.slice(0, 40));
});

t.test('5.x: keys sorted, nulls, no NUL, the short update-agent-data', async (t) => {
  t.same(parseRequest(String.raw`global update-keepalive {"connection_status":"pending","id":12,"sync_status":"syncreq"}`),
    { cmd: 'update-keepalive', id: 12, connection_status: 'pending', sync_status: 'syncreq' });
  t.same(parseRequest(String.raw`global update-connection-status {"connection_status":"disconnected","id":7,"status_code":5,"sync_status":"synced"}`),
    { cmd: 'update-connection-status', id: 7, connection_status: 'disconnected', sync_status: 'synced', status_code: 5 });
  t.same(parseRequest(String.raw`global update-agent-data {"agent_ip":"10.0.0.9","connection_status":"active","id":1001,"os_arch":"x86_64","os_name":"Rocky Linux","os_platform":"rocky","os_version":"9.4","sync_status":"synced","version":"Wazuh v5.0.0"}`),
    { cmd: 'update-agent-data', data: { id: 1001, agent_ip: '10.0.0.9', connection_status: 'active', os_arch: 'x86_64', os_name: 'Rocky Linux', os_platform: 'rocky', os_version: '9.4', sync_status: 'synced', version: 'Wazuh v5.0.0' } });
  t.same(parseRequest(String.raw`global update-status-code {"connection_status":null,"id":3,"status_code":1,"sync_status":"synced","version":null}`),
    { cmd: 'update-status-code', id: 3, status_code: 1, version: null, sync_status: 'synced', connection_status: null });
  t.same(parseRequest(String.raw`global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced"}`),
    { cmd: 'update-connection-status', id: 1, connection_status: 'disconnected', sync_status: 'synced', status_code: null },
    'older builds without status_code');
});

t.test('other global commands keep their arguments; non-global keeps only the first word', async (t) => {
  t.same(parseRequest('global find-agent {"name":"agent2","ip":"any"}'), { cmd: 'other', name: 'find-agent', args: '{"name":"agent2","ip":"any"}' });
  t.same(parseRequest('global get-labels 1'), { cmd: 'other', name: 'get-labels', args: '1' });
  t.same(parseRequest('global sync-agent-info-get last_id 0'), { cmd: 'other', name: 'sync-agent-info-get', args: 'last_id 0' });
  t.same(parseRequest('agent 001 syscheck save file 0 /etc/passwd'), { cmd: 'non-global', name: 'agent' });
  t.same(parseRequest('global'), { cmd: 'non-global', name: 'global' });
  t.same(parseRequest(''), { cmd: 'non-global', name: '' });
  t.same(parseRequest('globalx foo'), { cmd: 'non-global', name: 'globalx' });
});

t.test('secrets never survive: internal_key and anything named like a key, password, secret or token', async (t) => {
  const s = 'c0ffee'.repeat(10);
  const ins = parseRequest(`global insert-agent {"id":5,"name":"web05","ip":"any","register_ip":"any","internal_key":"${s}","date_add":1}`);
  t.same(ins, { cmd: 'insert-agent', id: 5, name: 'web05', ip: 'any', register_ip: 'any', date_add: 1 });
  const nested = parseRequest(`global sync-agent-info-set [{"id":1,"extra":{"api_token":"${s}","Password":"${s}","client_secret":"${s}"}}]`);
  t.notMatch(JSON.stringify(nested), s);
  // Cut at 2 KiB (4.x helpers do this): not JSON any more, so it is invalid and keeps nothing.
  const cut = parseRequest(`global insert-agent {"id":5,"name":"web05","internal_key":"${s.slice(0, 20)}`);
  t.same(cut, { cmd: 'invalid', name: 'insert-agent', reason: 'invalid JSON' });
  const cutOther = parseRequest(`global set-agent-groups {"id":5,"name":"web05","internal_key":"${s.slice(0, 20)}`);
  t.same(cutOther, { cmd: 'other', name: 'set-agent-groups', args: '[redacted]' }, 'an unknown command cut short is redacted whole');
  t.notMatch(JSON.stringify(parseRequest(`global update-agent-data {"id":1,"internal_key":"${s}","agent_ip":"1.2.3.4"}`)), s);
});

t.test('hostile or broken arguments are invalid, never thrown', async (t) => {
  const bad: [string, RegExp][] = [
    ['global update-keepalive not json', /invalid JSON/],
    ['global update-keepalive', /invalid JSON/],
    ['global update-keepalive [1,2]', /not a JSON object/],
    ['global update-keepalive null', /not a JSON object/],
    ['global update-keepalive "x"', /not a JSON object/],
    ['global update-keepalive {"id":"1","connection_status":"active"}', /id/],
    ['global update-keepalive {"id":-1,"connection_status":"active"}', /id/],
    ['global update-keepalive {"id":1.5,"connection_status":"active"}', /id/],
    ['global update-keepalive {"id":9007199254740993,"connection_status":"active"}', /id/],
    ['global update-keepalive {"id":1e400,"connection_status":"active"}', /id/],
    ['global update-keepalive {"connection_status":"active"}', /id/],
    ['global update-keepalive {"id":1}', /connection_status missing/],
    ['global update-keepalive {"id":1,"connection_status":"online"}', /unknown connection_status/],
    ['global update-keepalive {"id":1,"connection_status":"active","sync_status":7}', /sync_status/],
    ['global update-connection-status {"id":1,"connection_status":"disconnected","status_code":-3}', /status_code/],
    ['global update-status-code {"id":1}', /status_code missing/],
    ['global update-agent-data {"id":1,"version":{"a":1}}', /version is not a string/],
    [`global update-agent-data {"id":1,"os_name":"${'A'.repeat(5000)}"}`, /too long/],
    [`global update-agent-data {"id":1,"agent_ip":"${'1'.repeat(100)}"}`, /too long/],
    ['global update-keepalive {"id":1,"connection_status":"active"} trailing', /invalid JSON/],
  ];
  for (const [wire, reason] of bad) {
    const r = parseRequest(wire);
    t.equal(r.cmd, 'invalid', wire.slice(0, 70));
    t.match(r.cmd === 'invalid' ? r.reason : '', reason);
  }
  t.same(parseRequest('global UPDATE-KEEPALIVE {}'), { cmd: 'invalid', name: 'UPDATE-KEEPALIVE', reason: 'bad command name' });
  const long = parseRequest('global ' + 'x'.repeat(10000));
  t.equal(long.cmd === 'invalid' && long.name.length, 64, 'names are clipped');
  const ctl = parseRequest('global bad\u0000name\u001b[31m x');
  t.equal(ctl.cmd === 'invalid' && /^[\x21-\x7e]*$/.test(ctl.name), true, 'names are printable');
});

t.test('prototype keys do nothing', async (t) => {
  const r = parseRequest('global update-agent-data {"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"id":2,"agent_ip":"1.1.1.1"}');
  t.same(r, { cmd: 'update-agent-data', data: { id: 2, agent_ip: '1.1.1.1' } });
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  // A JSON object with only prototype keys and no own id.
  t.equal(parseRequest('global update-keepalive {"__proto__":{"id":1,"connection_status":"active"}}').cmd, 'invalid');
  const other = parseRequest('global set-agent-groups [{"__proto__":{"token":1},"id":1}]');
  t.same(other, { cmd: 'other', name: 'set-agent-groups', args: '[{"id":1}]' });
  t.same(parseRequest('global sync-agent-info-set [{"__proto__":{"name":"x"},"constructor":1,"id":1}]'), { cmd: 'sync-agent-info-set', agents: [{ id: 1 }] });
});

t.test('a repeated key makes the request invalid: wazuh-db (cJSON) reads the first, JSON.parse the last', async (t) => {
  const twice = 'global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3,"id":2,"connection_status":"active"}';
  t.match(parseRequest(twice), { cmd: 'invalid', reason: 'a key appears twice' });
  t.match(parseRequest('global update-keepalive {"id":1, "id" :1,"connection_status":"active"}'), { cmd: 'invalid' }, 'even with the same value');
  // Keys inside values, nested objects, escaped quotes and brackets in strings are not the object's own keys.
  const ok = String.raw`global update-agent-data {"id":4,"os_name":"a \"id\": 5, {\"x\"}","labels":{"id":"x","k":[{"id":1},{"id":2}]},"version":"Wazuh v4.7.5","agent_ip":"10.0.0.4","connection_status":"active"}`;
  t.match(parseRequest(ok), { cmd: 'update-agent-data', data: { id: 4, connection_status: 'active' } });
  t.match(parseRequest(String.raw`global update-keepalive {"id":1,"a\\":"\\","connection_status":"active"}`), { cmd: 'update-keepalive', id: 1 }, 'a key ending in an escaped backslash');
});

t.test('a repeated key is found whatever quotes and backslashes the strings hold (random objects)', async (t) => {
  // Strings end at the first quote not escaped (an odd run of backslashes before it escapes it): made of
  // those characters, keys and values test where each string ends. A key repeated iff the text says so.
  const r = prng(0x5eed);
  const rnd = (n: number) => Math.floor(r() * n);
  const str = () => Array.from({ length: rnd(8) }, () => ['"', '\\', 'a', 'id', ':', ',', '{', '}'][rnd(8)]).join('');
  let repeated = 0;
  for (let i = 0; i < 400; i++) {
    const keys = new Set<string>(['id']);
    while (keys.size < 2 + rnd(6)) keys.add(`k${str()}`);
    const list = [...keys];
    const twice = rnd(3) === 0;
    if (twice) list.push(list[rnd(list.length)]);
    const text = `{${list.map((k) => `${JSON.stringify(k)}:${k === 'id' ? 1 : JSON.stringify(rnd(2) ? str() : [str(), { id: str() }])}`).join(',')}}`;
    const r = parseRequest(`global update-keepalive ${text}`);
    const invalid = r.cmd === 'invalid' && r.reason === 'a key appears twice';
    if (invalid !== twice) t.fail(`${twice ? 'missed' : 'invented'} a repeated key in ${text}`);
    if (twice) repeated++;
  }
  t.ok(repeated > 50 && repeated < 350, `both kinds tried (${repeated} of 400 with a repeated key)`);
  t.match(parseRequest(String.raw`global update-keepalive {"id":1,"a\\":"x","id":2}`), { cmd: 'invalid', reason: 'a key appears twice' }, 'a key ending in an escaped backslash, then a plain value (review helper-85)');
  t.match(parseRequest(String.raw`global update-keepalive {"id":1,"a\\\"\\":"x","id":2}`), { cmd: 'invalid', reason: 'a key appears twice' }, 'runs of backslashes: one escaping a quote, one escaped');
  t.match(parseRequest(String.raw`global update-keepalive {"id":1,"a\\":"\"","id":2}`), { cmd: 'invalid', reason: 'a key appears twice' }, 'a key ending in an escaped backslash, a value of an escaped quote');
});

t.test('deep nesting and huge arguments do not throw', async (t) => {
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  t.doesNotThrow(() => parseRequest(`global update-agent-data ${deep}`));
  t.doesNotThrow(() => parseRequest(`global sync-agent-info-set {"key":${deep}}`));
  const r = parseRequest(`global set-agent-groups {"token":${deep}}`);
  t.equal(r.cmd, 'other');
  t.equal(parseRequest(`global sync-agent-info-set {"token":${deep}}`).cmd, 'invalid');
  t.doesNotThrow(() => parseRequest('global update-agent-data {"id":1,"labels":"' + 'x'.repeat(65000) + '"}'));
});

// A value shaped like an agent key (64 hex digits) is taken for one whatever its field (decode/redact.ts):
// never kept, from a request or from a row wazuh-db answered (review helper-77: a resynchronisation's
// rows are read without the redaction's pass, and a 64-hex name reached a status_change event).
t.test('key-shaped values: dropped from a request\'s fields and from wazuh-db\'s rows', async (t) => {
  const { agentRow } = await import('../controller/src/decode/wdb-rows.js');
  const KEY = 'ab'.repeat(32);
  t.match(parseRequest(`global update-agent-name {"id":7,"name":"${KEY}"}`), { cmd: 'invalid', name: 'update-agent-name', reason: 'name is shaped like an agent key' },
    'a rename to a key: no name, so no rename (counted invalid)');
  t.match(parseRequest('global update-agent-name {"id":7,"name":null}'), { cmd: 'invalid', reason: 'name missing' }, 'a null name is a missing one');
  const d = parseRequest(`global update-agent-data {"id":7,"version":"${KEY}","os_name":"${KEY.toUpperCase()}","node_name":"node01","connection_status":"active"}`);
  t.same(d.cmd === 'update-agent-data' && d.data, { id: 7, node_name: 'node01', connection_status: 'active' }, 'version and os_name dropped, the rest kept');
  t.notMatch(JSON.stringify(d), /[0-9a-f]{64}/i);
  t.same(d.cmd === 'update-agent-data' && d.dropped, ['version', 'os_name'], 'counted as dropped fields');
  t.match(parseRequest(`global update-agent-data {"id":7,"agent_ip":"${KEY}"}`), { cmd: 'invalid' }, 'an address that is none: the request is invalid, as before');
  const ins = parseRequest(`global insert-agent {"id":9,"name":"${KEY}","ip":"any","register_ip":"any","internal_key":"${KEY}"}`);
  t.match(ins, { cmd: 'insert-agent', id: 9, name: null }, 'a registration is kept, without the name');
  t.notMatch(JSON.stringify(ins), /[0-9a-f]{64}/i);
  const row = agentRow({ id: 7, name: KEY, node_name: KEY, group: KEY, os_name: 'Ubuntu', connection_status: 'active', internal_key: KEY });
  t.same(row, { id: 7, os_name: 'Ubuntu', connection_status: 'active' }, 'a row keeps none of them');
  t.same(agentRow({ id: 8, name: `${'a'.repeat(63)}g`, version: KEY.slice(1) }), { id: 8, name: `${'a'.repeat(63)}g`, version: KEY.slice(1) }, 'not 64 hex digits: kept');
});

t.test('a word kept from a request keeps none of its text alive (a sync_status, a node, a status: reviews helper-86, helper-87)', async (t) => {
  const used = heapUsedAfterGc;
  const kept: unknown[] = [];
  const before = used();
  const PAD = ' '.repeat(30_000);
  for (let i = 0; i < 400; i++) {
    // Each request its own text (as each read of the socket is): padded, a distinct label at its end.
    const reset = parseRequest(`global reset-agents-connection${PAD}label-${i}-${'x'.repeat(20)}`);
    const disc = parseRequest(`global disconnect-agents 0 100${PAD}synced-${i}-${'y'.repeat(20)}`);
    const list = parseRequest(`global get-agents-by-connection-status 0 never_connected${PAD}node-${i}-${'z'.repeat(20)}`);
    kept.push((reset as { sync_status: string }).sync_status, (disc as { sync_status: string }).sync_status, (list as { node: string }).node,
      (list as { status: string }).status); // a status word too (15 characters: V8 slices strings of 13 and more)
  }
  const grew = used() - before;
  // 1,600 words of 1,200 requests of 30 KB (one byte a character): ~36 MB if the words held them.
  t.ok(grew < 4 * 2 ** 20, `the kept words hold ${(grew / 2 ** 20).toFixed(1)} MB`);
  t.equal(kept.length, 1600);
  t.ok(kept.every((w) => typeof w === 'string' && (/-[0-9]+-/.test(w) || w === 'never_connected')), 'every word parsed');
});
