// docs/configuration.md is generated from the schema and must match it; the
// schema holds every element of SPEC §6, and its hooks are the capture's.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../controller/src/config/ossec-conf.js';
import { configReferenceMarkdown, withGeneratedReference } from '../controller/src/config/doc.js';
import { HOOK_NAMES, NATS_ELEMENTS } from '../controller/src/config/schema.js';
import { HOOKS } from '../controller/src/capture/capture.js';
import { validSecret } from './helpers/config.js';

const DOC = new URL('../docs/configuration.md', import.meta.url);

// SPEC §6's table, element by element.
const SPEC_ELEMENTS = ['enabled', 'server_url', 'credentials_file', 'nkey_seed_file', 'token_file', 'user', 'password_file',
  'subject_prefix', 'tls_cert', 'tls_key', 'tls_ca', 'max_reconnects', 'reconnect_delay', 'encrypt_messages', 'encryption_key',
  'jetstream', 'stream', 'create_stream', 'spool_dir', 'spool_max_size', 'keepalive_events', 'alerts', 'alerts_min_level', 'metrics'];

t.test('docs/configuration.md matches the schema (regenerate: node scripts/gen-config-doc.mjs)', async (t) => {
  const doc = readFileSync(DOC, 'utf8');
  t.ok(doc.includes(configReferenceMarkdown()), 'the generated block is current');
  t.equal(withGeneratedReference(doc), doc);
  for (const e of NATS_ELEMENTS) t.match(doc, `| \`${e.element}\` |`, `${e.element} documented`);
});

t.test('the schema holds every element of SPEC §6, each once, with SPEC defaults', async (t) => {
  const names = NATS_ELEMENTS.map((e) => e.element);
  for (const n of SPEC_ELEMENTS) t.ok(names.includes(n), n);
  t.equal(new Set(names).size, names.length, 'no duplicates');
  t.equal(new Set(NATS_ELEMENTS.map((e) => e.key)).size, names.length, 'keys unique');
  const def = Object.fromEntries(NATS_ELEMENTS.map((e) => [e.element, e.default]));
  t.same([def.enabled, def.server_url, def.subject_prefix, def.max_reconnects, def.reconnect_delay, def.stream, def.spool_max_size, def.metrics],
    ['no', 'nats://127.0.0.1:4222', 'wazuh', '10', '2', 'WAZUH', '512MB', '127.0.0.1:9464']);
  const secret = NATS_ELEMENTS.filter((e) => e.secret).map((e) => e.element).sort();
  t.same(secret, ['credentials_file', 'encryption_key', 'nkey_seed_file', 'password_file', 'tls_key', 'token_file']);
});

t.test('the schema\'s hooks are the capture\'s', async (t) => {
  t.same([...HOOK_NAMES], [...HOOKS]);
});

t.test('docs/examples/nats-tap.conf is a valid configuration (its files made in a temporary home)', async (t) => {
  const example = readFileSync(new URL('../docs/examples/nats-tap.conf', import.meta.url), 'utf8');
  const home = mkdtempSync(join(tmpdir(), 'wnt-example-'));
  mkdirSync(join(home, 'etc'));
  const conf = example.replaceAll('/var/ossec/', `${home}/`);
  writeFileSync(join(home, 'etc/ossec.conf'), conf);
  const paths = [...new Set([...conf.matchAll(/<(\w+)>([^<>]*\/etc\/[^<>]+)<\/\1>/g)].map((m) => m[2]))];
  t.same(paths.map((p) => p.slice(home.length)).sort(),
    ['/etc/nats-ca.pem', '/etc/nats-client.crt', '/etc/nats-client.key', '/etc/nats.creds']);
  for (const p of paths) {
    // The .creds file is checked for what it holds: a valid one (the others are opaque to the loader).
    writeFileSync(p, p.endsWith('.creds') ? validSecret('credentials_file') : 'x');
    chmodSync(p, 0o600);
  }
  const c = loadConfig({ home });
  t.equal(c.enabled, true);
  t.same(c.serverUrls, ['tls://nats-1.example.internal:4222', 'tls://nats-2.example.internal:4222'], 'step 2 overrides step 1');
  t.equal(c.credentialsFile, join(home, 'etc/nats.creds'));
  t.equal(c.tlsKey, join(home, 'etc/nats-client.key'));
  t.equal(c.jetstream, true);
  t.equal(c.createStream, true);
  t.equal(c.spoolMaxSize, 2 * 1024 ** 3);
  t.equal(c.keepaliveEvents, false);
  t.equal(c.alertsMinLevel, 7);
  t.equal(c.reconnectDelaySec, 2);
  t.same(c.warnings, []);
});
