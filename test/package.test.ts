// make package: the .deb installed by dpkg into a throwaway root (its maintainer scripts
// run, its dependencies checked against this system's packages), and the .rpm's payload
// unpacked, each run on its own bundled Node.js 22 with no Node.js on PATH: --help,
// config check of the shipped example, and `run` against the simulator and a real
// nats-server. lintian finds nothing that packaging/deb/lintian-overrides does not explain.
import t, { type Test } from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SimManager } from '../scripts/sim/manager.mjs';
import { ROOT, startTapCommand } from './helpers/tap-process.js';
import { natsCollecting } from './helpers/nats-server.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';
import { brokenLinks } from './helpers/doc-links.js';

const MARK = bpfMark();
const run = promisify(execFile);
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
const OUT = join(ROOT, 'build/package');
const DEB = join(OUT, `wazuh-nats-tap_${VERSION}_amd64.deb`);
const RPM = join(OUT, `wazuh-nats-tap-${VERSION}.x86_64.rpm`);
const LIB = 'usr/lib/wazuh-nats-tap';

// Building (~40 s), lintian (~40 s) and two runs on two shared cores.
t.setTimeout(900_000);

/** A PATH with a shell, what the launcher calls and `env` (the helpers start every tap through it), and no node: a Node.js from PATH cannot be used. */
function pathWithoutNode(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-nonode-'));
  for (const tool of ['sh', 'readlink', 'env']) {
    const where = spawnSync('sh', ['-c', `command -v ${tool}`]).stdout.toString().trim();
    symlinkSync(where, join(dir, tool));
  }
  return dir;
}
const NO_NODE_PATH = pathWithoutNode();
// The test run's stand-in for the unit's StateDirectory (agent/spool-note.ts): not the machine's /var/lib.
const stateDir = process.env.WAZUH_NATS_TAP_STATE_DIR ? { WAZUH_NATS_TAP_STATE_DIR: process.env.WAZUH_NATS_TAP_STATE_DIR } : {};
const env = { PATH: NO_NODE_PATH, LANG: 'C.UTF-8', ...stateDir };

async function cli(root: string, args: string[]) {
  return run(join(root, 'usr/sbin/wazuh-nats-tap'), args, { env, timeout: 60_000 }).catch((e) => e as { code: number; stdout: string; stderr: string });
}

/**
 * The installed tree under `root` runs: --help, config check and a short `run` against the
 * simulator, the events reaching nats-server; its process is the bundled node.
 */
async function runsFrom(t: Test, root: string, exampleConf: string, agentId: number) {
  const help = await cli(root, ['--help']);
  t.match(help.stdout, /wazuh-nats-tap run/, '--help with no Node.js on PATH');

  const home = mkdtempSync(join(tmpdir(), 'wnt-pkg-home-'));
  mkdirSync(join(home, 'etc'));
  writeFileSync(join(home, 'etc/ossec.conf'), '<ossec_config><cluster><node_name>pkg-node</node_name></cluster></ossec_config>\n');
  // The example the package ships, switched on: every other element stays at its default.
  const conf = readFileSync(exampleConf, 'utf8');
  t.match(conf, /^    <enabled>no<\/enabled>$/m, 'the example starts nothing by itself');
  writeFileSync(join(home, 'etc/nats-tap.conf'), conf.replace('<enabled>no</enabled>', '<enabled>yes</enabled>'));
  const check = await cli(root, ['config', 'check', '--home', home]);
  t.equal((check as { code?: number }).code ?? 0, 0, 'config check accepts the shipped example');
  t.match(check.stdout, /manager_node\s+pkg-node/);
  t.match(check.stdout, /server_url\s+nats:\/\/127\.0\.0\.1:4222\s+default/);

  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const agent = { id: agentId, name: `pkg-agent-${agentId}`, ip: '192.168.56.40' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [agent] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const tap = await startTapCommand([join(root, 'usr/sbin/wazuh-nats-tap')],
    ['run', '--home', home, '--nats-url', nats.url, '--metrics', 'no', '--control-socket', sock], /^attached/, env);
  t.teardown(() => tap.stop('SIGKILL'));
  // exec: the launcher's pid is now the bundled node's.
  t.equal(readlinkSync(`/proc/${tap.proc.pid}/exe`), join(root, LIB, 'node/bin/node'), 'the tap runs on the bundled node');
  const environ = readFileSync(`/proc/${tap.proc.pid}/environ`, 'utf8').split('\0');
  t.ok(environ.includes(`WAZUH_NATS_TAP_LIBDIR=${join(root, LIB, 'build')}`), 'the launcher names the packaged BPF object and shim');

  await sim.startup(agent);
  await sim.keepalive(agent);
  await sim.shutdown(agent);
  const id = String(agentId).padStart(3, '0');
  const statuses = () => got.filter((m) => m.subject === `wazuh.agent.${id}.status`).map((m) => m.body.current_status);
  await waitFor(() => statuses().length >= 3, 15_000, 'three status events').catch((e) => {
    t.comment(JSON.stringify(tap.logs));
    throw e;
  });
  t.same(statuses(), ['pending', 'active', 'disconnected'], 'startup, keepalive, shutdown reach NATS');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit 0');
  t.same(got.filter((m) => m.subject === 'wazuh.tap.pkg-node.events').map((m) => m.body.action), ['started', 'attached', 'stopped']);
  t.same(await leftBehind(MARK), [], 'no BPF program left behind');
}

/** Run a maintainer script where systemd looks present (a mount namespace with /run/systemd/system), with systemctl and deb-systemd-invoke recorded. */
function withFakeSystemd(script: string, args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-fakesd-'));
  const log = join(dir, 'calls');
  for (const tool of ['systemctl', 'deb-systemd-invoke']) {
    writeFileSync(join(dir, tool), `#!/bin/sh\necho "${tool} $*" >> ${log}\n`, { mode: 0o755 });
  }
  const r = spawnSync('unshare', ['-m', 'sh', '-c',
    'mount -t tmpfs none /run && mkdir -p /run/systemd/system && exec sh "$@"', 'sh', script, ...args],
  { env: { PATH: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin` } });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')}: ${r.stderr}`);
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
}

t.test('make package builds the .deb and the .rpm', async (t) => {
  const started = Date.now();
  const r = await run('make', ['-s', 'package'], { cwd: ROOT, timeout: 600_000, maxBuffer: 16 << 20 });
  t.comment(`make package: ${Math.round((Date.now() - started) / 1000)} s`);
  t.match(r.stderr, /wazuh-nats-tap_.*_amd64\.deb/);
  for (const f of [DEB, RPM]) t.ok(statSync(f).size > 10 << 20, `${f} built`);
});

t.test('lintian: every remaining tag is explained in the overrides', async (t) => {
  const r = spawnSync('lintian', ['--fail-on', 'error,warning,info', '--display-info', DEB], { encoding: 'utf8', timeout: 300_000 });
  const tags = r.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l));
  t.same(tags, [], 'no tag but the overridden ones');
  t.equal(r.status, 0);
});

t.test('.deb: dpkg installs it into a throwaway root; upgrade, remove and purge keep what they must', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wnt-deb-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'var/lib/dpkg/info'), { recursive: true });
  mkdirSync(join(root, 'var/lib/dpkg/updates'));
  // The system's own package database: the .deb's Depends must be met by this system's packages.
  copyFileSync('/var/lib/dpkg/status', join(root, 'var/lib/dpkg/status'));
  writeFileSync(join(root, 'var/lib/dpkg/available'), '');
  mkdirSync(join(root, 'var/ossec/etc'), { recursive: true });
  writeFileSync(join(root, 'var/ossec/etc/ossec.conf'), '<ossec_config><cluster><node_name>n1</node_name></cluster></ossec_config>\n');
  // The maintainer scripts run outside a chroot with DPKG_ROOT set: they honour it.
  const dpkg = (...a: string[]) => run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--log=/dev/null', ...a], { timeout: 120_000 });

  const depends = (await run('dpkg-deb', ['-f', DEB, 'Depends'])).stdout;
  t.match(depends, /libbpf1/, 'depends on the distribution\'s libbpf');
  t.match(depends, /libelf1/, 'and libelf');
  const install = await dpkg('-i', DEB);
  t.match(install.stdout, /wrote \/var\/ossec\/etc\/nats-tap\.conf \(disabled\)/, 'a first install writes the example where the tap reads it');
  const confFile = join(root, 'var/ossec/etc/nats-tap.conf');
  t.equal(statSync(confFile).mode & 0o777, 0o640);
  t.equal(readFileSync(confFile, 'utf8'), readFileSync(join(root, 'usr/share/wazuh-nats-tap/nats-tap.conf.example'), 'utf8'));

  const files = (await dpkg('-L', 'wazuh-nats-tap')).stdout.split('\n');
  for (const f of [`/${LIB}/node/bin/node`, `/${LIB}/dist/cli.js`, `/${LIB}/build/bpf/wdbtap.bpf.o`, `/${LIB}/build/lib/libwdbtap.so`,
    `/${LIB}/node_modules/koffi`, `/${LIB}/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node`, '/usr/sbin/wazuh-nats-tap',
    '/lib/systemd/system/wazuh-nats-tap.service', '/usr/share/man/man8/wazuh-nats-tap.8.gz', '/usr/share/doc/wazuh-nats-tap/copyright',
    '/usr/share/doc/wazuh-nats-tap/asyncapi.yaml', '/usr/share/doc/wazuh-nats-tap/wazuh-nats-tap.json']) {
    t.ok(files.includes(f), `ships ${f}`);
  }
  // The docs, flat in /usr/share/doc/wazuh-nats-tap: what they link to is there (the templates of
  // examples/, performance.md, the consumer example), README's links rewritten for that tree.
  for (const f of ['examples/nats-server.conf', 'examples/make-certs.sh', 'performance.md', 'examples/consumer/src/main.ts']) {
    t.ok(files.includes(`/usr/share/doc/wazuh-nats-tap/${f}`), `ships ${f}`);
  }
  t.same(brokenLinks(join(root, 'usr/share/doc/wazuh-nats-tap')), [], 'every relative link of the shipped docs resolves');
  t.notOk(files.some((f) => /\/node_modules\/(tap|typescript|ajv|@tapjs)\//.test(`${f}/`)), 'no development dependency');
  t.same(files.filter((f) => f.endsWith('.node')), [`/${LIB}/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node`], 'one native addon: linux-x64 (glibc)');
  t.notOk(files.includes('/etc/nats-tap.conf') || files.some((f) => f.startsWith('/var/')), 'nothing under /var or of Wazuh\'s is owned by the package');
  const unit = readFileSync(join(root, 'lib/systemd/system/wazuh-nats-tap.service'), 'utf8');
  t.match(unit, /^ExecStart=\/usr\/sbin\/wazuh-nats-tap run$/m);
  t.match(unit, /^Documentation=man:wazuh-nats-tap\(8\) file:\/usr\/share\/doc\/wazuh-nats-tap\/integration\.md$/m);
  t.match(unit, /^ProtectSystem=strict$/m, 'the hardened unit');
  t.notMatch(unit, /@[A-Z]+@/);
  t.notOk(existsSync(join(root, 'etc/systemd/system/multi-user.target.wants/wazuh-nats-tap.service')), 'not enabled by the package');

  const ver = await cli(root, ['--version']);
  t.equal(ver.stdout.trim(), VERSION);
  await runsFrom(t, root, confFile, 731);

  // Upgrade (the same version again: prerm upgrade, postinst configure <old version>).
  writeFileSync(confFile, '<ossec_config><nats><enabled>yes</enabled></nats></ossec_config>\n');
  const spool = join(root, 'var/ossec/var/nats-tap');
  mkdirSync(spool, { recursive: true });
  writeFileSync(join(spool, 'spool-000001.log'), 'events waiting');
  // A unit left in /etc by make install overrides the package's: said at the upgrade.
  const shadow = join(root, 'etc/systemd/system/wazuh-nats-tap.service');
  mkdirSync(join(shadow, '..'), { recursive: true });
  writeFileSync(shadow, '[Service]\nExecStart=/usr/sbin/wazuh-nats-tap run\n');
  const again = await dpkg('-i', DEB);
  t.match(again.stdout, /wazuh-nats-tap: warning: \/etc\/systemd\/system\/wazuh-nats-tap\.service overrides this package's unit \(\/lib\/systemd\/system\/wazuh-nats-tap\.service\); if make install left it, remove it/);
  t.notMatch(install.stdout, /warning/, 'no warning without one');
  rmSync(shadow);
  t.notMatch(again.stdout, /wrote/, 'an upgrade writes no configuration');
  t.equal(readFileSync(confFile, 'utf8'), '<ossec_config><nats><enabled>yes</enabled></nats></ossec_config>\n', 'upgrade keeps the configuration');
  t.ok(existsSync(join(spool, 'spool-000001.log')), 'upgrade keeps the spool');

  await dpkg('-r', 'wazuh-nats-tap');
  t.notOk(existsSync(join(root, LIB)), 'remove: the program is gone');
  t.notOk(existsSync(join(root, 'usr/sbin/wazuh-nats-tap')));
  t.ok(existsSync(join(spool, 'spool-000001.log')), 'remove keeps the spool');
  t.ok(existsSync(confFile), 'and the configuration');
  mkdirSync(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  symlinkSync('/lib/systemd/system/wazuh-nats-tap.service', join(root, 'etc/systemd/system/multi-user.target.wants/wazuh-nats-tap.service'));
  await dpkg('-P', 'wazuh-nats-tap');
  t.notOk(existsSync(spool), 'purge removes the spool');
  t.notOk(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/wazuh-nats-tap.service'), { throwIfNoEntry: false }), 'and the unit\'s enablement');
  t.ok(existsSync(confFile), 'purge leaves <home>/etc/nats-tap.conf, in Wazuh\'s directory');
});

t.test('.deb maintainer scripts under systemd: removal stops the service, an upgrade restarts a running one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-deb-ctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await run('dpkg-deb', ['-e', DEB, dir]);
  t.same(withFakeSystemd(join(dir, 'prerm'), ['remove']), ['deb-systemd-invoke stop wazuh-nats-tap.service']);
  t.same(withFakeSystemd(join(dir, 'prerm'), ['upgrade', VERSION]), [], 'an upgrade does not stop it');
  t.same(withFakeSystemd(join(dir, 'postinst'), ['configure', VERSION]),
    ['systemctl --system daemon-reload', 'deb-systemd-invoke try-restart wazuh-nats-tap.service']);
  t.same(withFakeSystemd(join(dir, 'postrm'), ['remove']), ['systemctl --system daemon-reload']);
});

t.test('.rpm: its files, dependencies and scripts; its payload runs the same way', async (t) => {
  const files = (await run('rpm', ['-qlp', RPM])).stdout.split('\n');
  for (const f of [`/${LIB}/node/bin/node`, `/${LIB}/dist/cli.js`, `/${LIB}/build/bpf/wdbtap.bpf.o`, `/${LIB}/build/lib/libwdbtap.so`,
    '/usr/sbin/wazuh-nats-tap', '/usr/lib/systemd/system/wazuh-nats-tap.service', '/usr/share/wazuh-nats-tap/nats-tap.conf.example']) {
    t.ok(files.includes(f), `ships ${f}`);
  }
  const requires = (await run('rpm', ['-qp', '--requires', RPM])).stdout.split('\n');
  t.ok(requires.includes('libbpf.so.1()(64bit)'), 'requires libbpf by soname');
  t.ok(requires.includes('libelf.so.1()(64bit)'), 'and libelf');
  t.notOk(requires.some((r) => /node|python|perl/.test(r)), 'no interpreter found in node_modules\' scripts');
  t.same((await run('rpm', ['-qp', '--provides', RPM])).stdout.trim().split('\n').sort(),
    [`wazuh-nats-tap = ${VERSION}-1`, `wazuh-nats-tap(x86-64) = ${VERSION}-1`], 'provides nothing of its private tree');
  const scripts = (await run('rpm', ['-qp', '--scripts', RPM])).stdout;
  t.match(scripts, /postinstall scriptlet[^]*install -m 0640 \/usr\/share\/wazuh-nats-tap\/nats-tap\.conf\.example "\$etc\/nats-tap\.conf"/);
  t.match(scripts, /preuninstall scriptlet[^]*"\$1" -eq 0[^]*systemctl --no-reload disable --now wazuh-nats-tap\.service/, 'erase stops and disables it');
  t.match(scripts, /postuninstall scriptlet[^]*"\$1" -ge 1[^]*try-restart wazuh-nats-tap\.service/, 'an upgrade restarts a running one');
  t.notMatch(scripts, /systemctl (enable|start)/, 'never enabled or started by the package');
  t.match(scripts, /postinstall scriptlet[^]*-f \/etc\/systemd\/system\/wazuh-nats-tap\.service[^]*warning: \/etc\/systemd\/system\/wazuh-nats-tap\.service overrides this package's unit/,
    'a unit left in /etc by make install is said to override the package\'s');

  const root = mkdtempSync(join(tmpdir(), 'wnt-rpm-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const x = spawnSync('sh', ['-c', `rpm2cpio "${RPM}" | cpio -idm --quiet`], { cwd: root, encoding: 'utf8' });
  t.equal(x.status, 0, x.stderr);
  await runsFrom(t, root, join(root, 'usr/share/wazuh-nats-tap/nats-tap.conf.example'), 732);
});
