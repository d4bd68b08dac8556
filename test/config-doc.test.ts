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
import { exampleConfig } from '../controller/src/config/example.js';
import { makePki } from './helpers/certs.js';

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

t.test('the packaged example (exampleConfig): each commented element, uncommented, passes the loader (config check)', async (t) => {
  // The example the .deb and .rpm install as <home>/etc/nats-tap.conf shows every element commented
  // out: an administrator uncomments one and sets <enabled>yes</enabled>. Its <spool_dir> was
  // `<home>/var/nats-tap`: malformed XML once uncommented.
  const example = exampleConfig();
  const pki = makePki('example');
  const commented = [...example.matchAll(/^ {4}<!-- (<(\w+)>.*<\/\2>) -->$/gm)].map((m) => ({ line: m[0], element: m[2], xml: m[1] }));
  t.same(commented.map((c) => c.element).sort(), NATS_ELEMENTS.map((e) => e.element).filter((e) => e !== 'enabled').sort(),
    'every element but <enabled> is there, commented out');
  // Elements that need another: uncommented together (the loader names the missing one otherwise).
  const partner: Record<string, string> = { tls_cert: 'tls_key', tls_key: 'tls_cert', user: 'password_file', password_file: 'user',
    encrypt_messages: 'encryption_key' };
  const home = mkdtempSync(join(tmpdir(), 'wnt-example-'));
  mkdirSync(join(home, 'etc'));
  // The example's relative files, made as an administrator would (root's, 0600 for secrets).
  const files: Record<string, string> = {
    // Real ones: config check reads a seed and a .creds through nats.js's own authenticators (9b3f9e5).
    'etc/nats.creds': validSecret('credentials_file'),
    'etc/nats.nk': validSecret('nkey_seed_file'),
    'etc/nats.token': 'a-token\n', 'etc/nats.password': 'a-password\n',
    'etc/nats-client.crt': readFileSync(pki.clientCert, 'utf8'), 'etc/nats-client.key': readFileSync(pki.clientKey, 'utf8'),
    'etc/nats-ca.pem': readFileSync(pki.ca, 'utf8'), 'etc/nats-tap.key': `${'ab'.repeat(32)}\n`,
  };
  for (const [f, content] of Object.entries(files)) writeFileSync(join(home, f), content, { mode: f.endsWith('.crt') || f.endsWith('.pem') ? 0o644 : 0o600 });
  for (const c of commented) {
    const on = [c, ...commented.filter((o) => o.element === partner[c.element])];
    let conf = example.replace('<enabled>no</enabled>', '<enabled>yes</enabled>').replaceAll('/var/ossec/', `${home}/`);
    for (const o of on) conf = conf.replace(o.line.replaceAll('/var/ossec/', `${home}/`), `    ${o.xml.replaceAll('/var/ossec/', `${home}/`)}`);
    const file = join(home, 'etc/nats-tap.conf');
    writeFileSync(file, conf, { mode: 0o640 });
    let cfg: ReturnType<typeof loadConfig> | undefined;
    try {
      cfg = loadConfig({ file, home });
    } catch (e) {
      t.fail(`<${c.element}> uncommented: ${(e as Error).message}`);
      continue;
    }
    t.equal(cfg.enabled, true, `<${on.map((o) => o.element).join('> and <')}> uncommented: accepted`);
  }
});
