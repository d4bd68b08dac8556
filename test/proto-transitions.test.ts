// Every transition of WAZUH-PROTOCOL.md §4 on the pure table, with synthetic exchanges: exactly one
// status event per real transition, nothing on err, the inferred lists, reconciliation, cluster sync.
import t from 'tap';
import { AgentStateTable, type AgentStateOptions } from '../controller/src/state/agents.js';
import { sourceOf } from '../controller/src/state/format.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { parseReply } from '../controller/src/decode/wdb-reply.js';
import type { AgentEvent, StatusChangeEvent, WdbExchange, WdbRequest } from '../controller/src/types.js';

const NODE = 'mgr-01';
const table = (o: Partial<AgentStateOptions> = {}) =>
  new AgentStateTable({ managerNode: NODE, wallClockMs: (ts) => 1716897300000 + Number(ts / 1_000_000n), ...o });

let clock = 1000n;
/** An exchange at the next instant (request at ts, reply 1 µs later); `at` pins the request time. */
function ex(request: string, reply = 'ok', comm = 'wazuh-remoted', opts: { at?: bigint; connId?: string; exe?: string } = {}): WdbExchange<WdbRequest> {
  const tsNs = opts.at ?? (clock += 1_000_000n);
  const e: WdbExchange<WdbRequest> = {
    connId: opts.connId ?? 'c1', request: parseRequest(request), reply: parseReply(reply), tsNs, replyTsNs: tsNs + 1000n, tgid: 7, comm,
  };
  if (opts.exe) e.exe = opts.exe;
  return e;
}
const status = (evs: AgentEvent[]) =>
  evs.filter((e): e is StatusChangeEvent => e.event_type === 'status_change')
    .map((e) => `${e.agent_id}:${e.previous_status}>${e.current_status}/${e.status_code}/${e.reason}/${e.source}`);

const PENDING = (id: number) => `global update-keepalive {"id":${id},"connection_status":"pending","sync_status":"synced"}`;
const DATA = (id: number, node = 'node01') =>
  `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","manager_host":"vm","node_name":"${node}","agent_ip":"10.0.0.${id}","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_platform":"debian","os_arch":"x86_64"}`;
const DATA5 = (id: number) =>
  `global update-agent-data {"agent_ip":"10.5.0.${id}","connection_status":"active","id":${id},"os_arch":"aarch64","os_name":"Ubuntu","os_platform":"ubuntu","os_version":"24.04","sync_status":"synced","version":"Wazuh v5.0.0"}`;
const SHUT = (id: number) => `global update-connection-status {"id":${id},"connection_status":"disconnected","sync_status":"synced","status_code":3}`;

function activeTable(ids: number[], o: Partial<AgentStateOptions> = {}) {
  const s = table(o);
  for (const id of ids) {
    s.apply(ex(PENDING(id)));
    s.apply(ex(DATA(id)));
  }
  return s;
}

t.test('the full 4.x cycle: registered → pending → active → shutdown → removed', async (t) => {
  const s = table();
  const key = 'f00d'.repeat(16);
  const evs: AgentEvent[] = [];
  evs.push(...s.apply(ex(`global insert-agent {"id":5,"name":"web05","ip":"any","register_ip":"10.9.9.0/24","internal_key":"${key}","date_add":1795796717}`, 'ok', 'wazuh-authd')));
  evs.push(...s.apply(ex(PENDING(5))));
  evs.push(...s.apply(ex(DATA(5))));
  evs.push(...s.apply(ex(DATA(5))));
  evs.push(...s.apply(ex(SHUT(5))));
  evs.push(...s.apply(ex('global update-agent-name {"id":5,"name":"web05-renamed"}', 'ok', 'wazuh-modulesd')));
  evs.push(...s.apply(ex('global delete-agent 5', 'ok', 'wazuh-authd')));
  t.same(status(evs), [
    '005:unknown>never_connected/0/registered/authd',
    '005:never_connected>pending/0/agent_startup/remoted',
    '005:pending>active/0/keepalive/remoted',
    '005:active>disconnected/3/agent_shutdown/remoted',
    '005:disconnected>unknown/3/removed/authd',
  ]);
  t.equal(evs.filter((e) => e.event_type === 'keepalive').length, 2);
  const reg = evs[0] as StatusChangeEvent;
  t.equal(reg.agent_name, 'web05');
  t.equal(reg.ip_address, null, 'a registration CIDR is no address (SPEC §3): null until the agent connects');
  t.equal((evs.at(-1) as StatusChangeEvent).agent_name, 'web05-renamed', 'update-agent-name applied');
  t.equal(s.get(5), undefined, 'a removed agent is forgotten');
  t.same(s.countsByStatus(), { never_connected: 0, pending: 0, active: 0, disconnected: 0, unknown: 0 });
  t.notMatch(JSON.stringify(evs), key);
  t.same(s.apply(ex('global delete-agent 5', 'ok', 'wazuh-authd')), [], 'deleting an agent the table does not know: no event');
});

t.test('a removed agent\'s late keepalives (remoted has not reloaded client.keys) do not bring it back; its registration does', async (t) => {
  const s = activeTable([5]);
  t.same(status(s.apply(ex('global delete-agent 5', 'ok', 'wazuh-authd'))), ['005:active>unknown/0/removed/authd']);
  // wazuh-db answers ok: its UPDATE ran and matched no row.
  for (const req of [PENDING(5), DATA(5), SHUT(5), 'global update-status-code {"id":5,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}',
    'global update-agent-name {"id":5,"name":"ghost"}']) {
    t.same(s.apply(ex(req)), [], `${req.slice(7, 30)}…: no event`);
  }
  t.equal(s.get(5), undefined, 'still forgotten');
  t.equal(s.stats().afterRemoval, 5, 'each counted');
  t.same(s.countsByStatus(), { never_connected: 0, pending: 0, active: 0, disconnected: 0, unknown: 0 });
  // Registered again (authd hands the id out again): a new agent, whose keepalives count.
  t.same(status(s.apply(ex('global insert-agent {"id":5,"name":"web05b","ip":"any","register_ip":"any","internal_key":"k","date_add":1795796800}', 'ok', 'wazuh-authd'))),
    ['005:unknown>never_connected/0/registered/authd']);
  t.same(status([...s.apply(ex(PENDING(5))), ...s.apply(ex(DATA(5)))]),
    ['005:never_connected>pending/0/agent_startup/remoted', '005:pending>active/0/keepalive/remoted']);
  // An agent the table never knew (the tap started after its registration) is taken from its keepalive as before.
  t.same(status(s.apply(ex(DATA(9)))), ['009:unknown>active/0/keepalive/remoted']);
});

t.test('an agent known only by name (client.keys) that the complete listing lacks: its late keepalive is asked about, not taken', async (t) => {
  // Found by a review (12-06): removed while no tap ran, its name still in client.keys when the next tap
  // started (authd rewrites it with `!` milliseconds later): the table held it by name, status unknown,
  // and only agents the table did not hold were asked about — remoted's late keepalive brought it back.
  const s = activeTable([1]);
  s.setKnown({ id: 26, name: 'gone26' });
  s.setKnown({ id: 27, name: 'late27' });
  t.equal(s.get(26)?.status, 'unknown', 'held by name');
  t.same(s.removeUnlisted([1], clock + 1_000_000n), [], 'a complete listing lacking both: a name alone is no removal');
  t.same(s.apply(ex(DATA(26))), [], 'its keepalive: nothing');
  t.same(s.apply(ex(PENDING(27))), [], 'the other\'s startup: nothing yet');
  t.same(s.takeUnheld().sort(), [26, 27], 'both asked about');
  t.same(status(s.describedAgents({ rows: [{ id: 27, name: 'late27', connection_status: 'pending', status_code: 0 }], absent: [26], reason: null }, clock + 1_000_000n)),
    ['027:unknown>pending/0/agent_startup/remoted'], 'the one wazuh-db has: its startup, as it came');
  t.equal(s.get(26), undefined, 'the one it has not: forgotten, without an event (never published)');
  t.same(s.apply(ex(DATA(26))), [], 'its next keepalives: nothing');
  t.equal(s.stats().afterRemoval, 1, 'counted as after a removal');
  t.notOk(s.hasUnheld);
});

t.test('once every agent wazuh-db listed is held, an UPDATE of another is asked about, not taken: a removed agent stays out', async (t) => {
  // Found by test/chaos-e2e.test.ts (seed 549): agent 26 removed while no tap ran; the next tap's complete listing
  // did not name it, and remoted's late keepalive (wazuh-db answers ok to an UPDATE matching no row) brought it
  // back, `unknown → active`, for good — this process had not seen the removal, so `removals` did not know it.
  const s = activeTable([1, 2]);
  t.same(s.removeUnlisted([1, 2], clock + 1_000_000n), [], 'a complete listing: both held');
  t.same(s.apply(ex(DATA(26))), [], 'a keepalive of an agent the listing lacked: nothing');
  t.same(s.apply(ex(PENDING(26))), [], 'nor a startup');
  t.equal(s.get(26), undefined);
  t.equal(s.stats().unlisted, 2, 'each counted');
  t.ok(s.hasUnheld);
  t.same(s.takeUnheld(), [26], 'to ask wazuh-db about, once');
  t.notOk(s.hasUnheld);
  const askedAt = clock + 1_000_000n;
  t.same(s.describedAgents({ rows: [], absent: [26], reason: null }, askedAt), [], 'wazuh-db has no row: nothing');
  t.same(s.apply(ex(DATA(26))), [], 'its next keepalives: nothing');
  t.equal(s.stats().afterRemoval, 1, 'counted as after a removal');
  t.notOk(s.hasUnheld, 'not asked about again');

  // Registered where the tap could not see it (the insert came from a process it does not watch): wazuh-db says so.
  clock += 5_000_000n;
  t.same(s.apply(ex(PENDING(27))), [], 'held');
  t.same(s.apply(ex(DATA(27))), [], 'held too');
  t.same(s.takeUnheld(), [27]);
  t.same(s.apply(ex(SHUT(27))), [], 'held while asked');
  t.same(status(s.describedAgents({ rows: [{ id: 27, name: 'late27', connection_status: 'disconnected', status_code: 3 }], absent: [], reason: null }, clock)),
    ['027:unknown>pending/0/agent_startup/remoted', '027:pending>active/0/keepalive/remoted', '027:active>disconnected/3/agent_shutdown/remoted'],
    'wazuh-db has its row: the UPDATEs held are applied as they came, in order, none lost');
  t.equal(s.get(27)?.name, 'late27', 'named by the row');
  t.same(status(s.apply(ex(PENDING(27)))), ['027:disconnected>pending/0/agent_startup/remoted'], 'then its UPDATEs apply as they come');

  // A registration captured after the listing: held, no question.
  t.same(status(s.apply(ex('global insert-agent {"id":28,"name":"new28","ip":"any"}', 'ok', 'wazuh-authd'))), ['028:unknown>never_connected/0/registered/authd']);
  t.same(status(s.apply(ex(PENDING(28)))), ['028:never_connected>pending/0/agent_startup/remoted']);
  t.notOk(s.hasUnheld);

  // wazuh-db could not be asked: the UPDATEs held apply as they came, as before any listing — none lost.
  t.same(s.apply(ex(SHUT(29))), []);
  t.same(s.takeUnheld(), [29]);
  t.same(status(s.describedAgents(null, clock)), ['029:unknown>disconnected/3/agent_shutdown/remoted']);
  t.same(status(s.apply(ex(DATA(29)))), ['029:disconnected>active/3/keepalive/remoted']);
  // And the table still holds every agent listed: the next unknown one is asked about.
  t.same(s.apply(ex(DATA(30))), [], 'held');
  t.same(s.apply(ex(DATA(31))), [], 'held');
  t.same(s.takeUnheld().sort(), [30, 31]);
  // An answer about some agents only (wazuh-db stopped answering): what it said is used, the rest applied as they came.
  t.same(status(s.describedAgents({ rows: [{ id: 30, connection_status: 'active' }], absent: [], reason: 'no reply within 3000 ms' }, clock + 2_000_000n)),
    ['030:unknown>active/0/keepalive/remoted', '031:unknown>active/0/keepalive/remoted']);
  t.equal(s.stats().unlisted, 8, 'each UPDATE held, counted');
});

t.test('an agent a complete listing lacked, changed while the list was read: wazuh-db is asked, and its answer decides', async (t) => {
  // Before the table held every agent (an incomplete start), a removed agent's late keepalive made it active;
  // the listing that followed spared it (changed since the list was read, as an agent registered since is) —
  // and it stayed active for good.
  const s = activeTable([1, 5, 6]);
  const listedAt = clock - 500_000n; // the keepalives below end after the list was read
  t.same(status(s.apply(ex(DATA(5)))), [], 'a keepalive of agent 5 (removed meanwhile: wazuh-db answers ok)');
  s.apply(ex(DATA(6)));
  t.same(s.removeUnlisted([1], listedAt), [], 'both changed while the list was read: spared');
  t.same(s.takeUnheld().sort(), [5, 6], 'and asked about');
  const askedAt = clock + 1_000_000n;
  t.same(status(s.describedAgents({ rows: [{ id: 6, connection_status: 'active' }], absent: [5], reason: null }, askedAt)),
    ['005:active>unknown/0/removed/wazuh-db'], 'the one wazuh-db has no row for: removed; the other stays');
  t.equal(s.get(5), undefined);
  t.match(s.get(6), { status: 'active' });
  t.same(s.apply(ex(DATA(5))), [], 'its next late keepalive: nothing');
  // An UPDATE while the question is out waits behind it (it would not be the last word otherwise): wazuh-db with
  // no row for the agent at the question, the UPDATE (ok to no row) changes nothing and the agent is removed.
  s.apply(ex(DATA(6)));
  t.same(s.removeUnlisted([1], clock - 500_000n), []);
  t.same(s.takeUnheld(), [6]);
  const asked = clock + 100_000n;
  t.same(s.apply(ex(DATA(6))), [], 'held while asked');
  t.same(status(s.describedAgents({ rows: [], absent: [6], reason: null }, asked)), ['006:active>unknown/0/removed/wazuh-db']);
  t.notOk(s.hasUnheld, 'nothing more to ask');
  // A registration captured while the question is out (an insert is never held): the agent stays, asked again.
  s.apply(ex(DATA(8)));
  t.same(s.removeUnlisted([1], clock - 500_000n), []);
  t.same(s.takeUnheld(), [8]);
  const asked8 = clock + 100_000n;
  s.apply(ex('global insert-agent {"id":8,"name":"again8","ip":"any"}', 'ok', 'wazuh-authd'));
  t.same(s.describedAgents({ rows: [], absent: [8], reason: null }, asked8), [], 'registered since the question: kept');
  t.same(s.takeUnheld(), [8], 'asked again');
});

t.test('UPDATEs held for an agent wait for their replay: a later one never overtakes them, whatever brings the agent into the table', async (t) => {
  const s = activeTable([1]);
  s.removeUnlisted([1], clock + 1_000_000n);
  t.same(s.apply(ex(SHUT(9))), [], 'held: agent 9 is not in the table');
  t.same(s.takeUnheld(), [9]);
  // A resync lists agent 9 while the question is out: its row waits behind the shutdown held (applied at
  // once, it made the row the shutdown was then replayed on: no event of its own, or two of one change).
  t.same(s.resync([{ id: 9, connection_status: 'disconnected', status_code: 3 }], clock + 1_000_000n, 'wazuh-db', true), []);
  t.equal(s.get(9), undefined, 'not in the table before the UPDATEs it may be older than');
  t.same(s.apply(ex(PENDING(9))), [], 'held: an UPDATE of it waits');
  t.same(s.apply(ex(DATA(9))), [], 'and the next');
  // No answer: applied as they came, in order — the shutdown first (its own reason), the row (nothing new), the rest.
  t.same(status(s.describedAgents(null, clock)),
    ['009:unknown>disconnected/3/agent_shutdown/remoted', '009:disconnected>pending/0/agent_startup/remoted', '009:pending>active/0/keepalive/remoted']);
  t.match(s.get(9), { status: 'active' }, 'its last UPDATE is the last word');
  t.notOk(s.hasUnheld);
  t.same(status(s.apply(ex(SHUT(9)))), ['009:active>disconnected/3/agent_shutdown/remoted'], 'then its UPDATEs apply as they come');
});

t.test('a view of wazuh-db that lands while an agent\'s UPDATEs are held waits behind them: their transitions once, in order, then the view if newer', async (t) => {
  // Found by a review (rt-decode F2): agent 7, registered unseen, starts (pending, active: held while wazuh-db
  // is asked); remoted's 5-s listing names it active before the answer. The listing made the row and published
  // `unknown>active` (initial_sync), then the held UPDATEs were replayed on top: `active>pending`, `pending>active`.
  /** A table that holds every agent listed (agent 1), and agent `id`'s startup and keepalive held, asked about. */
  const held = (id: number) => {
    const s = activeTable([1]);
    s.removeUnlisted([1], clock + 1_000_000n);
    const askedAt = clock + 500_000n; // the question goes out before the views below
    t.same(s.apply(ex(PENDING(id))), [], `${id}: startup held`);
    t.same(s.apply(ex(DATA(id))), [], `${id}: keepalive held`);
    t.same(s.takeUnheld(), [id]);
    return { s, askedAt };
  };
  const only = (id: number, evs: AgentEvent[]) => status(evs).filter((e) => e.startsWith(`${String(id).padStart(3, '0')}:`));

  const a = held(7);
  t.same(a.s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1},{"id":7}]')), [], 'the listing: nothing yet for agent 7');
  t.equal(a.s.get(7), undefined, 'not in the table before its UPDATEs');
  t.same(status(a.s.describedAgents({ rows: [{ id: 7, name: 'a7', connection_status: 'active', status_code: 0 }], absent: [], reason: null }, a.askedAt)),
    ['007:unknown>pending/0/agent_startup/remoted', '007:pending>active/0/keepalive/remoted'], 'its UPDATEs, once each; the listing agrees');
  t.equal(a.s.get(7)?.name, 'a7');

  // A view newer than the UPDATEs held still counts, after them: monitord disconnects the agent while asked.
  const b = held(8);
  t.same(b.s.apply(ex('global disconnect-agents 0 1795796741 synced', 'ok [{"id":8}]', 'wazuh-monitord')), []);
  t.same(status(b.s.describedAgents({ rows: [{ id: 8, connection_status: 'active' }], absent: [], reason: null }, b.askedAt)),
    ['008:unknown>pending/0/agent_startup/remoted', '008:pending>active/0/keepalive/remoted', '008:active>disconnected/4/no_keepalive/monitord'],
    'the disconnection, asked after the keepalive, is the last word (the row, asked before it, does not undo it)');
  t.match(b.s.get(8), { status: 'disconnected', status_code: 4 });

  // So does a reset, and a resync's row: each after the UPDATEs it follows, in its place.
  const c = held(10);
  t.same(only(10, c.s.apply(ex('global reset-agents-connection synced'))), [], 'the reset: nothing yet for agent 10');
  t.equal(c.s.get(1)?.status, 'disconnected', 'the others: at once');
  t.same(c.s.apply(ex(PENDING(10))), [], 'its next startup, held behind');
  t.same(c.s.resync([{ id: 10, name: 'r10', connection_status: 'pending', status_code: 0 }], clock + 1_000_000n), [], 'a row: waits too');
  t.same(status(c.s.describedAgents(null, clock)), [
    '010:unknown>pending/0/agent_startup/remoted', '010:pending>active/0/keepalive/remoted',
    '010:active>disconnected/5/manager_reset/remoted', '010:disconnected>pending/0/agent_startup/remoted',
  ], 'not answered: everything as it came, the row (pending, as the table now is) adding nothing');
  t.match(c.s.get(10), { name: 'r10', status: 'pending' });

  // A view older than an UPDATE held never overrides it: views asked before the keepalive, answered after.
  const d = held(9);
  const before = clock - 500_000n; // after the startup, before the keepalive
  t.same(d.s.apply(ex('global get-agents-by-connection-status 0 pending node01 -1', 'ok [{"id":9}]', 'wazuh-remoted', { at: before })), []);
  t.same(d.s.apply(ex('global disconnect-agents 0 1795796741 synced', 'ok [{"id":9}]', 'wazuh-monitord', { at: before })), []);
  t.same(d.s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1}]', 'wazuh-remoted', { at: before })), [],
    'nor a complete listing of active agents without it');
  t.same(status(d.s.describedAgents({ rows: [{ id: 9, connection_status: 'active' }], absent: [], reason: null }, clock + 1_000_000n)),
    ['009:unknown>pending/0/agent_startup/remoted', '009:pending>active/0/keepalive/remoted'], 'the older views: nothing');
  t.match(d.s.get(9), { status: 'active', status_code: 0 });

  // wazuh-db has no row for the agent: its UPDATEs are dropped, and a view older than that answer does not bring it in.
  const e = held(12);
  t.same(e.s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1},{"id":12}]')), []);
  t.same(e.s.describedAgents({ rows: [], absent: [12], reason: null }, clock + 1_000_000n), []);
  t.equal(e.s.get(12), undefined);
  t.notOk(e.s.hasUnheld);
});

t.test('a removal is not undone by a disconnect-agents that wazuh-db computed before it, whose reply came after', async (t) => {
  // Found by a review (rt-decode F3): authd's delete-agent entered before monitord's disconnect-agents but was
  // answered first; the reply then named the removed agent, which came back `unknown>disconnected`.
  const s = activeTable([4, 5]);
  const t0 = clock + 1_000_000n;
  clock = t0 + 10_000_000n;
  const del = { ...ex('global delete-agent 4', 'ok', 'wazuh-authd', { at: t0, connId: 'authd' }), replyTsNs: t0 + 2_000_000n };
  t.same(status(s.apply(del)), ['004:active>unknown/0/removed/authd']);
  const disc = { ...ex('global disconnect-agents 0 1795796741 synced', 'ok [{"id":4},{"id":5}]', 'wazuh-monitord', { at: t0 + 1_000_000n, connId: 'monitord' }),
    replyTsNs: t0 + 3_000_000n };
  t.same(status(s.apply(disc)), ['005:active>disconnected/4/no_keepalive/monitord'], 'the removed agent is not named again');
  t.equal(s.get(4), undefined, 'still forgotten');
  t.same(status(s.apply(ex('global get-agents-by-connection-status 0 disconnected node01 -1', 'ok [{"id":4},{"id":5}]', 'wazuh-remoted', { at: t0 + 1_000_000n }))),
    [], 'nor by a listing made while the delete ran');
  t.equal(s.get(4), undefined);
  // A disconnect-agents that began after the removal was over names an agent wazuh-db has again: it applies.
  t.same(status(s.apply(ex('global disconnect-agents 0 1795796741 synced', 'ok [{"id":4}]', 'wazuh-monitord', { at: t0 + 5_000_000n }))),
    ['004:unknown>disconnected/4/no_keepalive/monitord']);
});

t.test('insert-agent answered err (duplicate id) changes nothing', async (t) => {
  const s = table();
  s.setKnown({ id: 4, name: 'agent4', status: 'active' });
  t.same(s.apply(ex('global insert-agent {"id":4,"name":"other","register_ip":"any","internal_key":"x"}', 'err Cannot execute Global database query; UNIQUE constraint failed: agent.id', 'wazuh-authd')), []);
  t.match(s.get(4), { name: 'agent4', status: 'active' });
  t.equal(s.stats().rejected, 1);
});

t.test('disconnect-agents: only the reply names the agents; ok and due pages alike; exactly one event each', async (t) => {
  const s = activeTable([1, 2, 3, 7]);
  s.apply(ex(SHUT(3)));
  const evs = [
    ...s.apply(ex('global disconnect-agents 0 1795796741 synced', 'due [{"id":1},{"id":2}]', 'wazuh-monitord')),
    ...s.apply(ex('global disconnect-agents 2 1795796741 synced', 'ok [{"id":3},{"id":9},{"id":0}]', 'wazuh-monitord')),
    ...s.apply(ex('global disconnect-agents 0 1795796800 synced', 'ok []', 'wazuh-monitord')),
  ];
  t.same(status(evs), [
    '001:active>disconnected/4/no_keepalive/monitord',
    '002:active>disconnected/4/no_keepalive/monitord',
    '009:unknown>disconnected/4/no_keepalive/monitord',
  ], 'agent 3 was already disconnected: no second event; the manager never');
  t.match(s.get(3), { status: 'disconnected', status_code: 4 }, 'its code follows wazuh-db');
  t.match(s.get(7), { status: 'active' });
  t.same(s.apply(ex('global disconnect-agents 0 1795796741 synced', 'err Cannot execute Global database query', 'wazuh-monitord')), []);
  t.same(s.apply(ex('global disconnect-agents 0 1795796741 synced', 'ok [redacted', 'wazuh-monitord')), []);
  t.equal(s.stats().unreadableReplies, 1);
  // monitord then asks get-agent-info for each: that confirms, it does not duplicate.
  t.same(s.apply(ex('global get-agent-info 1', 'ok [{"id":1,"name":"agent1","connection_status":"disconnected","status_code":4}]', 'wazuh-monitord')), []);
  t.equal(s.get(1)?.name, 'agent1');
});

t.test('reset-agents-connection: every active/pending agent → disconnected (5), once', async (t) => {
  const s = activeTable([1, 2]);
  s.apply(ex(PENDING(3)));
  s.setKnown({ id: 4, status: 'never_connected' });
  s.apply(ex(SHUT(2)));
  s.apply(ex(PENDING(6)));
  s.apply(ex(DATA(6)));
  s.apply(ex(SHUT(6)));
  s.apply(ex(PENDING(6)));
  const evs = s.apply(ex('global reset-agents-connection synced'));
  t.same(status(evs), [
    '001:active>disconnected/5/manager_reset/remoted',
    '003:pending>disconnected/5/manager_reset/remoted',
    '006:pending>disconnected/5/manager_reset/remoted',
  ]);
  t.ok(evs.every((e) => e.event_type === 'status_change' && e.sync_status === 'synced'));
  t.same(s.apply(ex('global reset-agents-connection synced')), [], 'a second reset changes nothing');
  t.same(s.apply(ex('global reset-agents-connection synced', 'err x')), []);
  t.match(s.get(2), { status: 'disconnected', status_code: 3 }, 'already disconnected agents keep their code');
  t.match(s.get(4), { status: 'never_connected' });
});

t.test('inferred changes never override a newer change already applied', async (t) => {
  const s = activeTable([1]);
  const resetAt = clock + 1_000_000n;
  // The agent reconnected after the reset request went out, and the tap processed that first.
  s.apply(ex(PENDING(1), 'ok', 'wazuh-remoted', { at: resetAt + 5_000_000n }));
  t.same(s.apply(ex('global reset-agents-connection synced', 'ok', 'wazuh-remoted', { at: resetAt })), []);
  t.equal(s.get(1)?.status, 'pending');
  t.same(s.apply(ex('global disconnect-agents 0 1 synced', 'ok [{"id":1}]', 'wazuh-monitord', { at: resetAt + 1n })), []);
  t.equal(s.get(1)?.status, 'pending');
});

t.test('a removed agent\'s capture times do not pass to the agent added after it (its place in the column is used again)', async (t) => {
  const s = activeTable([1]);
  const late = clock + 50_000_000n;
  s.apply(ex(PENDING(1), 'ok', 'wazuh-remoted', { at: late })); // agent 1 changed late
  s.apply(ex('global delete-agent 1', 'ok', 'wazuh-authd'));
  t.equal(s.get(1), undefined);
  s.setKnown({ id: 2, status: 'active' }); // the next row made: it takes the place agent 1 left
  // A reset sent before agent 1's late change: agent 2 was never changed by a request, so it applies.
  t.same(status(s.apply(ex('global reset-agents-connection synced', 'ok', 'wazuh-remoted', { at: late - 1_000_000n }))),
    ['002:active>disconnected/5/manager_reset/remoted']);
  // And a fleet's worth of rows added and removed keeps each one's own times.
  for (let id = 10; id < 3010; id++) s.setKnown({ id, status: 'active' });
  s.apply(ex(PENDING(2999), 'ok', 'wazuh-remoted', { at: late + 10_000_000n }));
  t.same(status(s.apply(ex('global reset-agents-connection synced', 'ok', 'wazuh-remoted', { at: late + 5_000_000n }))).length, 2999,
    'every agent but the one changed after the reset');
  t.equal(s.get(2999)?.status, 'pending');
});

t.test('update-status-code: invalid version (code 1), 4.x and 5.x', async (t) => {
  const s = table();
  s.setKnown({ id: 3, status: 'disconnected', status_code: 3 });
  t.same(status(s.apply(ex('global update-status-code {"id":3,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}'))),
    ['003:disconnected>disconnected/1/invalid_version/remoted']);
  t.same(s.apply(ex('global update-status-code {"id":3,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}')), []);
  t.same(status(s.apply(ex('global update-status-code {"id":3,"status_code":2,"sync_status":"synced","version":"Wazuh v5.1.0"}', 'ok', 'wazuh-manager-r'))),
    ['003:disconnected>disconnected/2/invalid_version/remoted']);
  t.equal(s.get(3)?.version, 'Wazuh v5.1.0');
  t.same(s.apply(ex('global update-status-code {"id":3,"status_code":1,"version":"x","sync_status":"synced"}', 'err x')), []);
});

t.test('5.x: sorted keys, short update-agent-data, comms and exe', async (t) => {
  const s = table();
  s.setKnown({ id: 11, name: 'edge11', status: 'disconnected' });
  const evs = [
    ...s.apply(ex('global update-keepalive {"connection_status":"pending","id":11,"sync_status":"synced"}', 'ok', 'wazuh-manager-r')),
    ...s.apply(ex(DATA5(11), 'ok', 'wazuh-manager-r')),
    ...s.apply(ex(DATA5(11), 'ok', 'wazuh-manager-r')),
    ...s.apply(ex('global update-connection-status {"connection_status":"disconnected","id":11,"status_code":3,"sync_status":"synced"}', 'ok', 'wazuh-manager-r')),
  ];
  t.same(status(evs), [
    '011:disconnected>pending/0/agent_startup/remoted',
    '011:pending>active/0/keepalive/remoted',
    '011:active>disconnected/3/agent_shutdown/remoted',
  ]);
  const ka = evs.filter((e) => e.event_type === 'keepalive');
  t.equal(ka.length, 2);
  t.match(ka[0], { agent_name: 'edge11', ip_address: '10.5.0.11', version: 'Wazuh v5.0.0', status: 'active', os: { name: 'Ubuntu', version: '24.04', platform: 'ubuntu', arch: 'aarch64' }, sync_status: 'synced', group_config_status: null });
  const reg = s.apply(ex('global insert-agent {"date_add":1,"id":12,"internal_key":"k","name":"n12","register_ip":"any"}', 'ok', 'wazuh-manager-a'));
  t.equal((reg[0] as StatusChangeEvent).source, 'wazuh-manager', 'wazuh-manager-a is ambiguous without the executable');
  const reg2 = s.apply(ex('global insert-agent {"date_add":1,"id":13,"internal_key":"k","name":"n13","register_ip":"any"}', 'ok', 'wazuh-manager-a', { exe: '/var/wazuh-manager/bin/wazuh-manager-authd' }));
  t.equal((reg2[0] as StatusChangeEvent).source, 'authd', 'the executable resolves it');
  t.same(
    [['wazuh-manager-r'], ['wazuh-manager-m'], ['wazuh-manager-a'], ['wazuh-manager-d'], ['wazuh-manager-a', 'wazuh-manager-apid'], ['wazuh-manager-m', '/x/wazuh-manager-modulesd'], ['wazuh-manager-d', 'wazuh-manager-db'], ['wazuh-authd', '/var/ossec/bin/wazuh-authd'], ['python3', '/usr/bin/python3.10']]
      .map(([c, e]) => sourceOf(c, e)),
    ['remoted', 'monitord', 'wazuh-manager', 'wazuh-db', 'apid', 'modulesd', 'wazuh-db', 'authd', 'clusterd'],
  );
});

t.test('cluster: sync-agent-info-set from python3 updates state, publishes nothing', async (t) => {
  const s = table();
  s.setKnown({ id: 20, status: 'disconnected' });
  const evs = s.apply(ex('global sync-agent-info-set [{"id":20,"name":"w20","ip":"10.2.0.20","version":"Wazuh v4.7.5","node_name":"worker01","last_keepalive":1795796736,"connection_status":"active","disconnection_time":0,"status_code":0,"internal_key":"zzz","labels":[]},{"id":0,"name":"master"},{"id":21,"name":"w21","connection_status":"pending"}]', 'ok', 'python3'));
  t.same(evs, []);
  t.match(s.get(20), { name: 'w20', ip: '10.2.0.20', status: 'active', node: 'worker01', last_keepalive: 1795796736 });
  t.match(s.get(21), { name: 'w21', status: 'pending' });
  t.equal(s.get(0), undefined);
  t.equal(s.stats().silent, 2);
  t.notMatch(JSON.stringify(s.all()), 'zzz');
  // A master's remoted reset: with the cluster node name known, a worker's agents change silently.
  const m = table({ clusterNode: 'master01' });
  m.apply(ex('global sync-agent-info-set [{"id":30,"node_name":"worker01","connection_status":"active"}]', 'ok', 'python3'));
  m.apply(ex(PENDING(31)));
  m.apply(ex(DATA(31, 'master01')));
  t.same(status(m.apply(ex('global reset-agents-connection synced'))), ['031:active>disconnected/5/manager_reset/remoted']);
  t.equal(m.get(30)?.status, 'disconnected', 'the copy follows wazuh-db');
});

t.test('get-agent-info replies: names, addresses, and a drifted status corrected once', async (t) => {
  const s = activeTable([2]);
  const row = '{"id":2,"name":"agent2","ip":"127.0.0.9","register_ip":"any","internal_key":"secret-secret","os_name":"Debian GNU/Linux","version":"Wazuh v4.7.5","node_name":"node01","last_keepalive":1795796736,"connection_status":"disconnected","disconnection_time":1795796761,"status_code":4}';
  const evs = s.apply(ex('global get-agent-info 2', `ok [${row}]`, 'wazuh-analysisd'));
  t.same(status(evs), ['002:active>disconnected/4/no_keepalive/analysisd'], 'the row\'s code names the reason');
  t.match(s.get(2), { name: 'agent2', ip: '127.0.0.9', last_keepalive: 1795796736 });
  t.same(s.apply(ex('global get-agent-info 2', `ok [${row}]`, 'wazuh-analysisd')), [], 'no drift, no event');
  t.same(status(s.apply(ex('global get-agent-info 8', 'ok [{"id":8,"name":"e8","connection_status":"active","status_code":0}]'))), ['008:unknown>active/0/initial_sync/remoted']);
  t.same(s.apply(ex('global get-agent-info 9', 'ok []')), [], 'an agent wazuh-db does not have');
  t.same(s.apply(ex('global get-agent-info 2', 'ok [{"id":3,"connection_status":"active"}]')), [], 'a row of another agent is ignored');
  // A row requested before a change the tap already applied is stale: names yes, status no.
  const at = clock + 1_000_000n;
  s.apply(ex(PENDING(2), 'ok', 'wazuh-remoted', { at: at + 10n }));
  t.same(s.apply(ex('global get-agent-info 2', `ok [${row.replace('"name":"agent2"', '"name":"agent2b"')}]`, 'wazuh-monitord', { at })), []);
  t.match(s.get(2), { name: 'agent2b', status: 'pending' });
});

t.test('get-agents-by-connection-status: listed agents corrected, absent ones only from a complete listing of their node', async (t) => {
  const s = activeTable([1, 2, 3]);
  s.apply(ex(SHUT(3)));
  s.apply(ex('global sync-agent-info-set [{"id":40,"node_name":"worker01","connection_status":"active"}]', 'ok', 'python3'));
  s.setKnown({ id: 41, status: 'active' }); // node unknown
  // wazuh-db says: 1 and 3 are active on node01 (the tap missed 3's reconnection, and 2's disconnection).
  const evs = s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1},{"id":3}]'));
  t.same(status(evs), [
    '003:disconnected>active/0/initial_sync/remoted',
    '002:active>disconnected/0/initial_sync/remoted',
  ]);
  t.equal(s.get(40)?.status, 'active', 'another node\'s agent is not absent from a node01 listing');
  t.equal(s.get(41)?.status, 'active', 'an agent of unknown node is not corrected for being absent');
  t.same(s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1},{"id":3}]')), [], 'a second identical poll: nothing');
  t.equal(s.stats().corrections, 2);
  // err or unreadable: nothing.
  t.same(s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'err x')), []);
  t.same(s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok nope')), []);
  // No node filter: absent ones of any known node count.
  t.same(status(s.apply(ex('global get-agents-by-connection-status 0 active', 'ok [{"id":1},{"id":3},{"id":41}]'))), ['040:active>disconnected/0/initial_sync/remoted']);
});

t.test('get-agents-by-connection-status: due pages are collected per connection before absence counts', async (t) => {
  const s = activeTable([1, 2, 3, 4, 5]);
  const page = (last: number, reply: string, connId: string) =>
    s.apply(ex(`global get-agents-by-connection-status ${last} active node01 -1`, reply, 'wazuh-remoted', { connId }));
  t.same(page(0, 'due [{"id":1},{"id":2}]', 'A'), [], 'a due page: absence means nothing yet');
  t.same(page(0, 'due [{"id":1}]', 'B'), [], 'another connection\'s listing is separate');
  t.same(page(2, 'due [{"id":3}]', 'A'), []);
  t.same(status(page(3, 'ok [{"id":5}]', 'A')), ['004:active>disconnected/0/initial_sync/remoted'], 'complete on ok: 4 was absent');
  // A page whose start was not seen: its rows count, absence does not.
  t.same(page(3, 'ok [{"id":5}]', 'B'), [], 'B\'s listing stopped at id 1: a page from 3 does not continue it');
  t.same(page(7, 'ok []', 'C'), []);
  t.equal(s.get(1)?.status, 'active');
  // A row limit reached: the listing may be cut.
  t.same(s.apply(ex('global get-agents-by-connection-status 0 active node01 2', 'ok [{"id":1},{"id":2}]')), []);
  t.equal(s.get(3)?.status, 'active');
  // An agent whose change was in flight while the listing was made is left alone.
  const at = clock + 1_000_000n;
  s.apply(ex(PENDING(6), 'ok', 'wazuh-remoted', { at: at - 100n }));
  s.apply(ex(DATA(6), 'ok', 'wazuh-remoted', { at: at - 50n }));
  t.same(status(s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":1},{"id":2},{"id":3},{"id":5}]', 'wazuh-remoted', { at }))), []);
  t.equal(s.get(6)?.status, 'active');
});

t.test('ign/unk/malformed replies and agent 0 change nothing anywhere', async (t) => {
  const s = activeTable([1]);
  for (const reply of ['ign', 'unk', 'garbage', '']) {
    for (const req of [SHUT(1), 'global reset-agents-connection synced', 'global delete-agent 1', 'global disconnect-agents 0 1 synced']) {
      t.same(s.apply(ex(req, reply)), [], `${req.slice(7, 30)} / ${reply}`);
    }
  }
  t.equal(s.get(1)?.status, 'active');
  for (const req of ['global delete-agent 0', 'global update-agent-name {"id":0,"name":"vm"}', PENDING(0), 'global insert-agent {"id":0,"name":"x"}']) {
    t.same(s.apply(ex(req)), []);
  }
  t.equal(s.get(0), undefined);
});

t.test('resync (rows read outside the capture): drift becomes events, seeded agents do not', async (t) => {
  const s = activeTable([1, 2]);
  const evs = s.resync([
    { id: 1, connection_status: 'active', name: 'one' },
    { id: 2, connection_status: 'disconnected', status_code: 5 },
    { id: 3, connection_status: 'never_connected', name: 'three' },
  ], clock + 1_000_000n);
  t.same(status(evs), ['002:active>disconnected/5/manager_reset/wazuh-db', '003:unknown>never_connected/0/initial_sync/wazuh-db']);
  t.equal(s.get(1)?.name, 'one');
});

t.test('removeUnlisted: an agent wazuh-db no longer lists was removed unseen — one removed event, forgotten', async (t) => {
  const s = activeTable([1, 2, 3]);
  s.setKnown({ id: 4, name: 'by-name-only' }); // client.keys: no status known
  const listedAt = clock + 1_000_000n;
  clock += 5_000_000n;
  // Registered after the list was read: not in it, and not removed.
  s.apply(ex('global insert-agent {"id":5,"name":"new5","ip":"any"}', 'ok', 'wazuh-authd'));
  t.same(status(s.removeUnlisted([1, 3], listedAt)), ['002:active>unknown/0/removed/wazuh-db']);
  t.equal(s.get(2), undefined, 'forgotten');
  t.match(s.get(5), { status: 'never_connected' }, 'the agent registered since the list stays');
  t.match(s.get(4), { name: 'by-name-only' }, 'an agent known only by name stays, without an event');
  t.same(s.removeUnlisted([1, 3], clock + 1_000_000n).length, 1, 'then agent 5, had it gone too');
  t.same(s.removeUnlisted([1, 3], clock + 1_000_000n), [], 'nothing twice');
  // A master's copy of a worker's agent: forgotten, the worker's tap says it.
  const m = table({ clusterNode: 'master01' });
  m.apply(ex('global sync-agent-info-set [{"id":30,"node_name":"worker01","connection_status":"active"}]', 'ok', 'python3'));
  t.same(m.removeUnlisted([], clock + 1_000_000n), []);
  t.equal(m.get(30), undefined);
});

t.test('a removal is not undone by an older view: a resync, a listing or a disconnect-agents asked before it', async (t) => {
  // Found by test/chaos-e2e.test.ts: a resync asked wazuh-db at T, authd removed agent 17 at T+0.5 s (captured:
  // `removed`), the resync's rows came back at T+1 s with agent 17 as it was at T — and the forgotten agent came
  // back, `unknown → disconnected`, in the stream and the KV bucket while wazuh-db had no such agent.
  const s = activeTable([17, 18, 19]);
  const askedAt = clock + 1_000_000n;
  clock += 5_000_000n;
  t.same(status(s.apply(ex('global delete-agent 17', 'ok', 'wazuh-authd'))), ['017:active>unknown/0/removed/authd']);
  t.same(status(s.resync([{ id: 17, connection_status: 'disconnected', status_code: 5 }, { id: 18, connection_status: 'disconnected', status_code: 5 }], askedAt)),
    ['018:active>disconnected/5/manager_reset/wazuh-db'], 'the resync corrects the others, not the removed agent');
  t.equal(s.get(17), undefined, 'still forgotten');
  s.setKnown({ id: 17, name: 'chaos-17' }); // client.keys read before authd rewrote it: a name, no request
  t.same(status(s.resync([{ id: 17, connection_status: 'disconnected', status_code: 5 }], askedAt)), [], 'named by client.keys since: the same');
  // A captured listing and a disconnect-agents whose requests started before the removal: the same.
  s.apply(ex('global delete-agent 19', 'ok', 'wazuh-authd'));
  t.same(status(s.apply(ex('global get-agents-by-connection-status 0 active node01 -1', 'ok [{"id":17},{"id":19}]', 'wazuh-remoted', { at: askedAt }))), [], 'a listing asked before');
  t.same(status(s.apply(ex('global disconnect-agents 0 1795796741 synced', 'ok [{"id":17},{"id":19}]', 'wazuh-monitord', { at: askedAt }))), [], 'a disconnect-agents asked before');
  t.equal(s.get(19), undefined);
  // Removed while not tracked at all (no event): an older view does not bring it in either.
  t.same(s.apply(ex('global delete-agent 25', 'ok', 'wazuh-authd')), []);
  t.same(status(s.resync([{ id: 25, connection_status: 'active' }], askedAt)), [], 'an agent never tracked, removed');
  // Asked after the removal, wazuh-db's word stands: the agent registered again with the same id.
  t.same(status(s.resync([{ id: 17, connection_status: 'never_connected' }], clock + 1_000_000n)),
    ['017:unknown>never_connected/0/initial_sync/wazuh-db'], 'a view newer than the removal applies');
});

t.test('bounded: agents beyond maxAgents are counted, not tracked', async (t) => {
  const s = table({ maxAgents: 3 });
  for (let id = 1; id <= 10; id++) s.apply(ex(PENDING(id)));
  t.equal(s.size, 3);
  t.equal(s.stats().overflow, 7);
});

t.test('ip_address is the live address: registration wildcards (any, a CIDR) are none, and never replace one', async (t) => {
  const s = table();
  s.setKnown({ id: 7, name: 'web07', ip: 'any' }); // client.keys, agent-auth's default
  const [pending] = s.apply(ex(PENDING(7))) as StatusChangeEvent[];
  t.equal(pending.ip_address, null, 'no live address yet: null, not "any"');
  const active = s.apply(ex(DATA(7))).find((e) => e.event_type === 'status_change') as StatusChangeEvent;
  t.match(active.ip_address, /^\d+\.\d+\.\d+\.\d+$/, 'the keepalive\'s agent_ip');
  const live = active.ip_address;
  s.setKnown({ id: 7, ip: '10.0.0.0/8' }); // client.keys rewritten with a CIDR
  s.setKnown({ id: 7, ip: 'any' });
  const [down] = s.apply(ex(SHUT(7))) as StatusChangeEvent[];
  t.equal(down.ip_address, live, 'the last live address stays');
  s.setKnown({ id: 8, ip: '192.168.1.8' }); // a registration with a fixed address is an address
  t.equal(s.get(8)!.ip, '192.168.1.8');
});
