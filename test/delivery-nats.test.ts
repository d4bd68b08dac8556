// The delivery engine against real nats-servers on loopback: outages, a killed
// publisher, a full spool, core NATS, and a three-node JetStream cluster.
import t from 'tap';
import { copyFileSync, mkdtempSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join, resolve } from 'node:path';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { connect, type Msg } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Delivery, type DeliveryMessage, type MessageKind } from '../controller/src/publish/delivery.js';
import { ReliablePublisher } from '../controller/src/publish/reliable.js';
import { Spool } from '../controller/src/publish/spool.js';
import { freePort, startNatsCluster, startNatsServer } from './helpers/nats-server.js';
import { spawnTsChild } from './helpers/ts-child.js';
import { checkDelivery, liveEventIds, readStream, steady, testEvent } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';
import { monotonicMs } from '../controller/src/util/clock.js';
import pino from 'pino';

const log = pino({ level: process.env.DEBUG_DELIVERY ? 'debug' : 'silent' });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

t.test('JetStream: the publisher killed with SIGKILL while spooling, restarted on the same spool → nothing lost, no duplicate', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const spoolDir = tmp('spool-b-');
  const child = resolve(import.meta.dirname, 'helpers/delivery-child.ts');
  const run = (from: number, to: number) => {
    const p = spawnTsChild(child, [srv.url, spoolDir, String(from), String(to), '7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = { p, accepted: from, done: null as null | Record<string, unknown>, err: '' };
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('accepted ')) r.accepted = Number(l.slice(9));
        if (l.startsWith('done ')) r.done = JSON.parse(l.slice(5));
      }
    });
    p.stderr!.on('data', (d: Buffer) => { r.err += d.toString(); });
    t.teardown(() => { p.kill('SIGKILL'); });
    return r;
  };
  const first = run(0, 1_000_000);
  await waitFor(() => first.accepted >= 20_000, 30_000, 'the first run spooled 20000 events').catch((e) => { t.comment(first.err); throw e; });
  first.p.kill('SIGKILL');
  await new Promise((r) => first.p.once('exit', r));
  const killedAt = first.accepted; // every event up to here was accepted (spooled) before the kill
  const second = run(killedAt, killedAt + 5000);
  await waitFor(() => second.done !== null, 40_000, 'the second run drained').catch((e) => { t.comment(second.err); throw e; });
  const st = second.done!;
  t.comment(JSON.stringify({ killedAt, ...st }));
  t.equal(st.ok, true, 'everything acknowledged');
  t.ok((st.replayed as number) > 0, `the second run replayed what the first left (${st.replayed})`);
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const got = await readStream(nc, 'WAZUH');
  t.same(checkDelivery(got, range(0, killedAt + 5000)), [], 'every accepted event stored once, in per-agent order');
});

t.test('spool full while NATS is away: keepalives shed first, counted and reported; the rest is delivered when NATS comes', async (t) => {
  const port = await freePort();
  const shedReports: Record<MessageKind, number>[] = [];
  const d = new Delivery({
    servers: [`nats://127.0.0.1:${port}`], mode: 'jetstream', log, reconnectDelayMs: 200, maxReconnects: 3,
    spool: { dir: tmp('spool-c-'), maxBytes: 256 * 1024, segmentBytes: 16 * 1024 },
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true },
    onShed: (delta) => shedReports.push(delta), shedReportMs: 100,
  });
  t.teardown(() => d.close(500));
  d.start();
  const offered = { keepalive: 0, status: 0 };
  const accepted = new Set<number>();
  let i = 0;
  // Four keepalives for each status change, far more than the spool holds.
  for (let round = 0; round < 4000; round++) {
    const kind: MessageKind = round % 5 === 4 ? 'status' : 'keepalive';
    offered[kind as 'keepalive' | 'status']++;
    if (d.enqueue(testEvent(i, 10, kind))) accepted.add(i);
    i++;
  }
  const st = d.stats();
  t.comment(JSON.stringify({ offered, shed: st.shed, bytes: st.spoolBytes, records: st.spoolRecords }));
  t.ok(st.spoolBytes <= 256 * 1024, 'the spool stays within its bound');
  t.ok(st.shed.keepalive > 0, 'keepalives were shed');
  // The 800 status changes alone fit in the bound: keepalives must have made room for every one of them.
  t.ok(800 * 200 < 256 * 1024 * 0.9, 'test premise: the status changes fit');
  t.equal(st.shed.status, 0, 'no status change shed while keepalives could go');
  t.equal(st.spooled, accepted.size, 'spooled = accepted');
  t.equal(offered.keepalive + offered.status, st.spoolRecords + st.shed.keepalive + st.shed.status,
    'offered = in the spool + shed (refused, or compacted out of the spool)');
  const statusAccepted = [...accepted].filter((n) => n % 5 === 4);
  t.equal(statusAccepted.length + st.shed.status, offered.status, 'every status change accepted or counted as shed');
  await waitFor(() => shedReports.length > 0, 2000, 'a shed report');
  const reported = shedReports.reduce((a, r) => a + r.keepalive, 0);
  t.equal(reported, st.shed.keepalive, 'every shed keepalive reported');

  // NATS appears on that port: what the spool holds is delivered, in order.
  const srv = await startNatsServer({ jetstream: true, port });
  t.teardown(() => srv.stop());
  t.ok(await d.flush(20_000), 'drained');
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const got = await readStream(nc, 'WAZUH');
  const inSpool = st.spoolRecords;
  t.equal(got.length, inSpool, 'every record left in the spool was delivered once');
  const statuses = got.filter((g) => g.n % 5 === 4).map((g) => g.n);
  t.same(statuses, [...accepted].filter((n) => n % 5 === 4), 'every accepted status change delivered, in order');
  t.same(checkDelivery(got, []), [], 'no duplicate, per-agent order');
});

t.test('core NATS: delivers in order and survives a short outage (resends confirmed by flush)', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  // An observer stream on the server itself, so nothing depends on a subscriber's reconnect timing.
  const nc0 = await connect({ servers: srv.url });
  await (await jetstreamManager(nc0)).streams.add({ name: 'OBS', subjects: ['wazuh.>'], storage: StorageType.File });
  const live: { event_id: string; agent_id: string; n: number; hdr: string | undefined }[] = [];
  const sub = nc0.subscribe('wazuh.>', { callback: (_e, m: Msg) => live.push({ ...m.json(), hdr: m.headers?.get('Wazuh-Agent-Id') }) });
  await nc0.flush();
  const d = new Delivery({
    servers: [srv.url], mode: 'core', log, spool: { dir: tmp('spool-d-'), maxBytes: 64 << 20 },
    reconnectDelayMs: 200, flushIntervalMs: 20,
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.connected, 5000, 'connected');
  const gen = steady(d, 10, 20, 10);
  await sleep(1000);
  gen.stop();
  const before = gen.next;
  t.ok(await d.flush(5000), 'flush-confirmed');
  await waitFor(() => live.length >= before, 5000, 'the live subscriber got the first part');
  t.same(checkDelivery(live, range(0, before)), [], 'live: all, once, in order');
  t.equal(live[0].hdr, '000', 'headers travel');
  sub.unsubscribe();
  await nc0.close();

  const gen2 = steady(d, 10, 20, 10, before);
  await sleep(300);
  await srv.stop();
  await sleep(2000);
  await srv.restart();
  await sleep(500);
  gen2.stop();
  t.ok(await d.flush(10_000), 'drained after the outage');
  const total = gen2.next;
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const stored = await readStream(nc, 'OBS');
  // Core NATS is at-least-once: what the server had but no flush confirmed is sent again, after it.
  const seen = new Set<string>();
  const firsts = stored.filter((s) => !seen.has(s.event_id) && seen.add(s.event_id));
  const st = d.stats();
  t.comment(JSON.stringify({ total, stored: stored.length, unique: firsts.length, ...st }));
  t.same(checkDelivery(firsts, range(0, total)), [], 'every event arrived; first arrivals in per-agent order');
  t.ok(stored.length - firsts.length <= st.resent, 'repeats only from resends');
  t.ok(st.replayed > 0, 'events spooled during the outage were replayed');
});

t.test('JetStream cluster of three (R3 stream): the stream leader killed mid-stream → nothing lost, no duplicate', async (t) => {
  const cl = await startNatsCluster(3);
  t.teardown(() => cl.stop());
  const d = new Delivery({
    servers: cl.urls, mode: 'jetstream', log, spool: { dir: tmp('spool-e-'), maxBytes: 64 << 20 },
    reconnectDelayMs: 200, ackTimeoutMs: 1000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true, replicas: 3 },
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.stats().streamReady, 30_000, 'R3 stream created');
  const nc = await connect({ servers: cl.urls });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const gen = steady(d, 20, 20, 10);
  await sleep(1500);
  const leader = (await jsm.streams.info('WAZUH')).cluster?.leader;
  const victim = cl.servers.find((_, i) => leader === `tapc-n${i + 1}`);
  t.ok(victim, `the stream leader (${leader}) is one of ours`);
  await victim!.kill();
  await sleep(3000);
  gen.stop();
  const total = gen.next;
  t.ok(await d.flush(30_000), 'drained after the failover');
  const st = d.stats();
  t.comment(JSON.stringify({ total, leader, ...st }));
  const info = await jsm.streams.info('WAZUH');
  t.equal(info.state.messages, total, 'one stored message per event');
  const got = await readStream(nc, 'WAZUH');
  t.same(checkDelivery(got, range(0, total)), [], 'all there, none duplicated, per-agent order');
});

t.test('ReliablePublisher: SPEC §4 messages through JetStream, Nats-Msg-Id = event_id, latest status per agent in KV', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const pub = new ReliablePublisher({
    servers: [srv.url], prefix: 'wazuh', node: 'node-1', log, spoolDir: tmp('spool-f-'), spoolMaxBytes: 1 << 20,
    jetstream: true, createStream: true, kv: true, reconnectDelayMs: 200,
  });
  t.teardown(() => pub.close(1000));
  await pub.connect();
  const ev = (id: string, prev: string, cur: string, n: number) => ({
    event_id: `e-${id}-${n}`, event_type: 'status_change' as const, agent_id: id, agent_name: `a${id}`,
    previous_status: prev as 'active', current_status: cur as 'active', status_code: 0, reason: 'keepalive' as const,
    ip_address: null, timestamp: 1, time: '1970-01-01T00:00:01.000Z', manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
  });
  pub.publishLifecycle('started', { home: '/var/ossec' });
  pub.publishAgentEvents([ev('001', 'never_connected', 'pending', 1), ev('001', 'pending', 'active', 2), ev('002', 'pending', 'active', 1)]);
  pub.publishAgentEvent(ev('001', 'active', 'disconnected', 3));
  t.ok(await pub.delivery.flush(10_000, { kv: true }), 'acknowledged');
  t.equal(pub.published, 5);
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const m = await jsm.streams.getMessage('WAZUH', { last_by_subj: 'wazuh.agent.001.status' });
  t.equal(m!.header.get('Nats-Msg-Id'), 'e-001-3');
  t.equal(m!.header.get('Wazuh-Agent-Id'), '001');
  t.equal(m!.header.get('Content-Type'), 'application/json');
  const tap = await jsm.streams.getMessage('WAZUH', { last_by_subj: 'wazuh.tap.node-1.events' });
  t.match(tap!.json(), { event_type: 'tap', action: 'started', manager_node: 'node-1' });
  const kv1 = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.001' });
  t.match(kv1!.json(), { agent_id: '001', current_status: 'disconnected', event_id: 'e-001-3' }, 'KV holds the latest status of 001');
  const kv2 = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.002' });
  t.match(kv2!.json(), { agent_id: '002', current_status: 'active' });
});

t.test('JetStream with create_stream: the stream and the KV bucket deleted while the tap runs are created again; nothing is lost', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const logged: string[] = [];
  const failures: string[] = []; // the err of each 'JetStream publish failed' line
  const seen = pino({ level: 'info' }, { write: (l: string) => {
    const o = JSON.parse(l);
    logged.push(o.msg);
    if (o.msg === 'JetStream publish failed: retrying') failures.push(o.err);
  } });
  const pub = new ReliablePublisher({
    servers: [srv.url], prefix: 'wazuh', node: 'node-1', log: seen, spoolDir: tmp('spool-gone-'), spoolMaxBytes: 1 << 20,
    jetstream: true, createStream: true, kv: true, reconnectDelayMs: 200,
  });
  t.teardown(() => pub.close(1000));
  await pub.connect();
  const ev = (id: string, cur: string, n: number) => ({
    event_id: `e-${id}-${n}`, event_type: 'status_change' as const, agent_id: id, agent_name: `a${id}`,
    previous_status: 'pending' as const, current_status: cur as 'active', status_code: 0, reason: 'keepalive' as const,
    ip_address: null, timestamp: 1, time: '1970-01-01T00:00:01.000Z', manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
  });
  pub.publishAgentEvents([ev('001', 'active', 1)]);
  t.ok(await pub.delivery.flush(10_000), 'the first event stored');
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete('WAZUH'); // an administrator resetting it, a lost JetStream store
  await jsm.streams.delete('KV_wazuh_agents');
  pub.publishAgentEvents([ev('001', 'disconnected', 2), ev('002', 'active', 1), ev('003', 'active', 1), ev('004', 'active', 1)]);
  const flushed = await pub.delivery.flush(15_000, { kv: true });
  if (!flushed) t.comment(JSON.stringify(pub.delivery.stats()));
  t.ok(flushed, 'the events after the deletion are stored, not retried for ever');
  const si = await jsm.streams.info('WAZUH');
  t.equal(si.state.messages, 4, 'the stream made again holds the four events published since');
  t.equal(si.config.duplicate_window, 2 * 3600_000 * 1e6, 'with the configuration the tap gives it');
  const kv = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.001' });
  t.match(kv!.json(), { agent_id: '001', current_status: 'disconnected' }, 'the KV bucket made again holds the latest status');
  t.same(failures, [...new Set(failures)], `the failures of four agents' messages said once per reason (a line per message was thousands a minute with many agents): ${JSON.stringify(failures)}`);
  t.ok(logged.includes('the JetStream stream is gone (not found): making it again') && logged.filter((l) => l === 'JetStream stream created').length === 2,
    `said (${logged.filter((l) => /stream|KV|JetStream/.test(l)).join(' | ')})`);
});

t.test('JetStream with create_stream against a server without JetStream: said once a minute, not every second; events wait', async (t) => {
  const srv = await startNatsServer();
  t.teardown(() => srv.stop());
  const logged: string[] = [];
  const seen = pino({ level: 'info' }, { write: (l: string) => { logged.push(JSON.parse(l).msg); } });
  const d = new Delivery({
    servers: [srv.url], mode: 'jetstream', log: seen, spool: { dir: tmp('spool-nojs-'), maxBytes: 1 << 20 },
    reconnectDelayMs: 250, stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true },
  });
  t.teardown(() => d.close(1000));
  d.start();
  t.ok(d.enqueue(testEvent(1, 1)), 'an event is spooled');
  await sleep(3500);
  const said = logged.filter((l) => l === 'cannot create the JetStream stream yet: retrying').length;
  t.equal(said, 1, `said once in 3.5 s of retries every second (${said})`);
  t.equal(d.stats().spoolRecords, 1, 'the event waits');
});

t.test('a message larger than the server\'s max_payload is dropped, counted and logged, and does not stop the spool behind it', async (t) => {
  for (const mode of ['core', 'jetstream'] as const) {
    const srv = await startNatsServer({ jetstream: mode === 'jetstream', extra: 'max_payload: 4096\n' });
    t.teardown(() => srv.stop());
    const logged: string[] = [];
    const d = new Delivery({
      servers: [srv.url], mode, spool: { dir: tmp(`spool-big-${mode}-`), maxBytes: 8 << 20 }, reconnectDelayMs: 200, ackTimeoutMs: 2000,
      log: pino({ level: 'error' }, { write: (s: string) => { logged.push(s); } }),
      stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true },
    });
    t.teardown(() => d.close(500));
    const nc = await connect({ servers: srv.url });
    t.teardown(() => nc.close());
    const got: string[] = [];
    nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => got.push(m.json<{ event_id: string }>().event_id) });
    await nc.flush();
    d.start();
    await waitFor(() => d.stats().connected && d.stats().streamReady, 10_000, 'connected');
    const big = testEvent(1, 3);
    big.body = JSON.stringify({ event_id: 'ev-1', agent_id: '001', n: 1, pad: 'x'.repeat(8000) });
    d.enqueueMany([testEvent(0, 3), big, testEvent(2, 3), testEvent(4, 3)]); // agent 001 again after the big one: not blocked
    await waitFor(() => got.length >= 3, 10_000, `${mode}: the others delivered`);
    t.ok(await d.flush(5000), `${mode}: the spool drained`);
    t.same(got.sort(), ['ev-0', 'ev-2', 'ev-4'], `${mode}: all but the oversized one`);
    t.equal(d.stats().rejected, 1, `${mode}: counted as rejected`);
    t.match(logged.join(''), /larger than the server's max_payload/, `${mode}: logged`);
  }
});

t.test('JetStream: keepalive batches are published without waiting for each other\'s PubAck; an agent\'s messages still wait, and wait for the batches', async (t) => {
  // A stand-in for the stream that holds its PubAcks: the batches it receives before it answers
  // any show how many the engine kept in flight at once. Before this, batches (one shared subject)
  // went one at a time, each behind the previous one's PubAck: a queue at 10,000 frames/s.
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const held: Msg[] = [];
  let acked = 0;
  const ack = (m: Msg) => m.respond(JSON.stringify({ stream: 'HELD', seq: ++acked }));
  nc.subscribe('wazuh.agent.batch.keepalive', { callback: (_e, m) => { held.push(m); } });
  const statusSeen: Msg[] = [];
  nc.subscribe('wazuh.agent.007.status', { callback: (_e, m) => { statusSeen.push(m); } });
  await nc.flush();
  const d = new Delivery({
    servers: [srv.url], mode: 'jetstream', log, spool: { dir: tmp('spool-kb-'), maxBytes: 16 << 20 }, ackTimeoutMs: 20_000,
  });
  t.teardown(() => d.close(500));
  d.start();
  const batch = (i: number): DeliveryMessage => ({
    subject: 'wazuh.agent.batch.keepalive',
    headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': '1' },
    body: JSON.stringify({ event_id: `kb-${i}`, count: 1, events: [] }), kind: 'keepalive', eventId: `kb-${i}`,
  });
  for (let i = 0; i < 5; i++) t.ok(d.enqueue(batch(i)), `batch ${i} accepted`);
  const status = (i: number): DeliveryMessage => ({ ...testEvent(i, 1, 'status'), subject: 'wazuh.agent.007.status', headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': '007' } });
  t.ok(d.enqueue(status(100)) && d.enqueue(status(101)), 'two status changes of one agent accepted');
  await waitFor(() => held.length === 5, 5000, 'all five batches in flight before any PubAck');
  t.equal(d.stats().inFlight, 5, 'the engine counts them in flight');
  // A batch may hold this agent's keepalive: its status change waits until they are stored.
  await sleep(300);
  t.equal(statusSeen.length, 0, 'the status change waits for the batches sent before it');
  for (const m of held) ack(m);
  // The agent's second status change waits for the first one's PubAck.
  await waitFor(() => statusSeen.length >= 1, 5000, 'the first status change');
  await sleep(300);
  t.equal(statusSeen.length, 1, 'the second status change of the same agent waits for the first PubAck');
  statusSeen[0].respond(JSON.stringify({ stream: 'HELD', seq: ++acked }));
  await waitFor(() => statusSeen.length === 2, 5000, 'the second status change after the first PubAck');
  statusSeen[1].respond(JSON.stringify({ stream: 'HELD', seq: ++acked }));
  await waitFor(() => d.stats().acknowledged === 7, 5000, 'everything acknowledged');
  t.equal(d.stats().inFlight, 0, 'nothing left in flight');
});

/**
 * A stand-in for a JetStream stream on a real server: each message is named (`name`), listed in
 * `order` as it comes, and answered with a PubAck at once — but the one named `silent` (its attempt's
 * PubAck lost, a leader election), which the engine retries after `ackTimeoutMs` (300 ms).
 */
async function standInStream(t: Tap.Test, name: (m: Msg) => string, silent: string) {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const order: string[] = [];
  let acked = 0;
  nc.subscribe('wazuh.agent.>', {
    callback: (_e, m) => {
      const what = name(m);
      order.push(what);
      if (what !== silent) m.respond(JSON.stringify({ stream: 'HELD', seq: ++acked }));
    },
  });
  await nc.flush();
  const d = new Delivery({ servers: [srv.url], mode: 'jetstream', log, spool: { dir: tmp('spool-order-'), maxBytes: 16 << 20 }, ackTimeoutMs: 300 });
  t.teardown(() => d.close(500));
  d.start();
  return { d, order };
}

/** A keepalive batch holding one keepalive of `agent`, as event-json.ts writes it. */
const batchOf = (id: string, agent: string): DeliveryMessage => ({
  subject: 'wazuh.agent.batch.keepalive',
  headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': '1' },
  body: JSON.stringify({ event_id: id, count: 1, events: [{ event_id: `${id}-1`, event_type: 'keepalive', agent_id: agent, status: 'active' }] }),
  kind: 'keepalive', eventId: id,
});
const statusOf = (i: number, agent: string): DeliveryMessage => ({
  ...testEvent(i, 1, 'status'), subject: `wazuh.agent.${agent}.status`,
  headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': agent },
});

t.test('JetStream: a keepalive batch retried after a lost PubAck is still stored before its agent\'s status change that followed it', async (t) => {
  // Before, the status change went out beside the batch and was stored first: "007 disconnected",
  // then a keepalive saying "007 active".
  let batchAttempts = 0;
  const { d, order } = await standInStream(t, (m) => (m.subject.endsWith('.status') ? m.subject.split('.')[2] : `batch#${++batchAttempts}`), 'batch#1');
  t.ok(d.enqueue(batchOf('kb-1', '007')));
  t.ok(d.enqueue(statusOf(1, '008')) && d.enqueue(statusOf(2, '007')));
  await waitFor(() => d.stats().acknowledged === 3, 10_000, 'all three stored');
  t.same(order, ['batch#1', '008', 'batch#2', '007'],
    'agent 008, in no batch, went out at once; 007\'s status change once the batch holding its keepalive was stored');
  t.equal(d.stats().resent, 1, 'the batch resent once');
});

t.test('JetStream: a batch holding a keepalive of an agent whose status change is not stored yet waits for it; one that does not, goes', async (t) => {
  let statusAttempts = 0;
  const { d, order } = await standInStream(t, (m) => (m.subject.endsWith('.status') ? `status#${++statusAttempts}` : JSON.parse(m.string()).event_id), 'status#1');
  t.ok(d.enqueue(statusOf(1, '007')));
  t.ok(d.enqueue(batchOf('kb-009', '009')));
  await waitFor(() => order.includes('kb-009'), 5000, 'the batch of agent 009 out at once');
  t.ok(d.enqueue(batchOf('kb-007', '007')));
  await waitFor(() => d.stats().acknowledged === 3, 10_000, 'all three stored');
  t.same(order, ['status#1', 'kb-009', 'status#2', 'kb-007'], 'the batch with 007\'s keepalive waited for 007\'s status change, retried, to be stored');
});

t.test('core NATS: every message carries its own headers, however often a set of them repeats', async (t) => {
  const srv = await startNatsServer();
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const seen: { subject: string; headers: Record<string, string> }[] = [];
  nc.subscribe('wazuh.>', {
    callback: (_e, m) => {
      const headers: Record<string, string> = {};
      for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
      seen.push({ subject: m.subject, headers });
    },
  });
  await nc.flush();
  const d = new Delivery({ servers: [srv.url], mode: 'core', log, spool: { dir: tmp('spool-hdr-'), maxBytes: 16 << 20 } });
  t.teardown(() => d.close(500));
  d.start();
  const sent: { subject: string; headers: Record<string, string> }[] = [];
  for (let i = 0; i < 60; i++) {
    const headers: Record<string, string> = i % 3 === 2
      ? { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': String(i % 7).padStart(3, '0') }
      : { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': String(1 + (i % 4)) };
    const subject = headers['Wazuh-Agent-Id'] ? `wazuh.agent.${headers['Wazuh-Agent-Id']}.status` : 'wazuh.agent.batch.keepalive';
    sent.push({ subject, headers });
    t.ok(d.enqueue({ subject, headers, body: JSON.stringify({ i }), kind: headers['Wazuh-Agent-Id'] ? 'status' : 'keepalive', eventId: `h-${i}` }));
  }
  await waitFor(() => seen.length === 60, 10_000, 'all 60 messages');
  t.same(seen, sent, 'each with its own subject and headers, in order');
});

t.test('the tap\'s own share of the latency: each agent event message timed from its capture to its publishing, core and JetStream', async (t) => {
  for (const jetstream of [false, true]) {
    const srv = await startNatsServer({ jetstream });
    t.teardown(() => srv.stop());
    const pub = new ReliablePublisher({
      servers: [srv.url], prefix: 'wazuh', node: 'node-1', log, spoolDir: tmp('spool-delay-'), spoolMaxBytes: 1 << 20,
      jetstream, createStream: jetstream, reconnectDelayMs: 200, keepaliveBatch: { maxEvents: 1000, intervalMs: 0 },
    });
    t.teardown(() => pub.close(1000));
    await pub.connect();
    await waitFor(() => pub.connected, 10_000, 'connected');
    const status = {
      event_id: 'd-1', event_type: 'status_change' as const, agent_id: '001', agent_name: 'a1', previous_status: 'pending' as const,
      current_status: 'active' as const, status_code: 0, reason: 'keepalive' as const, ip_address: null, timestamp: 1,
      time: '1970-01-01T00:00:01.000Z', manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
    };
    const keepalive = (id: string) => ({
      event_id: `k-${id}`, event_type: 'keepalive' as const, agent_id: id, agent_name: `a${id}`, ip_address: null, status: 'active' as const,
      version: null, os: null, group_config_status: null, sync_status: null, timestamp: 1, time: '1970-01-01T00:00:01.000Z',
      manager_node: 'node-1', source: 'remoted',
    });
    pub.publishLifecycle('started', { home: '/var/ossec' }); // no capture behind it: not timed
    // Events whose earliest record was captured 40 ms ago: one status message, one batch of two keepalives.
    pub.publishAgentEvents([status, keepalive('002'), keepalive('003')], monotonicMs() - 40);
    pub.publishAgentEvents([keepalive('004')]); // no capture time known (a resync): not timed
    t.ok(await pub.delivery.flush(10_000), 'acknowledged');
    const st = pub.stats();
    const mode = jetstream ? 'JetStream' : 'core';
    t.equal(st.delayMs.count, 2, `${mode}: the status change and the batch timed, nothing else`);
    t.ok(st.delayMs.p50 >= 40 && st.delayMs.max < 40 + 5000, `${mode}: from their capture (${st.delayMs.p50} ms ≥ 40)`);
    t.equal(st.latencyMs.count, 4, `${mode}: every message's acknowledgement timed from its publishing`);
    t.ok(st.latencyMs.max < 5000, `${mode}: publish → ack ${st.latencyMs.max} ms`);
  }
});

t.test('JetStream: a stream\'s max_msg_size — keepalive batches fit it, a larger message is dropped and counted, never retried for ever', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'], max_msg_size: 4096 });
  const pub = new ReliablePublisher({
    servers: [srv.url], prefix: 'wazuh', node: 'node-1', log, spoolDir: tmp('spool-mm-'), spoolMaxBytes: 8 << 20,
    jetstream: true, reconnectDelayMs: 200, ackTimeoutMs: 2000, keepaliveBatch: { maxEvents: 1000, intervalMs: 0 },
  });
  t.teardown(() => pub.close(1000));
  await pub.connect();
  await waitFor(() => pub.connected && pub.delivery.maxPayload === 4096, 5000, 'connected, the stream\'s bound known');
  const ka = (i: number) => ({
    event_id: `ka-${i}`, event_type: 'keepalive' as const, agent_id: String(i).padStart(3, '0'), agent_name: `agent-${i}`, ip_address: '10.0.0.1',
    status: 'active' as const, version: 'Wazuh v4.9.0', os: { name: 'Ubuntu', platform: 'ubuntu' }, group_config_status: 'synced' as const,
    sync_status: 'synced', timestamp: 1, time: '1970-01-01T00:00:01.000Z', manager_node: 'node-1', source: 'remoted' as const,
  });
  const status = (n: number, name: string) => ({
    event_id: `st-001-${n}`, event_type: 'status_change' as const, agent_id: '001', agent_name: name,
    previous_status: 'active' as const, current_status: 'disconnected' as const, status_code: 3, reason: 'agent_shutdown' as const,
    ip_address: null, timestamp: n, time: '1970-01-01T00:00:01.000Z', manager_node: 'node-1', source: 'remoted', sync_status: 'synced',
  });
  // 100 keepalives at once (~30 KB as one default batch), then a status change too large for the stream, then the next one of the same agent.
  pub.publishAgentEvents(Array.from({ length: 100 }, (_, i) => ka(i + 1)) as never);
  pub.publishAgentEvent(status(1, 'x'.repeat(5000)) as never);
  pub.publishAgentEvent(status(2, 'web-01') as never);
  t.ok(await pub.delivery.flush(15_000), 'everything settled: nothing left retrying in the spool');
  const st = pub.delivery.stats();
  t.equal(st.rejected, 1, 'the one message larger than max_msg_size was dropped and counted');
  const info = await jsm.streams.info('WAZUH');
  const stored: { subject: string; size: number; count: number; event_id?: string }[] = [];
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage('WAZUH', { seq });
    stored.push({ subject: m!.subject, size: m!.data.length, count: Number(m!.header.get('Wazuh-Event-Count') || 0), event_id: m!.header.get('Nats-Msg-Id') });
  }
  const batches = stored.filter((s) => s.subject === 'wazuh.agent.batch.keepalive');
  t.ok(batches.length > 1 && batches.every((b) => b.size <= 4096), `${batches.length} batches, each within 4096 bytes`);
  t.equal(batches.reduce((n, b) => n + b.count, 0), 100, 'every keepalive stored');
  t.same(stored.filter((s) => s.subject === 'wazuh.agent.001.status').map((s) => s.event_id), ['st-001-2'],
    'the agent\'s next status change stored after the one dropped (not held behind it)');
});

t.test('JetStream with a user allowed to publish the events and nothing of the JetStream API: delivered, nothing said to be denied', async (t) => {
  const srv = await startNatsServer({ jetstream: true, extra: `authorization { users: [
    { user: "tap", password: "tap", permissions: { publish: { allow: ["wazuh.>"] }, subscribe: { allow: ["_INBOX.>"] } } },
    { user: "admin", password: "admin" } ] }\n` });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url, user: 'admin', pass: 'admin' });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'] });
  const lines: Record<string, unknown>[] = [];
  const seen = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l)); } });
  const pub = new ReliablePublisher({
    servers: [srv.url], prefix: 'wazuh', node: 'node-1', log: seen, spoolDir: tmp('spool-perm-'), spoolMaxBytes: 8 << 20,
    jetstream: true, reconnectDelayMs: 200, ackTimeoutMs: 2000, connectOptions: { user: 'tap', pass: 'tap' },
  });
  t.teardown(() => pub.close(1000));
  await pub.connect();
  await waitFor(() => pub.connected, 5000, 'connected');
  await new Promise((r) => setTimeout(r, 500)); // the look at the stream's limits, refused
  pub.publishLifecycle('started', { home: '/var/ossec' });
  t.ok(await pub.delivery.flush(10_000), 'stored: PubAcks arrive');
  t.equal((await jsm.streams.info('WAZUH')).state.messages, 1);
  t.equal(pub.delivery.stats().denied, 0, 'the refused look at the JetStream API is not a denied event');
  t.same(lines.filter((l) => Number(l.level) >= 50).map((l) => l.msg), [], 'no error logged');
});

t.test('JetStream with a user refused a subscription on _INBOX.>: said once as denied, no reconnect loop, the events wait', async (t) => {
  const srv = await startNatsServer({ jetstream: true, extra: `authorization { users: [
    { user: "tap", password: "tap", permissions: { publish: { allow: ["wazuh.>", "$JS.API.>"] }, subscribe: { deny: ["_INBOX.>"] } } },
    { user: "admin", password: "admin" } ] }\n` });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url, user: 'admin', pass: 'admin' });
  t.teardown(() => nc.close());
  await (await jetstreamManager(nc)).streams.add({ name: 'WAZUH', subjects: ['wazuh.>'] });
  const lines: Record<string, unknown>[] = [];
  const seen = pino({ level: 'info' }, { write: (l: string) => { lines.push(JSON.parse(l)); } });
  const d = new Delivery({ servers: [srv.url], mode: 'jetstream', log: seen, spool: { dir: tmp('spool-inbox-'), maxBytes: 8 << 20 },
    reconnectDelayMs: 200, ackTimeoutMs: 1000, connectOptions: { user: 'tap', pass: 'tap' } });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.connected, 5000, 'connected');
  d.enqueue({ subject: 'wazuh.tap.n.events', headers: { 'Content-Type': 'application/json' }, body: '{}', kind: 'tap', eventId: 'inbox-1' });
  await waitFor(() => d.stats().denied > 0, 5000, 'the refusal counted');
  await sleep(2000); // ten reconnect delays: a loop would show here
  const st = d.stats();
  t.match(st.lastDenied, /^subscription _INBOX\./, 'the refused subscription named');
  t.equal(st.acknowledged, 0, 'no PubAck can arrive: nothing counted as stored');
  t.equal(lines.filter((l) => /NATS away|reconnect|protocol/i.test(String(l.msg))).length, 0, 'the connection stays: no protocol error, no reconnect');
  t.equal(lines.filter((l) => /subscribe to _INBOX/.test(String(l.msg))).length, 1, 'the hint said once');
});

t.test('core NATS: the flush rides with the messages; the timer only for the last ones; an idle publisher sends nothing', async (t) => {
  const srv = await startNatsServer();
  t.teardown(() => srv.stop());
  // What the publisher writes, as the server reads it: each chunk one socket write (nothing else writes).
  const chunks: string[] = [];
  const proxy = createServer((c) => {
    const up = netConnect(srv.port, '127.0.0.1');
    c.on('data', (b) => { chunks.push(b.toString('latin1')); up.write(b); });
    up.pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.teardown(() => proxy.close());
  const url = `nats://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const d = new Delivery({ servers: [url], mode: 'core', log, spool: { dir: tmp('spool-f-'), maxBytes: 64 << 20 }, flushIntervalMs: 20 });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.connected, 5000, 'connected');
  await sleep(100);

  // A message every 5 ms for 0.6 s: each flush's PING goes out in a write that carries messages.
  const c0 = chunks.length;
  const gen = steady(d, 10, 1, 5);
  await sleep(600);
  gen.stop();
  await waitFor(() => d.stats().acknowledged >= gen.accepted.length, 2000, 'all acknowledged');
  const writes = chunks.slice(c0);
  const pings = writes.filter((w) => w.includes('PING\r\n'));
  const alone = pings.filter((w) => !/^H?PUB /m.test(w));
  t.ok(pings.length >= 5, `${pings.length} flushes for ${gen.accepted.length} messages`);
  t.ok(alone.length <= pings.length / 5, `${alone.length} of ${pings.length} flushes in a write of their own`);

  // The last message: no later one to carry its flush, the timer sends it (at twice the interval).
  const acked = d.stats().acknowledged;
  d.enqueue(testEvent(gen.next, 10));
  await waitFor(() => d.stats().acknowledged === acked + 1, 2000, 'the last message acknowledged');

  // Idle: no write at all (no flush timer ticking while nothing waits for one).
  await sleep(100);
  const c1 = chunks.length;
  await sleep(400);
  t.same(chunks.slice(c1), [], 'nothing written while idle');
});

t.test('core NATS: a spool segment removed while its events wait — they are counted lost; every other event and the new ones are delivered (found by review: nothing after it until a restart)', async (t) => {
  const dir = tmp('spool-gone-');
  const spool = { dir, maxBytes: 2 << 20, segmentBytes: 64 * 1024 };
  // What a run left while NATS was away: 600 events over several segments.
  const s0 = Spool.open(spool);
  s0.append(range(0, 600).map((i) => ({ ...testEvent(i, 50), body: JSON.stringify({ event_id: `ev-${i}`, agent_id: '001', n: i, pad: 'x'.repeat(500) }) })));
  s0.close();
  const segs = readdirSync(dir).filter((f) => f.startsWith('seg-')).sort();
  // The second one's events, read from a copy of it, then it goes (an administrator's rm).
  const aside = tmp('spool-aside-');
  copyFileSync(join(dir, segs[1]), join(aside, segs[1]));
  const copy = Spool.open({ dir: aside, maxBytes: 2 << 20 });
  const gone = new Set(copy.read(10_000).map((e) => e.eventId));
  copy.close();
  t.ok(gone.size > 0 && segs.length > 2, `${segs.length} segments, ${gone.size} events in the second`);

  const srv = await startNatsServer();
  t.teardown(() => srv.stop());
  const got = await liveEventIds(t, srv.url);
  const d = new Delivery({ servers: [srv.url], mode: 'core', log, spool, reconnectDelayMs: 200 });
  t.teardown(() => d.close(500));
  unlinkSync(join(dir, segs[1]));
  d.start();
  const expected = range(0, 600).map((i) => `ev-${i}`).filter((x) => !gone.has(x));
  await waitFor(() => got.length >= expected.length, 10_000, 'the other segments delivered');
  d.enqueue(testEvent(1000, 50));
  await waitFor(() => got.includes('ev-1000'), 5000, 'a new event delivered');
  t.ok(await d.flush(5000), 'the spool drained');
  t.same(got, [...expected, 'ev-1000'], 'every event of the other segments, in order, then the new one');
  t.equal(d.spool.stats().lost, gone.size, 'those of the removed segment counted as lost');
  t.equal(d.stats().spoolRecords, 0);
  t.equal(d.stats().readErrors, 0, 'no read retried for ever');
});

// publish/shared-headers.ts: the encoded headers kept for a keepalive batch's set (one a count) closed
// over the first message of that set, body included, for as long as the pool kept the set.
t.test('core NATS: the headers shared by keepalive batches keep none of the batches alive once delivered', async (t) => {
  const srv = await startNatsServer({});
  t.teardown(() => srv.stop());
  const d = new Delivery({ servers: [srv.url], mode: 'core', log, spool: { dir: tmp('spool-hdrs-'), maxBytes: 64 << 20 }, flushIntervalMs: 20 });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.connected, 5000, 'connected');
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const buffers = () => {
    gc();
    gc();
    return process.memoryUsage().arrayBuffers;
  };
  const before = buffers();
  const BODY = 512 * 1024;
  for (let n = 1; n <= 20; n++) {
    t.ok(d.enqueue({
      subject: 'wazuh.keepalive', kind: 'keepalive', eventId: `batch-${n}`, body: 'k'.repeat(BODY),
      headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': String(n) },
    }), `batch ${n} accepted`);
  }
  t.ok(await d.flush(10_000), 'delivered and confirmed');
  t.equal(d.stats().published, 20);
  const kept = buffers() - before;
  t.ok(kept < 4 * BODY, `after delivery, ${(kept / 2 ** 20).toFixed(1)} MB of buffers kept (20 bodies of 0.5 MB were published)`);
});
