// docs/asyncapi.yaml is a valid AsyncAPI 3 document, covers every subject of SPEC §4, and its
// validator (test/helpers/contract.ts, which the end-to-end tests' collectors use) refuses
// what breaks the contract, with the schema's own error.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { asyncapi, contractError, kvEntryError } from './helpers/contract.js';
import { ROOT } from './helpers/tap-process.js';
import { agentSubject, alertSubject, keepaliveBatchSubject, tapSubject } from '../controller/src/publish/subjects.js';
import { kvBucketName } from '../controller/src/publish/reliable.js';

const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule);

t.test('a valid AsyncAPI 3.0.0 document (the official JSON Schema of @asyncapi/specs)', async (t) => {
  const specs = createRequire(import.meta.url)('@asyncapi/specs') as { schemas: Record<string, object> };
  // The official schema is third-party draft-07 with its own vocabulary: compiled non-strict.
  // It embeds its own copy of the draft-07 meta-schema: ajv's is left out (meta: false).
  const meta = new Ajv({ allErrors: true, strict: false, validateSchema: false, meta: false });
  addFormats(meta);
  const validate = meta.compile(specs.schemas['3.0.0']);
  const ok = validate(asyncapi);
  t.ok(ok, meta.errorsText(validate.errors));
  t.equal(asyncapi.asyncapi, '3.0.0');
  t.equal(asyncapi.info.version, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version, 'the version of the package');
});

t.test('every subject the tap publishes is a channel, and every channel has an operation', async (t) => {
  const addresses = Object.values(asyncapi.channels).map((c: any) => c.address).sort();
  t.same(addresses, [
    '$KV.{bucket}.{agent_id}',
    '{prefix}.agent.batch.keepalive',
    '{prefix}.agent.{agent_id}.keepalive',
    '{prefix}.agent.{agent_id}.status',
    '{prefix}.security.alerts.{severity}',
    '{prefix}.tap.{node}.events',
  ]);
  // The addresses are the publisher's own subjects, with the parameters filled in.
  const ev = { agent_id: '001' } as never;
  t.equal(agentSubject('{prefix}', { ...(ev as object), event_type: 'status_change' } as never), '{prefix}.agent.001.status');
  t.equal(keepaliveBatchSubject('{prefix}'), '{prefix}.agent.batch.keepalive');
  t.equal(tapSubject('{prefix}', '{node}'), '{prefix}.tap._node_.events', 'the node is one token (braces become _)');
  t.equal(alertSubject('{prefix}', 'high'), '{prefix}.security.alerts.high');
  t.equal(kvBucketName('corp.siem'), 'corp_siem_agents');
  const operated = Object.values(asyncapi.operations).map((o: any) => o.channel.$ref.split('/').pop()).sort();
  t.same(operated, Object.keys(asyncapi.channels).sort());
});

t.test('the message examples keep the contract', async (t) => {
  const ex = asyncapi.components.messages.statusChange.examples[0];
  t.equal(contractError({ subject: 'wazuh.agent.001.status', headers: ex.headers, body: ex.payload }), null);
  t.equal(kvEntryError('wazuh_agents', '001', ex.payload), null, 'a KV value is a status change');
});

const status = () => ({
  event_id: 'b546aa25-1969-88b9-89f6-c2237a058bd0', event_type: 'status_change', agent_id: '001', agent_name: 'web',
  previous_status: 'pending', current_status: 'active', status_code: 0, reason: 'keepalive', ip_address: '10.0.0.1',
  timestamp: 1795800853, time: '2026-11-27T17:34:13.531Z', manager_node: 'node01', source: 'remoted', sync_status: 'synced',
});
const H = { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'status_change', 'Wazuh-Agent-Id': '001' };

t.test('what breaks the contract is refused with the schema\'s error', async (t) => {
  t.equal(contractError({ subject: 'wazuh.agent.001.status', headers: H, body: status() }), null, 'a good event');
  const { reason: _r, ...noReason } = status();
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: H, body: noReason }), /must have required property 'reason'/);
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: H, body: { ...status(), extra: 1 } }), /must NOT have additional properties/);
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: H, body: { ...status(), current_status: 'online' } }), /must be equal to one of the allowed values/);
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: H, body: { ...status(), time: '2026-11-27 17:34' } }), /time/);
  t.match(contractError({ subject: 'wazuh.agent.002.status', headers: { ...H, 'Wazuh-Agent-Id': '002' }, body: status() }), /subject agent 002 but agent_id 001/);
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: { ...H, 'Wazuh-Agent-Id': '1' }, body: status() }), /Wazuh-Agent-Id/);
  t.match(contractError({ subject: 'wazuh.agent.001.status', headers: { ...H, 'Nats-Msg-Id': 'b546aa25-1969-88b9-89f6-c2237a058bd1' }, body: status() }), /Nats-Msg-Id is not the event_id/);
  t.match(contractError({ subject: 'wazuh.agent.001.state', headers: H, body: status() }), /no channel/);
  t.match(contractError({ subject: 'wazuh.tap.node01.events', headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'tap' },
    body: { event_id: 'b546aa25-1969-88b9-89f6-c2237a058bd0', event_type: 'tap', action: 'started', manager_node: 'node01', time: '2026-11-27T17:34:13.531Z', timestamp: 1795800853 } }),
  /must have required property 'home'/, 'started names the home');
  t.match(contractError({ subject: 'wazuh.tap.other.events', headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'tap' },
    body: { event_id: 'b546aa25-1969-88b9-89f6-c2237a058bd0', event_type: 'tap', action: 'attached', manager_node: 'node01', time: '2026-11-27T17:34:13.531Z', timestamp: 1795800853 } }),
  /subject node other but manager_node node01/);
});
