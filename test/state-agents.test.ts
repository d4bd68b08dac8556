// The agent state machine: transitions, exact event fields, rejected changes, agent 0, secrets.
import t from 'tap';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { agentIdText, eventId, keepaliveEventId, sourceOf } from '../controller/src/state/format.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { parseReply } from '../controller/src/decode/wdb-reply.js';
import type { AgentEvent, WdbExchange, WdbRequest } from '../controller/src/types.js';

const BASE_MS = 1716897300123;
const NODE = 'wazuh-manager-01';
const table = () => new AgentStateTable({ managerNode: NODE, wallClockMs: (ts) => BASE_MS + Number(ts / 1_000_000n) });

function ex(request: string, reply = 'ok', tsMs = 0, comm = 'wazuh-remoted'): WdbExchange<WdbRequest> {
  return { connId: '1-2', request: parseRequest(request), reply: parseReply(reply), tsNs: BigInt(tsMs) * 1_000_000n, tgid: 42, comm };
}

const PENDING = (id: number) => `global update-keepalive {"id":${id},"connection_status":"pending","sync_status":"synced"}`;
const KEEPALIVE_ACTIVE = (id: number) => `global update-keepalive {"id":${id},"connection_status":"active","sync_status":"synced"}`;
const DATA = (id: number, ip = '192.168.1.100') =>
  `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","config_sum":"ab","merged_sum":"4a","manager_host":"vm","node_name":"node01","agent_ip":"${ip}","labels":"#\\"_agent_ip\\":${ip}","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm","os_arch":"x86_64"}`;
const SHUTDOWN = (id: number, code = 3) =>
  `global update-connection-status {"id":${id},"connection_status":"disconnected","sync_status":"synced","status_code":${code}}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('startup → pending → active → keepalives → shutdown, with exact events', async (t) => {
  const s = table();
  s.setKnown({ id: 1, name: 'web-server-01', status: 'disconnected', status_code: 5 });

  const startup = s.apply(ex(PENDING(1), 'ok', 1000));
  t.same(startup, [{
    event_id: eventId([NODE, 'status_change', '001', 1_000_000_000n, 'pending']),
    event_type: 'status_change', agent_id: '001', agent_name: 'web-server-01',
    previous_status: 'disconnected', current_status: 'pending', status_code: 0, reason: 'agent_startup',
    ip_address: null, timestamp: 1716897301, time: '2024-05-28T11:55:01.123Z',
    manager_node: NODE, source: 'remoted', sync_status: 'synced',
  }]);
  t.match(startup[0].event_id, UUID);

  const first = s.apply(ex(DATA(1), 'ok', 11000));
  t.equal(first.length, 2, 'the transition to active, then the keepalive');
  t.same(first[0], {
    event_id: eventId([NODE, 'status_change', '001', 11_000_000_000n, 'active']),
    event_type: 'status_change', agent_id: '001', agent_name: 'web-server-01',
    previous_status: 'pending', current_status: 'active', status_code: 0, reason: 'keepalive',
    ip_address: '192.168.1.100', timestamp: 1716897311, time: '2024-05-28T11:55:11.123Z',
    manager_node: NODE, source: 'remoted', sync_status: 'synced',
  });
  t.same(first[1], {
    event_id: keepaliveEventId(NODE, 1, 11_000_000_000n, 'active'),
    event_type: 'keepalive', agent_id: '001', agent_name: 'web-server-01', ip_address: '192.168.1.100',
    status: 'active', version: 'Wazuh v4.7.5',
    os: { name: 'Debian GNU/Linux', version: '12', platform: 'debian', arch: 'x86_64' },
    group_config_status: 'synced', sync_status: 'synced', timestamp: 1716897311, time: '2024-05-28T11:55:11.123Z',
    manager_node: NODE, source: 'remoted',
  });

  for (let i = 2; i <= 4; i++) {
    const evs = s.apply(ex(DATA(1), 'ok', i * 10000));
    t.same(evs.map((e) => e.event_type), ['keepalive'], `keepalive ${i}: no status event`);
  }
  t.same(s.apply(ex(KEEPALIVE_ACTIVE(1), 'ok', 50000)).map((e) => e.event_type), ['keepalive'], 'light keepalive while active');

  const down = s.apply(ex(SHUTDOWN(1), 'ok', 61000));
  t.same(down, [{
    event_id: eventId([NODE, 'status_change', '001', 61_000_000_000n, 'disconnected']),
    event_type: 'status_change', agent_id: '001', agent_name: 'web-server-01',
    previous_status: 'active', current_status: 'disconnected', status_code: 3, reason: 'agent_shutdown',
    ip_address: '192.168.1.100', timestamp: 1716897361, time: '2024-05-28T11:56:01.123Z',
    manager_node: NODE, source: 'remoted', sync_status: 'synced',
  }]);
  t.same(s.apply(ex(SHUTDOWN(1), 'ok', 62000)), [], 'the same status again is no event');

  const a = s.get(1)!;
  t.equal(a.status, 'disconnected');
  t.equal(a.status_code, 3);
  t.equal(a.ip, '192.168.1.100');
  t.equal(a.node, 'node01');
  t.equal(a.last_keepalive, 1716897350);
  t.same(s.countsByStatus(), { never_connected: 0, pending: 0, active: 0, disconnected: 1, unknown: 0 });
  t.match(s.stats(), { applied: 8, statusEvents: 3, keepaliveEvents: 5, rejected: 0 });
});

t.test('an unknown agent starts from unknown; light keepalive to active gives only a status event', async (t) => {
  const s = table();
  const evs = s.apply(ex(KEEPALIVE_ACTIVE(7), 'ok', 1));
  t.same(evs.map((e) => [e.event_type, (e as { previous_status?: string }).previous_status]), [['status_change', 'unknown']]);
  t.equal(evs[0].agent_name, null);
  t.equal(s.size, 1);
});

t.test('disconnect reasons by status_code', async (t) => {
  const want: [number, string][] = [[3, 'agent_shutdown'], [4, 'no_keepalive'], [5, 'manager_reset']];
  for (const [code, reason] of want) {
    const s = table();
    s.setKnown({ id: 2, status: 'active' });
    const [e] = s.apply(ex(SHUTDOWN(2, code)));
    t.match(e, { event_type: 'status_change', status_code: code, reason, current_status: 'disconnected' });
  }
});

t.test('update-status-code: one event when the code changes, even if the status string does not', async (t) => {
  const s = table();
  s.setKnown({ id: 3, status: 'never_connected' });
  const refused = s.apply(ex('global update-status-code {"id":3,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}', 'ok', 7));
  t.match(refused, [{
    event_type: 'status_change', reason: 'invalid_version', status_code: 1,
    previous_status: 'never_connected', current_status: 'never_connected',
  }], 'a refused agent is published once, its status string unchanged');
  t.equal(refused[0].event_id, eventId([NODE, 'status_change', '003', 7_000_000n, 'never_connected', 'code:1']));
  t.equal(s.get(3)?.status_code, 1);
  t.equal(s.get(3)?.version, 'Wazuh v4.15.0');
  t.same(s.apply(ex('global update-status-code {"id":3,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}', 'ok', 8)), [],
    'the same refusal again is not a new event');
  const evs = s.apply(ex('global update-status-code {"connection_status":"disconnected","id":3,"status_code":1,"sync_status":"synced","version":"Wazuh v5.1.0"}', 'ok', 9));
  t.match(evs, [{ reason: 'invalid_version', status_code: 1, previous_status: 'never_connected', current_status: 'disconnected' }]);
  t.equal(evs.length, 1);
});

t.test('update-status-code of an agent whose status is unknown: the code is kept, no event (unknown>unknown is no transition)', async (t) => {
  // Found by a review (rt-decode F4): before the table held every agent, a refusal of an agent it did not
  // know the status of published `unknown>unknown` (invalid_version): no Wazuh status, no transition.
  const s = table();
  t.same(s.apply(ex('global update-status-code {"id":5,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}', 'ok', 7)), []);
  t.match(s.get(5), { status: 'unknown', status_code: 1, version: 'Wazuh v4.15.0', sync_status: 'synced' }, 'the table holds what wazuh-db holds');
  s.setKnown({ id: 6, name: 'by-name' }); // client.keys: a name, no status
  t.same(s.apply(ex('global update-status-code {"id":6,"status_code":2,"version":"Wazuh v4.15.0","sync_status":"synced"}', 'ok', 8)), []);
  t.equal(s.get(6)?.status_code, 2);
  t.equal(s.stats().statusEvents, 0);
  // Its status learned from wazuh-db's row: one event, with the code kept.
  t.match(s.resync([{ id: 5, connection_status: 'disconnected', status_code: 1 }], 9_000_000n),
    [{ previous_status: 'unknown', current_status: 'disconnected', status_code: 1, reason: 'invalid_version' }]);
  // A 5.x refusal naming the status is a transition: published.
  t.match(s.apply(ex('global update-status-code {"connection_status":"disconnected","id":6,"status_code":1,"sync_status":"synced","version":"Wazuh v5.1.0"}', 'ok', 10)),
    [{ previous_status: 'unknown', current_status: 'disconnected', status_code: 1, reason: 'invalid_version' }]);
});

t.test('err changes nothing and is counted; ign/unk/malformed change nothing either', async (t) => {
  const s = table();
  s.setKnown({ id: 1, name: 'a', status: 'active', ip: '10.0.0.1' });
  const before = JSON.stringify(s.get(1));
  t.same(s.apply(ex(SHUTDOWN(1), "err Cannot execute Global database query; database is locked")), []);
  t.same(s.apply(ex(DATA(1, '10.9.9.9'), 'err Invalid JSON syntax')), []);
  t.same(s.apply(ex(SHUTDOWN(1), 'ign')), []);
  t.same(s.apply(ex(SHUTDOWN(1), 'OK?')), []);
  t.equal(JSON.stringify(s.get(1)), before);
  t.match(s.stats(), { rejected: 2, unanswered: 2, applied: 0, statusEvents: 0 });
  t.same(s.apply(ex(SHUTDOWN(1), 'due')).length, 1, 'due is accepted like ok');
});

t.test('agent 0 (the manager) never produces events and is not tracked', async (t) => {
  const s = table();
  t.same(s.apply(ex(String.raw`global update-agent-data {"id":0,"version":"Wazuh v4.7.5","manager_host":"vm","node_name":"node01","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux"}`, 'ok', 1, 'wazuh-modulesd')), []);
  t.same(s.apply(ex(PENDING(0))), []);
  t.equal(s.size, 0);
  t.equal(s.stats().manager, 2);
});

t.test('other, non-global and invalid requests change nothing', async (t) => {
  const s = table();
  t.same(s.apply(ex('global get-labels 2', 'ok [{"id":2,"key":"x","value":"y"}]')), []);
  t.same(s.apply(ex('global select-agent-group 2', 'ok [{"group":"default"}]')), []);
  t.same(s.apply(ex('agent 001 syscheck save')), []);
  t.same(s.apply(ex('global update-keepalive {"id":"x"}')), []);
  t.equal(s.size, 0);
  t.equal(s.stats().invalid, 1);
});

t.test('internal_key never reaches state or events', async (t) => {
  const secret = 'b16b00b5'.repeat(8);
  const s = table();
  const all: AgentEvent[] = [];
  all.push(...s.apply(ex(`global insert-agent {"id":4,"name":"agent4","register_ip":"any","internal_key":"${secret}","date_add":1}`, 'ok', 1, 'wazuh-authd')));
  all.push(...s.apply(ex(`global update-agent-data {"id":4,"internal_key":"${secret}","token":"${secret}","agent_ip":"1.2.3.4","connection_status":"active"}`, 'ok', 2)));
  all.push(...s.apply(ex('global get-agent-info 4', `ok [{"id":4,"internal_key":"${secret}"}]`, 3)));
  s.setKnown({ id: 4, name: 'agent4', ...({ internal_key: secret } as object) });
  t.ok(all.length > 0);
  const dump = JSON.stringify({ all, agent: s.get(4), counts: s.countsByStatus(), stats: s.stats() });
  t.notMatch(dump, secret);
  t.notMatch(dump, 'internal_key');
});

t.test('event ids: stable, and different for different events', async (t) => {
  const a = table().apply(ex(DATA(5), 'ok', 100));
  const b = table().apply(ex(DATA(5), 'ok', 100));
  t.same(a.map((e) => e.event_id), b.map((e) => e.event_id), 're-deriving gives the same ids');
  t.not(a[0].event_id, a[1].event_id, 'status and keepalive of one exchange differ');
  const other = new AgentStateTable({ managerNode: 'node02', wallClockMs: () => BASE_MS }).apply(ex(DATA(5), 'ok', 100));
  t.not(other[0].event_id, a[0].event_id, 'another node, another id');
  const later = table().apply(ex(DATA(5), 'ok', 101));
  t.not(later[0].event_id, a[0].event_id);
  for (const e of [...a, ...other, ...later]) t.match(e.event_id, UUID);
});

t.test('ids, sources, clock', async (t) => {
  t.same([1, 12, 123, 1000, 0].map(agentIdText), ['001', '012', '123', '1000', '000']);
  t.same(
    ['wazuh-remoted', 'wazuh-manager-r', 'wazuh-monitord', 'wazuh-authd', 'wazuh-modulesd', 'wazuh-db', 'python3', 'custom', 'constructor'].map(sourceOf),
    ['remoted', 'remoted', 'monitord', 'authd', 'modulesd', 'wazuh-db', 'clusterd', 'custom', 'constructor'],
  );
  const s = new AgentStateTable({ managerNode: NODE, wallClockMs: () => NaN });
  const [e] = s.apply(ex(PENDING(9)));
  t.equal(e.time, '1970-01-01T00:00:00.000Z', 'a broken clock does not throw');
  const s2 = table();
  t.equal(s2.apply(ex(PENDING(1234)))[0].agent_id, '1234');
  t.equal(s2.apply(ex(SHUTDOWN(1234, 4), 'ok', 5, 'wazuh-monitord'))[0].source, 'monitord');
});

t.test('setKnown seeds and countsByStatus follows every change', async (t) => {
  const s = table();
  s.setKnown({ id: 1, status: 'active', name: 'one', groups: ['default'] });
  s.setKnown({ id: 2, status: 'never_connected' });
  s.setKnown({ id: 3 });
  s.setKnown({ id: -1, status: 'active' });
  t.same(s.countsByStatus(), { never_connected: 1, pending: 0, active: 1, disconnected: 0, unknown: 1 });
  s.apply(ex(SHUTDOWN(1)));
  s.apply(ex(PENDING(2)));
  s.apply(ex(PENDING(4)));
  t.same(s.countsByStatus(), { never_connected: 0, pending: 2, active: 0, disconnected: 1, unknown: 1 });
  t.equal(s.size, 4);
  t.same(s.get(1)?.groups, ['default']);
  t.equal(s.get(1)?.name, 'one');
});

t.test('eventTime: RFC 3339 with milliseconds and unix seconds, the same for the same millisecond, a broken clock is the epoch', async (t) => {
  const { eventTime } = await import('../controller/src/state/format.js');
  const ms = Date.UTC(2024, 4, 28, 12, 35, 0, 123);
  t.same(eventTime(ms), { timestamp: 1716899700, time: '2024-05-28T12:35:00.123Z' });
  t.same(eventTime(ms + 0.9), { timestamp: 1716899700, time: '2024-05-28T12:35:00.123Z' }, 'a fraction of a millisecond is dropped');
  t.same(eventTime(ms + 1), { timestamp: 1716899700, time: '2024-05-28T12:35:00.124Z' });
  t.same(eventTime(ms + 877), { timestamp: 1716899701, time: '2024-05-28T12:35:01.000Z' });
  t.same(eventTime(ms), { timestamp: 1716899700, time: '2024-05-28T12:35:00.123Z' }, 'back to an earlier millisecond');
  t.same(eventTime(Number.NaN), { timestamp: 0, time: '1970-01-01T00:00:00.000Z' });
  t.same(eventTime(1e20), { timestamp: 0, time: '1970-01-01T00:00:00.000Z' });
});

t.test('an UPDATE whose request began before one already applied to its agent changes nothing (superseded)', async (t) => {
  // An unchanged keepalive the shim's fast path held for its reply (a tick) never reaches the decoder's
  // apply order: answered late, it came after the agent's shutdown — a later request, answered first —
  // and turned the agent active again while wazuh-db had it disconnected (found by a review).
  const s = table();
  s.setKnown({ id: 4, status: 'active' });
  t.match(s.apply(ex(SHUTDOWN(4), 'ok', 20)), [{ previous_status: 'active', current_status: 'disconnected', reason: 'agent_shutdown' }]);
  t.same(s.apply(ex(DATA(4), 'ok', 12)), [], 'the keepalive of 12 ms, answered after the shutdown of 20 ms: nothing');
  t.equal(s.get(4)?.status, 'disconnected', 'as wazuh-db has it');
  t.equal(s.stats().superseded, 1, 'counted');
  t.match(s.apply(ex(DATA(4), 'ok', 30)), [{ previous_status: 'disconnected', current_status: 'active' }], 'a later keepalive applies');
  // Only between UPDATEs that write the status (found by a review): a rename is another column.
  s.apply(ex('global update-agent-name {"id":4,"name":"renamed"}', 'ok', 50));
  t.match(s.apply(ex(SHUTDOWN(4), 'ok', 45)), [{ current_status: 'disconnected' }], 'a shutdown older than a rename still applies');
  // An agent removed and registered again under its id: the old row's late keepalive is not the new one's.
  s.apply(ex('global delete-agent 4', 'ok', 60));
  s.apply(ex('global insert-agent {"id":4,"name":"again","ip":"any"}', 'ok', 70));
  t.same(s.apply(ex(DATA(4), 'ok', 55)), [], 'the old agent\'s keepalive, answered after the new registration: nothing');
  t.equal(s.get(4)?.status, 'never_connected');
});

t.test("the columns a fleet shares (version, os, node, groups, statuses): one agent's change is never another's", async (t) => {
  const s = table();
  for (let id = 1; id <= 3; id++) s.setKnown({ id, name: `a${id}`, status: 'active', version: 'Wazuh v4.7.5', node: 'node01', groups: ['default', 'web'], sync_status: 'synced', group_config_status: 'synced' });
  s.apply(ex(DATA(2).replace('Wazuh v4.7.5', 'Wazuh v4.8.0').replace('"os_version":"12"', '"os_version":"13"'), 'ok', 1000));
  s.setKnown({ id: 3, groups: ['default'] });
  s.apply(ex('global update-keepalive {"id":1,"connection_status":"active","sync_status":"syncreq"}', 'ok', 2000));
  t.match(s.get(1), { version: 'Wazuh v4.7.5', node: 'node01', groups: ['default', 'web'], sync_status: 'syncreq', group_config_status: 'synced', os: null });
  t.match(s.get(2), { version: 'Wazuh v4.8.0', groups: ['default', 'web'], sync_status: 'synced', os: { name: 'Debian GNU/Linux', version: '13' } });
  t.match(s.get(3), { version: 'Wazuh v4.7.5', groups: ['default'], sync_status: 'synced', os: null });
  t.same(s.get(3)!.groups, ['default'], 'exactly its own list');
  // A list handed in and changed afterwards by its caller changes no agent.
  const mine = ['ops'];
  s.setKnown({ id: 1, groups: mine });
  mine.push('db');
  t.same(s.get(1)!.groups, ['ops']);
  t.same(s.get(2)!.groups, ['default', 'web']);
  s.setKnown({ id: 2, groups: [] });
  t.same(s.get(2)!.groups, [], 'no groups');

  // More distinct combinations than the pool keeps (16,384): each agent still has its own values.
  const many = table();
  for (let id = 1; id <= 20_000; id++) many.setKnown({ id, status: 'active', version: `v${id}`, groups: [`g${id % 7}`] });
  for (const id of [1, 9_999, 16_385, 20_000]) t.match(many.get(id), { version: `v${id}`, groups: [`g${id % 7}`] });
});

t.test('shared columns: short values are one object for the agents that have them; an agent\'s own long text is never pooled', async (t) => {
  const s = table();
  s.setKnown({ id: 1, version: 'Wazuh v4.7.5', node: 'node01', groups: ['default'] });
  s.setKnown({ id: 2, version: 'Wazuh v4.7.5', node: 'node01', groups: ['default'] });
  t.equal(s.get(1)!.groups, s.get(2)!.groups, 'one list for both (a row points to the shared profile)');
  t.ok(Object.isFrozen(s.get(1)!.groups), 'shared, so never changed in place');
  // 600 characters of node name (an agent writes its own): kept by its row alone, not in the pool, so a
  // stream of distinct ones from a hostile agent costs that agent's row, not 4,096 kept entries.
  const long = 'n'.repeat(600);
  s.setKnown({ id: 3, version: 'Wazuh v4.7.5', node: long, groups: ['default'] });
  s.setKnown({ id: 4, version: 'Wazuh v4.7.5', node: long, groups: ['default'] });
  t.not(s.get(3)!.groups, s.get(4)!.groups, 'each its own');
  t.match(s.get(3), { node: long, groups: ['default'], version: 'Wazuh v4.7.5' });
  t.match(s.get(4), { node: long, groups: ['default'] });
});

// The rows are columns by slot (state/rows.ts): a removed agent's slot goes to the next new agent.
t.test('a removed agent\'s row is used again by the next new agent: none of its values or capture times carry over', async (t) => {
  const s = table();
  s.setKnown({ id: 1, name: 'old-one', status: 'never_connected' });
  s.apply(ex(DATA(1, '10.9.9.9'), 'ok', 1000));
  s.apply(ex(SHUTDOWN(1, 3), 'ok', 1500));
  t.match(s.apply(ex('global delete-agent 1', 'ok', 2000)), [{ current_status: 'unknown', reason: 'removed' }]);
  t.equal(s.get(1), undefined);
  s.setKnown({ id: 2, name: 'new-one' });
  t.same(s.get(2), {
    id: 2, name: 'new-one', ip: null, status: 'unknown', status_code: 0, version: null, os: null,
    last_keepalive: null, node: null, groups: [], sync_status: null, group_config_status: null,
  }, 'nothing of agent 1');
  // Agent 1's requests were captured at 1–2 s; agent 2 has had none. A view asked at 0.5 s is not older
  // than any change of agent 2, nor is an UPDATE of 0.9 s superseded.
  t.match(s.resync([{ id: 2, connection_status: 'active' }], 500_000_000n), [{ agent_id: '002', previous_status: 'unknown', current_status: 'active' }]);
  t.same(s.apply(ex(DATA(2), 'ok', 900)).map((e) => e.event_type), ['keepalive']);
  t.equal(s.stats().superseded, 0);
  t.equal(s.get(2)?.ip, '192.168.1.100');
  t.same(s.countsByStatus(), { never_connected: 0, pending: 0, active: 1, disconnected: 0, unknown: 0 });
});

t.test('an update-agent-data sets only the columns it names: the os merged field by field, in its order', async (t) => {
  const s = table();
  s.setKnown({ id: 7, name: 'db', status: 'never_connected' });
  s.apply(ex(DATA(7), 'ok', 1000));
  const os = s.get(7)!.os;
  t.same(os, { name: 'Debian GNU/Linux', version: '12', platform: 'debian', arch: 'x86_64' });
  // A later request that names one os field and the version only (an upgrade seen by remoted).
  const up = s.apply(ex('global update-agent-data {"id":7,"version":"Wazuh v4.8.0","os_version":"13","agent_ip":"192.168.1.100","connection_status":"active"}', 'ok', 2000));
  const after = s.get(7)!;
  t.same(after.os, { name: 'Debian GNU/Linux', version: '13', platform: 'debian', arch: 'x86_64' }, 'the other os fields kept');
  t.same(Object.keys(after.os!), ['name', 'version', 'platform', 'arch'], 'in the order events print them');
  t.not(after.os, os, 'a new object: the old one is shared by events already made');
  t.match(after, { version: 'Wazuh v4.8.0', node: 'node01', sync_status: 'synced', group_config_status: 'synced' }, 'the columns it does not name kept');
  t.match(up.find((e) => e.event_type === 'keepalive'), { version: 'Wazuh v4.8.0', os: { version: '13' } });
  // The same values again: nothing moves, the os object stays the one made.
  s.apply(ex('global update-agent-data {"id":7,"version":"Wazuh v4.8.0","os_version":"13","agent_ip":"192.168.1.100","connection_status":"active"}', 'ok', 3000));
  t.equal(s.get(7)!.os, after.os);
  // An agent that had no os yet gets the fields named, in the order name, version, platform, arch.
  s.setKnown({ id: 8, name: 'new', status: 'never_connected' });
  s.apply(ex('global update-agent-data {"id":8,"os_arch":"aarch64","os_name":"Alpine","agent_ip":"10.0.0.8","connection_status":"active"}', 'ok', 4000));
  t.same(Object.entries(s.get(8)!.os!), [['name', 'Alpine'], ['arch', 'aarch64']]);
  // Agents that run the same system share one os object (a fleet's memory; events print it once: event-json.ts).
  s.setKnown({ id: 9, name: 'other', status: 'never_connected' });
  s.apply(ex(DATA(9, '192.168.1.109'), 'ok', 5000));
  s.setKnown({ id: 10, name: 'third', status: 'never_connected' });
  s.apply(ex(DATA(10, '192.168.1.110').replace('Wazuh v4.7.5', 'Wazuh v4.9.1').replace('"node01"', '"node02"'), 'ok', 6000));
  t.equal(s.get(9)!.os, s.get(10)!.os, 'one os object for the same system, whatever else differs (version, node)');
  t.equal(s.get(9)!.os, os, 'the one agent 7 had before its upgrade');
});
