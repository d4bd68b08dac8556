// Payload encryption: AES-256-GCM, a fresh nonce per message, the subject bound in.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decrypt, encrypt, encryptedHeaders, readKeyFile } from '../controller/src/publish/encryption.js';

const dir = mkdtempSync(join(tmpdir(), 'wnt-key-'));
const raw = randomBytes(32);
const hexFile = join(dir, 'hex.key');
const b64File = join(dir, 'b64.key');
writeFileSync(hexFile, `${raw.toString('hex')}\n`, { mode: 0o600 });
writeFileSync(b64File, raw.toString('base64'), { mode: 0o600 });

t.test('key files: hex or base64, the same key and id; anything else refused', async (t) => {
  const a = readKeyFile(hexFile);
  const b = readKeyFile(b64File);
  t.ok(a.key.equals(raw) && b.key.equals(raw));
  t.equal(a.id, b.id);
  t.match(a.id, /^[0-9a-f]{16}$/);
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, 'too-short', { mode: 0o600 });
  t.throws(() => readKeyFile(bad), /32 bytes/);
  t.notMatch(String((() => { try { readKeyFile(bad); } catch (e) { return e; } })()), 'too-short', 'the content is not echoed');
});

t.test('round trip; fresh nonce; tampering, another key or another subject fail', async (t) => {
  const k = readKeyFile(hexFile);
  const msg = JSON.stringify({ event_type: 'status_change', agent_id: '001', agent_name: 'web-server-01' });
  const c1 = encrypt(k, 'wazuh.agent.001.status', msg);
  const c2 = encrypt(k, 'wazuh.agent.001.status', msg);
  t.not(c1, c2, 'two encryptions of one message differ (fresh nonce)');
  t.notMatch(Buffer.from(c1, 'base64').toString('latin1'), 'web-server-01', 'no plaintext on the wire');
  t.equal(decrypt(k, 'wazuh.agent.001.status', c1), msg);
  t.equal(decrypt(k, 'wazuh.agent.001.status', new TextEncoder().encode(c2)), msg, 'from the raw message bytes too');
  const tampered = Buffer.from(c1, 'base64');
  tampered[20] ^= 1;
  t.throws(() => decrypt(k, 'wazuh.agent.001.status', tampered.toString('base64')), /cannot decrypt/);
  t.throws(() => decrypt(k, 'wazuh.agent.002.status', c1), /cannot decrypt/, 'bound to its subject');
  const other = { key: randomBytes(32), id: 'x' };
  t.throws(() => decrypt(other, 'wazuh.agent.001.status', c1), /cannot decrypt/, 'another key');
  t.throws(() => decrypt(k, 's', 'AAAA'), /too short/);
  t.same(encryptedHeaders(k, { 'Content-Type': 'application/json', 'Wazuh-Agent-Id': '001' }), {
    'Content-Type': 'application/octet-stream', 'Wazuh-Agent-Id': '001', 'Wazuh-Encryption': 'AES-256-GCM', 'Wazuh-Key-Id': k.id,
  });
});
