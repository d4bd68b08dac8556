// `config check` output: secrets never appear, in the masked object, its JSON
// or the rendered text; secret files are shown by path; values carry their source.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../controller/src/config/ossec-conf.js';
import { maskedConfig } from '../controller/src/config/mask.js';
import { renderConfig } from '../controller/src/config/render.js';
import { NATS_ELEMENTS } from '../controller/src/config/schema.js';
import { runTap } from './helpers/tap-process.js';

const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKNOWNSECRETKEYMATERIAL0123456789abcdef\n-----END PRIVATE KEY-----\n';
const TOKEN = 's3cr3t-token-7f1c9a2b4d';
const ENC_KEY = 'c0ffee'.repeat(10) + 'beef';
const URL_PASSWORD = 'urlPassw0rd-91x';

function fixture() {
  const home = mkdtempSync(join(tmpdir(), 'wnt-mask-'));
  mkdirSync(join(home, 'etc'));
  const put = (name: string, body: string, mode: number) => {
    const p = join(home, 'etc', name);
    writeFileSync(p, body);
    chmodSync(p, mode);
    return p;
  };
  const files = {
    cert: put('nats-client.crt', '-----BEGIN CERTIFICATE-----\nPUBLICCERT\n-----END CERTIFICATE-----\n', 0o644),
    key: put('nats-client.key', KEY_PEM, 0o600),
    token: put('nats.token', `${TOKEN}\n`, 0o600),
    enc: put('nats-encryption.key', `${ENC_KEY}\n`, 0o400),
  };
  writeFileSync(join(home, 'etc/ossec.conf'), `<ossec_config>
  <cluster><node_name>node-a</node_name><disabled>yes</disabled></cluster>
  <nats>
    <enabled>yes</enabled>
    <server_url>tls://tap:${URL_PASSWORD}@nats-1:4222,nats://${TOKEN}@nats-2:4222</server_url>
    <token_file>${files.token}</token_file>
    <tls_cert>${files.cert}</tls_cert>
    <tls_key>${files.key}</tls_key>
    <encrypt_messages>yes</encrypt_messages>
    <encryption_key>${files.enc}</encryption_key>
    <spool_max_size>1GB</spool_max_size>
  </nats>
</ossec_config>
`);
  return { home, files };
}

const SECRETS = [KEY_PEM, 'KNOWNSECRETKEYMATERIAL', TOKEN, ENC_KEY, ENC_KEY.slice(0, 16), URL_PASSWORD];

t.test('masked and rendered output never contains a secret; paths of secret files are shown', async (t) => {
  const { home, files } = fixture();
  const cfg = loadConfig({ home, overrides: { prefix: 'ops' } });
  const masked = maskedConfig(cfg);
  const outputs = { json: JSON.stringify(masked), text: renderConfig(cfg), pretty: JSON.stringify(masked, null, 2) };
  for (const [name, out] of Object.entries(outputs)) {
    for (const s of SECRETS) t.notOk(out.includes(s), `${name} does not contain ${s.slice(0, 12)}…`);
    for (const p of [files.key, files.token, files.enc]) t.ok(out.includes(p), `${name} shows the path ${p}`);
  }
  const url = masked.settings.find((s) => s.element === 'server_url');
  t.equal(url?.value, 'tls://tap:***@nats-1:4222,nats://***@nats-2:4222', 'URL password and token masked, user kept');
  const secretShown = masked.settings.filter((s) => s.secret && s.value !== null).map((s) => s.element).sort();
  t.same(secretShown, ['encryption_key', 'tls_key', 'token_file']);
  t.match(masked.warnings.join('\n'), /carries credentials/);
  t.match(outputs.text, /\(secret file, contents not shown\)/);
});

t.test('maskedConfig lists every element with its value in ossec.conf syntax and its source', async (t) => {
  const { home } = fixture();
  const cfg = loadConfig({ home, overrides: { prefix: 'ops' } });
  const m = maskedConfig(cfg);
  t.same(m.settings.map((s) => s.element), NATS_ELEMENTS.map((e) => e.element), 'every element, in schema order');
  const by = Object.fromEntries(m.settings.map((s) => [s.element, s]));
  t.match(by.enabled, { value: 'yes', source: 'file', where: /ossec\.conf:4$/ });
  t.match(by.subject_prefix, { value: 'ops', source: 'flag', where: '--prefix' });
  t.match(by.spool_max_size, { value: '1GB', source: 'file' });
  t.match(by.max_reconnects, { value: '10', source: 'default' });
  t.equal(by.max_reconnects.where, undefined);
  t.match(by.reconnect_delay, { value: '2s', source: 'default' });
  t.match(by.metrics, { value: '127.0.0.1:9464' });
  t.match(by.alert_thresholds, { value: '7,10,13' });
  t.match(by.credentials_file, { value: null, secret: true });
  t.equal(m.manager_node, 'node-a');
  t.match(m.origins.manager_node, /^file \(.*ossec\.conf:2 <cluster><node_name>\)$/);
  t.equal(m.enabled, true);
});

t.test('render: aligned lines, the source of each value, the verdict', async (t) => {
  const { home } = fixture();
  const text = renderConfig(loadConfig({ home, overrides: { prefix: 'ops' } }));
  const lines = text.split('\n');
  t.match(text, /^configuration\s+\/.*\/etc\/ossec\.conf\s+default/m);
  t.match(text, /^manager_node\s+node-a\s+file/m);
  t.match(text, /^subject_prefix\s+ops\s+flag --prefix$/m);
  t.match(text, /^enabled\s+yes\s+file ossec\.conf:4$/m);
  t.match(text, /^max_reconnects\s+10\s+default$/m);
  t.match(text, /^credentials_file\s+-\s+default$/m);
  // The value column starts at the same place on every setting line.
  const start = lines.indexOf(lines.find((l) => l.startsWith('<nats>'))!);
  const rows = lines.slice(start, start + 1 + NATS_ELEMENTS.length);
  const col = rows.map((l) => /^\S+\s+/.exec(l)![0].length);
  t.equal(new Set(col).size, 1, 'one value column');
  t.match(text, /the tap is enabled\n$/);
  writeFileSync(join(home, 'etc/ossec.conf'), '<ossec_config><nats></nats></ossec_config>');
  t.match(renderConfig(loadConfig({ home })), /the tap is disabled \(<enabled>no<\/enabled>\): `run` exits 0 without starting\n$/);
});

t.test('config check: a <server_url> list whose later URL has no scheme — refused, and no credential of it shown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-mask-list-'));
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc/nats-tap.conf');
  writeFileSync(file, '<ossec_config><nats><server_url>nats://tokA1@h1:4222,bob:pwB2@h2:4222</server_url></nats></ossec_config>\n', { mode: 0o640 });
  const r = await runTap(['config', 'check', '--config', file]);
  t.equal(r.code, 2);
  t.match(r.stderr, /Invalid value for element 'server_url'/);
  t.notMatch(r.stderr, /tokA1|pwB2/, r.stderr);
});
