// Hostile inputs at start-up (issue 14, item 6): a FIFO or a device where a file should be is a
// clear configuration error (exit 2) or, for client.keys, a warning — never a hang; XML the
// parser must not take (a DOCTYPE with entities, 100,000 nested tags) is exit 2 with file:LINE;
// `tail` refuses a bad subject or number (exit 2, no stack trace); and every message that quotes
// a value from a file or the command line clips it.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../controller/src/errors.js';
import { loadConfig } from '../controller/src/config/ossec-conf.js';
import { readClientKeys, watchClientKeys } from '../controller/src/state/sources/client-keys.js';
import { runTap, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { privateTmpfs } from './helpers/mount-ns.js';

const nats = (inner: string) => `<ossec_config>\n  <nats>\n${inner}\n  </nats>\n</ossec_config>\n`;

function home(conf = nats('<enabled>yes</enabled>')): { home: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-hostile-'));
  mkdirSync(join(dir, 'etc'));
  const file = join(dir, 'etc/ossec.conf');
  writeFileSync(file, conf);
  return { home: dir, file };
}

function fifo(path: string): string {
  execFileSync('mkfifo', ['-m', '0600', path]);
  return path;
}

/** The ConfigError loadConfig throws for `conf`. */
function configError(conf: string): Error {
  const h = home(conf);
  try {
    loadConfig({ home: h.home });
  } catch (e) {
    return e as Error;
  }
  throw new Error('no error');
}

t.test('a FIFO or a device as the configuration file: exit 2 at once, never a hang', async (t) => {
  const h = home();
  const f = fifo(join(h.home, 'etc/nats-tap.conf'));
  t.throws(() => loadConfig({ file: f }), { name: 'Error', message: /configuration file '.*nats-tap\.conf' is not a regular file \(a FIFO\)/ });
  t.ok(((): unknown => { try { loadConfig({ file: f }); } catch (e) { return e; } })() instanceof ConfigError, 'a ConfigError');
  for (const file of [f, '/dev/zero']) {
    const t0 = Date.now();
    const r = await runTap(['config', 'check', '--config', file], 15_000);
    t.equal(r.code, 2, `config check --config ${file}: exit 2`);
    t.match(r.stderr, /is not a regular file \(a (FIFO|character device)\)/);
    t.ok(Date.now() - t0 < 10_000, 'at once');
  }
  const r = await runTap(['run', '--config', f], 15_000);
  t.equal(r.code, 2, 'run --config <fifo>: exit 2');
});

t.test('a FIFO or a device as a key, creds, TLS or encryption key file: exit 2 naming the element', async (t) => {
  const h = home();
  const p = fifo(join(h.home, 'etc/token'));
  for (const [el, path, kind] of [['token_file', p, 'FIFO'], ['tls_ca', '/dev/zero', 'character device'], ['encryption_key', p, 'FIFO']]) {
    const extra = el === 'encryption_key' ? '<encrypt_messages>yes</encrypt_messages>' : '';
    writeFileSync(h.file, nats(`<enabled>yes</enabled>\n<${el}>${path}</${el}>${extra}`));
    t.throws(() => loadConfig({ home: h.home }), new RegExp(`ossec\\.conf:\\d+: <${el}>: '${path}' is not a regular file \\(a ${kind}\\)`), el);
  }
  // tail --encryption-key <fifo>: read at once, not waited on.
  const r = await runTap(['tail', '--encryption-key', p, '--nats-url', 'nats://127.0.0.1:1'], 15_000);
  t.equal(r.code, 2, 'tail --encryption-key <fifo>: exit 2');
  t.match(r.stderr, /encryption key file: '.*token' is not a regular file \(a FIFO\)/);
});

t.test('client.keys as a FIFO: refused at once (no blocking open), the watcher goes on without names', async (t) => {
  const h = home();
  const keys = fifo(join(h.home, 'etc/client.keys'));
  await t.rejects(readClientKeys(keys), /is not a regular file \(a FIFO\)/);
  const errors: string[] = [];
  const w = watchClientKeys(keys, () => t.fail('no keys from a FIFO'), { onError: (e) => errors.push(e.message) });
  const ready = await Promise.race([w.ready.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
  w.close();
  t.ok(ready, 'the first read is over');
  t.match(errors, [/not a regular file \(a FIFO\)/], 'reported');
});

t.test('client.keys that is not Wazuh\'s — a link to a root-only file, another user\'s file, a hard link — is not read: said once, taken as unreadable', async (t) => {
  const WAZUH = 65534;
  const OTHER = 4242;
  const h = home();
  mkdirSync(join(h.home, 'queue/db'), { recursive: true });
  chownSync(join(h.home, 'queue/db'), WAZUH, WAZUH); // the Wazuh user: queue/db's owner
  chownSync(join(h.home, 'etc'), WAZUH, WAZUH); // etc/ is that user's (0770, Wazuh's installer)
  chmodSync(join(h.home, 'etc'), 0o770);
  const secret = join(h.home, 'root-only');
  mkdirSync(secret, { mode: 0o700 });
  const line = (id: string, name: string) => `${id} ${name} 10.9.8.7 ${'a'.repeat(64)}\n`;
  const other = join(secret, 'other-home-client.keys'); // another tenant's, say
  writeFileSync(other, line('001', 'tenantB-db-prod'), { mode: 0o600 });
  const keys = join(h.home, 'etc/client.keys');
  /** Put `make` at client.keys the way authd does (a new name renamed over), as the Wazuh user could. */
  const place = (make: (tmp: string) => void) => {
    const tmp = `${keys}.tmp`;
    rmSync(tmp, { force: true });
    make(tmp);
    renameSync(tmp, keys);
  };

  place((tmp) => symlinkSync(other, tmp));
  await t.rejects(readClientKeys(keys), /client\.keys is a symbolic link: not read/, 'a symbolic link to a root 0600 file');
  place((tmp) => { writeFileSync(tmp, line('001', 'planted')); chownSync(tmp, OTHER, OTHER); });
  await t.rejects(readClientKeys(keys), new RegExp(`owned by uid ${OTHER}, neither root nor the Wazuh user \\(${WAZUH}\\)`), 'another user\'s file');
  place((tmp) => linkSync(other, tmp));
  await t.rejects(readClientKeys(keys), /a file with 2 names \(a hard link\): not read/, 'a second name of a root-only file');
  place((tmp) => { writeFileSync(tmp, line('001', 'web-01')); chownSync(tmp, WAZUH, WAZUH); });
  t.same((await readClientKeys(keys)).agents, [{ id: 1, name: 'web-01', ip: '10.9.8.7' }], 'the Wazuh user\'s own file is read');

  // Watched: the names stay those of the last file read; each refused file said once.
  const seen: string[] = [];
  const errors: string[] = [];
  const w = watchClientKeys(keys, (k) => seen.push(k.agents.map((a) => a.name).join()), { debounceMs: 20, onError: (e) => errors.push(e.message) });
  t.teardown(() => w.close());
  await w.ready;
  t.same(seen, ['web-01']);
  const settle = () => new Promise((r) => setTimeout(r, 300));
  place((tmp) => symlinkSync(other, tmp));
  await settle();
  writeFileSync(other, line('001', 'tenantB-db-prod') + line('002', 'tenantB-db-2')); // changes seen through it would be read again
  utimesSync(join(h.home, 'etc'), new Date(), new Date());
  place((tmp) => symlinkSync(other, tmp));
  await settle();
  t.same(seen, ['web-01'], 'nothing read through the link');
  t.equal(errors.filter((e) => /symbolic link/.test(e)).length, 1, 'said once, however often it is looked at');
  place((tmp) => { writeFileSync(tmp, line('001', 'planted')); chownSync(tmp, OTHER, OTHER); });
  await settle();
  t.same(seen, ['web-01'], 'nor another user\'s file');
  t.match(errors.at(-1), /owned by uid 4242/, 'which is said too');
  place((tmp) => writeFileSync(tmp, line('001', 'web-01-renamed')));
  await settle();
  t.same(seen, ['web-01', 'web-01-renamed'], 'root\'s file: read again');
});

t.test('the tap with a FIFO at etc/client.keys starts, says so, and stops on SIGTERM', async (t) => {
  const h = mkdtempSync(join(tmpdir(), 'wnt-hostile-tap-'));
  writeOssecConf(h, '    <server_url>nats://127.0.0.1:1</server_url>\n');
  fifo(join(h, 'etc/client.keys'));
  const tap = await startTap(['run', '--home', h, '--control-socket', join(h, 'tap.sock'), '--no-attach'], /started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  t.ok(tap.logs.some((l) => l.msg === 'cannot read client.keys' && /not a regular file \(a FIFO\)/.test(String(l.err))), 'logged');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('an unreadable etc/ossec.conf (a FIFO, a link to /dev/zero, too large, bad XML): the host name names the node, said in a warning naming the file and why — never a hang', async (t) => {
  // ossec.conf is read only for <cluster><node_name> when the <nats> section is in nats-tap.conf.
  // It used to fall back to the host name without a word: in a cluster, every event's manager_node changed.
  const cases: [string, (file: string) => void, RegExp][] = [
    ['a FIFO', (f) => fifo(f), /is not a regular file \(a FIFO\)/],
    ['a link to /dev/zero', (f) => symlinkSync('/dev/zero', f), /is not a regular file \(a character device\)/],
    ['2 MiB', (f) => writeFileSync(f, Buffer.alloc(2 * 1024 * 1024, 0x20)), /is 2097152 bytes, more than the 1048576 allowed/],
    ['bad XML', (f) => writeFileSync(f, '<ossec_config>\n  <cluster><node_name>master-01</node_name></cluster>\n  <oops>\n</ossec_config>\n'), /ossec\.conf:\d+: malformed XML/],
  ];
  for (const [what, make, why] of cases) {
    const h = mkdtempSync(join(tmpdir(), 'wnt-hostile-node-'));
    t.teardown(() => rmSync(h, { recursive: true, force: true }));
    mkdirSync(join(h, 'etc'));
    writeFileSync(join(h, 'etc/nats-tap.conf'), nats('<enabled>yes</enabled><metrics>no</metrics><server_url>nats://127.0.0.1:1</server_url>'));
    const file = join(h, 'etc/ossec.conf');
    make(file);
    const t0 = Date.now();
    const c = loadConfig({ home: h });
    t.ok(Date.now() - t0 < 5_000, `${what}: at once`);
    t.equal(c.managerNode, hostname(), `${what}: the host name`);
    t.match(c.origins.managerNode, { source: 'default', where: /host name; etc\/ossec\.conf could not be read/ });
    t.equal(c.warnings.length, 1, `${what}: one warning`);
    t.match(c.warnings[0], /^<cluster><node_name> could not be read: manager_node is the host name '[^']+' \(give --node, or fix ossec\.conf\)/);
    t.ok(c.warnings[0].includes(file), `${what}: the warning names the file`);
    t.match(c.warnings[0], why, `${what}: and why`);
    t.same(loadConfig({ home: h, overrides: { node: 'n1' } }).warnings, [], `${what}: --node given, nothing to say`);
  }
  // `config check` shows it (exit 0); `run` logs it once and starts; SIGTERM stops it.
  const h = mkdtempSync(join(tmpdir(), 'wnt-hostile-node-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  mkdirSync(join(h, 'etc'));
  writeFileSync(join(h, 'etc/nats-tap.conf'), nats('<enabled>yes</enabled><metrics>no</metrics><server_url>nats://127.0.0.1:1</server_url>'));
  fifo(join(h, 'etc/ossec.conf'));
  const r = await runTap(['config', 'check', '--home', h], 15_000);
  t.equal(r.code, 0, 'config check: exit 0');
  t.match(r.stdout, /manager_node +\S+ +default \(host name; etc\/ossec\.conf could not be read, see warnings\)/);
  t.match(r.stdout, /warnings:\n  - <cluster><node_name> could not be read: .*ossec\.conf' is not a regular file \(a FIFO\)/);
  const tap = await startTap(['run', '--home', h, '--control-socket', join(h, 'tap.sock'), '--no-attach'], /started detached/);
  t.teardown(() => tap.stop('SIGKILL'));
  const said = tap.logs.filter((l) => /^<cluster><node_name> could not be read/.test(String(l.msg)));
  t.equal(said.length, 1, 'run: said once');
  t.equal(said[0]?.level, 40, 'as a warning');
  t.match(String(said[0]?.msg), /ossec\.conf' is not a regular file \(a FIFO\)/);
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('XML: a DOCTYPE (external entity, entity declarations) is refused with file:LINE, exit 2', async (t) => {
  const xxe = '<?xml version="1.0"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/shadow"> ]>\n'
    + nats('<enabled>yes</enabled>\n<user>&xxe;</user>');
  const e = configError(xxe);
  t.ok(e instanceof ConfigError, 'a ConfigError');
  t.match(e.message, /ossec\.conf:2: '<!DOCTYPE' is not allowed: no DOCTYPE or entity declaration/);
  const bomb = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n${nats('<user>&lol2;</user>')}`;
  t.match(configError(bomb).message, /ossec\.conf:1: '<!DOCTYPE' is not allowed/);
  t.match(configError(`${nats('<enabled>yes</enabled>')}\n<!-- <!DOCTYPE in a comment is fine --><!ENTITY x "y">`).message, /ossec\.conf:7: '<!ENTITY' is not allowed/);
  t.doesNotThrow(() => loadConfig({ home: home(`<!-- <!DOCTYPE x> in a comment -->\n${nats('<enabled>yes</enabled>')}`).home }), 'in a comment: nothing to refuse');
  const h = home(xxe);
  const r = await runTap(['config', 'check', '--config', h.file]);
  t.equal(r.code, 2);
  t.match(r.stderr, /ossec\.conf:2: /);
});

t.test('XML: 100,000 nested tags are refused with file:LINE, exit 2 (not a stack overflow)', async (t) => {
  const deep = `${nats('<enabled>yes</enabled>')}<ossec_config>\n${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}\n</ossec_config>\n`;
  const e = configError(deep);
  t.ok(e instanceof ConfigError);
  t.match(e.message, /ossec\.conf:7: elements nested more than 32 deep/);
  const h = home(deep);
  const r = await runTap(['config', 'check', '--config', h.file]);
  t.equal(r.code, 2);
  t.match(r.stderr, /ossec\.conf:7: elements nested more than 32 deep/);
  t.doesNotThrow(() => loadConfig({ home: home(`<ossec_config>${'<a>'.repeat(20)}${'</a>'.repeat(20)}</ossec_config>\n${nats('<enabled>yes</enabled>')}`).home }),
    '20 levels are fine');
});

t.test('tail: a bad subject or number is a usage error, exit 2, no stack trace', async (t) => {
  const cases: [string[], RegExp][] = [
    [['bad subject'], /invalid subject 'bad subject': white space/],
    [['wazuh..agent'], /invalid subject 'wazuh\.\.agent': an empty token/],
    [['wazuh.agent*'], /invalid subject 'wazuh\.agent\*': '\*' stands for a whole token/],
    [['wazuh.>.status'], /invalid subject 'wazuh\.>\.status': '>' stands for the whole last token/],
    [['wazuh.>', '--count', '-3'], /--count -3: must be a whole number >= 0/],
    [['wazuh.>', '--count', '1.5'], /--count 1\.5: must be a whole number >= 0/],
    [['wazuh.>', '--duration', 'soon'], /--duration: not a number/],
    [['wazuh.>', '--duration', '-1'], /--duration -1: must be a number >= 0/],
    [['wazuh.>', '--duration', '1e12'], /--duration 1000000000000: at most \d+/],
  ];
  for (const [args, re] of cases) {
    const r = await runTap(['tail', ...args, '--nats-url', 'nats://127.0.0.1:1']);
    t.equal(r.code, 2, `tail ${args.join(' ')}: exit 2`);
    t.match(r.stderr, re);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  for (const subject of ['wazuh.>', 'wazuh.agent.*.status', '>', '*', 'wazuh.security.alerts.high']) {
    const r = await runTap(['tail', subject, '--nats-url', 'nats://127.0.0.1:1']);
    t.equal(r.code, 1, `tail ${subject}: accepted (then no NATS: exit 1)`);
  }
});

t.test('a huge value from a file or the command line is quoted clipped', async (t) => {
  const big = 'x'.repeat(900 * 1024); // a file stays below the 1 MiB a configuration may be
  for (const conf of [
    nats(`<max_reconnects>${big}</max_reconnects>`),
    nats(`<subject_prefix>a b${big}</subject_prefix>`),
    nats(`<${big.slice(0, 400 << 10)}>1</${big.slice(0, 400 << 10)}>`),
    nats(`<server_url>nats://${big}:4222/path</server_url>`),
    nats(`<token_file>/nonexistent/${big}</token_file>`),
    `${nats('')}<ossec_config><${big}></ossec_config>`,
  ]) {
    const e = configError(conf);
    t.ok(e instanceof ConfigError, 'a ConfigError');
    t.ok(e.message.length < 700, `clipped: ${e.message.length} characters: ${e.message.slice(0, 160)}`);
  }
  // The command line: an argument is at most 128 KiB (Linux MAX_ARG_STRLEN).
  const arg = 'y'.repeat(100_000);
  const h = home();
  for (const args of [
    ['config', 'check', '--config', `/nonexistent/${arg}`],
    ['tail', `a b${arg}`],
    ['tail', 'wazuh.>', '--count', `-${'9'.repeat(300)}`],
    ['capture', '--hooks', arg],
    ['tail', `--${arg}`],
    ['status', '--control-socket', `/nonexistent/${arg}`],
  ]) {
    const r = await runTap(args);
    t.not(r.code, 0, `${args[0]} ${args[1].slice(0, 20)}…: refused`);
    t.ok(r.stderr.length < 6000, `clipped: ${r.stderr.length} bytes on stderr`);
    t.notMatch(r.stderr, /[xy]{300}/, 'the value is not echoed whole');
  }
  chmodSync(h.file, 0o600);
});

t.test('a home in a container (/proc/<pid>/root/…): its files never configure the tap — its root user may write them, the tap is the host\'s root', async (t) => {
  // A process whose root the path goes through (the host's here, as a container's would be): the
  // files below it are root's and 0640/0600, as a container's root user (uid 0) can make them.
  const proc = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => { proc.kill('SIGKILL'); });
  const dir = mkdtempSync(join(tmpdir(), 'wnt-container-conf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const h = join(dir, 'home');
  mkdirSync(join(h, 'etc'), { recursive: true });
  writeFileSync(join(h, 'etc/ossec.conf'), '<ossec_config><cluster><node_name>n1</node_name></cluster></ossec_config>\n');
  const hostSecret = join(dir, 'host-secret'); // a root-only file of the host's: what a password_file could name
  writeFileSync(hostSecret, 'the host\'s own secret\n', { mode: 0o600 });
  writeFileSync(join(h, 'etc/nats-tap.conf'), nats('<enabled>yes</enabled>\n<server_url>nats://203.0.113.9:4222</server_url>\n'
    + `<user>x</user>\n<password_file>${hostSecret}</password_file>`), { mode: 0o640 });
  const through = `/proc/${proc.pid}/root${h}`;

  const implicit = (() => { try { loadConfig({ home: through }); } catch (e) { return e as Error; } return null; })();
  t.ok(implicit instanceof ConfigError, 'the container\'s nats-tap.conf: a configuration error');
  t.match(implicit?.message, new RegExp(`^configuration file '${through}/etc/nats-tap.conf' is below /proc/${proc.pid}/root, another process's view `
    + '.*Give it a configuration of the host\'s: --config'), 'saying why and what to do');
  t.throws(() => loadConfig({ home: through, file: `${through}/etc/nats-tap.conf` }), { message: /is below \/proc\/\d+\/root/ }, 'named with --config too');
  t.doesNotThrow(() => loadConfig({ home: h }), 'the same file on the host path: read (the administrator\'s)');

  // A host configuration is read; a secret it names in the container's files is refused.
  const hostConf = join(dir, 'tap.conf');
  writeFileSync(hostConf, nats('<enabled>yes</enabled>\n<user>x</user>\n<password_file>etc/nats.password</password_file>'), { mode: 0o640 });
  writeFileSync(join(h, 'etc/nats.password'), 'pw\n', { mode: 0o600 });
  t.throws(() => loadConfig({ home: through, file: hostConf }), {
    message: new RegExp(`<password_file>: '${through}/etc/nats.password' is below /proc/${proc.pid}/root.*keep the tap's secrets on the host`),
  }, 'a secret in the container: refused');
  writeFileSync(hostConf, nats(`<enabled>yes</enabled>\n<user>x</user>\n<password_file>${hostSecret}</password_file>`), { mode: 0o640 });
  const c = loadConfig({ home: through, file: hostConf });
  t.equal(c.home, through, 'a host configuration with the container\'s home: read');
  t.equal(c.managerNode, 'n1', 'the node name still the container manager\'s (Wazuh\'s ossec.conf, data only)');
});

t.test('a container reached through a host link (a stable name for /proc/<pid>/root): the link resolved by hand (or the mount) says whose its files are — they configure nothing', async (t) => {
  const ns = await privateTmpfs(t);
  const h = join(ns.view, 'home');
  mkdirSync(join(h, 'etc'), { recursive: true });
  writeFileSync(join(h, 'etc/ossec.conf'), '<ossec_config><cluster><node_name>n1</node_name></cluster></ossec_config>\n');
  writeFileSync(join(h, 'etc/nats-tap.conf'), nats('<enabled>yes</enabled>\n<server_url>nats://203.0.113.9:4222</server_url>'), { mode: 0o640 });
  writeFileSync(join(h, 'etc/nats.password'), 'pw\n', { mode: 0o600 });
  const dir = mkdtempSync(join(tmpdir(), 'wnt-container-link-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const link = join(dir, 'manager');
  symlinkSync(ns.view, link);
  t.throws(() => loadConfig({ home: join(link, 'home') }), {
    message: /configuration file '.*manager\/home\/etc\/nats-tap\.conf' is (below \/proc\/\d+\/root, another process's view|on a mount of another process's view) of the files .*Give it a configuration of the host's: --config/,
  }, 'its nats-tap.conf: refused, though the path does not say /proc');
  const hostConf = join(dir, 'tap.conf');
  writeFileSync(hostConf, nats('<enabled>yes</enabled>\n<user>x</user>\n<password_file>etc/nats.password</password_file>'), { mode: 0o640 });
  t.throws(() => loadConfig({ home: join(link, 'home'), file: hostConf }), {
    message: /<password_file>: '.*manager\/home\/etc\/nats\.password' is (below \/proc\/\d+\/root|on a mount of another process's view)/,
  }, 'a secret in it, named by a host configuration: refused');
});

t.test('a host link to a directory below a container\'s root (its home): the container\'s absolute links on the way do not lead the tap to a host configuration of its choosing', async (t) => {
  const ns = await privateTmpfs(t);
  const dir = mkdtempSync(join(tmpdir(), 'wnt-container-below-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A host directory holding a configuration the container's root would like the tap to read.
  const chosen = join(dir, 'chosen-etc');
  mkdirSync(chosen);
  writeFileSync(join(chosen, 'nats-tap.conf'), nats('<enabled>yes</enabled>\n<server_url>nats://203.0.113.9:4222</server_url>'), { mode: 0o640 });
  writeFileSync(join(chosen, 'ossec.conf'), '<ossec_config></ossec_config>\n');
  mkdirSync(join(ns.view, 'var/ossec'), { recursive: true, mode: 0o755 });
  symlinkSync(chosen, join(ns.view, 'var/ossec/etc')); // absolute: resolved against the tap's root by the kernel
  const link = join(dir, 'manager-home');
  symlinkSync(join(ns.view, 'var/ossec'), link);
  t.throws(() => loadConfig({ home: link }), { message: /nats-tap\.conf' is below \/proc\/\d+\/root, another process's view/ },
    'refused: the path resolved by hand enters the container\'s view');
  // The same link in a directory others may write (sticky, like /tmp), and named through the tap's own /proc/self/root.
  const shared = join(dir, 'shared');
  mkdirSync(shared, { mode: 0o1777 });
  chmodSync(shared, 0o1777);
  symlinkSync(join(ns.view, 'var/ossec'), join(shared, 'manager-home'));
  for (const home of [join(shared, 'manager-home'), `/proc/self/root${link}`]) {
    t.throws(() => loadConfig({ home }), { message: /nats-tap\.conf' is below \/proc\/\d+\/root, another process's view/ }, `${home}: refused too`);
  }
  t.equal(loadConfig({ home: `/proc/self/root${chosen.slice(0, -'/chosen-etc'.length)}`, file: join(chosen, 'nats-tap.conf') }).serverUrls.length, 1,
    'the tap\'s own /proc/self/root is its root: a host file through it is read');
});

t.test('a configuration on a path the tap cannot follow to its end by hand (its own /proc/self/cwd): refused', async (t) => {
  const h = home(nats('<enabled>yes</enabled>'));
  t.throws(() => loadConfig({ home: h.home, file: '/proc/self/cwd/package.json' }), { message: /cannot be followed to its end/ });
  t.doesNotThrow(() => loadConfig({ home: h.home }), 'the same file by its path: read');
});
