// agents_kv: what kv.pending holds is put into the KV bucket with the tap's credentials, so a start takes
// only what the tap writes there — each agent's status change, of a size the tap makes — and a put that
// can never be stored (over max_payload, over the bucket's max_msg_size) is dropped with a count, not
// tried again for ever (review rr-poison-files F8). A real nats-server, the Delivery class driven directly.
import t from 'tap';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Delivery, kvStreamConfig, type DeliveryMessage } from '../controller/src/publish/delivery.js';
import { encodeLine } from '../controller/src/publish/kv-latest.js';
import { encrypt, type EncryptionKey } from '../controller/src/publish/encryption.js';
import { startNatsServer, type NatsServer } from './helpers/nats-server.js';
import { waitFor } from './helpers/wait.js';
import { nOf, statusChangeBody } from './helpers/status-change.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A status change of `agent` as the tap writes one (`pad`: that many more bytes, a long manager_node). */
const change = (agent: string, n: number, pad = 0) => statusChangeBody(agent, n, pad ? { node: 'n'.repeat(pad) } : {});

/** A spool directory holding `lines` as kv.pending (the tap's mode). */
function spoolWith(lines: string): string {
  const d = mkdtempSync(join(tmpdir(), 'spool-kvref-'));
  chmodSync(d, 0o700);
  writeFileSync(join(d, 'kv.pending'), lines, { mode: 0o600 });
  return d;
}

/** A Delivery with agents_kv on `srv`, its log lines collected. */
function open(t: Tap.Test, srv: NatsServer, dir: string, o: { encryption?: EncryptionKey } = {}) {
  const logged: Record<string, unknown>[] = [];
  const d = new Delivery({
    servers: [srv.url], mode: 'jetstream', reconnectDelayMs: 200, ackTimeoutMs: 2000, spool: { dir, maxBytes: 16 << 20 },
    stream: { name: 'WAZUH', subjects: ['wazuh.>'], create: true }, kvBucket: 'wazuh_agents', encryption: o.encryption,
    log: pino({ level: 'info' }, { write: (s: string) => { logged.push(JSON.parse(s)); } }),
  });
  t.teardown(() => d.close(500));
  return { d, logged };
}

/**
 * A server with the KV bucket made beforehand (`max_msg_size`: its bound), so no put meets a bucket just
 * made and without a leader yet; and what the bucket holds for an agent.
 */
async function serverWithBucket(t: Tap.Test, o: { extra?: string; maxMsgSize?: number } = {}) {
  const srv = await startNatsServer({ jetstream: true, extra: o.extra });
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ ...kvStreamConfig('wazuh_agents', 1), ...(o.maxMsgSize ? { max_msg_size: o.maxMsgSize } : {}) });
  const kv = await new Kvm(nc).open('wazuh_agents');
  return { srv, get: async (agent: string) => (await kv.get(agent))?.string() ?? null };
}

t.test('kv.pending at start: a forged value and one larger than the tap writes are refused, one sealed for another subject is unreadable; counted and said once each', async (t) => {
  const { srv, get } = await serverWithBucket(t);
  const key: EncryptionKey = { key: randomBytes(32), id: 'test-key' };
  const sealed = (agent: string, subjectAgent: string, n: number) => Buffer.from(encrypt(key, `wazuh.agent.${subjectAgent}.status`, change(agent, n)));
  const dir = spoolWith([
    encodeLine('001', 10, sealed('999', '001', 10)), // another agent's status change under 001
    encodeLine('002', 11, Buffer.from(change('002', 11, 2 << 20))), // 2 MiB: no status change of the tap's
    encodeLine('003', 12, sealed('003', '003', 12)), // the tap's own
    encodeLine('004', 13, sealed('004', '005', 13)), // sealed for another agent's subject
  ].join(''));
  const { d, logged } = open(t, srv, dir, { encryption: key });
  d.start();
  await waitFor(() => !existsSync(join(dir, 'kv.pending')), 10_000, 'kv.pending removed once the bucket has what it took');
  t.ok(await get('003'), 'the tap\'s own value put');
  t.same([await get('001'), await get('002'), await get('004')], [null, null, null], 'none of the others');
  t.match(d.stats().kv, { refusedValues: 3, failures: 0, pending: 0 }, 'counted, never tried');
  const said = logged.filter((l) => /KV values an earlier run saved that are no status change of their agent/.test(String(l.msg)));
  t.equal(said.length, 1, 'said in one line');
  t.match(said[0], { level: 40, refused: 2, beyond: 0, max_value_bytes: 65536 }, 'with the counts');
  t.match(logged.filter((l) => /under another encrypt_messages setting or key/.test(String(l.msg))), [{ level: 40, unreadable: 1, encrypt_messages: 'on' }],
    'the one sealed for another subject: unreadable with today\'s key (a seal cannot tell it from another key)');
  t.ok(await d.flush(2000, { kv: true }), 'a stop waits for nothing');
});

t.test('a KV put over the server\'s max_payload: the value is dropped and counted, not put again; the other agents\' go', async (t) => {
  const { srv, get } = await serverWithBucket(t, { extra: 'max_payload: 4096\n' });
  // A status change of 10 KB: within what kv.pending takes back, over this server's max_payload.
  const dir = spoolWith(encodeLine('001', 10, Buffer.from(change('001', 10, 10_000))) + encodeLine('002', 11, Buffer.from(change('002', 11))));
  const { d, logged } = open(t, srv, dir);
  d.start();
  await waitFor(() => !existsSync(join(dir, 'kv.pending')), 10_000, 'kv.pending removed');
  await sleep(1500); // three canary periods: a put tried again would show by now
  t.ok(await get('002'), '002 put');
  t.equal(await get('001'), null, '001 not');
  const kv = d.stats().kv!;
  t.comment(`kv stats: ${JSON.stringify(kv)}`);
  t.match(kv, { dropped: 1, failures: 0, pending: 0 }, 'dropped, counted; no failure, nothing pending');
  t.equal(kv.puts, 2, 'one put each: never tried again');
  t.match(logged.filter((l) => l.msg === 'KV put refused for the value\'s size: dropped (the bucket keeps the agent\'s older status until a newer one)'),
    [{ level: 50, agent: '001', err: /max_payload/ }], 'said');
  t.ok(await d.flush(2000, { kv: true }), 'a stop waits for nothing');
});

t.test('a KV put over the bucket\'s max_msg_size (the server says the message is too large): dropped and counted the same', async (t) => {
  const { srv, get } = await serverWithBucket(t, { maxMsgSize: 512 });
  const { d, logged } = open(t, srv, mkdtempSync(join(tmpdir(), 'spool-kvref-')));
  d.start();
  await waitFor(() => d.stats().connected && d.stats().streamReady, 10_000, 'connected');
  const status = (agent: string, n: number, pad = 0): DeliveryMessage => ({
    subject: `wazuh.agent.${agent}.status`, headers: { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': agent },
    body: change(agent, n, pad), kind: 'status', eventId: `ev-${n}`,
  });
  d.enqueueMany([status('001', 1, 1000), status('002', 2)]);
  t.ok(await d.flush(5000, { kv: true }), 'the spool drained and the bucket settled');
  await sleep(1200);
  t.ok(await get('002'), '002 put');
  t.equal(await get('001'), null, '001 not (its status change is in the stream)');
  t.match(d.stats(), { acknowledged: 2, kv: { dropped: 1, failures: 0, puts: 2 } }, 'both in the stream; the KV value dropped, put once');
  t.match(logged.filter((l) => String(l.msg).startsWith('KV put refused for the value\'s size')), [{ agent: '001' }], 'said');
});

t.test('kv.pending saved under another encrypt_messages setting or key: not put, said as such (not as forged), the tap\'s own taken', async (t) => {
  // Review helper-93 K1: a rotated key or encryption switched on or off made the tap's own values read as
  // "no status change of their agent". Not put all the same: in clear, or sealed under a key the
  // consumers may no longer have.
  const { srv, get } = await serverWithBucket(t);
  const old: EncryptionKey = { key: randomBytes(32), id: 'old-key' };
  const now: EncryptionKey = { key: randomBytes(32), id: 'new-key' };
  const sealed = (k: EncryptionKey, agent: string, n: number) => Buffer.from(encrypt(k, `wazuh.agent.${agent}.status`, change(agent, n)));
  const dir = spoolWith([
    encodeLine('001', 10, sealed(old, '001', 10)), // the key rotated since
    encodeLine('002', 11, Buffer.from(change('002', 11))), // encryption turned on since
    encodeLine('003', 12, sealed(now, '003', 12)), // today's
  ].join(''));
  const { d, logged } = open(t, srv, dir, { encryption: now });
  d.start();
  await waitFor(() => !existsSync(join(dir, 'kv.pending')), 10_000, 'kv.pending removed once the bucket has what it took');
  t.ok(await get('003'), 'today\'s value put');
  t.same([await get('001'), await get('002')], [null, null], 'the others not: neither in clear nor under the old key');
  t.match(d.stats().kv, { refusedValues: 2, failures: 0, pending: 0 }, 'counted');
  t.match(logged.filter((l) => /under another encrypt_messages setting or key/.test(String(l.msg))), [{ level: 40, unreadable: 2, encrypt_messages: 'on' }], 'said once, as what they are');
  t.same(logged.filter((l) => /no status change of their agent/.test(String(l.msg))), [], 'not as forged');

  // Encryption off now, and no value of the file readable: dropped, the file removed — this run puts a
  // newer status of the agent straight into the bucket, and a file that kept the old line put it back
  // over it at a start with the old key (review helper-96).
  const { srv: srv2, get: get2 } = await serverWithBucket(t);
  const dir2 = spoolWith(encodeLine('004', 13, sealed(now, '004', 13)));
  const off = open(t, srv2, dir2);
  off.d.start();
  await waitFor(() => off.d.stats().connected, 10_000, 'connected');
  t.match(off.logged.filter((l) => /under another encrypt_messages setting or key/.test(String(l.msg))), [{ unreadable: 1, encrypt_messages: 'off' }], 'said with encryption off');
  await waitFor(() => !existsSync(join(dir2, 'kv.pending')), 10_000, 'kv.pending removed: its one line dropped');
  off.d.enqueueMany([{
    subject: 'wazuh.agent.004.status', headers: { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': '004' },
    body: change('004', 99), kind: 'status', eventId: 'ev-99',
  }]);
  t.ok(await off.d.flush(5000, { kv: true }), 'a newer status of 004 stored and put');
  t.equal(nOf(String(await get2('004'))), 99, 'the bucket holds it');
  await off.d.close(500);
  const back = open(t, srv2, dir2, { encryption: now });
  back.d.start();
  await waitFor(() => back.d.stats().connected, 10_000, 'connected');
  await sleep(1000);
  t.equal(nOf(String(await get2('004'))), 99, 'a start with the old key puts nothing back over it');
});
