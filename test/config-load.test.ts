// The <nats> section of ossec.conf: every error case of SPEC §6, several
// <ossec_config> roots with comments, defaults, the node name, home detection
// and the precedence of flags over the file.
import t, { type Test } from 'tap';
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../controller/src/errors.js';
import { detectHome, loadConfig, type LoadOptions } from '../controller/src/config/ossec-conf.js';
import { NATS_ELEMENTS } from '../controller/src/config/schema.js';
import { runTap } from './helpers/tap-process.js';
import { validSecret } from './helpers/config.js';
import { nkeys } from '@nats-io/transport-node';

/** A manager home with etc/ossec.conf holding `conf`. */
function home(conf: string): { home: string; file: string; put: (name: string, body: string, mode?: number) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-config-'));
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc/ossec.conf');
  writeFileSync(file, conf);
  const put = (name: string, body: string, mode = 0o600) => {
    const p = join(dir, 'etc', name);
    writeFileSync(p, body);
    chmodSync(p, mode);
    return p;
  };
  return { home: dir, file, put };
}

const nats = (inner: string) => `<ossec_config>\n  <nats>\n${inner}\n  </nats>\n</ossec_config>\n`;

function load(conf: string, opts: Omit<LoadOptions, 'home'> = {}) {
  const h = home(conf);
  return loadConfig({ home: h.home, ...opts });
}

/** The ConfigError thrown, checked to name the file and match `re`. */
function rejects(t: Test, conf: string | { home: string; file: string }, re: RegExp, opts: Omit<LoadOptions, 'home'> = {}) {
  const h = typeof conf === 'string' ? home(conf) : conf;
  let err: unknown;
  try {
    loadConfig({ home: h.home, ...opts });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError, `ConfigError (got ${String(err)})`);
  t.equal((err as ConfigError).exitCode, 2, 'exit code 2');
  t.match((err as Error).message, re);
  return (err as Error).message;
}

t.test('defaults: an empty <nats> takes every default of SPEC §6, enabled no', async (t) => {
  const h = home('<ossec_config><global><jsonout_output>yes</jsonout_output></global></ossec_config>');
  const c = loadConfig({ home: h.home });
  t.equal(c.enabled, false);
  t.same(c.serverUrls, ['nats://127.0.0.1:4222']);
  t.equal(c.subjectPrefix, 'wazuh');
  t.equal(c.maxReconnects, 10);
  t.equal(c.reconnectDelaySec, 2);
  t.equal(c.discoverServers, true, 'the servers a cluster announces are used by default');
  t.equal(c.encryptMessages, false);
  t.equal(c.jetstream, false);
  t.equal(c.stream, 'WAZUH');
  t.equal(c.createStream, false);
  t.equal(c.spoolDir, join(h.home, 'var/nats-tap'));
  t.equal(c.spoolMaxSize, 512 * 1024 * 1024);
  t.equal(c.keepaliveEvents, true);
  t.equal(c.alerts, true);
  t.equal(c.alertsMinLevel, 0);
  t.same(c.alertThresholds, { medium: 7, high: 10, critical: 13 });
  t.equal(c.alertsFromBeginning, false);
  t.same(c.metrics, { host: '127.0.0.1', port: 9464 });
  t.same(c.hooks, ['sendto']);
  for (const k of ['credentialsFile', 'nkeySeedFile', 'tokenFile', 'user', 'passwordFile', 'tlsCert', 'tlsKey', 'tlsCa', 'encryptionKey'] as const) {
    t.equal(c[k], null, `${k} unset`);
  }
  for (const e of NATS_ELEMENTS) t.equal(c.origins[e.key].source, 'default', `${e.element} from the default`);
  t.equal(c.file, h.file);
  t.equal(c.home, h.home);
  t.same(c.warnings, []);
});

t.test('several <ossec_config> roots, comments, a declaration, several <nats>: later elements win', async (t) => {
  const conf = `<?xml version="1.0"?>
<!-- Wazuh - Manager - Default configuration -->
<ossec_config>
  <global><logall>no</logall></global>
  <!-- <nats><enabled>no</enabled><subject_prefix>commented</subject_prefix></nats> -->
  <nats>
    <enabled>yes</enabled>
    <subject_prefix>first</subject_prefix>
    <max_reconnects>3</max_reconnects>
  </nats>
</ossec_config>

<ossec_config>
  <nats>
    <!-- a comment between elements -->
    <subject_prefix>wazuh.prod-1</subject_prefix>
    <server_url>nats://a:4222, tls://b.example:4443</server_url>
    <reconnect_delay>1m</reconnect_delay>
    <spool_max_size>100KB</spool_max_size>
  </nats>
</ossec_config>`;
  // 100KB is below the spool's minimum: the error names the line of the second root.
  rejects(t, conf, /ossec\.conf:19: Invalid value for element 'spool_max_size': '100KB' — at least 1MB/);
  const c = load(conf.replace('100KB', '1GB'));
  t.equal(c.enabled, true);
  t.equal(c.subjectPrefix, 'wazuh.prod-1', 'the later <nats> overrides the earlier one; the commented one is ignored');
  t.equal(c.maxReconnects, 3, 'an element set only in the first <nats> is kept');
  t.same(c.serverUrls, ['nats://a:4222', 'tls://b.example:4443']);
  t.equal(c.reconnectDelaySec, 60);
  t.equal(c.spoolMaxSize, 1024 ** 3);
  t.match(c.origins.subjectPrefix, { source: 'file', where: /ossec\.conf:16$/ });
  t.match(c.origins.maxReconnects, { source: 'file', where: /ossec\.conf:9$/ });
});

t.test('values: sizes, times, metrics, levels, hooks, booleans', async (t) => {
  const c = load(nats(`<spool_max_size>1048576</spool_max_size><reconnect_delay>30s</reconnect_delay>
    <metrics>[::1]:9100</metrics><alerts_min_level>5</alerts_min_level><alert_thresholds>5,8,12</alert_thresholds>
    <alerts_from_beginning>yes</alerts_from_beginning><hooks>sendto,writev,sendto</hooks><keepalive_events>no</keepalive_events><jetstream>yes</jetstream><discover_servers>no</discover_servers>
    <stream>WAZUH_EVENTS</stream><create_stream>yes</create_stream><spool_dir>/tmp/spool-x</spool_dir>`));
  t.equal(c.spoolMaxSize, 1048576);
  t.equal(c.reconnectDelaySec, 30);
  t.same(c.metrics, { host: '::1', port: 9100 });
  t.equal(c.alertsMinLevel, 5);
  t.same(c.alertThresholds, { medium: 5, high: 8, critical: 12 });
  t.equal(c.alertsFromBeginning, true);
  t.same(c.hooks, ['sendto', 'writev']);
  t.equal(c.discoverServers, false);
  t.equal(c.keepaliveEvents, false);
  t.equal(c.jetstream, true);
  t.equal(c.stream, 'WAZUH_EVENTS');
  t.equal(c.createStream, true);
  t.equal(c.spoolDir, '/tmp/spool-x');
  t.equal(load(nats('<metrics>no</metrics>')).metrics, null);
  t.equal(load(nats('<spool_max_size>2gb</spool_max_size>')).spoolMaxSize, 2 * 1024 ** 3);
  t.equal(load(nats('<reconnect_delay>2h</reconnect_delay>')).reconnectDelaySec, 7200);
  t.equal(load(nats('<reconnect_delay>1d</reconnect_delay>')).reconnectDelaySec, 86400);
  const batched = load(nats('<keepalive_batch>500</keepalive_batch><keepalive_batch_interval>2s</keepalive_batch_interval>'));
  t.equal(batched.keepaliveBatch, 500);
  t.equal(batched.keepaliveBatchIntervalSec, 2);
  t.same(batched.warnings, []);
  const plain = load(nats(''));
  t.equal(plain.keepaliveBatch, 1000, 'batched by default (SPEC §9: the cost of a keepalive)');
  t.equal(plain.keepaliveBatchIntervalSec, 0, 'each batch of captured records, waiting for nothing');
  t.equal(load(nats('<keepalive_batch>0</keepalive_batch>')).keepaliveBatch, 0, 'one message per keepalive, when asked');
  t.match(load(nats('<keepalive_batch>0</keepalive_batch><keepalive_batch_interval>5</keepalive_batch_interval>')).warnings, [/<keepalive_batch_interval> is set but <keepalive_batch> is 0/]);
  t.match(load(nats('<keepalive_batch>10</keepalive_batch><keepalive_events>no</keepalive_events>')).warnings, [/<keepalive_batch> is set but <keepalive_events> is no/]);
  t.equal(plain.captureIntervalMs, 1, 'the capture takes records every millisecond by default');
  t.equal(load(nats('<capture_interval>3</capture_interval>')).captureIntervalMs, 3);
  t.equal(load(nats('<capture_interval>20ms</capture_interval>')).captureIntervalMs, 20);
  t.equal(load(nats('<capture_interval>100</capture_interval>')).captureIntervalMs, 100);
});

t.test('an unknown element, an empty one, an element holding elements', async (t) => {
  rejects(t, nats('<enabled>yes</enabled>\n<servers>nats://x</servers>'), /ossec\.conf:4: Invalid element in the configuration: 'servers' \(in <nats>; known: enabled, server_url/);
  rejects(t, nats('<server_url></server_url>'), /ossec\.conf:3: Invalid NULL content for element: server_url$/);
  rejects(t, nats('<subject_prefix/>'), /Invalid NULL content for element: subject_prefix/);
  rejects(t, nats('<enabled>   </enabled>'), /Invalid NULL content for element: enabled/);
  rejects(t, nats('<enabled><yes/></enabled>'), /Invalid value for element 'enabled': it holds elements/);
});

t.test('bad values: boolean, numbers, times, size, URL, prefix, stream, metrics, levels, hooks, user, spool_dir', async (t) => {
  const cases: [string, RegExp][] = [
    ['<enabled>true</enabled>', /'enabled': 'true' — yes or no/],
    ['<jetstream>YES</jetstream>', /'jetstream': 'YES' — yes or no/],
    ['<max_reconnects>-1</max_reconnects>', /'max_reconnects': '-1' — a whole number ≥ 0/],
    ['<max_reconnects>ten</max_reconnects>', /'max_reconnects': 'ten'/],
    ['<max_reconnects>2.5</max_reconnects>', /'max_reconnects': '2.5'/],
    ['<reconnect_delay>2w</reconnect_delay>', /'reconnect_delay': '2w' — seconds, or a number with s, m, h or d/],
    ['<reconnect_delay>0</reconnect_delay>', /'reconnect_delay': '0' — between 1 second and 1 day/],
    ['<spool_max_size>512XB</spool_max_size>', /'spool_max_size': '512XB' — bytes, or a number with KB, MB or GB/],
    ['<spool_max_size>lots</spool_max_size>', /'spool_max_size': 'lots'/],
    ['<server_url>localhost:4222</server_url>', /'server_url': 'localhost:4222' — scheme 'localhost:' is not nats:\/\/ or tls:\/\//],
    ['<server_url>http://nats:4222</server_url>', /scheme 'http:' is not nats:\/\/ or tls:\/\//],
    ['<server_url>nats://a:4222,,nats://b:4222</server_url>', /comma-separated URLs, none empty/],
    ['<server_url>nats://</server_url>', /'server_url': 'nats:\/\/' — (not a URL|no host)/],
    ['<server_url>nats://a:4222/path</server_url>', /no path, query or fragment/],
    ['<server_url>nats://a:99999</server_url>', /not a URL/],
    ['<subject_prefix>wazuh.*</subject_prefix>', /'subject_prefix': 'wazuh\.\*' — dot-separated tokens/],
    ['<subject_prefix>wazuh..x</subject_prefix>', /'subject_prefix': 'wazuh\.\.x'/],
    ['<subject_prefix>a b</subject_prefix>', /'subject_prefix': 'a b'/],
    ['<stream>my.stream</stream>', /'stream': 'my\.stream'/],
    ['<metrics>9464</metrics>', /'metrics': '9464' — host:port/],
    ['<metrics>yes</metrics>', /'metrics': 'yes'/],
    ['<metrics>0.0.0.0:70000</metrics>', /'metrics': '0\.0\.0\.0:70000'/],
    ['<keepalive_batch>100001</keepalive_batch>', /'keepalive_batch': 100001 \(at most 100000 keepalives per message\)/],
    ['<keepalive_batch>-5</keepalive_batch>', /'keepalive_batch': '-5' — a whole number ≥ 0/],
    ['<keepalive_batch_interval>2d</keepalive_batch_interval>', /'keepalive_batch_interval': '2d' — 0, or between 1 second and 1 day/],
    ['<capture_interval>0</capture_interval>', /'capture_interval': '0' — milliseconds from 1 to 100/],
    ['<capture_interval>101</capture_interval>', /'capture_interval': '101' — milliseconds from 1 to 100/],
    ['<capture_interval>1s</capture_interval>', /'capture_interval': '1s' — milliseconds from 1 to 100/],
    ['<capture_interval>2.5</capture_interval>', /'capture_interval': '2\.5'/],
    ['<capture_interval>-1</capture_interval>', /'capture_interval': '-1'/],
    ['<alerts_min_level>16</alerts_min_level>', /'alerts_min_level': '16' — a rule level from 0 to 15/],
    ['<alert_thresholds>10,7,13</alert_thresholds>', /'alert_thresholds': '10,7,13' — three ascending/],
    ['<hooks>sendto,read</hooks>', /'hooks': 'sendto,read' — comma-separated syscalls among sendto, write, sendmsg, writev/],
    ['<user>a b</user><password_file>/nonexistent</password_file>', /'user': 'a b'/],
    ['<spool_dir>var/spool</spool_dir>', /'spool_dir': 'var\/spool' — an absolute path/],
    ['<spool_dir>/etc/hostname</spool_dir>', /'spool_dir': '\/etc\/hostname' — exists and is not a directory/],
  ];
  for (const [inner, re] of cases) {
    t.test(inner, async (t) => {
      const msg = rejects(t, nats(inner), re);
      t.match(msg, /\/etc\/ossec\.conf:3: Invalid value for element '/, 'names the file and the line');
    });
  }
});

t.test('malformed XML names the file and line', async (t) => {
  rejects(t, '<ossec_config>\n<nats>\n<enabled>yes</enable>\n</nats>\n</ossec_config>', /ossec\.conf:3: malformed XML: .*enabled/);
});

t.test('files: missing, not regular, relative to home', async (t) => {
  const h = home('');
  writeFileSync(h.file, nats(`<tls_ca>${join(h.home, 'etc/missing-ca.pem')}</tls_ca>`));
  rejects(t, h, new RegExp(`ossec\\.conf:3: <tls_ca>: file '${h.home}/etc/missing-ca\\.pem' does not exist`));
  writeFileSync(h.file, nats(`<tls_ca>${h.home}</tls_ca>`));
  rejects(t, h, /<tls_ca>: '.*' is not a regular file/);
  h.put('ca.pem', 'CA', 0o644);
  writeFileSync(h.file, nats('<tls_ca>etc/ca.pem</tls_ca>'));
  t.equal(loadConfig({ home: h.home }).tlsCa, join(h.home, 'etc/ca.pem'), 'a relative path is relative to the home, like Wazuh');
});

t.test('secret files that group or others can access are refused, with the rule', async (t) => {
  for (const element of ['tls_key', 'credentials_file', 'nkey_seed_file', 'token_file', 'password_file', 'encryption_key']) {
    for (const mode of [0o640, 0o604, 0o620, 0o601]) {
      const h = home('');
      const p = h.put('secret', validSecret(element), mode);
      const extra = element === 'tls_key' ? `<tls_cert>${h.put('cert.pem', 'CERT', 0o644)}</tls_cert>`
        : element === 'password_file' ? '<user>tap</user>' : '';
      writeFileSync(h.file, nats(`<${element}>${p}</${element}>${extra}`));
      rejects(t, h, new RegExp(`ossec\\.conf:3: <${element}>: '${p}' has mode 0${mode.toString(8)}: a file holding a secret must give no access to group or others \\(mode & 0077 must be 0, e.g\\. 0600 or 0400\\); fix: chmod 600`));
      chmodSync(p, 0o600);
      const c = loadConfig({ home: h.home });
      t.ok(Object.values(c).includes(p), `${element} accepted at 0600`);
    }
  }
  const h = home('');
  const cert = h.put('cert.pem', 'CERT', 0o644);
  writeFileSync(h.file, nats(`<tls_cert>${cert}</tls_cert><tls_key>${h.put('k.pem', 'KEY', 0o400)}</tls_key>`));
  t.equal(loadConfig({ home: h.home }).tlsCert, cert, 'a certificate is public: 0644 is fine; a key at 0400 is fine');
  writeFileSync(h.file, nats(`<token_file>${h.put('empty', '', 0o600)}</token_file>`));
  rejects(t, h, /<token_file>: '.*empty' is empty/);
});

t.test('secret files owned by another user than root are refused, whatever their mode; a certificate may be anyone\'s, a CA not', async (t) => {
  const NOBODY = 65534;
  for (const element of ['tls_key', 'credentials_file', 'nkey_seed_file', 'token_file', 'password_file', 'encryption_key']) {
    const h = home('');
    const p = h.put('secret', validSecret(element), 0o600);
    chownSync(p, NOBODY, NOBODY);
    const extra = element === 'tls_key' ? `<tls_cert>${h.put('cert.pem', 'CERT', 0o644)}</tls_cert>`
      : element === 'password_file' ? '<user>tap</user>' : '';
    writeFileSync(h.file, nats(`<${element}>${p}</${element}>${extra}`));
    rejects(t, h, new RegExp(`ossec\\.conf:3: <${element}>: '${p}' is owned by uid ${NOBODY}, not by root: a file holding a secret must belong to root \\(the tap's user\\): its owner can read it and replace it; fix: chown root: '${p}'`));
    chownSync(p, 0, 0);
    t.ok(Object.values(loadConfig({ home: h.home })).includes(p), `${element} accepted once root's`);
  }
  const h = home('');
  const cert = h.put('cert.pem', 'CERT', 0o644);
  const ca = h.put('ca.pem', 'CA', 0o644);
  chownSync(cert, NOBODY, NOBODY);
  chownSync(ca, NOBODY, NOBODY);
  writeFileSync(h.file, nats(`<tls_cert>${cert}</tls_cert><tls_key>${h.put('k.pem', 'KEY', 0o400)}</tls_key><tls_ca>${ca}</tls_ca>`));
  // The CA holds no secret, but its owner could vouch for a server of theirs and read what the tap sends over TLS.
  rejects(t, h, new RegExp(`<tls_ca>: '${ca}' is owned by uid ${NOBODY}, not by root: its owner can replace it \\(chown root:\\): the tap trusts the servers it vouches for`));
  chownSync(ca, 0, 0);
  chmodSync(ca, 0o664);
  rejects(t, h, /<tls_ca>: '.*ca\.pem' is writable by its group \(mode 0664\): they can replace what it says \(chmod go-w\)/);
  chmodSync(ca, 0o644);
  t.equal(loadConfig({ home: h.home }).tlsCert, cert, 'a certificate without its key is nothing to anyone: its owner is not checked');
});

t.test('the configuration file itself: root\'s and written by root only, or refused (a Wazuh daemon taken over must not steer the tap)', async (t) => {
  // <home>/etc is the wazuh user's to write (0770 wazuh:wazuh): a file of theirs there named a root-only
  // file as the token and their own server as server_url, and the tap, run as root, sent it.
  const NOBODY = 65534;
  const secret = (h: ReturnType<typeof home>) => h.put('root-only', 'ROOT-ONLY-SECRET', 0o600);
  for (const name of ['nats-tap.conf', 'ossec.conf']) {
    const h = home('');
    const file = join(h.home, 'etc', name);
    writeFileSync(file, nats(`<token_file>${secret(h)}</token_file><server_url>nats://127.0.0.1:1</server_url>`));
    chownSync(file, NOBODY, NOBODY);
    const msg = rejects(t, h, new RegExp(`configuration file '${file}' is owned by uid ${NOBODY}, not by root: its owner can replace it \\(chown root:\\): whoever can write it could send the tap's credentials`));
    t.notMatch(msg, /ROOT-ONLY/, 'nothing of the secret said');
    chownSync(file, 0, 0);
    chmodSync(file, 0o660); // ossec.conf as Wazuh leaves it: root:wazuh 0660
    const m2 = rejects(t, h, new RegExp(`configuration file '${file}' is writable by its group \\(mode 0660\\)`));
    if (name === 'ossec.conf') t.match(m2, /put the <nats> section in <home>\/etc\/nats-tap\.conf instead, owned by root, mode 0640/, 'says where it belongs');
    chmodSync(file, 0o602);
    rejects(t, h, /is writable by others \(mode 0602\)/);
    chmodSync(file, 0o640);
    t.equal(loadConfig({ home: h.home }).tokenFile, join(h.home, 'etc/root-only'), `${name}: root's, 0640: read`);
  }
  // A symbolic link: followed when root's (an administrator's), refused when another's.
  const h = home('');
  const real = join(h.home, 'real.conf');
  writeFileSync(real, nats('<subject_prefix>linked</subject_prefix>'));
  const link = join(h.home, 'etc/nats-tap.conf');
  symlinkSync(real, link);
  t.equal(loadConfig({ home: h.home }).subjectPrefix, 'linked', 'a link of root\'s is followed');
  lchownSync(link, NOBODY, NOBODY);
  rejects(t, h, new RegExp(`configuration file '${link}' is a symbolic link owned by uid ${NOBODY}, not by root: its owner can point it elsewhere`));
  // --config names another file: the same rule.
  const other = join(h.home, 'other.conf');
  writeFileSync(other, nats(''));
  chownSync(other, NOBODY, NOBODY);
  rejects(t, h, /configuration file '.*other\.conf' is owned by uid 65534/, { file: other });
});

t.test('tls_cert without tls_key and the reverse; user without password_file; two authentications', async (t) => {
  const h = home('');
  const cert = h.put('cert.pem', 'CERT', 0o644);
  const key = h.put('key.pem', 'KEY', 0o600);
  writeFileSync(h.file, nats(`<enabled>yes</enabled>\n<tls_cert>${cert}</tls_cert>`));
  rejects(t, h, /ossec\.conf:4: <tls_cert> is set but <tls_key> is not: a client certificate needs its private key \(set both or neither\)/);
  writeFileSync(h.file, nats(`<tls_key>${key}</tls_key>`));
  rejects(t, h, /ossec\.conf:3: <tls_key> is set but <tls_cert> is not/);
  writeFileSync(h.file, nats('<user>tap</user>'));
  rejects(t, h, /<user> is set but <password_file> is not/);
  writeFileSync(h.file, nats(`<token_file>${h.put('tok', 'T', 0o600)}</token_file>\n<credentials_file>${h.put('c.creds', validSecret('credentials_file'), 0o600)}</credentials_file>`));
  rejects(t, h, /<credentials_file> and <token_file> are both set: choose one NATS authentication/);
  writeFileSync(h.file, nats(`<tls_cert>${cert}</tls_cert><tls_key>${key}</tls_key>`));
  const c = loadConfig({ home: h.home });
  t.same([c.tlsCert, c.tlsKey], [cert, key]);
});

t.test('encrypt_messages yes needs encryption_key, a 32-byte key', async (t) => {
  const h = home('');
  writeFileSync(h.file, nats('<encrypt_messages>yes</encrypt_messages>'));
  rejects(t, h, /ossec\.conf:3: <encrypt_messages> is yes but <encryption_key> is not set/);
  const hex = h.put('key.hex', `${'ab'.repeat(32)}\n`);
  writeFileSync(h.file, nats(`<encrypt_messages>yes</encrypt_messages><encryption_key>${hex}</encryption_key>`));
  const c = loadConfig({ home: h.home });
  t.equal(c.encryptMessages, true);
  t.equal(c.encryptionKey, hex);
  const b64 = h.put('key.b64', Buffer.alloc(32, 7).toString('base64'));
  writeFileSync(h.file, nats(`<encrypt_messages>yes</encrypt_messages><encryption_key>${b64}</encryption_key>`));
  t.equal(loadConfig({ home: h.home }).encryptionKey, b64, 'base64 is accepted');
  const short = h.put('key.short', 'ab'.repeat(16));
  writeFileSync(h.file, nats(`<encryption_key>${short}</encryption_key>`));
  const msg = rejects(t, h, /<encryption_key>: '.*key\.short' must hold a 32-byte key as 64 hex digits or base64 \(16 bytes\)/);
  t.notMatch(msg, 'ab'.repeat(16), 'the key is not in the message');
});

t.test('missing configuration file names the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-config-'));
  rejects(t, { home: dir, file: '' }, new RegExp(`configuration file '${dir}/etc/nats-tap\\.conf' does not exist`));
  const msg = rejects(t, { home: dir, file: '' }, /does not exist/, { file: join(dir, 'other.conf') });
  t.match(msg, `'${join(dir, 'other.conf')}'`);
});

t.test('manager_node: <cluster><node_name> even when the cluster is disabled, else the host name', async (t) => {
  const conf = `<ossec_config>
  <cluster>
    <name>wazuh</name>
    <node_name>wazuh-manager-01</node_name>
    <node_type>master</node_type>
    <disabled>yes</disabled>
  </cluster>
</ossec_config>
${nats('<enabled>yes</enabled>')}`;
  const c = load(conf);
  t.equal(c.managerNode, 'wazuh-manager-01');
  t.match(c.origins.managerNode, { source: 'file', where: /ossec\.conf:4 <cluster><node_name>$/ });
  const d = load(nats('<enabled>yes</enabled>'));
  t.equal(d.managerNode, hostname());
  t.same(d.origins.managerNode, { source: 'default', where: 'host name' });
  rejects(t, '<ossec_config><cluster><node_name></node_name></cluster></ossec_config>', /Invalid NULL content for element: node_name/);
});

t.test('flags override the file; a bad flag is refused naming the flag', async (t) => {
  const h = home(`<ossec_config><cluster><node_name>from-file</node_name></cluster></ossec_config>
${nats('<enabled>yes</enabled><server_url>nats://file:4222</server_url><subject_prefix>filep</subject_prefix><hooks>write</hooks>')}`);
  const plain = loadConfig({ home: h.home });
  t.same([plain.serverUrls, plain.subjectPrefix, plain.managerNode, plain.hooks], [['nats://file:4222'], 'filep', 'from-file', ['write']]);
  const c = loadConfig({ home: h.home, overrides: { natsUrl: 'nats://flag1:4222,nats://flag2:4222', prefix: 'flagp', node: 'flag-node', hooks: 'sendto,sendmsg', metrics: 'no' } });
  t.equal(c.metrics, null, '--metrics no');
  t.same(c.origins.metrics, { source: 'flag', where: '--metrics' });
  t.same(c.serverUrls, ['nats://flag1:4222', 'nats://flag2:4222']);
  t.equal(c.subjectPrefix, 'flagp');
  t.equal(c.managerNode, 'flag-node');
  t.same(c.hooks, ['sendto', 'sendmsg']);
  t.same(c.origins.serverUrls, { source: 'flag', where: '--nats-url' });
  t.same(c.origins.subjectPrefix, { source: 'flag', where: '--prefix' });
  t.same(c.origins.managerNode, { source: 'flag', where: '--node' });
  t.equal(c.enabled, true, 'what no flag sets still comes from the file');
  t.equal(c.origins.enabled.source, 'file');
  rejects(t, h, /^--prefix: Invalid value for element 'subject_prefix': 'a\.>'/, { overrides: { prefix: 'a.>' } });
  rejects(t, h, /^--nats-url: Invalid value for element 'server_url'/, { overrides: { natsUrl: 'http://x' } });
  rejects(t, h, /^--nats-url: Invalid NULL content for element: server_url/, { overrides: { natsUrl: ' ' } });
  rejects(t, h, /^--hooks: Invalid value for element 'hooks'/, { overrides: { hooks: 'read' } });
  rejects(t, h, /^--metrics: Invalid value for element 'metrics': '9464'/, { overrides: { metrics: '9464' } });
});

t.test('a flag overrides a bad value in the file without reading it', async (t) => {
  // The file's value is never parsed when a flag replaces it (as with any override).
  const h = home(nats('<subject_prefix>bad prefix</subject_prefix>'));
  rejects(t, h, /'subject_prefix': 'bad prefix'/);
  t.equal(loadConfig({ home: h.home, overrides: { prefix: 'good' } }).subjectPrefix, 'good');
});

t.test('home: --home, derived from --config, detected /var/ossec then /var/wazuh-manager', async (t) => {
  const a = mkdtempSync(join(tmpdir(), 'wnt-home-a-'));
  const b = home(nats('<enabled>yes</enabled>'));
  t.equal(detectHome([join(a, 'none'), b.home]), b.home, 'the first candidate holding etc/ossec.conf');
  t.equal(detectHome([a, b.home]), b.home, 'a home with ossec.conf beats an existing empty directory');
  t.equal(detectHome([join(a, 'x'), a]), a, 'else the first that exists');
  t.equal(detectHome([join(a, 'x'), join(a, 'y')]), join(a, 'x'), 'else the first');
  const viaCandidates = loadConfig({ homeCandidates: [join(a, 'none'), b.home] });
  t.equal(viaCandidates.home, b.home);
  t.same(viaCandidates.origins.home, { source: 'default', where: 'detected' });
  const viaFile = loadConfig({ file: b.file, homeCandidates: [a] });
  t.equal(viaFile.home, b.home, '<home>/etc/ossec.conf gives the home');
  t.equal(viaFile.spoolDir, join(b.home, 'var/nats-tap'));
  const other = join(a, 'custom.conf');
  writeFileSync(other, nats('<enabled>yes</enabled>'));
  const c = loadConfig({ file: other, home: b.home });
  t.equal(c.file, other);
  t.equal(c.home, b.home);
  t.same(c.origins.file, { source: 'flag', where: '--config' });
  t.same(c.origins.home, { source: 'flag', where: '--home' });
  // A file of its own beside the manager's ossec.conf (the integration guide's nats-tap.conf) gives the home too.
  const beside = join(b.home, 'etc/nats-tap.conf');
  writeFileSync(beside, nats('<enabled>yes</enabled>'));
  const viaBeside = loadConfig({ file: beside, homeCandidates: [a] });
  t.equal(viaBeside.home, b.home, '<home>/etc/nats-tap.conf gives the home when <home>/etc/ossec.conf is there');
  t.same(viaBeside.origins.home, { source: 'default', where: 'from the configuration file\'s path' });
  const lone = join(a, 'etc');
  mkdirSync(lone, { recursive: true });
  writeFileSync(join(lone, 'nats-tap.conf'), nats('<enabled>yes</enabled>'));
  t.equal(loadConfig({ file: join(lone, 'nats-tap.conf'), homeCandidates: [b.home] }).home, b.home,
    'an etc/ without ossec.conf is not taken for a home: detected instead');
});

t.test('warnings: legal but unintended settings', async (t) => {
  const c = load(nats('<create_stream>yes</create_stream><stream>X</stream><server_url>nats://u:pw@h:4222</server_url>'));
  t.equal(c.warnings.length, 3);
  t.match(c.warnings.join('\n'), /<create_stream> is yes but <jetstream> is no/);
  t.match(c.warnings.join('\n'), /<stream> is set but <jetstream> is no/);
  t.match(c.warnings.join('\n'), /<server_url> carries credentials/);
});

t.test('the tap\'s own file, <home>/etc/nats-tap.conf, by default; ossec.conf\'s <nats> only when it is absent; the node name from ossec.conf', async (t) => {
  const wazuh = `<ossec_config>\n  <cluster>\n    <node_name>master-01</node_name>\n    <disabled>yes</disabled>\n  </cluster>\n</ossec_config>\n`;
  // Wazuh's own ossec.conf has no <nats> (Wazuh would refuse it): the tap's file has it.
  const h = home(wazuh);
  const own = h.put('nats-tap.conf', nats('    <enabled>yes</enabled>\n    <subject_prefix>own</subject_prefix>'), 0o640);
  const a = loadConfig({ home: h.home });
  t.equal(a.file, own);
  t.match(a, { enabled: true, subjectPrefix: 'own', managerNode: 'master-01' }, 'settings from nats-tap.conf, node from ossec.conf');
  t.match(a.origins.managerNode.where, `${h.file}:3`);
  t.equal(a.origins.file.where, '<home>/etc/nats-tap.conf');

  // A Wazuh built to accept <nats> in ossec.conf: read there, but only without a nats-tap.conf.
  const legacy = home(wazuh + nats('    <enabled>yes</enabled>\n    <subject_prefix>legacy</subject_prefix>'));
  const b = loadConfig({ home: legacy.home });
  t.equal(b.file, legacy.file);
  t.match(b, { subjectPrefix: 'legacy', managerNode: 'master-01' });
  legacy.put('nats-tap.conf', nats('    <enabled>no</enabled>'), 0o640);
  t.match(loadConfig({ home: legacy.home }), { enabled: false, subjectPrefix: 'wazuh' }, 'the tap\'s file wins whole, ossec.conf\'s <nats> is not read');

  // Home detection finds a home with only nats-tap.conf too.
  const only = mkdtempSync(join(tmpdir(), 'wnt-config-'));
  mkdirSync(join(only, 'etc'));
  writeFileSync(join(only, 'etc/nats-tap.conf'), nats('    <enabled>yes</enabled>'));
  t.equal(detectHome([join(only, 'missing'), only]), only);
  t.equal(loadConfig({ home: only }).managerNode, hostname(), 'no ossec.conf: the host name');
});

t.test('tail on a detected home: no configuration at all → the defaults; a configuration naming a missing file → an error, not the defaults', async (t) => {
  // `tail` without --config or --home reads the tap's file of the detected home. Only the absence of
  // that file means "no configuration"; a file it names that is missing (a CA, credentials) is an
  // error, as for `run` — before, the words "does not exist" in that error made tail drop the whole
  // configuration (its TLS and credentials) and connect to the default server.
  const { tapConfigForTail } = await import('../controller/src/commands/tail.js');
  const empty = mkdtempSync(join(tmpdir(), 'wnt-config-'));
  t.equal(tapConfigForTail({ homeCandidates: [empty] }), null, 'no file: the defaults');
  const h = home('<ossec_config></ossec_config>\n');
  h.put('nats-tap.conf', nats(`    <server_url>tls://nats.example:4222</server_url>\n    <tls_ca>${join(h.home, 'etc/missing-ca.pem')}</tls_ca>`));
  let err: unknown;
  try { tapConfigForTail({ homeCandidates: [h.home] }); } catch (e) { err = e; }
  t.ok(err instanceof ConfigError, `a configuration error, exit 2 (got ${String(err)})`);
  t.match((err as Error)?.message, /<tls_ca>: file '.*missing-ca\.pem' does not exist/, 'the missing CA is said');
  h.put('ca.pem', 'x');
  h.put('nats-tap.conf', nats(`    <server_url>tls://nats.example:4222</server_url>\n    <tls_ca>${join(h.home, 'etc/ca.pem')}</tls_ca>`));
  t.match(tapConfigForTail({ homeCandidates: [h.home] }), { serverUrls: ['tls://nats.example:4222'], file: join(h.home, 'etc/nats-tap.conf') }, 'read when whole');
});

t.test('the tap\'s own file: a <nats> outside <ossec_config>, a misspelt root, text or nothing at all is an error naming it (exit 2), not "valid, disabled"', async (t) => {
  const own = (body: string) => {
    const h = home(nats(''));
    const file = join(h.home, 'etc/nats-tap.conf');
    writeFileSync(file, body);
    return { home: h.home, file };
  };
  const cases: [string, RegExp][] = [
    ['<nats><enabled>yes</enabled></nats>', /nats-tap\.conf:1: Invalid element in the configuration: 'nats' — the root element must be <ossec_config>, with <nats> inside it/],
    ['<ossec_conf>\n<nats><enabled>yes</enabled></nats>\n</ossec_conf>', /nats-tap\.conf:1: Invalid element in the configuration: 'ossec_conf' — the root element must be <ossec_config>(?!,)/],
    [`${nats('<enabled>yes</enabled>')}\n<nats><subject_prefix>x</subject_prefix></nats>\n`, /nats-tap\.conf:7: Invalid element in the configuration: 'nats'/],
    ['just text, perhaps a key given as --config', /nats-tap\.conf:1: text outside <ossec_config>: 'just text, perhaps a key given as --conf…'/],
    [`# a shell comment\n${nats('<enabled>yes</enabled>')}`, /nats-tap\.conf:1: text outside <ossec_config>: '# a shell comment'/],
    ['', /nats-tap\.conf: no <ossec_config> element: not a configuration/],
    ['<!-- <ossec_config><nats><enabled>yes</enabled></nats></ossec_config> -->\n', /no <ossec_config> element/],
  ];
  for (const [body, re] of cases) {
    const h = own(body);
    rejects(t, h, re);
    const r = await runTap(['config', 'check', '--config', h.file]);
    t.equal(r.code, 2, `config check: exit 2 for ${JSON.stringify(body.slice(0, 40))}`);
    t.match(r.stderr, re);
    t.equal(r.stdout, '', 'nothing called valid');
  }
  // What Wazuh accepts stays accepted: several roots, a declaration, comments, an empty root.
  const ok = own(`<?xml version="1.0"?>\n<!-- c -->\n<ossec_config/>\n<ossec_config>\n  <nats><enabled>yes</enabled></nats>\n</ossec_config>\n<!-- end -->\n`);
  t.equal(loadConfig({ home: ok.home }).enabled, true, 'several roots, a declaration and comments');
  // Wazuh's own ossec.conf, read for the settings when nats-tap.conf is absent: its rule (the root),
  // not the tap's file's (Wazuh skips text between roots).
  rejects(t, home('<ossec_config></ossec_config>\n<nats><enabled>yes</enabled></nats>'), /ossec\.conf:2: Invalid element in the configuration: 'nats'/);
  t.equal(load(`stray text\n${nats('<enabled>yes</enabled>')}`).enabled, true, 'ossec.conf: text between roots skipped, as Wazuh does');
  // ossec.conf read only for the node name stays Wazuh's business: not refused for the tap's file.
  const h = own(nats('<enabled>yes</enabled>'));
  writeFileSync(join(h.home, 'etc/ossec.conf'), '<ossec_config><cluster><node_name>n7</node_name></cluster></ossec_config>\n<agent_config/>\n');
  t.equal(loadConfig({ home: h.home }).managerNode, 'n7');
});

t.test('nkey_seed_file and credentials_file are checked for what they hold (exit 2, contents never quoted), as encryption_key is', async (t) => {
  const account = new TextDecoder().decode(nkeys.createAccount().getSeed());
  const userSeed = validSecret('nkey_seed_file').trim();
  const cases: [string, string, RegExp][] = [
    ['nkey_seed_file', 'SUSECRETSEEDXYZ', /<nkey_seed_file>: '.*seed' does not hold an nkey seed \(SU…, as nk -gen user writes it\): nkeys: /],
    ['nkey_seed_file', `${account}\n`, /does not hold an nkey seed .*: not a user's seed \(SU…\)/],
    ['nkey_seed_file', 'a'.repeat(64), /does not hold an nkey seed/],
    ['credentials_file', 'SUSECRETSEEDXYZ', /<credentials_file>: '.*seed' is not a NATS \.creds file \(a user JWT block, then its nkey seed block, as nsc writes it\): unable to parse credentials/],
    ['credentials_file', `-----BEGIN NATS USER JWT-----\nnot-a-jwt\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${userSeed}\n------END USER NKEY SEED------\n`,
      /is not a NATS \.creds file .*: its first block is not a user JWT/],
    ['credentials_file', validSecret('credentials_file').replace(/SU[A-Z2-7]{50,}/, 'SUSECRETSEEDXYZ'), /is not a NATS \.creds file .*: nkeys: /],
  ];
  for (const [element, body, re] of cases) {
    const h = home('');
    const p = h.put('seed', body, 0o600);
    writeFileSync(h.file, nats(`<enabled>yes</enabled><${element}>${p}</${element}>`));
    const msg = rejects(t, h, re);
    t.notOk(msg.includes('SECRETSEED') || msg.includes(account) || msg.includes(userSeed), 'the contents are not quoted');
    const r = await runTap(['config', 'check', '--home', h.home]);
    t.equal(r.code, 2, `config check: exit 2 (${element})`);
    t.notMatch(r.stdout, /configuration valid/);
  }
  for (const element of ['nkey_seed_file', 'credentials_file']) {
    const h = home('');
    const p = h.put('good', validSecret(element), 0o600);
    writeFileSync(h.file, nats(`<${element}>${p}</${element}>`));
    t.ok(Object.values(loadConfig({ home: h.home })).includes(p), `a valid ${element} is accepted`);
  }
});

t.test('stream_replicas: auto by default, 1 to 5, anything else refused naming the element; shown by config check; a warning when nothing is created', async (t) => {
  t.equal(load(nats('')).streamReplicas, 'auto', 'auto by default: 3 on a cluster of 3 or more, else 1');
  t.equal(load(nats('<jetstream>yes</jetstream><create_stream>yes</create_stream><stream_replicas>3</stream_replicas>')).streamReplicas, 3);
  t.equal(load(nats('<jetstream>yes</jetstream><agents_kv>yes</agents_kv><stream_replicas>1</stream_replicas>')).streamReplicas, 1);
  t.equal(load(nats('<jetstream>yes</jetstream><agents_kv>yes</agents_kv><stream_replicas>5</stream_replicas>')).streamReplicas, 5);
  t.equal(load(nats('<stream_replicas>auto</stream_replicas>')).streamReplicas, 'auto');
  for (const bad of ['0', '6', 'x', '3.0', 'AUTO', '-1', '03']) {
    rejects(t, nats(`<stream_replicas>${bad}</stream_replicas>`), new RegExp(`'stream_replicas': '${bad.replace('.', '\\.')}' — auto, or a number of replicas from 1 to 5`));
  }
  t.match(load(nats('<stream_replicas>3</stream_replicas>')).warnings, [/<stream_replicas> is set but the tap creates nothing/]);
  t.same(load(nats('<jetstream>yes</jetstream><create_stream>yes</create_stream><stream_replicas>3</stream_replicas>')).warnings, []);
  const h = home(nats('<jetstream>yes</jetstream><create_stream>yes</create_stream><stream_replicas>3</stream_replicas>'));
  const r = await runTap(['config', 'check', '--home', h.home], 20_000);
  t.equal(r.code, 0, `config check: exit 0 (${r.stderr})`);
  t.match(r.stdout, /^stream_replicas\s+3\s+file /m, 'config check shows it, and where it came from');
  const d = home(nats(''));
  t.match((await runTap(['config', 'check', '--home', d.home], 20_000)).stdout, /^stream_replicas\s+auto\s+default$/m, 'the default shown as auto');
});
