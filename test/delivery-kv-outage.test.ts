// The JetStream pump while the KV bucket (agents_kv) cannot take a put — a 1-replica bucket whose server is
// down answers "no responders". It used to hold the head of the line: the stuck status change's slot,
// its agent's later records and everything after them waited for the bucket. Now the bucket is a
// latest-value view written apart (publish/kv-latest.ts): the stream goes on, the statuses waiting for
// the bucket are saved in kv.pending (their spool records may go), a restart puts them, and the bucket
// ends at each agent's latest. A real nats-server, the Delivery class driven directly.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Delivery, kvStreamConfig, type DeliveryMessage } from '../controller/src/publish/delivery.js';
import { startNatsServer } from './helpers/nats-server.js';
import { readStream } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';
import { deliveryMetrics } from '../controller/src/agent/parts/metrics.js';
import { parsePending } from '../controller/src/publish/kv-latest.js';
import { nOf, statusChangeBody } from './helpers/status-change.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ag = (k: number) => String(k).padStart(3, '0');

/** A keepalive batch (the default: keepalive_batch) of `agents`, numbered i. */
function batch(i: number, agents: string[]): DeliveryMessage {
  const events = agents.map((a) => ({ event_type: 'keepalive', agent_id: a, n: i }));
  return {
    subject: 'wazuh.agent.batch.keepalive', headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch' },
    body: JSON.stringify({ event_id: `kb-${i}`, event_type: 'keepalive_batch', count: events.length, events }), kind: 'keepalive', eventId: `kb-${i}`,
  };
}
/** A status change (or an alert) of `agent`, numbered i: a status change as the tap writes one, since kv.pending takes only those back. */
function status(i: number, agent: string, kind: 'status' | 'alert' = 'status'): DeliveryMessage {
  return {
    subject: `wazuh.agent.${agent}.${kind}`, headers: { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': agent },
    body: statusChangeBody(agent, i),
    kind: kind === 'alert' ? 'alert' : 'status', eventId: `ev-${i}`,
  };
}

/** A nats-server with the stream WAZUH and a KV bucket whose stream exists (STREAM.INFO answers: not gone) but takes none of its subjects: every put "no responders". */
async function brokenBucket(t: Tap.Test) {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'], storage: StorageType.File, duplicate_window: 7200e9 });
  await jsm.streams.add({ ...kvStreamConfig('wazuh_agents', 1), subjects: ['$KV.elsewhere.>'] });
  return { srv, nc, jsm };
}

t.test('the KV bucket unable to take puts: delivery goes on, the latest statuses wait in kv.pending, a restart puts them; then the bucket has each agent\'s latest', async (t) => {
  const { srv, nc, jsm } = await brokenBucket(t);
  const dir = tmp('spool-kvout-');
  const open = () => new Delivery({
    servers: [srv.url], mode: 'jetstream', spool: { dir, maxBytes: 64 << 20 }, reconnectDelayMs: 200, ackTimeoutMs: 2000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: false }, kvBucket: 'wazuh_agents',
  });
  let d = open();
  t.teardown(() => d.close(1000));
  d.start();
  let i = 0;
  let rnd = 12345;
  const rand = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const made: { i: number; agents: string[] }[] = [];
  const tick = setInterval(() => {
    const agents = new Set<string>();
    while (agents.size < 5) agents.add(ag(Math.floor(rand() * 50)));
    made.push({ i, agents: [...agents] });
    d.enqueue(batch(i++, [...agents]));
  }, 20);
  t.teardown(() => clearInterval(tick));
  await waitFor(() => d.stats().acknowledged >= 50, 20_000, 'delivering');
  // Agent 007 changes three times, 008 once, while no put can land.
  const changes: Record<string, number[]> = { '007': [], '008': [] };
  for (const a of ['007', '008', '007', '007']) {
    changes[a].push(i);
    d.enqueue(status(i++, a));
    await sleep(100);
  }
  await waitFor(() => (d.stats().kv?.failures ?? 0) > 0, 10_000, 'the KV puts failed');
  const a0 = d.stats().acknowledged;
  await sleep(2000);
  const st = d.stats();
  t.ok(st.acknowledged - a0 >= 50, `delivery goes on behind them (${st.acknowledged - a0} messages in 2 s; it stopped here before)`);
  t.ok(st.spoolRecords < 20, `the spool drains (${st.spoolRecords} records left): the statuses are saved for the bucket`);
  t.equal(st.kv?.pending, 2, 'two agents\' latest status wait for the bucket');
  t.equal(st.kv?.saved, 2, 'both saved in kv.pending');
  t.equal(deliveryMetrics(st).kvPending, 2, '/metrics: wazuh_nats_tap_kv_pending_agents');
  const file = parsePending(readFileSync(join(dir, 'kv.pending'), 'utf8'));
  t.equal(file.bad, 0, 'every line whole, its checksum right');
  const saved: Record<string, number> = {};
  for (const v of file.values.sort((a, b) => a.seq - b.seq)) saved[v.agent] = nOf(v.body);
  t.same(saved, { '007': changes['007'][2], '008': changes['008'][0] }, 'kv.pending holds each agent\'s latest (its later lines supersede the earlier)');
  clearInterval(tick);
  t.ok(await d.flush(500), 'the spool empty: nothing is lost, a stop need not wait for the bucket (review F6)');
  t.ok(await d.flush(500, { kv: true }) === false, 'but the bucket lacks them');
  // A restart while the bucket is still broken: the next run finds them.
  await d.close(1000);
  d = open();
  t.equal(d.stats().kv?.pending, 2, 'the next run has both from kv.pending');
  d.start();
  await sleep(1000);
  t.ok(existsSync(join(dir, 'kv.pending')), 'kept while the bucket still cannot take them');
  // The bucket fixed (deleted: the tap would make it; here, made right): the latest of each goes.
  await jsm.streams.delete('KV_wazuh_agents');
  await jsm.streams.add(kvStreamConfig('wazuh_agents', 1));
  t.ok(await d.flush(30_000, { kv: true }), 'everything delivered once the bucket takes puts');
  for (const a of ['007', '008']) {
    const kv = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: `$KV.wazuh_agents.${a}` });
    t.equal(nOf(kv!.string()), changes[a].at(-1), `KV: agent ${a} holds its latest status`);
  }
  await waitFor(() => !existsSync(join(dir, 'kv.pending')), 5_000, 'kv.pending removed once the bucket has all it held');
  const got = await readStream(nc, 'WAZUH', 20_000);
  const ids = got.map((g) => g.msgId);
  t.equal(new Set(ids).size, ids.length, 'nothing stored twice');
  t.equal(ids.length, made.length + 4, 'every batch and status change stored');
  const pos = new Map(ids.map((id, k) => [id, k]));
  for (const a of ['007', '008']) {
    for (const c of changes[a]) {
      const at = pos.get(`ev-${c}`)!;
      const wrong = made.filter((m) => m.agents.includes(a) && (m.i < c ? pos.get(`kb-${m.i}`)! > at : pos.get(`kb-${m.i}`)! < at));
      t.same(wrong.map((m) => m.i), [], `each batch naming agent ${a} on its side of its status change ${c}`);
    }
  }
});

t.test('agents_kv turned off: the values an earlier run saved for the bucket are dropped, not put when it is on again months later', async (t) => {
  const dir = tmp('spool-kvoff-');
  const line = JSON.stringify({ a: '007', s: 3, b: Buffer.from('{"n":1}').toString('base64') });
  // Made by a run with agents_kv (the spool makes the directory 0700 and its files 0600).
  const first = new Delivery({ servers: ['nats://127.0.0.1:1'], mode: 'jetstream', spool: { dir, maxBytes: 1 << 20 }, kvBucket: 'wazuh_agents' });
  await first.spool.replaceSide('kv.pending', `${line}\n`);
  await first.close(100);
  t.ok(existsSync(join(dir, 'kv.pending')));
  const d = new Delivery({ servers: ['nats://127.0.0.1:1'], mode: 'jetstream', spool: { dir, maxBytes: 1 << 20 } });
  t.teardown(() => d.close(100));
  await waitFor(() => !existsSync(join(dir, 'kv.pending')), 2000, 'kv.pending removed');
  t.equal(d.stats().kv, null, 'no KV writer');
});

t.test('a power loss that takes the spool\'s last second but not kv.pending: the next run\'s statuses are not taken for older than the file\'s (review F1)', async (t) => {
  const { srv, jsm } = await brokenBucket(t);
  const dir = tmp('spool-kvpower-');
  const open = () => new Delivery({
    servers: [srv.url], mode: 'jetstream', spool: { dir, maxBytes: 64 << 20 }, reconnectDelayMs: 200, ackTimeoutMs: 2000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: false }, kvBucket: 'wazuh_agents',
  });
  const d1 = open();
  d1.start();
  for (let i = 0; i < 5; i++) d1.enqueue(status(1000 + i, '007'));
  await waitFor(() => d1.stats().kv?.saved === 1 && d1.stats().spoolRecords === 0, 15_000, 'saved in kv.pending');
  await d1.close(500);
  // The power loss: kv.pending (fsynced) survives; the segments' and the cursor's last second does not.
  for (const f of readdirSync(dir)) if (f !== 'kv.pending' && f !== 'lock') rmSync(join(dir, f));
  await jsm.streams.delete('KV_wazuh_agents');
  await jsm.streams.add(kvStreamConfig('wazuh_agents', 1));
  const d2 = open();
  t.teardown(() => d2.close(500));
  d2.start();
  d2.enqueue(status(2000, '007'));
  d2.enqueue(status(2001, '007'));
  t.ok(await d2.flush(20_000, { kv: true }), 'delivered');
  const kv = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.007' });
  t.equal(nOf(kv!.string()), 2001, 'the bucket holds the new run\'s latest status, not the file\'s older one');
});

t.test('a NATS user allowed the bucket\'s puts ($KV.<bucket>.>) but not the JetStream API, the bucket made by an administrator: the puts go (review F4)', async (t) => {
  const srv = await startNatsServer({ jetstream: true, extra: `
accounts { A { jetstream: enabled, users: [
  { user: admin, password: admin },
  { user: tap, password: tap, permissions: { publish: ["wazuh.>", "$KV.wazuh_agents.>"], subscribe: ["_INBOX.>"] } }
] } }` });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url, user: 'admin', pass: 'admin' });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'], storage: StorageType.File, duplicate_window: 7200e9 });
  await jsm.streams.add(kvStreamConfig('wazuh_agents', 1));
  const d = new Delivery({
    servers: [srv.url], connectOptions: { user: 'tap', pass: 'tap' } as never, mode: 'jetstream', spool: { dir: tmp('spool-kvnoapi-'), maxBytes: 64 << 20 },
    reconnectDelayMs: 200, ackTimeoutMs: 2000, stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: false }, kvBucket: 'wazuh_agents',
  });
  t.teardown(() => d.close(500));
  d.start();
  for (let i = 0; i < 10; i++) d.enqueue(status(i, '007'));
  t.ok(await d.flush(10_000, { kv: true }), 'everything delivered, the bucket included');
  const kv = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.007' });
  t.equal(nOf(kv!.string()), 9, 'the bucket holds agent 007\'s latest status');
});
