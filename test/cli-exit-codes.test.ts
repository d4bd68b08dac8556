// Exit codes of the operator's tools (SPEC §7: 0 success, 1 runtime failure, 2 usage or
// configuration error, 3 missing privileges or kernel support), the real CLI in a child process:
// a file of the configuration the user may not read is missing privileges (3), as `capture` says of
// the kernel; a --nats-url that is empty or no URL is a usage error (2), never a connection attempt.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, runTap } from './helpers/tap-process.js';
import { openToOthers, unprivilegedEnv } from './helpers/unprivileged.js';

openToOthers(ROOT); // uid 65534 must be able to read the program

/** The CLI as uid 65534 (nobody), to its end. */
function asNobody(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: unprivilegedEnv(), cwd: '/' });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => p.once('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

/** A home root's, open to others to walk, with etc/nats-tap.conf of `mode` holding `inner` in <nats>. */
function home(inner: string, mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-exit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'etc'), { mode: 0o755 });
  const file = join(dir, 'etc/nats-tap.conf');
  writeFileSync(file, `<ossec_config><nats>${inner}</nats></ossec_config>\n`);
  chmodSync(file, mode);
  return dir;
}

t.test('a file of the configuration the user may not read: exit 3 (missing privileges), in tail and config check alike', async (t) => {
  const closed = home('<enabled>yes</enabled><server_url>nats://127.0.0.1:1</server_url>', 0o640);
  for (const args of [['tail', '--home', closed, '--duration', '1'], ['config', 'check', '--home', closed]]) {
    const r = await asNobody(args);
    t.equal(r.code, 3, `${args.slice(0, 2).join(' ')} as nobody, nats-tap.conf 0640: exit 3`);
    t.match(r.stderr, /nats-tap\.conf' cannot be read: permission denied \(run as root\)/);
  }
  // The file readable, a secret it names not: the same.
  const dir = home('', 0o644);
  const key = join(dir, 'etc/enc.key');
  writeFileSync(key, randomBytes(32).toString('hex'), { mode: 0o600 });
  writeFileSync(join(dir, 'etc/nats-tap.conf'), `<ossec_config><nats><encrypt_messages>yes</encrypt_messages><encryption_key>${key}</encryption_key></nats></ossec_config>\n`);
  for (const args of [['config', 'check', '--home', dir], ['tail', '--home', dir, '--duration', '1'], ['tail', '--encryption-key', key, '--nats-url', 'nats://127.0.0.1:1']]) {
    const r = await asNobody(args);
    t.equal(r.code, 3, `${args.join(' ')} as nobody, a 0600 key of root's: exit 3`);
    t.match(r.stderr, /permission denied/);
  }
  // As root, the same homes are fine (exit 0 for config check): the 3 was the user, not the files.
  t.equal((await runTap(['config', 'check', '--home', closed])).code, 0);
  t.equal((await runTap(['config', 'check', '--home', dir])).code, 0);
});

t.test('a file or a home in a directory the user may not enter: permission denied, exit 3 — not "cannot be told" (the walk by hand that looks for a container\'s root on the way)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-exit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'closed'), { mode: 0o700 });
  const key = join(dir, 'closed/enc.key');
  writeFileSync(key, randomBytes(32).toString('hex'), { mode: 0o644 });
  const r = await asNobody(['tail', '--encryption-key', key, '--nats-url', 'nats://127.0.0.1:1']);
  t.equal(r.code, 3, 'tail --encryption-key below a 0700 directory of root\'s: exit 3');
  t.match(r.stderr, /permission denied/);
  t.notMatch(r.stderr, /EXDEV|another process/);
  mkdirSync(join(dir, 'closed/ossec/etc'), { recursive: true });
  writeFileSync(join(dir, 'closed/ossec/etc/nats-tap.conf'), '<ossec_config><nats><enabled>yes</enabled></nats></ossec_config>\n', { mode: 0o644 });
  const c = await asNobody(['config', 'check', '--home', join(dir, 'closed/ossec')]);
  t.equal(c.code, 3, 'config check of a home below it: exit 3');
  t.match(c.stderr, /permission denied/);
  t.notMatch(c.stderr, /cannot be followed/);
});

t.test('tail --nats-url: empty or not a NATS URL is a usage error (exit 2) — no connection tried, no default server taken', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /--nats-url: Invalid NULL content for element: server_url/],
    ['  ', /--nats-url: Invalid NULL content/],
    ['not a url', /--nats-url: Invalid value for element 'server_url': 'not a url' — not a URL; expected nats:\/\/host:port or tls:\/\/host:port/],
    ['http://127.0.0.1:4222', /scheme 'http:' is not nats:\/\/ or tls:\/\//],
    ['nats://127.0.0.1:4222,,nats://h:1', /comma-separated URLs, none empty/],
    ['nats://alice:s3cr3t@127.0.0.1:4222/path', /a NATS URL has no path/],
  ];
  for (const [url, re] of cases) {
    const r = await runTap(['tail', '--nats-url', url, '--duration', '2']);
    t.equal(r.code, 2, `--nats-url ${JSON.stringify(url)}: exit 2`);
    t.match(r.stderr, re);
    t.notMatch(r.stderr, /cannot connect|127\.0\.0\.1:4222 within|s3cr3t/, 'no connection attempt, no password shown');
  }
});

t.test('a checkout never built (no dist/): one line that says to build, exit 1 — not a module-resolution stack', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-exit-nobuild-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin/wazuh-nats-tap.js'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  for (const args of [['--help'], ['run'], ['status']]) {
    const r = spawnSync(process.execPath, [join(dir, 'bin/wazuh-nats-tap.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 1, `${args[0]}: exit 1`);
    t.equal(r.stderr, "wazuh-nats-tap: dist/ is missing: build it with 'make' (or 'make build')\n", `${args[0]}: said in one line`);
  }
});

/** Each option of `wazuh-nats-tap <command> --help` (but --help and --version): its type, and its choices if any. */
function helpOptions(command: string): { flag: string; type: string; choices: string[] }[] {
  const r = spawnSync(process.execPath, [BIN, ...command.split(' '), '--help'], { encoding: 'utf8', timeout: 20_000 });
  // An option's block starts at its flag, indented, after its short alias if it has one (`  -h, --help`).
  const start = /^ +(?:-[a-z], )?(--[a-z-]+)/;
  const blocks = r.stdout.split(/\n(?= +(?:-[a-z], )?--)/).filter((b) => start.test(b));
  return blocks.map((b) => ({
    flag: start.exec(b)![1],
    type: /\[(string|number|boolean|array)\]/.exec(b)?.[1] ?? '?',
    choices: [.../\[choices: ([^\]]+)\]/.exec(b.replace(/\s+/g, ' '))?.[1].matchAll(/"([^"]+)"/g) ?? []].map((m) => m[1]),
  })).filter((o) => o.flag !== '--help' && o.flag !== '--version');
}

t.test('-h is --help after every command: the same text, exit 0 (it was "Unknown argument: h", exit 2, but after run)', async (t) => {
  for (const command of ['', 'run', 'status', 'attach', 'detach', 'config check', 'capture', 'tail']) {
    const args = command ? command.split(' ') : [];
    const long = await runTap([...args, '--help']);
    const short = await runTap([...args, '-h']);
    t.equal(short.code, 0, `${command || '(no command)'} -h: exit 0`);
    t.equal(short.stderr, '', `${command || '(no command)'} -h: nothing on stderr`);
    t.equal(short.stdout, long.stdout, `${command || '(no command)'} -h: the help --help prints`);
    t.match(short.stdout, /-h, --help/, `${command || '(no command)'}: the help names -h`);
  }
});

t.test('an option that takes a value, given twice: exit 2 and one line naming it — for every such option of every command, not a TypeError or a stack', async (t) => {
  // yargs makes a repeated option an array: `--nats-url A --nats-url B` crashed on .split (a raw
  // stack), `--home` twice in path.resolve, `--log-level` twice in pino — exit 1.
  const dir = mkdtempSync(join(tmpdir(), 'wnt-exit-dup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let checked = 0;
  for (const command of ['run', 'status', 'attach', 'detach', 'config check', 'capture', 'tail']) {
    const opts = helpOptions(command);
    t.ok(opts.length > 0, `${command}: --help lists options`);
    t.same(opts.filter((o) => o.type === '?' || o.type === 'array'), [], `${command}: every option typed, none meant to repeat`);
    for (const o of opts.filter((x) => x.type === 'string' || x.type === 'number')) {
      const [a, b] = o.choices.length ? [o.choices[0], o.choices[1] ?? o.choices[0]] : o.type === 'number' ? ['1', '2'] : [join(dir, 'a'), join(dir, 'b')];
      const r = await runTap([...command.split(' '), o.flag, a, `${o.flag}=${b}`]);
      t.equal(r.code, 2, `${command} ${o.flag} twice: exit 2`);
      t.match(r.stderr, new RegExp(`^wazuh-nats-tap ${command}: ${o.flag} given 2 times: it takes one value, give it once[^\\n]*\\n$`),
        `${command} ${o.flag} twice: one line naming it`);
      t.notMatch(r.stderr, /^\s+at |TypeError|Node\.js v/m, 'no stack');
      checked++;
    }
  }
  t.ok(checked >= 20, `${checked} options checked`);
  // Three times, and a URL's password never echoed.
  const r = await runTap(['tail', '--nats-url', 'nats://u:s3cr3t@127.0.0.1:1', '--nats-url', 'nats://127.0.0.1:2', '--nats-url', 'nats://127.0.0.1:3']);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'wazuh-nats-tap tail: --nats-url given 3 times: it takes one value, give it once (several: one comma-separated value) (see --help)\n');
  // A flag given again is no error: the last one wins (yargs), as `--no-attach --attach`.
  const h = home('<enabled>yes</enabled><metrics>no</metrics>', 0o600);
  const j = await runTap(['config', 'check', '--home', h, '--json', '--no-json', '--json']);
  t.equal(j.code, 0, 'config check --json --no-json --json: exit 0');
  t.ok(((): boolean => { try { return typeof JSON.parse(j.stdout) === 'object'; } catch { return false; } })(), 'the last --json won');
});

t.test('an open-files limit too low to load the modules (prlimit --nofile 24-64): one line saying so and how to raise it, exit 1 — not Node\'s stack', async (t) => {
  // Node's ESM loader reads the module graph concurrently: EMFILE, or a "Cannot find package" for a
  // package that is there. Node itself needs ~20 descriptors; the tap loads with ~80.
  const told = /^wazuh-nats-tap: cannot start: the open-files limit is too low \(EMFILE while loading\) \(RLIMIT_NOFILE: soft (\d+), hard \d+\): raise it to 1024 or more: LimitNOFILE= in the unit \(systemctl edit wazuh-nats-tap\), or ulimit -n 1024 in the shell\n$/;
  const dir = mkdtempSync(join(tmpdir(), 'wnt-exit-nofile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: [number, string[]][] = [
    [24, ['run', '--home', dir, '--control-socket', join(dir, 'tap.sock'), '--no-attach']], [24, ['status', '--control-socket', join(dir, 'tap.sock')]],
    ...[24, 32, 40, 48, 56, 64].map((n): [number, string[]] => [n, ['--help']]),
  ];
  let refused = 0;
  for (const [n, args] of cases) {
    const r = spawnSync('prlimit', [`--nofile=${n}:${n}`, 'env', '-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
    t.notMatch(r.stderr, /^\s+at |Node\.js v|ERR_MODULE_NOT_FOUND/m, `--nofile=${n} ${args[0]}: no stack`);
    if (args[0] === '--help' && r.status === 0) {
      t.match(r.stdout, /wazuh-nats-tap <command>/, `--nofile=${n} --help: loaded after all, the help`);
      continue;
    }
    t.equal(r.status, 1, `--nofile=${n} ${args[0]}: exit 1`);
    t.match(r.stderr, told, `--nofile=${n} ${args[0]}: one line`);
    t.equal(told.exec(r.stderr)?.[1], String(n), 'the limit said');
    refused++;
  }
  t.ok(refused >= 3, `${refused} starts refused with the line`);
});
