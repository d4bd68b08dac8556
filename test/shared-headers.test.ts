// publish/shared-headers.ts: an agent's message headers, encoded by the tap for a core publish, are the
// bytes nats.js's own headers() would have written — for every set the tap makes, and for values
// nats.js would trim or refuse (those go through nats.js itself).
import t from 'tap';
import { connect, type Msg } from '@nats-io/transport-node';
import { encodedHeaders, headersOf } from '../controller/src/publish/shared-headers.js';
import { startNatsServer } from './helpers/nats-server.js';

const bytes = (h: unknown) => Buffer.from((h as { encode(): Uint8Array }).encode()).toString('utf8');

t.test('the same bytes as nats.js for every header set the tap makes', async (t) => {
  const sets: Record<string, string>[] = [];
  for (const type of ['status_change', 'keepalive']) {
    for (const id of ['000', '001', '12345', '999999999']) sets.push({ 'Content-Type': 'application/json', 'Wazuh-Event-Type': type, 'Wazuh-Agent-Id': id });
  }
  sets.push({ 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'alert', 'Wazuh-Agent-Id': '007' });
  sets.push({ 'Content-Type': 'application/octet-stream', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': '001', 'Wazuh-Encryption': 'aes-256-gcm' });
  sets.push({ 'Wazuh-Agent-Id': 'é ü 漢' }, { 'Wazuh-Agent-Id': '' }, {});
  for (const h of sets) t.equal(bytes(encodedHeaders(h)), bytes(headersOf(h)), JSON.stringify(h));
  t.equal(bytes(encodedHeaders(sets[1])), 'NATS/1.0\r\nContent-Type: application/json\r\nWazuh-Event-Type: status_change\r\nWazuh-Agent-Id: 001\r\n\r\n');
});

t.test('values nats.js would change or refuse go through nats.js', async (t) => {
  // Trimmed by nats.js: the same bytes all the same.
  for (const v of [' 001', '001 ', '\t001', '0 1', '\u00a0001', '001\u2028', '\ufeff001', '\u3000']) {
    // (named by code points: a raw U+2028 in a test's name breaks the TAP stream)
    t.equal(bytes(encodedHeaders({ 'Wazuh-Agent-Id': v })), bytes(headersOf({ 'Wazuh-Agent-Id': v })), [...v].map((c) => c.codePointAt(0)!.toString(16)).join(' '));
  }
  // Refused by nats.js: refused here too (a header injection is never written).
  for (const v of ['001\r\nX-Forged: 1', '001\n', '\r']) t.throws(() => encodedHeaders({ 'Wazuh-Agent-Id': v }), JSON.stringify(v));
  t.throws(() => encodedHeaders({ 'Bad Name': '1' }), 'a name nats.js refuses');
  t.throws(() => encodedHeaders({ 'Nom-\u00e9': '1' }), 'a name beyond ASCII: nats.js refuses it');
  for (const name of ['A:B', 'A\x7f', 'A\u0000', ':', 'A B']) {
    let theirs = 'written';
    try { headersOf({ [name]: '1' }); } catch { theirs = 'refused'; }
    let ours = 'written';
    try { encodedHeaders({ [name]: '1' }); } catch { ours = 'refused'; }
    t.equal(ours, theirs, `a name of code points ${[...name].map((c) => c.codePointAt(0)!.toString(16)).join(' ')}: as nats.js`);
    t.equal(ours, 'refused');
  }
  // Not a string (a spool record made by hand, its checksum right): what nats.js does with it, here too.
  for (const v of [5, null, undefined] as unknown as string[]) {
    let theirs: string;
    try { theirs = bytes(headersOf({ 'Wazuh-Agent-Id': v })); } catch (e) { theirs = `throws ${(e as Error).name}`; }
    let ours: string;
    try { ours = bytes(encodedHeaders({ 'Wazuh-Agent-Id': v })); } catch (e) { ours = `throws ${(e as Error).name}`; }
    t.equal(ours, theirs, `a value ${String(v)}`);
  }
  const inherited = Object.create({ 'X-Inherited': 'yes' }) as Record<string, string>;
  inherited['Wazuh-Agent-Id'] = '001';
  t.equal(bytes(encodedHeaders(inherited)), bytes(headersOf(inherited)), 'own names only');
});

t.test('a subscriber reads them as it read nats.js\'s', async (t) => {
  const srv = await startNatsServer({});
  t.teardown(() => srv.stop());
  const nc = await connect({ servers: srv.url });
  t.teardown(() => nc.close());
  const got: Msg[] = [];
  nc.subscribe('wazuh.agent.>', { callback: (_e, m) => got.push(m) });
  await nc.flush();
  const h = { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': '042' };
  nc.publish('wazuh.agent.042.status', '{"a":1}', { headers: encodedHeaders(h) });
  nc.publish('wazuh.agent.042.status', '{"a":2}', { headers: headersOf(h) });
  await nc.flush();
  for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(got.length, 2);
  for (const m of got) {
    t.same([...m.headers!.keys()], ['Content-Type', 'Wazuh-Event-Type', 'Wazuh-Agent-Id']);
    t.equal(m.headers!.get('Wazuh-Agent-Id'), '042');
  }
  t.same(got.map((m) => m.json()), [{ a: 1 }, { a: 2 }]);
});
