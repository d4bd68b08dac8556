// The JetStream pump while the KV bucket (agents_kv) cannot take a put — a 1-replica bucket whose server is
// down answers "no responders". Found by a review: the stuck status change was stored in the stream again at
// every retry (once per duplicate window). Its agent's later records and what
// follows them wait (head of the line: docs/architecture.md, Publish); once the bucket takes puts, all is
// delivered, in order. A real nats-server, the Delivery class driven directly.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Delivery, kvStreamConfig, type DeliveryMessage } from '../controller/src/publish/delivery.js';
import { startNatsServer } from './helpers/nats-server.js';
import { readStream } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';

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
function status(i: number, agent: string, kind: 'status' | 'alert' = 'status'): DeliveryMessage {
  return {
    subject: `wazuh.agent.${agent}.${kind}`, headers: { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': agent },
    body: JSON.stringify({ event_id: `ev-${i}`, agent_id: agent, n: i }), kind: kind === 'alert' ? 'alert' : 'status', eventId: `ev-${i}`,
  };
}

t.test('one agent\'s KV put failing: its status change is stored once, only its KV put retried; then everything, in order', async (t) => {
  const srv = await startNatsServer({ jetstream: true });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'], storage: StorageType.File, duplicate_window: 7200e9 });
  // The bucket's stream exists (STREAM.INFO answers: not gone) but no stream takes its subjects: every put "no responders".
  await jsm.streams.add({ ...kvStreamConfig('wazuh_agents', 1), subjects: ['$KV.elsewhere.>'] });
  const d = new Delivery({
    servers: [srv.url], mode: 'jetstream', spool: { dir: tmp('spool-kvout-'), maxBytes: 64 << 20 }, reconnectDelayMs: 200, ackTimeoutMs: 2000,
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: false }, kvBucket: 'wazuh_agents',
  });
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
  const stuck = i++;
  d.enqueue(status(stuck, '007'));
  await waitFor(() => d.stats().failures > 0, 10_000, 'its KV put failed');
  const r0 = d.stats().resent;
  await sleep(4000);
  const resent = d.stats().resent - r0;
  t.ok(resent <= 10, `its KV put retried at most every 500 ms (${resent} in 4 s)`);
  t.ok(d.stats().streamReady, 'the stream is not taken for gone');
  clearInterval(tick);
  // The bucket fixed (deleted: the tap would make it; here, made right): everything goes.
  await jsm.streams.delete('KV_wazuh_agents');
  await jsm.streams.add(kvStreamConfig('wazuh_agents', 1));
  t.ok(await d.flush(30_000), 'everything acknowledged once the bucket takes puts');
  const got = await readStream(nc, 'WAZUH', 20_000);
  const ids = got.map((g) => g.msgId);
  t.equal(ids.filter((id) => id === `ev-${stuck}`).length, 1, 'the stuck status change stored once: its retries were its KV put alone');
  t.equal(new Set(ids).size, ids.length, 'nothing stored twice');
  t.equal(d.stats().duplicates, 0, 'and nothing sent twice to the stream (the duplicate window would hide it for 2 h only)');
  t.equal(ids.length, made.length + 1, 'every batch stored');
  const pos = new Map(ids.map((id, k) => [id, k]));
  const at = pos.get(`ev-${stuck}`)!;
  const wrong = made.filter((m) => m.agents.includes('007') && (m.i < stuck ? pos.get(`kb-${m.i}`)! > at : pos.get(`kb-${m.i}`)! < at));
  t.same(wrong.map((m) => m.i), [], 'each batch naming agent 007 on its side of the status change');
  const kv = await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: '$KV.wazuh_agents.007' });
  t.equal(kv?.json<{ n: number }>().n, stuck, 'the KV bucket has it');
});
