// Keepalive batching (keepalive_batch): the pure batcher's bounds, and the publisher
// against a real nats-server — every keepalive arrives once, inside a batch, per-agent
// order with status changes kept, the time bound honoured, the open batch flushed on close.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import pino from 'pino';
import { KeepaliveBatcher, type KeepaliveBatchEvent } from '../controller/src/publish/keepalive-batch.js';
import { batchBytesFor, ReliablePublisher } from '../controller/src/publish/reliable.js';
import type { KeepaliveEvent, StatusChangeEvent } from '../controller/src/types.js';
import { keepaliveEventId } from '../controller/src/state/format.js';
import { startNatsServer } from './helpers/nats-server.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });

function keepalive(agent: number, n: number): KeepaliveEvent {
  const id = String(agent).padStart(3, '0');
  return {
    event_id: `ka-${id}-${n}`, event_type: 'keepalive', agent_id: id, agent_name: `agent-${id}`, ip_address: '10.0.0.1',
    status: 'active', version: 'Wazuh v4.9.0', os: { name: 'Ubuntu', platform: 'ubuntu' }, group_config_status: 'synced',
    sync_status: 'synced', timestamp: 1716897300 + n, time: new Date((1716897300 + n) * 1000).toISOString(), manager_node: 'node-1', source: 'remoted',
  };
}

function statusChange(agent: number, n: number): StatusChangeEvent {
  const id = String(agent).padStart(3, '0');
  return {
    event_id: `st-${id}-${n}`, event_type: 'status_change', agent_id: id, agent_name: `agent-${id}`, previous_status: 'active',
    current_status: 'disconnected', status_code: 3, reason: 'agent_shutdown', ip_address: '10.0.0.1', timestamp: 1716897300 + n,
    time: new Date((1716897300 + n) * 1000).toISOString(), manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
  };
}

t.test('a batch\'s envelope: its fields in order, its id from the keepalive that opened it, its time from the last', async (t) => {
  const node = 'node "1"\\\u2028'; // quotes, a backslash, a line separator: JSON must escape them
  const b = new KeepaliveBatcher({ maxEvents: 2, maxBytes: 1 << 20, manager_node: node });
  const ka = (agent: number, ns: bigint) => ({ ...keepalive(agent, Number(ns % 50n)), event_id: keepaliveEventId(node, agent, ns, 'active'), manager_node: node });
  const first = ka(1, 5_000_000_001n);
  const [one] = [...b.add(first), ...b.add(ka(2, 5_000_000_002n))];
  const [two] = [...b.add(ka(1, 6_000_000_001n)), ...b.add(ka(2, 6_000_000_002n))];
  const body = JSON.parse(one.body) as KeepaliveBatchEvent;
  t.same(Object.keys(body), ['event_id', 'event_type', 'manager_node', 'count', 'timestamp', 'time', 'events'], 'the fields in their order');
  t.equal(body.manager_node, node, 'the node escaped, and read back the same');
  t.equal(body.event_id, one.eventId);
  t.match(one.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'UUID-shaped, version 8');
  t.equal(one.eventId, `${first.event_id.slice(0, 6)}b${first.event_id.slice(7)}`, 'the first keepalive\'s id, marked as a batch');
  t.not(one.eventId, two.eventId, 'another batch, another id');
  t.not(one.eventId, first.event_id, 'never a keepalive\'s id');
  t.equal(body.time, body.events[1].time, 'the time of its last keepalive');
  t.equal(body.timestamp, body.events[1].timestamp);
  const again = new KeepaliveBatcher({ maxEvents: 2, maxBytes: 1 << 20, manager_node: node });
  const [same] = [...again.add(first), ...again.add(ka(2, 5_000_000_002n))];
  t.equal(same.eventId, one.eventId, 'the same batch, the same id');
  t.equal(same.body, one.body);
  const odd = new KeepaliveBatcher({ maxEvents: 1, maxBytes: 1 << 20, manager_node: 'n' });
  const [o1] = odd.add(keepalive(1, 1));
  const [o2] = odd.add(keepalive(1, 2));
  t.not(o1.eventId, o2.eventId, 'ids not laid out by the tap: hashed, still one a batch');
});

t.test('the batcher closes a batch at its count, and before its byte bound is crossed', async (t) => {
  const b = new KeepaliveBatcher({ maxEvents: 3, maxBytes: 1 << 20, manager_node: 'node-1' });
  t.same(b.add(keepalive(1, 1)), []);
  t.same(b.add(keepalive(2, 1)), []);
  t.ok(b.holds('002') && !b.holds('003'), 'knows which agents wait in the open batch');
  const [full] = b.add(keepalive(3, 1));
  t.equal(full.count, 3);
  const body = JSON.parse(full.body) as KeepaliveBatchEvent;
  t.match(body, { event_type: 'keepalive_batch', manager_node: 'node-1', count: 3, event_id: full.eventId });
  t.same(body.events, [keepalive(1, 1), keepalive(2, 1), keepalive(3, 1)], 'the events exactly as published one by one');
  t.equal(body.time, keepalive(3, 1).time, 'the batch is as recent as its last keepalive');
  t.equal(b.size, 0);
  t.equal(b.take(), null, 'nothing open');

  const one = JSON.stringify(keepalive(1, 1)).length + 1;
  const small = new KeepaliveBatcher({ maxEvents: 1000, maxBytes: Math.max(1024, one * 2 + 10), manager_node: 'n' });
  const closed = [1, 2, 3, 4, 5].flatMap((i) => small.add(keepalive(i, 1)));
  t.ok(closed.length >= 1, 'the byte bound closed batches');
  for (const c of closed) t.ok(Buffer.byteLength(JSON.parse(c.body).events.map((e: unknown) => JSON.stringify(e)).join(',')) <= Math.max(1024, one * 2 + 10), 'within the byte bound');
  t.equal(closed.reduce((a, c) => a + c.count, 0) + small.size, 5, 'no keepalive lost at a boundary');

  // Each batch is timed from its first keepalive's capture, including one opened by an overflow.
  const timed = new KeepaliveBatcher({ maxEvents: 1000, maxBytes: Math.max(1024, one * 2 + 10), manager_node: 'n' });
  const batches = [1, 2, 3, 4, 5].flatMap((i) => timed.add(keepalive(i, 1), 100 + i));
  const last = timed.take()!;
  t.same([...batches, last].map((c) => c.capturedMs), [...batches, last].reduce((acc: number[], c, k, all) => {
    acc.push(101 + all.slice(0, k).reduce((n, p) => n + p.count, 0));
    return acc;
  }, []), 'capturedMs: the first keepalive of each batch');
  const untimed = new KeepaliveBatcher({ maxEvents: 1, maxBytes: 1 << 20, manager_node: 'n' });
  t.ok(Number.isNaN(untimed.add(keepalive(1, 1))[0].capturedMs), 'no capture time given: NaN');
});

t.test('a batch id is derived from its members (stable), and differs between batches', async (t) => {
  const mk = () => {
    const b = new KeepaliveBatcher({ maxEvents: 10, maxBytes: 1 << 20, manager_node: 'n' });
    b.add(keepalive(1, 1));
    b.add(keepalive(2, 1));
    return b.take()!.eventId;
  };
  t.equal(mk(), mk());
  const b = new KeepaliveBatcher({ maxEvents: 10, maxBytes: 1 << 20, manager_node: 'n' });
  b.add(keepalive(1, 2));
  t.not(b.take()!.eventId, mk());
  t.throws(() => new KeepaliveBatcher({ maxEvents: 0, maxBytes: 1 << 20, manager_node: 'n' }), 'a batch of nothing is refused');
});

t.test('publisher: every keepalive once inside batches, per-agent order with status changes, time bound, flush on close', async (t) => {
  const srv = await startNatsServer({});
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const got: { subject: string; type: string; count: string; body: any; at: number }[] = [];
  nc.subscribe('wazuh.agent.>', {
    callback: (_e, m: Msg) => got.push({
      subject: m.subject, type: m.headers?.get('Wazuh-Event-Type') ?? '', count: m.headers?.get('Wazuh-Event-Count') ?? '', body: m.json(), at: Date.now(),
    }),
  });
  await nc.flush();
  const pub = new ReliablePublisher({
    servers: [srv.url], prefix: 'wazuh', node: 'node-1', log, spoolDir: mkdtempSync(join(tmpdir(), 'wnt-kb-')), spoolMaxBytes: 8 << 20,
    reconnectDelayMs: 200, keepaliveBatch: { maxEvents: 100, intervalMs: 400 },
  });
  let closed = false;
  t.teardown(() => (closed ? undefined : pub.close(1000)));
  await pub.connect();
  await waitFor(() => pub.connected, 5000, 'connected');

  // 1000 keepalives of 50 agents, with a status change of agent 7 in the middle.
  const sent: string[] = [];
  for (let n = 0; n < 20; n++) {
    const evs = [];
    for (let a = 0; a < 50; a++) evs.push(keepalive(a, n));
    if (n === 10) evs.splice(30, 0, statusChange(7, n));
    pub.publishAgentEvents(evs);
    for (const e of evs) sent.push(e.event_id);
  }
  await waitFor(() => got.filter((g) => g.type === 'keepalive_batch').reduce((a, g) => a + g.body.count, 0) >= 1000, 5000, 'all keepalives');
  const batches = got.filter((g) => g.type === 'keepalive_batch');
  t.ok(batches.every((b) => b.subject === 'wazuh.agent.batch.keepalive' && b.body.count <= 100 && String(b.body.count) === b.count), 'on the batch subject, within the count bound, counted in a header');
  t.equal(got.filter((g) => g.type === 'keepalive').length, 0, 'no keepalive on its own');
  // The order a consumer sees: the batches' events and the status change, as delivered.
  const seen: string[] = got.flatMap((g) => (g.type === 'keepalive_batch' ? g.body.events.map((e: KeepaliveEvent) => e.event_id) : [g.body.event_id]));
  t.equal(new Set(seen).size, seen.length, 'none twice');
  t.same([...seen].sort(), [...sent].sort(), 'every event delivered');
  const perAgent = (ids: string[], agent: string) => ids.filter((id) => id.includes(`-${agent}-`));
  t.same(perAgent(seen, '007'), perAgent(sent, '007'), 'agent 007: its keepalives and its status change in the order they happened');

  // A lone keepalive is not held longer than the interval.
  const before = got.length;
  const t0 = Date.now();
  pub.publishAgentEvent(keepalive(99, 1));
  await waitFor(() => got.length > before, 5000, 'the lone keepalive');
  const waited = got[got.length - 1].at - t0;
  t.ok(waited >= 300, `held for its batch to fill (${waited} ms)`);
  t.equal(got[got.length - 1].body.count, 1);

  // Closing publishes the open batch.
  pub.publishAgentEvents([keepalive(98, 1), keepalive(97, 1)]);
  closed = true;
  await pub.close(2000);
  await nc.flush();
  await waitFor(() => got.some((g) => g.type === 'keepalive_batch' && g.body.count === 2), 3000, 'the open batch, flushed by close');
});

t.test('publisher: batches fit the server\'s max_payload (64 KiB here), encrypted or not — none rejected, none lost', async (t) => {
  const srv = await startNatsServer({ extra: 'max_payload: 65536\n' });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  for (const encrypted of [false, true]) {
    const got: Msg[] = [];
    const sub = nc.subscribe('wazuh.agent.batch.keepalive', { callback: (_e, m) => { got.push(m); } });
    await nc.flush();
    const pub = new ReliablePublisher({
      servers: [srv.url], prefix: 'wazuh', node: 'node-1', log, spoolDir: mkdtempSync(join(tmpdir(), 'wnt-kb-')), spoolMaxBytes: 64 << 20,
      reconnectDelayMs: 200, keepaliveBatch: { maxEvents: 1000, intervalMs: 0 },
      encryption: encrypted ? { key: Buffer.alloc(32, 7), id: 'k1' } : undefined,
    });
    await pub.connect();
    await waitFor(() => pub.connected, 5000, 'connected');
    // A backlog's worth at once (what a stalled round, or agents coming in, hands the publisher): one default batch would be ~300 KB.
    const evs = Array.from({ length: 1000 }, (_, i) => keepalive(i + 1, 1));
    t.ok(pub.publishAgentEvents(evs).every(Boolean), 'all accepted');
    t.ok(await pub.delivery.flush(10_000), 'all acknowledged');
    await pub.close(1000);
    sub.unsubscribe();
    const st = pub.delivery.stats();
    t.equal(st.rejected, 0, `${encrypted ? 'encrypted: ' : ''}no message rejected for its size`);
    t.ok(got.length > 4 && got.every((m) => m.data.length + (m.headers ? 300 : 0) <= 65536), `${got.length} messages, each within max_payload (largest ${Math.max(...got.map((m) => m.data.length))} bytes)`);
    if (!encrypted) {
      const count = got.reduce((n, m) => n + (m.json() as KeepaliveBatchEvent).count, 0);
      t.equal(count, 1000, 'every keepalive arrived');
    } else {
      t.equal(got.reduce((n, m) => n + Number(m.headers?.get('Wazuh-Event-Count')), 0), 1000, 'every keepalive arrived (counted by header)');
    }
  }
});

t.test('the batch bound for a server: the configured one under the default 1 MiB, smaller under less, a floor of 1 KiB', async (t) => {
  t.equal(batchBytesFor(1 << 20, 512 * 1024, false), 512 * 1024, 'nats-server\'s default max_payload: the configured bound');
  t.equal(batchBytesFor(1 << 20, 512 * 1024, true), 512 * 1024, 'encrypted too (4/3 of 512 KiB fits in 1 MiB)');
  t.equal(batchBytesFor(65536, 512 * 1024, false), 55296, '64 KiB: headroom for headers and envelope, a tenth for text beyond ASCII');
  t.equal(batchBytesFor(65536, 512 * 1024, true), 41408, 'encrypted: base64 takes a third more');
  t.equal(batchBytesFor(4096, 512 * 1024, false), 2764, 'a stream of 4 KiB messages: a quarter of it for headers and envelope');
  t.equal(batchBytesFor(1000, 512 * 1024, false), 1024, 'an absurd bound: the batcher\'s floor');
  t.equal(batchBytesFor(8 << 20, 512 * 1024, false), 512 * 1024, 'a larger server never makes batches larger than configured');
});
