// What a spooled record says of its agent's status, read back when the spool is opened: the status
// an earlier run's last spooled change carries, plain or encrypted; anything else, or anything that
// cannot be read, is nothing (the journal's status stands).
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { spooledStatus, statusVerdict } from '../controller/src/publish/spooled-status.js';
import { statusChangeBody } from './helpers/status-change.js';
import { encrypt } from '../controller/src/publish/encryption.js';

const key = (raw: Buffer) => ({ key: raw, id: createHash('sha256').update(raw).digest('hex').slice(0, 16) });
const subject = 'wazuh.agent.037.status';
const change = { event_id: 'x', event_type: 'status_change', agent_id: '037', previous_status: 'disconnected', current_status: 'active', status_code: 3 };
const rec = (body: unknown, kind: 'status' | 'keepalive' = 'status') => ({
  kind, subject, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
});

t.test('a status change: its agent, current status and code', async (t) => {
  t.same(spooledStatus(rec(change)), { agentId: 37, status: 'active', statusCode: 3 });
  t.same(spooledStatus(rec({ ...change, current_status: 'unknown', status_code: 5 })), { agentId: 37, status: 'unknown', statusCode: 5 }, 'a removal');
});

t.test('encrypted: read with the key it was sealed with; another key, or none, reads nothing', async (t) => {
  const k = key(randomBytes(32));
  const sealed = rec(encrypt(k, subject, JSON.stringify(change)));
  t.same(spooledStatus(sealed, k), { agentId: 37, status: 'active', statusCode: 3 });
  t.equal(spooledStatus(sealed, key(randomBytes(32))), null, 'the key changed since');
  t.equal(spooledStatus(sealed), null, 'encryption turned off since');
  t.equal(spooledStatus({ ...sealed, subject: 'wazuh.agent.038.status' }, k), null, 'moved to another subject');
});

t.test('anything else is nothing', async (t) => {
  t.equal(spooledStatus(rec(change, 'keepalive')), null, 'not a status record');
  for (const [what, body] of [
    ['not JSON', '{"event_type":"status_change"'],
    ['not a status change', { ...change, event_type: 'keepalive' }],
    ['an agent id that is not digits', { ...change, agent_id: '0x25' }],
    ['an agent id too long', { ...change, agent_id: '1234567890' }],
    ['a status Wazuh has not', { ...change, current_status: 'rebooting' }],
    ['a code out of range', { ...change, status_code: 1000 }],
    ['a code that is not an integer', { ...change, status_code: '3' }],
    ['null', 'null'],
  ] as const) t.equal(spooledStatus(rec(body)), null, what);
});

// kv.pending's values are put into the KV bucket with the tap's credentials: only a status change of the
// line's agent exactly as the tap writes one is taken (review helper-93 K2), and a value today's
// encrypt_messages setting cannot read is told apart from a forged one (K1).
t.test('kv.pending: a value is taken only as the tap writes it, byte for byte', async (t) => {
  const body = (s: string) => Buffer.from(s);
  const own = statusChangeBody('037', 1_700_000_000);
  t.equal(statusVerdict('037', body(own), 'wazuh'), 'take', 'the tap\'s own');
  for (const [what, text, agent] of [
    ['agent 000', statusChangeBody('000', 5), '000'],
    ['a 9-digit id', statusChangeBody('123456789', 5), '123456789'],
    ['no name, a node of unicode and escapes', statusChangeBody('001', 5, { name: null, node: 'nœud "1"\\\u2028' }), '001'],
    ['an empty host name for the node (review helper-95 K3)', statusChangeBody('001', 5, { node: '' }), '001'],
  ] as const) t.equal(statusVerdict(agent, body(text), 'wazuh'), 'take', what);
  const ev = JSON.parse(own) as Record<string, unknown>;
  const as = (o: Record<string, unknown>) => JSON.stringify(o); // the same text as statusJson while the keys keep their order
  t.equal(as(ev), own, 'JSON.stringify of the parsed value is the tap\'s text (the variants below differ in one thing)');
  for (const [what, text] of [
    ['another field', `${own.slice(0, -1)},"note":"forged"}`],
    ['the agent id twice, another agent\'s first', own.replace('"agent_id":"037"', '"agent_id":"999","agent_id":"037"')],
    ['spaced', JSON.stringify(ev, null, 1)],
    ['keys in another order', as({ event_type: ev.event_type, ...ev })],
    ['ESC in the name', as({ ...ev, agent_name: 'web\u001b]0;pwned\u0007' })],
    ['a name Wazuh refuses', as({ ...ev, agent_name: 'a b' })],
    ['an address that is none', as({ ...ev, ip_address: '10.0.0.999' })],
    ['a previous status Wazuh has not', as({ ...ev, previous_status: 'bogus' })],
    ['a reason the tap has not', as({ ...ev, reason: 'pwned' })],
    ['an event id the tap does not make', as({ ...ev, event_id: 'ev-1' })],
    ['a time that is not the timestamp\'s', as({ ...ev, timestamp: -1 })],
    ['a time that is no ISO text', as({ ...ev, time: 'yesterday' })],
    ['a source with a control character', as({ ...ev, source: 'remoted\r' })],
    ['a sync status with a control character', as({ ...ev, sync_status: 'synced\u001b' })],
    ['a sync status longer than a label', as({ ...ev, sync_status: 's'.repeat(65) })],
    ['a source longer than the tap\'s', as({ ...ev, source: 'r'.repeat(33) })],
    ['an object for the sync status', as({ ...ev, sync_status: { deep: [[[[1]]]] } })],
    ['a number for the name', as({ ...ev, agent_name: 5 })],
  ] as const) t.equal(statusVerdict('037', body(text), 'wazuh'), 'refuse', what);
  t.equal(statusVerdict('038', body(own), 'wazuh'), 'refuse', 'another agent\'s value');
  t.equal(statusVerdict('037', body('garbage'), 'wazuh'), 'refuse', 'neither JSON nor sealed');
});

t.test('kv.pending: a value sealed with another key, sealed while encryption was on, or plain before it was: unreadable', async (t) => {
  const k1 = key(randomBytes(32));
  const k2 = key(randomBytes(32));
  const own = statusChangeBody('037', 1_700_000_000);
  const sealed = Buffer.from(encrypt(k1, 'wazuh.agent.037.status', own));
  t.equal(statusVerdict('037', sealed, 'wazuh', k1), 'take', 'sealed, read with its key');
  t.equal(statusVerdict('037', sealed, 'wazuh', k2), 'unreadable', 'the key rotated since');
  t.equal(statusVerdict('037', sealed, 'wazuh'), 'unreadable', 'encrypt_messages turned off since');
  t.equal(statusVerdict('037', Buffer.from(own), 'wazuh', k1), 'unreadable', 'turned on since: never put in clear');
  t.equal(statusVerdict('038', sealed, 'wazuh', k1), 'unreadable', 'sealed for another agent\'s subject (a seal cannot tell it from another key)');
  t.equal(statusVerdict('037', Buffer.from(encrypt(k1, 'wazuh.agent.037.status', `${own.slice(0, -1)},"x":1}`)), 'wazuh', k1), 'refuse',
    'sealed with today\'s key but not the tap\'s text');
  t.equal(statusVerdict('037', Buffer.from('QUJD'), 'wazuh', k1), 'refuse', 'shorter than any seal');
});
