// The I/O sources of agent state: etc/client.keys (parse, read, watch) and the initial sync through
// wazuh-db's own socket, against real temp files and the simulator's real wazuh-db.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimManager, type SimAgent } from '../scripts/sim/manager.mjs';
import { buildSim } from '../scripts/sim/build-sim.mjs';
import { AgentStateTable } from '../controller/src/state/agents.js';
import {
  applyClientKeys, clientKeysPath, parseClientKeys, readClientKeys, watchClientKeys,
} from '../controller/src/state/sources/client-keys.js';
import { describeAgents, initialSync, seedTable, wdbSocketPath } from '../controller/src/state/sources/initial-sync.js';
import { type HeldAgents, idsToDescribe, isListableNode, MAX_LISTED_NODES } from '../controller/src/state/sources/listed-statuses.js';
import type { WazuhConnectionStatus } from '../controller/src/types.js';
import net from 'node:net';
import { encodeFrame, FrameReader } from '../controller/src/state/sources/wdb-wire.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { parseReply } from '../controller/src/decode/wdb-reply.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = await buildSim(path.join(repo, 'build', 'sim'));
const KEY = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
const table = () => new AgentStateTable({ managerNode: 'n1', wallClockMs: (ts) => 1.7e12 + Number(ts / 1_000_000n) });

function tmpDir(t: Test): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'proto-src-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('client.keys: ID NAME IP KEY; removed entries; the key is never kept', async (t) => {
  const text = [
    `001 web-01 any ${KEY(1)}`,
    `002 db.02 10.0.0.2 ${KEY(2)}`,
    `003 !gone any ${KEY(3)}`,
    `004 #old 10.0.0.0/24 ${KEY(4)}`,
    '',
    `  005\tspaced_5   192.168.1.5  ${KEY(5)}  `,
    'garbage line',
    `006 six any`,
    `abc bad any ${KEY(7)}`,
    `001 dup any ${KEY(8)}`,
    `007 ${'x'.repeat(200)} any ${KEY(9)}`,
  ].join('\n');
  const keys = parseClientKeys(text);
  t.same(keys.agents, [
    { id: 1, name: 'web-01', ip: 'any' },
    { id: 2, name: 'db.02', ip: '10.0.0.2' },
    { id: 5, name: 'spaced_5', ip: '192.168.1.5' },
  ]);
  t.same(keys.removed, [3, 4]);
  t.equal(keys.malformed, 5);
  const dump = JSON.stringify(keys);
  for (let i = 1; i <= 9; i++) t.notMatch(dump, KEY(i), `key ${i} not kept`);
  t.same(parseClientKeys(''), { agents: [], removed: [], malformed: 0 });
  t.equal(parseClientKeys(`001 a any ${KEY(1)}\n002 b any ${KEY(2)}`, 1).malformed, 1, 'entry bound');

  const s = table();
  s.setKnown({ id: 2, ip: '172.16.0.9', status: 'active' });
  t.equal(applyClientKeys(s, keys), 3);
  t.match(s.get(1), { name: 'web-01', ip: null, status: 'unknown' }, 'name, no status; `any` is no address (SPEC §3)');
  t.match(s.get(2), { name: 'db.02', ip: '172.16.0.9', status: 'active' }, 'a live address is not replaced by the registration one');
  t.equal(s.get(3), undefined, 'removed entries are not added');
  t.same(s.stats().statusEvents, 0);
});

t.test('readClientKeys: missing file is empty, size is bounded', async (t) => {
  const d = tmpDir(t);
  const f = path.join(d, 'client.keys');
  t.same(await readClientKeys(f), { agents: [], removed: [], malformed: 0 });
  fs.writeFileSync(f, `001 a any ${KEY(1)}\n`);
  t.same((await readClientKeys(f)).agents, [{ id: 1, name: 'a', ip: 'any' }]);
  await t.rejects(readClientKeys(f, 10), /more than the 10 allowed/);
  t.equal(clientKeysPath('/var/ossec'), '/var/ossec/etc/client.keys');
});

t.test('watchClientKeys: first read, rename-over updates (debounced), feeds the table', async (t) => {
  const d = tmpDir(t);
  const f = path.join(d, 'client.keys');
  fs.writeFileSync(f, `001 first any ${KEY(1)}\n`);
  const s = table();
  const seen: number[][] = [];
  const errors: Error[] = [];
  const w = watchClientKeys(f, (k) => {
    seen.push(k.agents.map((a) => a.id));
    applyClientKeys(s, k);
  }, { debounceMs: 50, onError: (e) => errors.push(e) });
  t.teardown(() => w.close());
  await w.ready;
  t.same(seen, [[1]], 'read at start');
  t.equal(s.get(1)?.name, 'first');

  // authd rewrites through a temporary file and a rename; a burst of writes is one read.
  for (let i = 2; i <= 6; i++) {
    const lines = Array.from({ length: i }, (_, j) => `${String(j + 1).padStart(3, '0')} agent${j + 1} any ${KEY(j + 1)}\n`).join('');
    fs.writeFileSync(`${f}.tmp`, lines);
    fs.renameSync(`${f}.tmp`, f);
  }
  await until('the burst to be read', () => seen.at(-1)?.length === 6);
  t.ok(seen.length <= 3, `debounced: ${seen.length} reads for 5 rewrites`);
  t.equal(s.get(6)?.name, 'agent6');
  t.equal(s.get(1)?.name, 'agent1', 'renamed');

  fs.appendFileSync(f, `007 late 10.0.0.7 ${KEY(7)}\n`);
  await until('an append to be read', () => s.get(7)?.name === 'late');
  fs.writeFileSync(path.join(d, 'unrelated'), 'x');
  const before = seen.length;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(seen.length, before, 'another file in the directory is not a change');
  w.close();
  fs.appendFileSync(f, `008 after any ${KEY(8)}\n`);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(s.get(8), undefined, 'nothing after close');
  t.same(errors, []);
  t.notMatch(JSON.stringify(s.all()), KEY(1).slice(0, 16));
});

t.test('wire helpers: frames in, frames out', async (t) => {
  t.same([...encodeFrame('global get-agent-info 1')].slice(0, 4), [23, 0, 0, 0]);
  t.throws(() => encodeFrame(''));
  const r = new FrameReader();
  const a = Buffer.concat([encodeFrame('ok [{"id":1}]'), encodeFrame('due []')]);
  t.same(r.push(a.subarray(0, 3)), []);
  t.same(r.push(a.subarray(3, 20)), ['ok [{"id":1}]']);
  t.same(r.push(a.subarray(20)), ['due []']);
  t.throws(() => r.push(Buffer.from([0xff, 0xff, 0xff, 0x7f])), /over/);
});

t.test('initial sync: a missing socket is a reason, not a crash', async (t) => {
  const d = tmpDir(t);
  const r = await initialSync({ home: d, timeoutMs: 2000 });
  t.match(r, { agents: [], ids: [], complete: false, reason: /wazuh-db socket not found/ });
  t.equal(wdbSocketPath('/var/ossec'), '/var/ossec/queue/db/wdb');
  fs.mkdirSync(path.join(d, 'queue/db'), { recursive: true });
  fs.writeFileSync(path.join(d, 'queue/db/wdb'), '');
  const r2 = await initialSync({ home: d, timeoutMs: 2000 });
  t.equal(r2.complete, false);
  t.type(r2.reason, 'string');
});

/** A manager of 12 agents, pages of 5 rows: 1 active, 2 disconnected (shutdown), 3 pending, the others never connected. */
async function twelveAgents(t: Test, version: 4 | 5): Promise<{ agents: SimAgent[]; m: SimManager }> {
  const agents: SimAgent[] = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: `10.0.0.${i + 1}` }));
  const m = new SimManager({ binDir, home: tmpDir(t), agents, version, pageRows: 5 });
  t.teardown(() => m.stop());
  await m.start();
  for (const a of agents.slice(0, 3)) await m.startup(a);
  for (const a of agents.slice(0, 2)) await m.keepalive(a);
  await m.shutdown(agents[1]);
  return { agents, m };
}

for (const version of [4, 5] as const) {
  t.test(`initial sync against the simulator's wazuh-db (${version}.x, due pages)`, async (t) => {
    const { agents, m } = await twelveAgents(t, version);
    t.same(await m.pollActive(), [1], 'the sim pages its active list too');

    const r = await initialSync({ home: m.home, timeoutMs: 10000, pipeline: 4 });
    t.equal(r.reason, null);
    t.equal(r.complete, true);
    t.same(r.ids, agents.map((a) => a.id), 'every agent listed across due pages, the manager (0) excluded');
    t.ok(r.queries >= 3 + 12, `queries: ${r.queries}`);
    const byId = new Map(r.agents.map((a) => [a.id, a]));
    t.match(byId.get(1), { name: 'agent1', ip: '10.0.0.1', connection_status: 'active', status_code: 0, node_name: 'node01' });
    t.match(byId.get(2), { connection_status: 'disconnected', status_code: 3 });
    t.match(byId.get(3), { connection_status: 'pending' });
    t.match(byId.get(12), { name: 'agent12', connection_status: 'never_connected' });
    t.notMatch(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v)), 'internal_key');
    const raw = await m.rawreq('global get-agent-info 1');
    const key = /"internal_key":"([0-9a-f]{64})"/.exec(raw)?.[1];
    t.ok(key, 'the real rows carry a key');
    t.notMatch(JSON.stringify(r.agents), key!);

    // Seeded, the first transition has the right previous status.
    const s = table();
    t.equal(seedTable(s, r.agents), 12);
    t.same(s.countsByStatus(), { never_connected: 9, pending: 1, active: 1, disconnected: 1, unknown: 0 });
    const [ev] = s.apply({
      connId: 'x', tsNs: r.startedNs + 1_000_000n, tgid: 1, comm: m.daemon('remoted').slice(0, 15),
      request: parseRequest('global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}'),
      reply: parseReply('ok'),
    });
    t.match(ev, { previous_status: 'active', current_status: 'disconnected', agent_name: 'agent1', ip_address: '10.0.0.1', source: 'remoted' });
  });

  t.test(`initial sync, a light look (${version}.x): the ids by status, rows only for the agents whose status moved`, async (t) => {
    const { agents, m } = await twelveAgents(t, version);
    // The caller holds agents 1 and 4 as active on node01, 5 as active on node02, the others as never_connected:
    // agents 2 and 3 moved (disconnected, pending), 4 and 5 too (never_connected), and 1 is listed active on node01.
    const asked: number[] = [];
    const heldAs = (id: number) => (id === 1 || id === 4 ? 'active' : id === 5 ? 'active' : 'never_connected');
    const held: HeldAgents = {
      statusOf: (id) => { asked.push(id); return heldAs(id); },
      nodeOf: (id) => (id === 1 || id === 4 ? 'node01' : id === 5 ? 'node02' : null),
      nodes: () => ['node01', 'node02'],
    };
    const r = await initialSync({ home: m.home, timeoutMs: 10000, pipeline: 4, held });
    t.match(r, { complete: true, reason: null, statusesRefused: null, skipped: 8 });
    t.same(r.ids, agents.map((a) => a.id), 'every agent listed');
    t.same(asked.sort((a, b) => a - b), r.ids, 'each listed agent looked at once');
    t.same(r.agents.map((row) => [row.id, row.connection_status]), [[2, 'disconnected'], [3, 'pending'], [4, 'never_connected'], [5, 'never_connected']]);
    // 3 pages of ids (1 to 12; the manager, 0, is never listed), then 2 + 1 + 1 + 1 of statuses (never_connected's
    // 9 over pages of 5), one of each status on node01 and on node02, and 4 rows — against 3 + 12 for a full look.
    t.equal(r.queries, 3 + 5 + 2 * 4 + 4, `queries: ${r.queries}`);
  });

  t.test(`initial sync with onRows (${version}.x): the rows a chunk at a time, none held, the caller's time not the sync's`, async (t) => {
    const agents: SimAgent[] = Array.from({ length: 12 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: `10.0.0.${i + 1}` }));
    const m = new SimManager({ binDir, home: tmpDir(t), agents, version, pageRows: 5 });
    t.teardown(() => m.stop());
    await m.start();
    const whole = await initialSync({ home: m.home, timeoutMs: 10000, pipeline: 4 });
    t.equal(whole.described, 12, 'without onRows: described is the rows returned');
    const chunks: number[][] = [];
    const seen: unknown[] = [];
    let starts = new Set<bigint>();
    // Each chunk takes 600 ms: the first two are longer than the sync's whole time (1 s), which the
    // sync does not count in — counted, the third pipeline was never sent.
    const r = await initialSync({
      home: m.home, timeoutMs: 1000, pipeline: 4, rowsChunk: 4,
      onRows: async (rows, startedNs) => {
        chunks.push(rows.map((row) => row.id));
        seen.push(...rows);
        starts.add(startedNs);
        await new Promise((res) => setTimeout(res, 600));
      },
    });
    t.equal(r.reason, null);
    t.equal(r.complete, true);
    t.same(r.agents, [], 'nothing returned: every row went to onRows');
    t.equal(r.described, 12);
    t.same(chunks, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], 'a chunk once 4 rows are in (each pipeline of 4)');
    t.same(seen, whole.agents, 'the same rows as returned whole');
    t.same([...starts], [r.startedNs], "each chunk with the sync's start");

    // Rows gathered past a chunk's size by one pipeline are handed together.
    chunks.length = 0;
    await initialSync({ home: m.home, timeoutMs: 10000, pipeline: 4, rowsChunk: 5, onRows: (rows) => { chunks.push(rows.map((row) => row.id)); } });
    t.same(chunks, [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12]], 'a chunk once 5 rows are in (two pipelines of 4), the rest at the end');

    // A callback that throws ends the sync, and initialSync throws its error (the caller's, not wazuh-db's):
    // nothing more is handed to it.
    chunks.length = 0;
    starts = new Set();
    await t.rejects(initialSync({
      home: m.home, timeoutMs: 10000, pipeline: 4, rowsChunk: 4,
      onRows: (rows) => {
        chunks.push(rows.map((row) => row.id));
        if (chunks.length === 2) throw new Error('the table is gone');
      },
    }), { message: 'the table is gone' });
    t.same(chunks, [[1, 2, 3, 4], [5, 6, 7, 8]]);
  });
}

t.test('idsToDescribe: the agents a light look describes', async (t) => {
  const listings = new Map<WazuhConnectionStatus, number[]>([
    ['never_connected', [4, 9]], ['pending', [7]], ['active', [1, 3, 6, 7, 10, 11, 12]], ['disconnected', [2, 13, 14]],
  ]);
  const byNode = new Map([
    ['node01', new Map<WazuhConnectionStatus, number[]>([['active', [1, 3, 11]], ['disconnected', [14]]])],
    ['node02', new Map<WazuhConnectionStatus, number[]>([['active', [6, 10]], ['never_connected', [4]], ['disconnected', [13]]])],
  ]);
  const held = new Map<number, [string, string | null]>([
    [1, ['active', 'node01']], [2, ['active', 'node01']], [3, ['active', null]], [4, ['never_connected', 'node02']], [6, ['active', 'node01']],
    [7, ['pending', null]], [8, ['active', null]], [10, ['active', 'node02']], [11, ['active', 'node03']],
    [13, ['disconnected', 'node01']], [14, ['disconnected', 'node01']],
  ]);
  const asked: [number, string][] = [];
  const view = {
    statusOf: (id: number) => { const s = held.get(id)?.[0]; asked.push([id, String(s)]); return s as WazuhConnectionStatus | undefined; },
    nodeOf: (id: number) => held.get(id)?.[1] ?? null,
  };
  const ids = idsToDescribe([14, 13, 11, 10, 8, 7, 6, 4, 3, 2, 1, 5], listings, byNode, view);
  t.same(ids, [2, 5, 6, 7, 8, 11, 13], 'ascending: 2 (moved), 5 and 8 (in no listing), 7 (in two), 6 (held on node01, listed on node02), '
    + '11 (held on node03, not listed), 13 (disconnected, held on node01, listed on node02); 1, 3 (no node held), 4, 10 and 14 as held');
  t.same(asked.map(([id]) => id).sort((a, b) => a - b), [1, 2, 3, 4, 6, 10, 11, 13, 14],
    'asked only of the agents one listing names; 9 and 12 (not in the listing of ids) neither asked of nor described');
  t.same(idsToDescribe([], listings, byNode, view), []);
  t.same(idsToDescribe([5, 6], new Map(), new Map(), view), [5, 6], 'no listing: every agent');
  t.same([isListableNode('node01'), isListableNode('a b'), isListableNode(''), isListableNode('x'.repeat(128)), isListableNode('n\u00e9')],
    [true, false, false, false, false], 'a node is listed only as one printable word');
});

/**
 * A wazuh-db of agents 1 and 2, active on node01: get-all-agents and get-agent-info answered, and
 * get-agents-by-connection-status by `listing` (its words after `last_id`): a reply, or an `err`.
 */
async function fakeWdb(t: Test, listing: (words: string[]) => string | null): Promise<{ file: string; asked: string[] }> {
  const file = path.join(tmpDir(t), 'wdb');
  const asked: string[] = [];
  const server = net.createServer((sock) => {
    const reader = new FrameReader();
    sock.on('data', (chunk) => {
      for (const q of reader.push(chunk)) {
        asked.push(q);
        const info = /^global get-agent-info (\d+)$/.exec(q);
        const list = /^global get-agents-by-connection-status \d+ (.*)$/.exec(q);
        sock.write(encodeFrame(q.startsWith('global get-all-agents') ? 'ok [{"id":0},{"id":1},{"id":2}]'
          : info ? `ok [{"id":${info[1]},"name":"a${info[1]}","connection_status":"active","status_code":0,"node_name":"node01"}]`
            : (list && listing(list[1].split(' '))) ?? 'err Invalid DB query syntax, near \'get-agents-by-connection-status\''));
      }
    });
  });
  await new Promise<void>((res) => server.listen(file, res));
  t.teardown(() => server.close());
  return { file, asked };
}

const onNode01 = (nodes: string[] = ['node01']): HeldAgents => ({ statusOf: () => 'active', nodeOf: () => 'node01', nodes: () => nodes });
const byStatus = (words: string[]) => (words[0] === 'active' ? 'ok [{"id":1},{"id":2}]' : 'ok []');

t.test('initial sync, a light look at a wazuh-db that will not list by status: every agent described', async (t) => {
  const { file, asked } = await fakeWdb(t, () => null);
  const r = await initialSync({ socketPath: file, timeoutMs: 5000, held: onNode01() });
  t.match(r, { complete: true, reason: null, skipped: 0, statusesRefused: /get-agents-by-connection-status never_connected answered err/ });
  t.same(r.agents.map((row) => row.id), [1, 2], 'each agent described, as by a full look');
  t.equal(asked.filter((q) => q.includes('get-agents-by-connection-status')).length, 1, 'the first refusal ends the listings');

  // Listings by status given, by status and node refused: every agent described too.
  const node = await fakeWdb(t, (words) => (words.length === 1 ? byStatus(words) : null));
  const n = await initialSync({ socketPath: node.file, timeoutMs: 5000, held: onNode01() });
  t.match(n, { complete: true, reason: null, skipped: 0, statusesRefused: /get-agents-by-connection-status never_connected node01 answered err/ });
  t.same(n.agents.map((row) => row.id), [1, 2]);

  // node01's listings given, node02's refused (the agents are on node01): every agent described all the same.
  const second = await fakeWdb(t, (words) => (words.length === 1 ? byStatus(words) : words[1] === 'node02' ? null
    : words[0] === 'active' ? 'ok [{"id":1},{"id":2}]' : 'ok []'));
  const s2 = await initialSync({ socketPath: second.file, timeoutMs: 5000, held: onNode01(['node01', 'node02']) });
  t.match(s2, { complete: true, reason: null, skipped: 0, statusesRefused: /get-agents-by-connection-status never_connected node02 answered err/ });
  t.same(s2.agents.map((row) => row.id), [1, 2]);
});

t.test('AgentStateTable.nodes: the nodes of agents of every status, those with the most agents first', async (t) => {
  const s = table();
  seedTable(s, [
    { id: 1, connection_status: 'active', node_name: 'node01' },
    { id: 2, connection_status: 'disconnected', node_name: 'node02' },
    { id: 3, connection_status: 'disconnected', node_name: 'node02' },
    { id: 4, connection_status: 'never_connected', node_name: 'node03' },
    { id: 5, connection_status: 'pending', node_name: 'node03' },
    { id: 6, connection_status: 'never_connected', node_name: 'node03' },
    { id: 7, connection_status: 'never_connected' },
  ]);
  t.same(s.nodes(), ['node03', 'node02', 'node01']);
});

t.test(`initial sync, a light look: the agents of ${MAX_LISTED_NODES} nodes at most listed by node, those held on others described`, async (t) => {
  const { file, asked } = await fakeWdb(t, (words) => (words.length === 1 ? byStatus(words)
    : words[1] === 'node01' && words[0] === 'active' ? 'ok [{"id":1},{"id":2}]' : 'ok []'));
  const many = ['node01', 'a b', ...Array.from({ length: 30 }, (_, i) => `other${i}`)];
  const r = await initialSync({ socketPath: file, timeoutMs: 5000, held: onNode01(many) });
  t.match(r, { complete: true, reason: null, statusesRefused: null, skipped: 2 }, 'agents 1 and 2 listed active on node01, as held');
  const byNodeAsked = asked.filter((q) => /^global get-agents-by-connection-status \d+ \S+ \S+ -1$/.test(q));
  t.equal(byNodeAsked.length, 4 * MAX_LISTED_NODES, 'four listings a node, for the first nodes that can be named');
  t.notOk(byNodeAsked.some((q) => q.includes('a b')), 'a node with a space is not put in a command');

  // Held on a node past the cap: described.
  const past = await initialSync({ socketPath: file, timeoutMs: 5000, held: { ...onNode01(many), nodeOf: () => 'other29' } });
  t.match(past, { complete: true, statusesRefused: null, skipped: 0 });
  t.same(past.agents.map((row) => row.id), [1, 2]);
});

t.test('describeAgents: the rows wazuh-db has, the agents it has none for, and why it stopped', async (t) => {
  const agents: SimAgent[] = [1, 2, 3].map((id) => ({ id, name: `agent${id}`, ip: `10.0.0.${id}` }));
  const m = new SimManager({ binDir, home: tmpDir(t), agents });
  t.teardown(() => m.stop());
  await m.start();
  await m.startup(agents[1]);
  const r = await describeAgents({ home: m.home, ids: [2, 7, 0, 3], pipeline: 2 });
  t.equal(r.reason, null);
  t.same(r.rows.map((row) => [row.id, row.name, row.connection_status]), [[2, 'agent2', 'pending'], [3, 'agent3', 'never_connected']]);
  t.same(r.absent, [7], 'ok [] is no row; the manager (0) is never asked about');
  t.notMatch(JSON.stringify(r.rows), 'internal_key');
  t.type(r.startedNs, 'bigint');
  const missing = await describeAgents({ home: tmpDir(t), ids: [1] });
  t.match(missing, { rows: [], absent: [], reason: /wazuh-db socket not found/ });
  await m.db!.kill('SIGKILL');
  const gone = await describeAgents({ socketPath: m.wdbPath, ids: [1], timeoutMs: 2000 });
  t.type(gone.reason, 'string', 'a wazuh-db that is gone: a reason, not a crash');
});

t.test('initial sync: bounded in count and time', async (t) => {
  const agents: SimAgent[] = Array.from({ length: 6 }, (_, i) => ({ id: i + 1, name: `a${i + 1}`, ip: 'any' }));
  // Half a millisecond of CPU a request: a sync of several requests cannot end within the 1 ms deadline below
  // (a bare simulator answered them all in less, now that the deadline is measured to the microsecond).
  const m = new SimManager({ binDir, home: tmpDir(t), agents, pageRows: 2, cpuPerRequestUs: 500 });
  t.teardown(() => m.stop());
  await m.start();
  const r = await initialSync({ socketPath: m.wdbPath, maxAgents: 3 });
  t.match(r, { complete: false, reason: 'more than 3 agents' });
  t.ok(r.ids.length <= 3);
  const quick = await initialSync({ socketPath: m.wdbPath, timeoutMs: 1 });
  t.equal(quick.complete, false);
  t.ok(quick.elapsedMs < 1000, 'stops at its deadline');
  // wazuh-db stops: the sync returns what it could, with a reason.
  await m.db!.kill('SIGKILL');
  const gone = await initialSync({ socketPath: m.wdbPath, timeoutMs: 2000 });
  t.equal(gone.complete, false);
  t.type(gone.reason, 'string');
});

t.test('a light look reads its pages of ids as they come (nothing to redact in numbers), and a refusal\'s text redacted', async (t) => {
  const KEY = 'ab'.repeat(32); // shaped like an agent key (decode/redact.ts)
  // Pages with key-shaped values beside the ids: the ids read as before, nothing else kept.
  const { file } = await fakeWdb(t, (words) => (words.length === 1
    ? (words[0] === 'active' ? `ok [{"id":1,"internal_key":"${KEY}"},{"id":2,"x":"${KEY}"}]` : 'ok []')
    : words[0] === 'active' ? `ok [{"id":1},{"id":2,"internal_key":"${KEY}"}]` : 'ok []'));
  const r = await initialSync({ socketPath: file, timeoutMs: 5000, held: onNode01() });
  t.match(r, { complete: true, reason: null, statusesRefused: null, skipped: 2 }, 'agents 1 and 2 listed active on node01, as held');
  // A refusal that carries a key: the reason (logged) never does.
  const refused = await fakeWdb(t, () => `err near '${KEY}' internal_key`);
  const r2 = await initialSync({ socketPath: refused.file, timeoutMs: 5000, held: onNode01() });
  t.match(r2, { complete: true, statusesRefused: /never_connected answered err/ });
  t.notMatch(r2.statusesRefused, /abab|internal_key/, 'redacted');
  t.same(r2.agents.map((row) => row.id), [1, 2], 'every agent described');
});
