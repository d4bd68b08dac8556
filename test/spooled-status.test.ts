// What a spooled record says of its agent's status, read back when the spool is opened: the status
// an earlier run's last spooled change carries, plain or encrypted; anything else, or anything that
// cannot be read, is nothing (the journal's status stands).
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { spooledStatus } from '../controller/src/publish/spooled-status.js';
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
