// A spool record NATS would refuse for ever — a subject empty or with white space, a header name or
// value nats.js rejects, a header that is not a string, an event id that cannot be a header — is not a
// message: only a record made by hand (the spool's checksum is no signature) has one. Before, such a
// record read from disk was published again and again, in core NATS held every later message behind it
// (the pump put it back at the head), and in JetStream threw out of the pump.
import t from 'tap';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import pino from 'pino';
import { Delivery } from '../controller/src/publish/delivery.js';
import { encodeFrame, Spool, type SpoolMessage } from '../controller/src/publish/spool.js';
import { startNatsServer } from './helpers/nats-server.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wnt-unpub-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};
const good = (i: number): SpoolMessage => ({
  subject: `wazuh.agent.00${i % 10}.status`, kind: 'status', eventId: `ev-${i}`,
  headers: { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': `00${i % 10}` },
  body: JSON.stringify({ event_id: `ev-${i}`, i }),
});
/** Hand-made records, each a way nats.js refuses a message. */
const BAD: [string, (m: SpoolMessage) => unknown][] = [
  ['a header value that is a number', (m) => ({ ...m, headers: { ...m.headers, 'Wazuh-Agent-Id': 7 } })],
  ['a header value that is an object', (m) => ({ ...m, headers: { 'Wazuh-Agent-Id': { a: 1 } } })],
  ['headers that are null', (m) => ({ ...m, headers: null })],
  ['headers that are an array', (m) => ({ ...m, headers: ['a'] })],
  ['a header name with a colon', (m) => ({ ...m, headers: { 'Wazuh:Agent': '001' } })],
  ['a header name with a space', (m) => ({ ...m, headers: { 'Wazuh Agent': '001' } })],
  ['a header value with CR LF', (m) => ({ ...m, headers: { 'Wazuh-Agent-Id': '001\r\nX-Injected: 1' } })],
  ['an empty subject', (m) => ({ ...m, subject: '' })],
  ['a subject with a space', (m) => ({ ...m, subject: 'wazuh.agent.001 status' })],
  ['a subject with CR LF', (m) => ({ ...m, subject: 'wazuh.a\r\nPUB x 1\r\ny' })],
  ['a subject with a tab', (m) => ({ ...m, subject: 'wazuh.a\tb' })],
  ['an event id with a LF', (m) => ({ ...m, eventId: 'ev\nx' })],
];

/** A spool of `before` good records, then the bad ones, then `after` good ones: the segment written by hand. */
function handMade(dir: string, bad: unknown[], before = 3, after = 3): string[] {
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append(Array.from({ length: before }, (_, i) => good(i)));
  s.close();
  const seg = join(dir, readdirSync(dir).filter((f) => f.startsWith('seg-'))[0]);
  let seq = before + 1;
  for (const m of bad) appendFileSync(seg, encodeFrame(m as SpoolMessage, seq++));
  for (let i = 0; i < after; i++) appendFileSync(seg, encodeFrame(good(before + i), seq++));
  return Array.from({ length: before + after }, (_, i) => `ev-${i}`);
}

t.test('read from disk, a record nats.js would refuse is counted damaged and skipped; the rest is read in order', async (t) => {
  for (const [what, make] of BAD) {
    const d = tmp();
    const want = handMade(d, [make(good(50))]);
    const s = Spool.open({ dir: d, maxBytes: 1 << 20 });
    const got = s.read(100).map((e) => e.eventId);
    t.same(got, want, `${what}: the good records, in order`);
    t.equal(s.stats().corrupt, 1, `${what}: counted damaged`);
    s.close();
  }
  const d = tmp();
  const want = handMade(d, BAD.map(([, make], i) => make(good(60 + i))), 5, 5);
  const s = Spool.open({ dir: d, maxBytes: 1 << 20 });
  t.same(s.read(100).map((e) => e.eventId), want, 'all of them in a row: the good records around them');
  t.equal(s.stats().corrupt, BAD.length, `${BAD.length} counted`);
  s.close();
});

t.test('what the tap writes is read back: its own headers, subjects and ids pass', async (t) => {
  const d = tmp();
  const ms: SpoolMessage[] = [
    good(1),
    { ...good(2), headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': '500' }, subject: 'wazuh.agent.batch.keepalive', kind: 'keepalive' },
    { ...good(3), headers: { 'Wazuh-Agent-Name': ' spaced  é 漢字 ', 'X-Empty': '' } },
    { ...good(4), headers: {} },
    { ...good(5), subject: 'wazuh.alerts.level.12', kind: 'alert', eventId: 'a'.repeat(64) },
  ];
  const s = Spool.open({ dir: d, maxBytes: 1 << 20, memCacheBytes: 0 });
  s.append(ms);
  s.close();
  const s2 = Spool.open({ dir: d, maxBytes: 1 << 20 });
  const got = s2.read(100);
  t.same(got.map((e) => [e.subject, e.eventId, e.headers]), ms.map((m) => [m.subject, m.eventId, m.headers]));
  t.equal(s2.stats().corrupt, 0);
  s2.close();
});

for (const mode of ['core', 'jetstream'] as const) {
  t.test(`${mode}: a spool holding hand-made records NATS would refuse is delivered around them, at once`, async (t) => {
    const srv = await startNatsServer({ jetstream: true });
    t.teardown(() => srv.stop());
    const dir = tmp();
    const want = handMade(dir, BAD.map(([, make], i) => make(good(70 + i))), 4, 4);
    const nc = await connect({ servers: srv.url });
    t.teardown(() => nc.close());
    const got: string[] = [];
    const sub = nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => got.push(m.json<{ event_id: string }>().event_id) });
    t.teardown(() => sub.unsubscribe());
    await nc.flush();
    const d = new Delivery({
      servers: [srv.url], mode, log, reconnectDelayMs: 200, flushIntervalMs: 20,
      spool: { dir, maxBytes: 1 << 20 },
      ...(mode === 'jetstream' && { stream: { name: 'UNPUB', subjects: ['wazuh.>'], create: true } }),
    });
    t.teardown(() => d.close(1000));
    d.start();
    await waitFor(() => got.length >= want.length, 10_000, 'the good records delivered');
    t.ok(await d.flush(5000), 'everything acknowledged');
    t.same(got, want, 'every good record, once, in order');
    t.match(d.stats(), { failures: 0 }, 'no publish failed (none was retried)');
  });
}

t.test('in memory (a message made by a bug, never by the tap): refused by NATS, it is dropped and counted, not retried for ever', async (t) => {
  for (const mode of ['core', 'jetstream'] as const) {
    const srv = await startNatsServer({ jetstream: true });
    t.teardown(() => srv.stop());
    const nc = await connect({ servers: srv.url });
    t.teardown(() => nc.close());
    const got: string[] = [];
    nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => got.push(m.json<{ event_id: string }>().event_id) });
    await nc.flush();
    const d = new Delivery({
      servers: [srv.url], mode, log, reconnectDelayMs: 200, flushIntervalMs: 20, spool: { dir: tmp(), maxBytes: 1 << 20 },
      ...(mode === 'jetstream' && { stream: { name: 'UNPUB2', subjects: ['wazuh.>'], create: true } }),
    });
    t.teardown(() => d.close(1000));
    d.start();
    await waitFor(() => d.connected, 5000, 'connected');
    const bad = [{ ...good(1), subject: 'wazuh.a b', eventId: 'bad-1' }, { ...good(2), headers: { 'A:B': 'x' }, eventId: 'bad-2' }];
    d.enqueueMany([good(0), ...bad, good(3)]);
    await waitFor(() => got.length >= 2, 10_000, `${mode}: the good ones delivered`);
    t.ok(await d.flush(5000), `${mode}: everything settled`);
    t.same(got, ['ev-0', 'ev-3'], `${mode}: the good ones, in order`);
    t.equal(d.stats().rejected, 2, `${mode}: the two counted rejected`);
  }
});
