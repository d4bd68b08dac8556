// Pairing replies with requests: FIFO per connection, never by thread; bounded; resets after loss.
import t from 'tap';
import { Pairer } from '../controller/src/decode/pairer.js';
import { HOLD_NS, WdbDecoder } from '../controller/src/decode/index.js';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { Pipeline } from '../controller/src/pipeline.js';
import type { AgentEvent, CaptureRecord, Direction, WdbFrame, WdbRequest } from '../controller/src/types.js';
import { wire } from './helpers/frames.js';

let clock = 0n;
function f(connId: string, direction: Direction, payload: string, o: Partial<WdbFrame> = {}): WdbFrame {
  return { connId, direction, payload, tsNs: ++clock, tgid: direction === 'request' ? 10 : 20, comm: direction === 'request' ? 'wazuh-remoted' : 'wazuh-db', ...o };
}

const KA = (id: number) => `global update-keepalive {"id":${id},"connection_status":"active","sync_status":"synced"}`;

t.test('replies pair with the outstanding request of the same connection', async (t) => {
  const p = new Pairer();
  t.equal(p.push(f('a', 'request', KA(1))), null);
  t.equal(p.push(f('b', 'request', KA(2))), null);
  const b = p.push(f('b', 'reply', 'err Cannot execute'));
  t.equal(b?.request.cmd === 'update-keepalive' && b.request.id, 2, 'b gets b’s request although a asked first');
  t.equal(b?.reply.status, 'err');
  const a1 = p.push(f('a', 'reply', 'ok'));
  t.equal(p.push(f('a', 'request', KA(3))), null);
  const a2 = p.push(f('a', 'reply', 'ok'));
  t.equal(a1?.request.cmd === 'update-keepalive' && a1.request.id, 1);
  t.equal(a2?.request.cmd === 'update-keepalive' && a2.request.id, 3);
  t.equal(a1?.comm, 'wazuh-remoted');
  t.equal(a1?.tgid, 10);
  t.equal(a1?.connId, 'a');
  t.same(p.stats(), { requests: 3, replies: 3, paired: 3, unpaired: 0, reordered: 0, malformedReplies: 0, invalidRequests: 0, droppedFields: 0, abandoned: 0, evicted: 0, placedByWrite: 3, connections: 2 });
});

t.test('a reply record lost whole: the next reply answers the request before it, not the one whose reply was lost', async (t) => {
  // monitord's connection: its disconnect-agents' reply lost in the perf buffer (each record a whole
  // write: the stream shows no gap). Paired oldest-first, get-agent-info's row would be read as
  // disconnect-agents' list, and every later pair would be off by one for good.
  const p = new Pairer();
  p.push(f('m', 'request', 'global disconnect-agents 0 1795796721 synced', { tsNs: 10n }));
  // its reply 'ok []' (tsNs 20) lost
  p.push(f('m', 'request', 'global get-agent-info 7', { tsNs: 30n }));
  const info = p.push(f('m', 'reply', 'ok [{"id":7,"connection_status":"active"}]', { tsNs: 40n }));
  t.equal(info?.request.cmd, 'get-agent-info', 'the row answers get-agent-info');
  t.equal(p.stats().abandoned, 1, 'disconnect-agents abandoned, counted');
  p.push(f('m', 'request', 'global disconnect-agents 0 1795796781 synced', { tsNs: 50n }));
  const next = p.push(f('m', 'reply', 'ok []', { tsNs: 60n }));
  t.equal(next?.request.cmd, 'disconnect-agents', 'and the next round pairs as it should');
  t.equal(p.unansweredBetween(0n, 100n), false, 'nothing left waiting: a resync\'s barrier is not held by it');
  // The rule keeps reordering: a reply that entered between two outstanding requests answers the first.
  p.push(f('r', 'request', KA(1), { tsNs: 100n }));
  p.push(f('r', 'request', KA(2), { tsNs: 120n })); // emitted before the reply below (another CPU)
  const one = p.push(f('r', 'reply', 'ok', { tsNs: 110n }));
  t.equal(one?.request.cmd === 'update-keepalive' && one.request.id, 1, 'entered before request 2: request 1\'s');
  const two = p.push(f('r', 'reply', 'err x', { tsNs: 130n }));
  t.equal(two?.request.cmd === 'update-keepalive' && two.request.id, 2);
  t.equal(p.stats().abandoned, 1, 'nothing more abandoned');
  // Frames of one write share its time: requests written together (no Wazuh daemon does) pair in order.
  p.push(f('w', 'request', KA(1), { tsNs: 200n }));
  p.push(f('w', 'request', KA(2), { tsNs: 200n }));
  const w1 = p.push(f('w', 'reply', 'ok', { tsNs: 210n }));
  const w2 = p.push(f('w', 'reply', 'err x', { tsNs: 211n }));
  t.same([w1?.request, w2?.request].map((r) => r?.cmd === 'update-keepalive' && r.id), [1, 2], 'two requests of one write, two replies');
  t.equal(p.stats().abandoned, 1, 'none abandoned');
});

t.test('the thread does not matter: wazuh-db answers from any worker', async (t) => {
  const p = new Pairer();
  p.push(f('c', 'request', KA(1), { tgid: 1 }));
  const ex = p.push(f('c', 'reply', 'ok', { tgid: 999 }));
  t.equal(ex?.tgid, 1, 'the exchange carries the requester');
});

t.test('unpaired replies are held briefly, then counted and dropped', async (t) => {
  const p = new Pairer();
  t.equal(p.push(f('x', 'reply', 'ok', { tsNs: 100n })), null, 'no request yet: held');
  t.equal(p.stats().unpaired, 0);
  t.equal(p.push(f('x', 'request', KA(1), { tsNs: 200n })), null, 'a later request cannot be what it answered');
  t.equal(p.stats().unpaired, 1);
  t.equal(p.push(f('x', 'reply', 'ok', { tsNs: 150n })), null, 'older than the outstanding request: held, not paired');
  const ex = p.push(f('x', 'reply', 'err x', { tsNs: 300n }));
  t.equal(ex?.reply.status, 'err', 'the request gets the reply that followed it');
  p.push(f('x', 'request', KA(2), { tsNs: 400n }));
  t.equal(p.stats().unpaired, 2);
  for (let i = 0; i < 10; i++) p.push(f('y', 'reply', 'ok', { tsNs: BigInt(i) }));
  t.equal(p.stats().unpaired, 2 + 6, 'held replies are bounded (4 per connection)');
});

t.test('a reply emitted before its request (another CPU’s ring) still pairs, and later pairs stay aligned', async (t) => {
  const p = new Pairer();
  t.equal(p.push(f('o', 'reply', 'ok', { tsNs: 11n })), null);
  const first = p.push(f('o', 'request', KA(1), { tsNs: 10n }));
  t.equal(first?.request.cmd === 'update-keepalive' && first.request.id, 1);
  t.equal(first?.reply.status, 'ok');
  t.equal(first?.tsNs, 10n, 'stamped with the request');
  p.push(f('o', 'request', KA(2), { tsNs: 12n }));
  const second = p.push(f('o', 'reply', 'err y', { tsNs: 13n }));
  t.equal(second?.request.cmd === 'update-keepalive' && second.request.id, 2);
  t.equal(second?.reply.status, 'err');
  t.match(p.stats(), { paired: 2, reordered: 1, unpaired: 0 });
});

t.test('malformed replies still pair (as unk) and are counted', async (t) => {
  const p = new Pairer();
  p.push(f('m', 'request', KA(1)));
  const ex = p.push(f('m', 'reply', 'OK!'));
  t.equal(ex?.reply.status, 'unk');
  t.equal(p.stats().malformedReplies, 1);
});

t.test('bounded queue per connection and bounded connections', async (t) => {
  const p = new Pairer({ maxQueue: 2, maxConnections: 2 });
  p.push(f('q', 'request', KA(1)));
  p.push(f('q', 'request', KA(2)));
  p.push(f('q', 'request', KA(3)));
  t.equal(p.stats().abandoned, 1, 'past maxQueue the oldest goes');
  const ex = p.push(f('q', 'reply', 'ok'));
  t.equal(ex?.request.cmd === 'update-keepalive' && ex.request.id, 3, 'the reply after request 3 is request 3\'s');
  t.equal(p.stats().abandoned, 2, 'request 2, whose reply was lost, abandoned');
  p.push(f('r', 'request', KA(4)));
  p.push(f('s', 'request', KA(5))); // evicts q, the least recently used
  t.equal(p.stats().evicted, 1);
  t.equal(p.stats().connections, 2);
  t.equal(p.push(f('q', 'reply', 'ok')), null);
  const dflt = new Pairer();
  for (let i = 0; i < 70; i++) dflt.push(f('d', 'request', KA(i + 1)));
  t.equal(dflt.stats().abandoned, 6, '64 kept by default');
});

t.test('requests waiting for replies are bounded in bytes, all connections together: the least recently used go first', async (t) => {
  // Replies that never come (a client gone before wazuh-db answered, wazuh-db killed): without a
  // bound in bytes, 65,536 connections of 8 large parsed requests each.
  const big = (id: number) => `global sync-agent-info-set [{"id":${id},"name":"${'n'.repeat(900)}"}]`;
  const p = new Pairer({ maxQueuedBytes: 3000 });
  p.push(f('old', 'request', big(1)));
  p.push(f('mid', 'request', big(2)));
  p.push(f('new', 'request', big(3)));
  t.equal(p.stats().abandoned, 0, 'three of ~950 bytes fit');
  p.push(f('new', 'reply', 'ok'));
  p.push(f('new', 'request', big(4)));
  p.push(f('mid', 'request', big(5))); // mid's request 2 still waits: 4 waiting, over the bound
  t.equal(p.stats().abandoned, 1, 'one dropped');
  t.equal(p.push(f('old', 'reply', 'ok')), null, 'the least recently used connection\'s: old\'s request 1');
  const four = p.push(f('new', 'reply', 'ok'));
  t.equal(four?.request.cmd, 'sync-agent-info-set', 'the others still pair');
  for (let i = 0; i < 1000; i++) p.push(f(`c${i}`, 'request', big(10 + i)));
  t.ok(p.stats().abandoned >= 997, `a thousand connections' requests held to the bound (${p.stats().abandoned} dropped)`);
  t.equal(p.unansweredBetween(0n, clock), true, 'the newest still wait');
});

t.test('reset and close', async (t) => {
  const p = new Pairer();
  p.push(f('z', 'request', KA(1)));
  p.reset('z');
  t.equal(p.push(f('z', 'reply', 'ok')), null);
  p.push(f('z', 'request', KA(2)));
  p.close('z');
  t.equal(p.stats().connections, 0);
  t.equal(p.stats().abandoned, 2);
});

function rec(client: number, direction: Direction, data: Uint8Array, tsNs: bigint, readNs?: bigint): CaptureRecord {
  const c = direction === 'request';
  return {
    tsNs, tgid: c ? client : 1, tid: c ? client : 1, comm: c ? 'wazuh-remoted' : 'wazuh-db',
    localIno: c ? client : 9000, peerIno: c ? 9000 : client, direction,
    syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto',
    ...(readNs !== undefined && { readNs }),
  };
}

t.test('decoder: a lost reply resets pairing so later replies are not shifted onto the wrong request', async (t) => {
  const d = new WdbDecoder();
  d.push(rec(1, 'request', wire(KA(1)), 1n));
  const broken = wire('ok');
  broken[3] = 0xff; // the reply's header is corrupt
  t.same(d.push(rec(1, 'reply', broken, 2n)), []);
  d.push(rec(1, 'request', wire(KA(2)), 3n));
  const ex = d.push(rec(1, 'reply', wire('err Cannot execute Global database query'), 4n));
  t.equal(ex.length, 1);
  t.equal(ex[0].request.cmd === 'update-keepalive' && ex[0].request.id, 2, 'the err answers request 2, not 1');
  t.equal(d.stats().pairer.abandoned, 1);
  t.equal(d.stats().reassembler.malformed, 1);
});

t.test('decoder: two clients interleaved on their own connections; the exchanges in request order', async (t) => {
  const d = new WdbDecoder();
  const out = [];
  out.push(...d.push(rec(1, 'request', wire(KA(1)), 1n)));
  out.push(...d.push(rec(2, 'request', wire(KA(2)), 2n)));
  t.same(d.push(rec(2, 'reply', wire('ok'), 3n)), [], 'answered first, but 1 began before it: it waits');
  t.equal(d.holding, 1);
  out.push(...d.push(rec(1, 'reply', wire('err x'), 4n)));
  t.same(out.map((e) => [e.connId, e.request.cmd === 'update-keepalive' && e.request.id, e.reply.status]),
    [['1', 1, 'err'], ['2', 2, 'ok']]);
  t.equal(d.holding, 0);
  d.close('1');
  t.equal(d.stats().pairer.connections, 1);
});

t.test('decoder: invalid requests, malformed replies and dropped fields are counted; malformed sums the frames dropped', async (t) => {
  const d = new WdbDecoder();
  d.push(rec(1, 'request', wire('global update-keepalive {"id":99999999999,"connection_status":"pending","sync_status":"synced"}', true), 1n));
  const ex = d.push(rec(1, 'reply', wire('ok'), 2n));
  t.equal(ex.length, 1, 'still paired, so the reply is not shifted onto the next request');
  t.equal(ex[0].request.cmd, 'invalid');
  d.push(rec(1, 'request', wire('global update-keepalive {"id":3,"connection_status":"pending","sync_status":"synced\\u0007"}'), 3n));
  d.push(rec(1, 'reply', wire('what'), 4n));
  d.push(rec(2, 'request', wire('global delete-agent 1000000000'), 5n)); // never answered: counted all the same
  t.match(d.stats().pairer, { invalidRequests: 2, malformedReplies: 1, droppedFields: 1 });
  t.match(d.summary(), { frames: 5, malformed: 3, malformedStreams: 0, invalidRequests: 2, malformedReplies: 1, droppedFields: 1 });
  const broken = wire('ok');
  broken[3] = 0xff;
  d.push(rec(3, 'reply', broken, 6n));
  t.match(d.summary(), { malformed: 4, malformedStreams: 1 }, 'the reassembler\'s own count is part of it');
});

t.test('decoder: a tick stands for the request last sent whole under its key, for each agent', async (t) => {
  const misses: number[] = [];
  const d = new WdbDecoder({ onTickMiss: (k) => misses.push(k) });
  const data = (id: number, ip: string, extra = '') => `global update-agent-data {"id":${id},"os_name":"Ubuntu","os_version":"22.04","os_major":"22",`
    + `"os_platform":"ubuntu","os_arch":"x86_64","os_uname":"Linux |u |5.15","version":"Wazuh v4.7.5","manager_host":"m1",`
    + `"node_name":"node01","agent_ip":"${ip}","connection_status":"active","sync_status":"synced","group_config_status":"synced"${extra}}`;
  const whole = (client: number, payload: string, key: number, hash: number, ts: bigint) => {
    const r = rec(client, 'request', wire(payload), ts);
    r.keyed = { key, hash };
    d.push(r);
    return d.push(rec(client, 'reply', wire('ok'), ts + 1n))[0];
  };
  const tick = (client: number, key: number, hash: number, ts: bigint) => {
    const r = { ...rec(client, 'request', new Uint8Array(0), ts), keyed: { key, hash }, tick: { replyTsNs: ts + 1n } };
    return d.push(r);
  };
  const first = whole(1, data(7, '10.0.0.7'), 7, 70, 10n);
  const second = whole(1, data(8, '10.0.0.8'), 8, 80, 20n);
  const partial = whole(1, 'global update-agent-data {"id":9,"version":"Wazuh v4.7.5"}', 9, 90, 30n);
  t.equal(first.request.cmd, 'update-agent-data');
  const [a] = tick(1, 7, 70, 40n);
  const [b] = tick(2, 8, 80, 50n);
  const [c] = tick(1, 9, 90, 60n);
  const slim = (ex: typeof first) => {
    if (ex.request.cmd !== 'update-agent-data') throw new Error('not update-agent-data');
    const { manager_host: _h, os_major: _m, os_uname: _u, ...kept } = ex.request.data;
    return { ...ex.request, data: kept };
  };
  t.strictSame(a.request, slim(first), 'agent 7: its own id and address, the shared values');
  t.strictSame(b.request, slim(second), 'agent 8: its own id and address, the same shared values');
  t.strictSame(c.request, partial.request, 'fields the whole request did not have stay absent');
  t.same([a.reply.status, a.tsNs, a.replyTsNs, a.connId, b.connId], ['ok', 40n, 41n, '1', '2']);
  t.same(tick(1, 7, 71, 70n), [], 'another hash: not this payload, nothing applied');
  t.same(misses, [7]);
  t.match(d.stats(), { ticks: 3, tickMisses: 1, keyed: 3 });
  t.equal(d.summary().placedByWrite, 6, 'three exchanges and three ticks without a read: placed by their writes, counted');
  const read = d.push({ ...rec(1, 'request', new Uint8Array(0), 72n, 73n), keyed: { key: 7, hash: 70 }, tick: { replyTsNs: 74n } });
  t.same(read.map((ex) => ex.readNs), [73n], 'a tick carrying its read');
  t.equal(d.summary().placedByWrite, 6, 'is placed by it: not counted');
  // The whole 53 bits count (the hash is kept in a column of doubles): hashes that differ only high or only low.
  const big = 2 ** 53 - 1 - 2 ** 30;
  whole(1, data(10, '10.0.0.10'), 10, big, 80n);
  t.equal(tick(1, 10, big, 90n).length, 1, 'the same 53-bit hash: a tick');
  t.same(tick(1, 10, big - 2 ** 40, 100n), [], 'another hash in the high bits only: a miss');
  t.same(tick(1, 10, big - 1, 110n), [], 'another hash in the low bits only: a miss');
  t.same(misses, [7, 10, 10]);
});

t.test('decoder: bounded kept parses — past maxKeyed the lowest agent id is let go, and only its next tick misses', async (t) => {
  const misses: number[] = [];
  const d = new WdbDecoder({ maxKeyed: 3, onTickMiss: (k) => misses.push(k) });
  const data = (id: number) => `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","agent_ip":"10.0.0.${id}","connection_status":"active"}`;
  let ts = 1n;
  const whole = (id: number) => {
    const r = rec(1, 'request', wire(data(id)), ts++);
    r.keyed = { key: id, hash: id * 10 };
    d.push(r);
    d.push(rec(1, 'reply', wire('ok'), ts++));
  };
  const tick = (id: number) => d.push({ ...rec(1, 'request', new Uint8Array(0), ts++), keyed: { key: id, hash: id * 10 }, tick: { replyTsNs: ts++ } });
  for (const id of [5, 3, 9]) whole(id);
  t.equal(d.stats().keyed, 3);
  whole(7); // a fourth: agent 3 (the lowest) goes
  t.equal(d.stats().keyed, 3, 'still at the bound');
  t.same(tick(3), [], 'the one let go misses');
  t.same(misses, [3]);
  for (const id of [5, 7, 9]) {
    const ex = tick(id);
    t.equal(ex.length, 1, `agent ${id} still ticks`);
    // Agent 7 took the slot agent 3 gave back (decode/kept.ts): its own values, none of 3's.
    const req = ex[0]?.request;
    t.same(req?.cmd === 'update-agent-data' && [req.data.id, req.data.agent_ip], [id, `10.0.0.${id}`], `agent ${id}'s own id and address`);
  }
  whole(3); // sent whole again (the shim does after a miss): kept again, the lowest of the rest goes
  t.equal(tick(3).length, 1);
  t.same(tick(5), [], 'agent 5 was the lowest then');
  t.same(misses, [3, 5]);
});

t.test('unansweredBetween: a request of that span still waits for its reply (a resync\'s barrier)', async (t) => {
  const p = new Pairer();
  p.push(f('a', 'request', KA(1), { tsNs: 100n }));
  p.push(f('b', 'request', KA(2), { tsNs: 200n }));
  t.equal(p.unansweredBetween(0n, 1000n), true);
  t.equal(p.unansweredBetween(150n, 1000n), true, 'b\'s');
  t.equal(p.unansweredBetween(201n, 1000n), false, 'none entered after 200');
  t.equal(p.unansweredBetween(0n, 100n), false, 'the end is excluded');
  p.push(f('b', 'reply', 'ok', { tsNs: 250n }));
  t.equal(p.unansweredBetween(150n, 1000n), false, 'b answered');
  t.equal(p.unansweredBetween(0n, 1000n), true, 'a not yet');
  p.push(f('a', 'reply', 'ok', { tsNs: 260n }));
  t.equal(p.unansweredBetween(0n, 1000n), false);
  const d = new WdbDecoder();
  t.equal(d.unansweredBetween(0n, 1000n), false, 'the decoder asks its pairer');
});

// Exchanges leave in the order wazuh-db applied their requests, not their replies' (decode/apply-order.ts).
t.test('apply order: an exchange waits while a request that began before it waits for its reply — at most HOLD_NS', async (t) => {
  const MS = 1_000_000n;
  const ids = (exs: { request: WdbRequest }[]) => exs.map((e) => ('id' in e.request ? e.request.id : e.request.cmd));
  const d = new WdbDecoder();
  d.push(rec(1, 'request', wire(KA(1)), 100n * MS));
  d.push(rec(2, 'request', wire(KA(2)), 102n * MS));
  t.same(d.push(rec(2, 'reply', wire('ok'), 103n * MS)), [], '2 answered first: waits for 1');
  t.equal(d.unansweredBetween(103n * MS, 104n * MS), true, 'an exchange of before 104 ms is not applied yet: a resync\'s barrier waits');
  t.equal(d.unansweredBetween(200n * MS, 300n * MS), true, 'rows read at 300 ms would show 2\'s change: they wait for it too');
  t.equal(d.unansweredBetween(0n, 102n * MS), true, '1 is unanswered');
  t.equal(new WdbDecoder().unansweredBetween(0n, 300n * MS), false, 'nothing held, nothing waiting');
  t.same(d.release(140n * MS), [], '40 ms on: 1 may still be answered');
  t.same(ids(d.release(151n * MS)), [2], 'past HOLD_NS: 1 holds nothing any more');
  t.equal(HOLD_NS, 50n * MS);
  t.same(ids(d.push(rec(1, 'reply', wire('ok'), 152n * MS))), [1], 'its late reply still pairs');

  // A later record's time lets them go too, without a timer.
  d.push(rec(3, 'request', wire(KA(3)), 200n * MS));
  d.push(rec(4, 'request', wire(KA(4)), 201n * MS));
  t.same(d.push(rec(4, 'reply', wire('ok'), 202n * MS)), []);
  t.same(ids(d.push(rec(5, 'request', wire(KA(5)), 260n * MS))), [4], 'the clock moved past 3\'s HOLD_NS: 4 goes');
  t.same(ids(d.push(rec(5, 'reply', wire('ok'), 261n * MS))), [5]);

  // Requests that change or show no status never hold: an agent database's, a `global sql`.
  d.push(rec(6, 'request', wire('agent 001 syscollector save2 {}'), 300n * MS));
  d.push(rec(7, 'request', wire('global sql SELECT 1'), 301n * MS));
  d.push(rec(8, 'request', wire(KA(8)), 302n * MS));
  t.same(ids(d.push(rec(8, 'reply', wire('ok'), 303n * MS))), [8], 'not held by 6 or 7');

  // A connection closed (its client gone): its request holds nothing; release(null) lets everything go.
  d.push(rec(9, 'request', wire(KA(9)), 400n * MS));
  d.push(rec(10, 'request', wire(KA(10)), 401n * MS));
  t.same(d.push(rec(10, 'reply', wire('ok'), 402n * MS)), []);
  d.close('9');
  t.same(ids(d.release(403n * MS)), [10], 'closed: no reply will come');
  d.push(rec(11, 'request', wire(KA(11)), 500n * MS));
  d.push(rec(12, 'request', wire(KA(12)), 501n * MS));
  d.push(rec(12, 'reply', wire('ok'), 502n * MS));
  t.same(ids(d.release(null)), [12], 'null: the capture is over');
  t.equal(d.stats().held, 0);
});

t.test('apply order: a tick waits for an earlier request\'s reply too; exchanges of one write keep their order', async (t) => {
  const MS = 1_000_000n;
  const d = new WdbDecoder();
  const data = 'global update-agent-data {"id":1,"version":"Wazuh v4.7.5","agent_ip":"10.0.0.1","connection_status":"active","sync_status":"synced"}';
  const r = rec(3, 'request', wire(data), 1n * MS);
  r.keyed = { key: 1, hash: 11 };
  d.push(r);
  d.push(rec(3, 'reply', wire('ok'), 2n * MS));
  // The pending of agent 1 (remoted's first thread), then its keepalive as a tick (the second): pending's reply late.
  d.push(rec(1, 'request', wire('global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}'), 10n * MS));
  t.same(d.push({ ...rec(2, 'request', new Uint8Array(0), 12n * MS), keyed: { key: 1, hash: 11 }, tick: { replyTsNs: 13n * MS } }), [], 'the tick waits');
  const out = d.push(rec(1, 'reply', wire('ok'), 16n * MS));
  t.same(out.map((e) => e.request.cmd === 'update-keepalive' ? e.request.connection_status : e.request.cmd), ['pending', 'update-agent-data']);

  // Two requests in one write (no Wazuh daemon does it): paired in order, released in order.
  const two = new Uint8Array([...wire(KA(21)), ...wire(KA(22))]);
  d.push(rec(4, 'request', two, 20n * MS));
  const first = d.push(rec(4, 'reply', wire('ok'), 21n * MS));
  const second = d.push(rec(4, 'reply', wire('ok'), 22n * MS));
  t.same([...first, ...second].map((e) => 'id' in e.request && e.request.id), [21, 22]);
});

t.test('apply order through the state: a reconnecting agent\'s pending, then active, although active was answered first', async (t) => {
  const MS = 1_000_000n;
  const state = new AgentStateTable({ managerNode: 'n1', wallClockMs: (ns) => Number(ns / MS) });
  state.setKnown({ id: 1, name: 'a1', status: 'disconnected', status_code: 3 });
  const events: AgentEvent[] = [];
  const p = new Pipeline(new WdbDecoder(), state, { event: (ev) => events.push(ev) });
  p.push([rec(1, 'request', wire('global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}', true), 100n * MS)]);
  p.push([rec(2, 'request', wire('global update-agent-data {"id":1,"version":"Wazuh v4.7.5","agent_ip":"10.0.0.1","connection_status":"active","sync_status":"synced","group_config_status":"synced"}', true), 102n * MS)]);
  p.push([rec(2, 'reply', wire('ok'), 102n * MS + 50_000n)]);
  t.same(events, [], 'active\'s exchange waits for pending\'s reply');
  p.push([rec(1, 'reply', wire('ok'), 105n * MS)]);
  t.same(events.map((e) => e.event_type === 'status_change' && `${e.previous_status}>${e.current_status} ${e.reason}`).filter(Boolean),
    ['disconnected>pending agent_startup', 'pending>active keepalive']);
  t.equal(state.get(1)?.status, 'active', 'as wazuh-db has it');
  // The caller's timer (Pipeline.release): an exchange whose earlier request is never answered is applied HOLD_NS later.
  p.push([rec(3, 'request', wire('global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}', true), 200n * MS)]);
  p.push([rec(4, 'request', wire('global update-keepalive {"id":2,"connection_status":"pending","sync_status":"synced"}', true), 201n * MS)]);
  p.push([rec(4, 'reply', wire('ok'), 202n * MS)]);
  const before = events.length;
  p.release(230n * MS);
  t.equal(events.length, before, 'not yet');
  p.release(251n * MS);
  t.equal(state.get(1)?.status, 'active', 'the unanswered shutdown changed nothing');
  t.ok(events.length > before, 'agent 2\'s exchange applied');
});

t.test('apply order by wazuh-db\'s reads: a request read late (its worker woken late) is applied after a later one read first', async (t) => {
  const MS = 1_000_000n;
  const state = new AgentStateTable({ managerNode: 'n1', wallClockMs: (ns) => Number(ns / MS) });
  state.setKnown({ id: 1, name: 'a1', status: 'disconnected', status_code: 3 });
  state.setKnown({ id: 2, name: 'a2', status: 'disconnected', status_code: 3 });
  const events: AgentEvent[] = [];
  const decoder = new WdbDecoder();
  const p = new Pipeline(decoder, state, { event: (ev) => events.push(ev) });
  const PENDING = (id: number) => wire(`global update-keepalive {"id":${id},"connection_status":"pending","sync_status":"synced"}`, true);
  const ACTIVE = (id: number) => wire(`global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","agent_ip":"10.0.0.1","connection_status":"active","sync_status":"synced","group_config_status":"synced"}`, true);
  const seen = () => events.map((e) => e.event_type === 'status_change' && `${e.agent_id}:${e.previous_status}>${e.current_status}`).filter(Boolean);
  // Agent 1: pending written first but read 6 ms late, after active (written 2 ms later) was read: wazuh-db
  // applied active, then pending. Its reply comes last.
  p.push([rec(1, 'request', PENDING(1), 100n * MS)]);
  p.push([rec(2, 'request', ACTIVE(1), 102n * MS)]);
  p.push([rec(2, 'reply', wire('ok'), 103n * MS, 102n * MS + 100_000n)]);
  t.same(seen(), [], 'active waits: pending, unanswered, may have been read before it');
  p.push([rec(1, 'reply', wire('ok'), 107n * MS, 106n * MS)]);
  t.same(seen(), ['001:disconnected>active', '001:active>pending'], 'in the order of the reads');
  t.equal(decoder.summary().placedByWrite, 0, 'both placed by their reads');
  t.same(events.filter((e) => e.event_type === 'status_change').map((e) => e.time), ['1970-01-01T00:00:00.102Z', '1970-01-01T00:00:00.106Z'], 'at the reads\' times: never back in time');
  t.equal(state.get(1)?.status, 'pending', 'as wazuh-db has it');
  t.equal(state.stats().superseded, 0, 'pending, read after active, is no stale write');

  // Agent 2: a reply whose thread's last read is older than its request (an earlier request's): unknown,
  // the write's time stands in — pending (written first) is applied first.
  events.length = 0;
  p.push([rec(3, 'request', PENDING(2), 200n * MS)]);
  p.push([rec(4, 'request', ACTIVE(2), 202n * MS)]);
  p.push([rec(4, 'reply', wire('ok'), 203n * MS, 150n * MS)]);
  p.push([rec(3, 'reply', wire('ok'), 204n * MS)]);
  t.same(seen(), ['002:disconnected>pending', '002:pending>active'], 'a stale read is no read');
  t.equal(decoder.summary().placedByWrite, 2, 'both counted as placed by their writes (a stale read, none)');
  t.equal(decoder.summary().abandoned, 0, 'none given up');

  // Two requests written back to back on one connection before any reply (no Wazuh client does): the
  // first is taken for one whose reply was lost — given up, and counted where status shows it.
  p.push([rec(5, 'request', PENDING(3), 300n * MS)]);
  p.push([rec(5, 'request', ACTIVE(3), 301n * MS)]);
  p.push([rec(5, 'reply', wire('ok'), 302n * MS)]);
  p.push([rec(5, 'reply', wire('ok'), 303n * MS)]);
  t.equal(decoder.summary().abandoned, 1, 'the first given up: counted in the summary (status --json decoder.abandoned)');
});
