// make install / make uninstall into a DESTDIR: what is installed runs on its own.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { brokenLinks } from './helpers/doc-links.js';

// Tap programs loaded from here on: those a test leaves behind (another tap's are held by it, never counted).
const MARK = bpfMark();

const run = promisify(execFile);

t.test('install, run the installed executable, uninstall', async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'wnt-install-'));
  // LIBDIR, as build environments set it (and as `make install LIBDIR=…` exports it to the recipe):
  // the system's library directory, never the product's. install.sh removed "$LIBDIR" whole.
  const env = { ...process.env, DESTDIR: dest, LIBDIR: '/usr/lib' };
  const neighbour = join(dest, 'usr/lib/x86_64-linux-gnu/libkeep.so.1');
  mkdirSync(join(dest, 'usr/lib/x86_64-linux-gnu'), { recursive: true });
  writeFileSync(neighbour, 'a library of the system\n');
  const out = await run('make', ['-s', 'install', 'LIBDIR=/usr/lib'], { cwd: ROOT, env, timeout: 120_000 });
  t.match(out.stdout, /installed: \/usr\/sbin\/wazuh-nats-tap/);

  const lib = join(dest, 'usr/lib/wazuh-nats-tap');
  t.ok(existsSync(neighbour), 'LIBDIR=/usr/lib: nothing else under usr/lib removed by the install');
  t.equal(readlinkSync(join(dest, 'usr/sbin/wazuh-nats-tap')), '/usr/lib/wazuh-nats-tap/bin/wazuh-nats-tap.js');
  for (const f of ['build/bpf/wdbtap.bpf.o', 'build/lib/libwdbtap.so', 'dist/cli.js', 'node_modules/koffi', 'node_modules/@nats-io/transport-node']) {
    t.ok(existsSync(join(lib, f)), `${f} installed`);
  }
  t.notOk(existsSync(join(lib, 'node_modules/tap')), 'no development dependency');
  t.notOk(existsSync(join(lib, 'node_modules/typescript')));

  const unit = readFileSync(join(dest, 'etc/systemd/system/wazuh-nats-tap.service'), 'utf8');
  t.match(unit, /^ExecStart=\/usr\/sbin\/wazuh-nats-tap run$/m);
  t.match(unit, /^Restart=on-failure$/m);
  t.match(unit, /^Type=notify$/m, 'READY=1 once started (test/systemd-notify.test.ts)');
  t.match(unit, /^WatchdogSec=30s$/m, 'and the watchdog');
  t.match(unit, /^NoNewPrivileges=yes$/m);
  t.match(unit, /^CapabilityBoundingSet=.*CAP_BPF.*CAP_PERFMON/m);
  t.notMatch(unit, /@[A-Z]+@/, 'every placeholder filled');
  // The unit's Documentation=man:wazuh-nats-tap(8): the page is installed, with this layout's paths.
  const manPage = join(dest, 'usr/share/man/man8/wazuh-nats-tap.8');
  const page = readFileSync(manPage, 'utf8');
  t.match(page, /^\.TH WAZUH-NATS-TAP 8 "" "wazuh-nats-tap \d+\.\d+\.\d+"/m, 'the man page, with its version');
  t.notMatch(page, /@[A-Z]+@/, 'every placeholder of the man page filled');
  t.match(page, /^\.I \/usr\/lib\/wazuh-nats-tap\/docs\/README\.md$/m, 'its SEE ALSO names the installed docs');
  t.ok(existsSync(join(lib, 'docs/README.md')) && existsSync(join(lib, 'docs/examples/nats-tap.conf')), 'which are there');
  t.same(brokenLinks(join(lib, 'docs')), [], 'every relative link of the installed docs resolves there (README\'s, the consumer example\'s)');

  // The installed copy, away from the checkout: its own dist/, build/ and node_modules.
  const bin = join(lib, 'bin/wazuh-nats-tap.js');
  const help = await run(process.execPath, [bin, '--help'], { cwd: dest });
  t.match(help.stdout, /wazuh-nats-tap run/);
  const cap = await run(process.execPath, [bin, 'capture', '--duration', '1', '--home', dest], { cwd: dest, timeout: 30_000 });
  t.match(cap.stderr, /capturing wazuh-db traffic/, 'the installed BPF object and shim load and attach');
  t.match(cap.stderr, /stopped/);
  t.same(await leftBehind(MARK), []);

  await run('make', ['-s', 'uninstall', 'LIBDIR=/usr/lib'], { cwd: ROOT, env, timeout: 60_000 });
  t.notOk(existsSync(lib), 'library directory removed');
  t.equal(readFileSync(neighbour, 'utf8'), 'a library of the system\n', 'LIBDIR=/usr/lib: uninstall removed the product\'s directory only');
  t.notOk(existsSync(join(dest, 'usr/sbin/wazuh-nats-tap')), 'executable removed');
  t.notOk(existsSync(join(dest, 'etc/systemd/system/wazuh-nats-tap.service')), 'unit removed');
  t.notOk(existsSync(manPage), 'man page removed');
});

t.test('installed under a PREFIX: systemd-analyze verify accepts the unit, its man: documentation included', async (t) => {
  // Installed with absolute paths of this machine (no DESTDIR), so that systemd's checker finds the
  // executable the unit names; `man` is pointed at the prefix's pages, as it would read /usr/share/man.
  const prefix = mkdtempSync(join(tmpdir(), 'wnt-install-prefix-'));
  const unitdir = join(prefix, 'etc/systemd/system');
  const env = { ...process.env, PREFIX: join(prefix, 'usr'), UNITDIR: unitdir };
  await run('bash', [join(ROOT, 'scripts/install.sh'), 'install'], { cwd: ROOT, env, timeout: 120_000 });
  const verify = await run('systemd-analyze', ['verify', join(unitdir, 'wazuh-nats-tap.service')],
    { env: { ...process.env, MANPATH: join(prefix, 'usr/share/man') } }).catch((e) => e as { code: number; stderr: string });
  t.same([(verify as { code?: number }).code ?? 0, verify.stderr], [0, ''], 'systemd-analyze verify, man: URI checked');
  const man = await run('man', ['-w', 'wazuh-nats-tap(8)'], { env: { ...process.env, MANPATH: join(prefix, 'usr/share/man') } });
  t.equal(man.stdout.trim(), join(prefix, 'usr/share/man/man8/wazuh-nats-tap.8'), 'man finds the page');
  await run('bash', [join(ROOT, 'scripts/install.sh'), 'uninstall'], { cwd: ROOT, env, timeout: 60_000 });
  t.notOk(existsSync(join(prefix, 'usr/share/man/man8/wazuh-nats-tap.8')), 'uninstall removes it');
});

t.test('beside a package: make install neither replaces nor removes its tree, warns of its unit; uninstall keeps the drop-ins, and says so', async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'wnt-install-pkg-'));
  const env = { ...process.env, DESTDIR: dest };
  const script = (action: string) => run('bash', [join(ROOT, 'scripts/install.sh'), action], { cwd: ROOT, env, timeout: 120_000 })
    .then((r) => ({ code: 0, ...r }), (e) => e as { code: number; stdout: string; stderr: string });

  // The .deb's tree (its bundled node): `make install` with the default PREFIX would rm -rf it.
  const node = join(dest, 'usr/lib/wazuh-nats-tap/node/bin/node');
  mkdirSync(join(node, '..'), { recursive: true });
  writeFileSync(node, 'the package\'s node\n');
  for (const action of ['install', 'uninstall']) {
    const r = await script(action);
    t.equal(r.code, 1, `${action} over the package's tree: refused`);
    t.match(r.stderr, new RegExp(`${action}: /usr/lib/wazuh-nats-tap is the \\.deb's or \\.rpm's \\(its bundled Node\\.js is there\\): remove the package first`));
    t.ok(existsSync(node), `${action}: the package's files are untouched`);
  }
  rmSync(join(dest, 'usr/lib/wazuh-nats-tap'), { recursive: true });

  // The package's unit in /lib: the one make install writes to /etc overrides it.
  mkdirSync(join(dest, 'lib/systemd/system'), { recursive: true });
  writeFileSync(join(dest, 'lib/systemd/system/wazuh-nats-tap.service'), '[Service]\nExecStart=/usr/sbin/wazuh-nats-tap run\n');
  const inst = await script('install');
  t.equal(inst.code, 0);
  t.match(inst.stderr, /warning: a packaged unit \/lib\/systemd\/system\/wazuh-nats-tap\.service exists: \/etc\/systemd\/system\/wazuh-nats-tap\.service overrides it \(and its updates\) until 'make uninstall'/);

  // The guide's drop-in (systemctl edit): the administrator's, kept by uninstall, and said.
  const dropin = join(dest, 'etc/systemd/system/wazuh-nats-tap.service.d/override.conf');
  mkdirSync(join(dropin, '..'));
  writeFileSync(dropin, '[Service]\nExecStart=\nExecStart=/usr/sbin/wazuh-nats-tap run --home /var/ossec\n');
  const un = await script('uninstall');
  t.equal(un.code, 0);
  t.match(un.stderr, /warning: \/etc\/systemd\/system\/wazuh-nats-tap\.service\.d\/ is left in place \(your drop-ins: override\.conf\): a wazuh-nats-tap unit installed later runs with them; if that is not wanted: rm -r \/etc\/systemd\/system\/wazuh-nats-tap\.service\.d/);
  t.ok(existsSync(dropin), 'the drop-in is kept');
  t.notOk(existsSync(join(dest, 'etc/systemd/system/wazuh-nats-tap.service')), 'make install\'s unit is removed');
});

t.test('ensure-deps (make install, make test): a node_modules that is a link is checked, never reinstalled through it', async (t) => {
  // A clone or worktree sharing another checkout's node_modules by a link: its package-lock.json is
  // newer (a fresh checkout), and `npm ci` there emptied the shared directory under every checkout.
  const dir = mkdtempSync(join(tmpdir(), 'wnt-deps-link-'));
  mkdirSync(join(dir, 'scripts'));
  writeFileSync(join(dir, 'scripts/ensure-deps.sh'), readFileSync(join(ROOT, 'scripts/ensure-deps.sh')));
  writeFileSync(join(dir, 'package-lock.json'), readFileSync(join(ROOT, 'package-lock.json')));
  const shared = join(dir, 'other-checkout/node_modules');
  mkdirSync(join(shared, 'koffi'), { recursive: true });
  writeFileSync(join(shared, 'koffi/package.json'), '{}\n');
  writeFileSync(join(shared, '.package-lock.json'), '{"packages":{}}\n');
  symlinkSync(shared, join(dir, 'node_modules'));
  utimesSync(join(shared, '.package-lock.json'), new Date(0), new Date(0));
  // npm, recorded: it must not run.
  const fake = join(dir, 'fakebin');
  mkdirSync(fake);
  writeFileSync(join(fake, 'npm'), `#!/bin/sh\necho "npm $*" >> ${join(dir, 'npm-calls')}\n`, { mode: 0o755 });
  const r = await run('bash', [join(dir, 'scripts/ensure-deps.sh')], { env: { ...process.env, PATH: `${fake}:${process.env.PATH}` } })
    .catch((e) => e as { code: number; stderr: string });
  t.equal((r as { code?: number }).code, 1, 'stale packages behind a link: an error');
  t.match(r.stderr, /node_modules is a link to .*other-checkout\/node_modules, whose packages are not this package-lock\.json's: not reinstalled through the link; run npm ci there/);
  t.notOk(existsSync(join(dir, 'npm-calls')), 'npm was not run');
  t.ok(existsSync(join(shared, 'koffi/package.json')), 'the shared directory is untouched');

  // The same link to the packages of this lock file: nothing to do, and still no npm.
  writeFileSync(join(shared, '.package-lock.json'), readFileSync(join(ROOT, 'node_modules/.package-lock.json')));
  utimesSync(join(shared, '.package-lock.json'), new Date(0), new Date(0));
  const ok = await run('bash', [join(dir, 'scripts/ensure-deps.sh')], { env: { ...process.env, PATH: `${fake}:${process.env.PATH}` } });
  t.equal(ok.stderr, '', 'the packages behind the link are this lock file\'s: quiet');
  t.notOk(existsSync(join(dir, 'npm-calls')), 'npm was not run');
});

t.test('the platform floor the docs state is the one the built shim needs', async (t) => {
  // The newest glibc symbol version the shim and the native addon link, and the libbpf soname.
  const glibc = (file: string) => (spawnSync('objdump', ['-T', file], { encoding: 'utf8' }).stdout.match(/GLIBC_\d+\.\d+/g) ?? [])
    .map((v) => v.slice(6).split('.').map(Number));
  const koffi = join(ROOT, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
  const versions = [...glibc(join(ROOT, 'build/lib/libwdbtap.so')), ...glibc(koffi)].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  t.ok(versions.length > 0, 'objdump read the symbol versions');
  const floor = versions.at(-1)!.join('.');
  const needed = spawnSync('readelf', ['-d', join(ROOT, 'build/lib/libwdbtap.so')], { encoding: 'utf8' }).stdout;
  const libbpf = /\[libbpf\.so\.(\d+)\]/.exec(needed)?.[1];
  t.equal(libbpf, '1', 'the shim links libbpf.so.1');

  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const requirements = readme.slice(readme.indexOf('## Requirements'), readme.indexOf('\n## ', readme.indexOf('## Requirements') + 1));
  const guide = readFileSync(join(ROOT, 'docs/integration.md'), 'utf8');
  const guideReq = guide.slice(guide.indexOf('## 1. Requirements'), guide.indexOf('## 2.'));
  for (const [name, text] of [['README', requirements], ['integration.md', guideReq]]) {
    t.match(text, `glibc ≥ ${floor}`, `${name} states glibc ≥ ${floor}`);
    t.match(text, `libbpf ${libbpf}.x`, `${name} states libbpf ${libbpf}.x`);
    t.match(text, /(Linux|kernel) ≥ 5\.17/, `${name} states the kernel floor`);
    for (const d of ['Debian 12', 'Ubuntu 24.04', 'RHEL 9', 'Fedora', 'Amazon Linux 2023']) t.match(text, d, `${name} names ${d}`);
    t.notMatch(text, /Ubuntu 22\.04\+|Ubuntu 22\.04,/, `${name} does not offer Ubuntu 22.04 (libbpf 0.x, kernel 5.15)`);
  }
  t.notMatch(guide, /zypper on SUSE|RHEL, Rocky, Fedora/, 'the install commands name no platform below the floor');
});
