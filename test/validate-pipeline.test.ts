// Validation and the last guards, through the pipeline as the agent wires it (decoder → state →
// ReliablePublisher with a real spool, no NATS): a hostile id is refused by the decoder and counted as
// malformed; a record that still makes something throw is dropped and counted, the next one goes on; an
// event that cannot become a message is dropped and counted, the rest of its batch is spooled.
import t from 'tap';
import { WdbDecoder } from '../controller/src/decode/index.js';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { errorFields, Pipeline } from '../controller/src/pipeline.js';
import type { ReliablePublisher } from '../controller/src/publish/reliable.js';
import { connIdOf, type AgentEvent, type CaptureRecord, type Direction, type KeepaliveEvent, type StatusChangeEvent } from '../controller/src/types.js';
import { RateLimitedLog } from '../controller/src/util/rate-limit.js';
import { wire } from './helpers/frames.js';
import { offlinePublisher, spooled } from './helpers/spooled.js';

let clock = 0n;
function rec(conn: number, direction: Direction, payload: string): CaptureRecord {
  const data = wire(payload, direction === 'request');
  const c = direction === 'request';
  return {
    tsNs: (clock += 1000n), tgid: c ? conn : 1, tid: c ? conn : 1, comm: c ? 'wazuh-remoted' : 'wazuh-db',
    localIno: c ? conn : 9000, peerIno: c ? 9000 : conn, direction, syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto',
  };
}
const roundTrip = (conn: number, q: string, a = 'ok') => [rec(conn, 'request', q), rec(conn, 'reply', a)];

/** The agent's wiring (agent.ts): events of one push are spooled together at flush. */
function wired(pub: ReliablePublisher) {
  const decoder = new WdbDecoder();
  const state = new AgentStateTable({ managerNode: 'node-1', wallClockMs: (ns) => 1.7e12 + Number(ns / 1_000_000n) });
  let batch: AgentEvent[] = [];
  const errors: [unknown, CaptureRecord | null][] = [];
  const pipeline = new Pipeline(decoder, state, {
    event: (ev) => { batch.push(ev); },
    flush: () => {
      const evs = batch;
      batch = [];
      if (evs.length) pub.publishAgentEvents(evs);
    },
    error: (e, r) => { errors.push([e, r]); },
  });
  return { decoder, state, pipeline, errors };
}

for (const id of ['99999999999', '1000000000']) {
  t.test(`the ${id.length}-digit id ${id} through decoder, state and publisher: refused, counted as malformed, nothing thrown`, async (t) => {
    const { pub, dir } = offlinePublisher(t);
    const { decoder, state, pipeline, errors } = wired(pub);
    // Before this was validated, the id reached agentSubject at flush, which threw out of push():
    // the capture loop's promise rejected and the process exited 1.
    t.doesNotThrow(() => pipeline.push(roundTrip(7, `global update-keepalive {"id":${id},"connection_status":"pending","sync_status":"synced"}`)));
    t.doesNotThrow(() => pipeline.push(roundTrip(7, 'global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}')));
    t.equal(pipeline.errors, 0, 'refused by validation, not caught by the guard');
    t.same(errors, []);
    t.match(decoder.summary(), { malformed: 1, invalidRequests: 1 });
    t.match(state.stats(), { invalid: 1, statusEvents: 1 });
    t.equal(pub.unpublishable, 0);
    await pub.close(100);
    const got = spooled(dir);
    t.same(got.map((m) => m.subject), ['wazuh.agent.001.status'], 'the normal event after it is published');
    t.match(JSON.parse(Buffer.from(got[0].body).toString()), { agent_id: '001', previous_status: 'unknown', current_status: 'pending' });
  });
}

t.test('the last agent id there can be goes through: 999999999', async (t) => {
  const { pub, dir } = offlinePublisher(t);
  const { decoder, pipeline } = wired(pub);
  pipeline.push(roundTrip(3, 'global update-keepalive {"id":999999999,"connection_status":"pending","sync_status":"synced"}'));
  t.equal(decoder.summary().malformed, 0);
  await pub.close(100);
  t.same(spooled(dir).map((m) => m.subject), ['wazuh.agent.999999999.status']);
});

t.test('pipeline guard: a record that throws is dropped and counted, the records after it go on', async (t) => {
  const { pub, dir } = offlinePublisher(t);
  const { decoder, state, pipeline, errors } = wired(pub);
  const records = [
    ...roundTrip(1, 'global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}'),
    ...roundTrip(2, 'global update-keepalive {"id":2,"connection_status":"pending","sync_status":"synced"}'),
    ...roundTrip(3, 'global update-keepalive {"id":3,"connection_status":"pending","sync_status":"synced"}'),
  ];
  // A bug in the state, hit by agent 2's exchange.
  const apply = state.apply.bind(state);
  state.apply = (ex) => {
    if (ex.request.cmd === 'update-keepalive' && ex.request.id === 2) throw new TypeError('boom');
    return apply(ex);
  };
  // And one in the decoder, hit by one record of its own.
  const push = decoder.push.bind(decoder);
  const poison = rec(4, 'request', 'global update-keepalive {"id":4,"connection_status":"pending"}');
  decoder.push = (r) => {
    if (r === poison) throw new RangeError('bang');
    return push(r);
  };
  t.doesNotThrow(() => pipeline.push([...records.slice(0, 4), poison, ...records.slice(4)]));
  t.equal(pipeline.errors, 2);
  t.same(errors.map(([e, r]) => [(e as Error).message, r && connIdOf(r), r?.direction]), [['boom', '2', 'reply'], ['bang', '4', 'request']],
    'each error with its record (the reply completes an exchange)');
  t.equal(pipeline.records, 7);
  await pub.close(100);
  t.same(spooled(dir).map((m) => m.subject), ['wazuh.agent.001.status', 'wazuh.agent.003.status'], 'the other agents are published');
});

t.test('errorFields: where it happened, never the payload; key-shaped text in the error is masked', async (t) => {
  const r = rec(5, 'request', `global insert-agent {"id":5,"internal_key":"${'c4fe'.repeat(16)}"}`);
  const f = errorFields(new SyntaxError(`Unexpected token in JSON: "${'c4fe'.repeat(16)}"`), r);
  t.match(f, { conn: '5', direction: 'request', comm: 'wazuh-remoted', pid: 5, bytes: r.data.length });
  t.notMatch(JSON.stringify(f), 'c4fec4fe');
  t.match(f.err, /SyntaxError: Unexpected token in JSON: "\[redacted\]"/);
  t.same(Object.keys(errorFields('x', null)), ['err', 'at']);
});

t.test('pipeline guard: a flush that throws is counted (record null), the next push goes on; a throwing reporter changes nothing', async (t) => {
  let fail = true;
  const events: AgentEvent[] = [];
  const seen: (CaptureRecord | null)[] = [];
  const state = new AgentStateTable({ managerNode: 'n', wallClockMs: () => 0 });
  const p = new Pipeline(new WdbDecoder(), state, {
    event: (ev) => { events.push(ev); },
    flush: () => { if (fail) throw new Error('spool: EIO'); },
    error: (_e, r) => { seen.push(r); throw new Error('the logger broke too'); },
  });
  t.doesNotThrow(() => p.push(roundTrip(1, 'global update-keepalive {"id":1,"connection_status":"pending"}')));
  t.equal(p.errors, 1);
  t.same(seen, [null]);
  fail = false;
  p.push(roundTrip(1, 'global update-keepalive {"id":1,"connection_status":"active"}'));
  t.equal(p.errors, 1);
  t.equal(events.length, 2, 'both transitions reached the sink');
});

t.test('pipeline guard: exchanges a record lets go together (they waited for an earlier reply) are guarded one by one', async (t) => {
  // A record can let go several exchanges that waited (decode/apply-order.ts): one that throws lost the rest.
  const state = new AgentStateTable({ managerNode: 'n', wallClockMs: () => 0 });
  const applied: number[] = [];
  const real = state.apply.bind(state);
  state.apply = (ex) => {
    const id = ex.request.cmd === 'update-keepalive' ? ex.request.id : 0;
    if (id === 2) throw new Error('a bug on agent 2');
    if (id) applied.push(id);
    return real(ex);
  };
  const p = new Pipeline(new WdbDecoder(), state, { event: () => {} });
  const ka = (id: number) => `global update-keepalive {"id":${id},"connection_status":"active","sync_status":"synced"}`;
  p.push([rec(11, 'request', ka(1))]); // answered last: agents 2 and 3 wait for it
  p.push([rec(12, 'request', ka(2)), rec(12, 'reply', 'ok')]);
  p.push([rec(13, 'request', ka(3)), rec(13, 'reply', 'ok')]);
  t.same(applied, [], 'both wait for agent 1\'s reply');
  p.push([rec(11, 'reply', 'ok')]);
  t.same(applied, [1, 3], 'agent 2\'s threw; agent 3\'s, let go by the same record, applied all the same');
  t.equal(p.errors, 1);
});

function status(agentId: string, n = 1): StatusChangeEvent {
  return {
    event_id: `st-${agentId}-${n}`, event_type: 'status_change', agent_id: agentId, agent_name: 'a', previous_status: 'active',
    current_status: 'disconnected', status_code: 3, reason: 'agent_shutdown', ip_address: null, timestamp: 1, time: '1970-01-01T00:00:01.000Z',
    manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
  };
}
function keepalive(agentId: string, n = 1): KeepaliveEvent {
  return {
    event_id: `ka-${agentId}-${n}`, event_type: 'keepalive', agent_id: agentId, agent_name: 'a', ip_address: null, status: 'active',
    version: null, os: null, group_config_status: null, sync_status: 'synced', timestamp: 1, time: '1970-01-01T00:00:01.000Z',
    manager_node: 'node-1', source: 'remoted',
  };
}

t.test('publisher guard: an event that cannot be a message is dropped and counted; the others are spooled, results aligned', async (t) => {
  const reported: string[] = [];
  const { pub, dir } = offlinePublisher(t, { onUnpublishable: (_e, ev) => { reported.push(ev.agent_id); } });
  const ok = pub.publishAgentEvents([
    status('001'), status('1000000000'), keepalive('002'), keepalive('a.*'), status('003'), status('004.>'), keepalive(''),
  ]);
  t.same(ok, [true, false, true, false, true, false, false]);
  t.equal(pub.unpublishable, 4);
  t.same(reported, ['1000000000', 'a.*', '004.>', '']);
  t.ok(pub.publishAgentEvent(status('005')), 'the publisher goes on');
  await pub.close(100);
  t.same(spooled(dir).map((m) => m.subject),
    ['wazuh.agent.001.status', 'wazuh.agent.002.keepalive', 'wazuh.agent.003.status', 'wazuh.agent.005.status']);
});

t.test('publisher guard with keepalive batches: a bad keepalive never enters a batch', async (t) => {
  const { pub, dir } = offlinePublisher(t, { keepaliveBatch: { maxEvents: 100, intervalMs: 60_000 } });
  const ok = pub.publishAgentEvents([keepalive('001'), keepalive('12345678901'), status('9999999999'), status('001'), keepalive('002')]);
  t.same(ok, [true, false, false, true, true]);
  t.equal(pub.unpublishable, 2);
  await pub.close(100);
  const got = spooled(dir);
  t.same(got.map((m) => m.subject), ['wazuh.agent.batch.keepalive', 'wazuh.agent.001.status', 'wazuh.agent.batch.keepalive'],
    'the batch holding 001 closes before its status; the open one is spooled at close');
  const ids = got.filter((m) => m.subject.endsWith('batch.keepalive'))
    .flatMap((m) => (JSON.parse(Buffer.from(m.body).toString()) as { events: KeepaliveEvent[] }).events.map((e) => e.agent_id));
  t.same(ids, ['001', '002']);
});

t.test('rate-limited log: at most max lines per interval, then how many were left out', async (t) => {
  let now = 0;
  const lines: [Record<string, unknown>, string][] = [];
  const l = new RateLimitedLog((f, m) => lines.push([f, m]), { max: 3, intervalMs: 1000, now: () => now });
  for (let i = 0; i < 10; i++) l.log({ i }, 'a record could not be processed');
  t.same(lines.map(([f]) => f.i), [0, 1, 2]);
  t.equal(l.pending, 7);
  now = 500;
  l.log({ i: 10 }, 'a record could not be processed');
  t.equal(lines.length, 3, 'still the same interval');
  now = 1000;
  l.log({ i: 11 }, 'a record could not be processed');
  t.same(lines.slice(3), [
    [{ suppressed: 8, interval_s: 1 }, 'a record could not be processed (8 more, not logged)'],
    [{ i: 11 }, 'a record could not be processed'],
  ], 'the count first, then the new interval\'s line');
  l.summary();
  t.equal(lines.length, 5, 'nothing pending: no summary');
  l.log({ i: 12 }, 'x');
  l.log({ i: 13 }, 'x');
  l.log({ i: 14 }, 'x');
  l.summary();
  t.same(lines[lines.length - 1], [{ suppressed: 1, interval_s: 1 }, 'x (1 more, not logged)'], 'summary() says it at once (at stop)');
});

t.test('rate-limited log: the count comes when the interval ends, even if no line follows', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const l = new RateLimitedLog((f) => lines.push(f), { max: 1, intervalMs: 50 });
  for (let i = 0; i < 5; i++) l.log({ i }, 'm');
  t.equal(lines.length, 1);
  await new Promise((r) => setTimeout(r, 150));
  t.same(lines, [{ i: 0 }, { suppressed: 4, interval_s: 0.05 }]);
});

t.test('rate-limited log: a timer that fires before the interval ended by its clock is set again, and the count still comes', async (t) => {
  // Node measures a timer from the loop's time, which can be behind the clock the interval is read
  // from: here that clock runs at a quarter of the speed, so every timer fires "early" by it.
  const t0 = Date.now();
  const now = () => t0 + (Date.now() - t0) / 4;
  const lines: Record<string, unknown>[] = [];
  const l = new RateLimitedLog((f) => lines.push(f), { max: 1, intervalMs: 50, now });
  for (let i = 0; i < 3; i++) l.log({ i }, 'm');
  await new Promise((r) => setTimeout(r, 60)); // past the first timer; the interval ends 200 ms in
  t.same(lines, [{ i: 0 }], 'not before the interval ended');
  await new Promise((r) => setTimeout(r, 440));
  t.same(lines, [{ i: 0 }, { suppressed: 2, interval_s: 0.05 }], 'the count, once it did');
});
