// vagrant/: the provisioning scripts and the Vagrantfile pass their checkers (these machines
// cannot run a VM), and the tap's part of the provisioning, vagrant/provision/tap.sh, run here
// against the Wazuh manager simulator instead of a real manager, installs a tap that starts,
// attaches and publishes to NATS — started the way its systemd unit starts it.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startNats } from './helpers/nats-server.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { contractJson } from './helpers/contract.js';
import { unitEnvironment } from '../scripts/unit-environment.mjs';

const VAGRANT = join(ROOT, 'vagrant');
const PROVISION = join(VAGRANT, 'provision');

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command to its end, bounded; never throws on a non-zero exit. */
function sh(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; timeout?: number; cwd?: string } = {}): Promise<Run> {
  return new Promise((res) => {
    execFile(cmd, args, { env: o.env ?? process.env, timeout: o.timeout ?? 30_000, cwd: o.cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : null) : 0;
      res({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

t.test('provisioning scripts: bash -n and shellcheck pass', async (t) => {
  const scripts = readdirSync(PROVISION).filter((f) => f.endsWith('.sh')).sort();
  t.same(scripts, ['manager-settings.sh', 'nats.sh', 'tap.sh', 'wazuh.sh'], 'the scripts the Vagrantfile names');
  for (const f of scripts) {
    const path = join(PROVISION, f);
    t.ok(statSync(path).mode & 0o100, `${f} is executable`);
    const syntax = await sh('bash', ['-n', path]);
    t.same([syntax.code, syntax.stderr], [0, ''], `bash -n ${f}`);
    const lint = await sh('shellcheck', [path]);
    t.same([lint.code, lint.stdout], [0, ''], `shellcheck ${f}`);
  }

  // The checkers are not a formality: each rejects a faulty script.
  const dir = mkdtempSync(join(tmpdir(), 'wnt-vagrant-lint-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'broken.sh'), '#!/usr/bin/env bash\nif true; then\n');
  writeFileSync(join(dir, 'unquoted.sh'), '#!/usr/bin/env bash\nrm -rf $1/build\n');
  t.not((await sh('bash', ['-n', join(dir, 'broken.sh')])).code, 0, 'bash -n rejects a syntax error');
  const bad = await sh('shellcheck', [join(dir, 'unquoted.sh')]);
  t.not(bad.code, 0, 'shellcheck rejects an unquoted expansion');
  t.match(bad.stdout, /SC2086/);
});

// A stand-in for the part of Vagrant's API the Vagrantfile uses, recording what it declares.
const VAGRANT_STUB = `
require "json"
class Rec
  attr_reader :h
  def initialize; @h = {}; end
  def method_missing(name, *args)
    raise NoMethodError, "unexpected #{name}" unless name.to_s.end_with?("=") && args.size == 1
    @h[name.to_s.chomp("=")] = args[0]
  end
  def respond_to_missing?(*) = true
end
class VM
  attr_reader :d
  def initialize; @d = { "synced" => [], "network" => [], "provision" => [], "providers" => {} }; end
  def box=(v); @d["box"] = v; end
  def hostname=(v); @d["hostname"] = v; end
  def synced_folder(src, dst, **o); @d["synced"] << { "src" => src, "dst" => dst, "opts" => o }; end
  def network(type, **o); @d["network"] << o.merge("type" => type); end
  def provider(name); r = Rec.new; yield r; @d["providers"][name] = r.h; end
  def provision(name, **o); @d["provision"] << o.merge("name" => name); end
  def define(name, **o); c = Config.new; yield c; $machines[name] = c.vm.d.merge("options" => o); end
end
class Config
  attr_reader :vm
  def initialize; @vm = VM.new; end
end
module Vagrant
  def self.configure(version); c = Config.new; yield c; $top = c.vm.d; end
end
$machines = {}
load ARGV[0]
puts JSON.generate({ "top" => $top, "machines" => $machines })
`;

t.test('Vagrantfile: ruby -c passes, and it declares both profiles with scripts that exist', async (t) => {
  const file = join(VAGRANT, 'Vagrantfile');
  const syntax = await sh('ruby', ['-wc', file]);
  t.same([syntax.code, syntax.stdout, syntax.stderr], [0, 'Syntax OK\n', ''], 'ruby -wc Vagrantfile');
  const dir = mkdtempSync(join(tmpdir(), 'wnt-vagrant-rb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'broken.rb'), 'Vagrant.configure("2") do |config|\n');
  t.not((await sh('ruby', ['-c', join(dir, 'broken.rb')])).code, 0, 'ruby -c rejects a syntax error');

  writeFileSync(join(dir, 'stub.rb'), VAGRANT_STUB);
  const vagrantEnv = (extra: NodeJS.ProcessEnv = {}) => {
    const env = { ...process.env, ...extra };
    for (const k of ['WAZUH4_VERSION', 'WAZUH5_VERSION']) if (!(k in extra)) delete env[k];
    return env;
  };
  const ev = await sh('ruby', [join(dir, 'stub.rb'), file], { cwd: VAGRANT, env: vagrantEnv() });
  t.equal(ev.code, 0, `the Vagrantfile evaluates: ${ev.stderr}`);
  const { top, machines } = JSON.parse(ev.stdout);
  t.equal(top.box, 'debian/bookworm64');
  t.same(Object.keys(machines).sort(), ['agent', 'agent5', 'manager', 'manager5']);
  t.match(machines.manager.options, { autostart: true, primary: true }, '`vagrant up` brings up the 4.x profile');
  t.match(machines.agent.options, { autostart: true });
  t.match(machines.manager5.options, { autostart: false }, 'the 5.x profile only when named');
  t.match(machines.agent5.options, { autostart: false });

  for (const [suffix, major] of [['', '4'], ['5', '5']]) {
    const m = machines[`manager${suffix}`];
    const a = machines[`agent${suffix}`];
    t.same(m.provision.map((p: { name: string }) => p.name), ['wazuh', 'settings', 'nats', 'tap'], 'manager: Wazuh, its settings, NATS, then the tap');
    for (const p of [...m.provision, ...a.provision]) {
      t.ok(statSync(resolve(VAGRANT, p.path)).isFile(), `${p.path} exists`);
    }
    t.match(m.provision[0].env, { WAZUH_ROLE: 'manager', WAZUH_MAJOR: major });
    const src = m.synced.find((s: { dst: string }) => s.dst === m.provision[3].env.TAP_SRC);
    t.ok(src, 'the tap is installed from the synced checkout');
    t.equal(resolve(VAGRANT, src.src), ROOT, 'which is this repository');
    for (const x of ['node_modules/', 'build/', 'dist/']) t.ok(src.opts.rsync__exclude.includes(x), `the host's ${x} is not copied`);
    t.match(a.provision[0].env, { WAZUH_ROLE: 'agent', WAZUH_MAJOR: major, WAZUH_MANAGER_IP: m.network[0].ip }, 'the agent enrols with its own profile\'s manager');
    t.not(m.network[0].ip, a.network[0].ip);
  }
  t.not(machines.manager.network[0].ip, machines.manager5.network[0].ip, 'both profiles can run at once');

  // The 4.x profile is the SPEC's reference manager, 4.7.5, unless told otherwise; manager and agent alike.
  t.equal(machines.manager.provision[0].env.WAZUH_VERSION, '4.7.5-1', '`vagrant up` installs Wazuh 4.7.5 (the SPEC\'s reference)');
  t.equal(machines.agent.provision[0].env.WAZUH_VERSION, '4.7.5-1', 'and its agent');
  t.notOk('WAZUH_VERSION' in machines.manager5.provision[0].env, 'the 5.x profile: the newest of its repository');
  const newest = JSON.parse((await sh('ruby', [join(dir, 'stub.rb'), file], { cwd: VAGRANT, env: vagrantEnv({ WAZUH4_VERSION: '' }) })).stdout);
  t.notOk('WAZUH_VERSION' in newest.machines.manager.provision[0].env, 'WAZUH4_VERSION= : the newest 4.x');
  const other = JSON.parse((await sh('ruby', [join(dir, 'stub.rb'), file], { cwd: VAGRANT, env: vagrantEnv({ WAZUH4_VERSION: '4.14.1-1' }) })).stdout);
  t.equal(other.machines.agent.provision[0].env.WAZUH_VERSION, '4.14.1-1', 'another version pins both');
  const readme = readFileSync(join(VAGRANT, 'README.md'), 'utf8');
  t.match(readme, /^\| `vagrant up` \| `WAZUH4_VERSION` \| `4\.7\.5-1`/m, 'vagrant/README.md gives that default');
  t.notMatch(readme, /Wazuh v4\.14/, 'and its sample outputs are of that version');
});

// The shape of a 4.8+ manager's default ossec.conf, in the parts the settings touch or must not.
const CONF_48 = `<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
    <agents_disconnection_time>10m</agents_disconnection_time>
    <agents_disconnection_alert_time>0</agents_disconnection_alert_time>
  </global>

  <sca>
    <enabled>yes</enabled>
    <scan_on_start>yes</scan_on_start>
  </sca>

  <vulnerability-detection>
    <enabled>yes</enabled>
    <index-status>yes</index-status>
    <feed-update-interval>60m</feed-update-interval>
  </vulnerability-detection>

  <indexer>
    <enabled>yes</enabled>
    <hosts>
      <host>https://0.0.0.0:9200</host>
    </hosts>
  </indexer>

  <cluster>
    <name>wazuh</name>
    <node_name>node01</node_name>
    <disabled>yes</disabled>
  </cluster>
</ossec_config>
`;

t.test('vagrant/provision/manager-settings.sh changes exactly the walk-through\'s settings', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-vagrant-settings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const settings = (conf: string) => sh('bash', [join(PROVISION, 'manager-settings.sh')],
    { env: { ...process.env, WAZUH_CONF: conf, WAZUH_RESTART: 'no' } });

  const conf48 = join(dir, 'ossec-48.conf');
  writeFileSync(conf48, CONF_48);
  const r = await settings(conf48);
  t.equal(r.code, 0, r.stderr);
  t.equal(readFileSync(conf48, 'utf8'), CONF_48
    .replace('<agents_disconnection_time>10m<', '<agents_disconnection_time>1m<')
    .replace('<vulnerability-detection>\n    <enabled>yes<', '<vulnerability-detection>\n    <enabled>no<')
    .replace('<indexer>\n    <enabled>yes<', '<indexer>\n    <enabled>no<'), '4.8+: those three lines, and <sca> keeps its <enabled>yes');
  t.equal((await settings(conf48)).code, 0);
  t.equal(readFileSync(conf48, 'utf8').match(/agents_disconnection_time>/g)?.length, 2, 'provisioning again changes nothing more');

  // Before 4.8: <vulnerability-detector>, and a <global> without the element.
  const older = CONF_48.replace(/\s*<agents_disconnection_time>10m<\/agents_disconnection_time>/, '')
    .replaceAll('vulnerability-detection', 'vulnerability-detector');
  const confOld = join(dir, 'ossec-old.conf');
  writeFileSync(confOld, older);
  t.equal((await settings(confOld)).code, 0);
  t.equal(readFileSync(confOld, 'utf8'), older
    .replace('<global>\n', '<global>\n    <agents_disconnection_time>1m</agents_disconnection_time>\n')
    .replace('<vulnerability-detector>\n    <enabled>yes<', '<vulnerability-detector>\n    <enabled>no<')
    .replace('<indexer>\n    <enabled>yes<', '<indexer>\n    <enabled>no<'), 'older: the element added to <global>');

  // No <global> at all: a root of its own (Wazuh reads every <ossec_config> root).
  const bare = '<ossec_config>\n  <remote>\n    <connection>secure</connection>\n  </remote>\n</ossec_config>\n';
  const confBare = join(dir, 'ossec-bare.conf');
  writeFileSync(confBare, bare);
  t.equal((await settings(confBare)).code, 0);
  t.equal(readFileSync(confBare, 'utf8'), `${bare}<ossec_config>\n  <global>\n    <agents_disconnection_time>1m</agents_disconnection_time>\n  </global>\n</ossec_config>\n`);

  const missing = await settings(join(dir, 'nope.conf'));
  t.equal(missing.code, 1, 'no configuration file: an error, not a silent pass');
  t.match(missing.stderr, /no .*nope\.conf/);
});

interface Received { subject: string; body: Record<string, unknown> }

/** ExecStart as systemd runs it: the unit's, unless a drop-in resets it (`ExecStart=`) and sets another. */
function effectiveExecStart(unit: string, dropins: string[]): string[] {
  let cmd = '';
  for (const text of [unit, ...dropins]) {
    for (const line of text.split('\n')) {
      const m = /^ExecStart=(.*)$/.exec(line.trim());
      if (m) cmd = m[1];
    }
  }
  return cmd.split(/\s+/).filter(Boolean);
}

t.test('vagrant/provision/tap.sh installs, configures and starts a tap that works (simulated manager)', async (t) => {
  const nats = await startNats();
  t.teardown(async () => {
    await nats.stop();
    rmSync(nats.dir, { recursive: true, force: true });
  });
  const home = mkdtempSync(join(tmpdir(), 'wnt-vagrant-home-'));
  const prefix = mkdtempSync(join(tmpdir(), 'wnt-vagrant-prefix-'));
  t.teardown(() => {
    rmSync(home, { recursive: true, force: true });
    rmSync(prefix, { recursive: true, force: true });
  });

  // The manager's own ossec.conf, as Wazuh installs it: no <nats> (Wazuh would refuse it).
  mkdirSync(join(home, 'etc'), { recursive: true });
  const wazuhConf = '<ossec_config>\n  <cluster>\n    <name>wazuh</name>\n    <node_name>vagrant-sim</node_name>\n    <disabled>yes</disabled>\n  </cluster>\n</ossec_config>\n';
  writeFileSync(join(home, 'etc/ossec.conf'), wazuhConf);
  // An id no other test's simulator uses: a tap follows every process named like a Wazuh
  // daemon, so a concurrent run's agent 001 would reach this tap too.
  const A = { id: 917, name: 'agent01', ip: '192.168.56.11' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();

  const sock = join(home, 'tap.sock');
  const usr = join(prefix, 'usr');
  const unitdir = join(prefix, 'etc/systemd/system');
  const r = await sh('bash', [join(PROVISION, 'tap.sh')], {
    timeout: 200_000,
    env: {
      ...process.env, TAP_SRC: ROOT, WAZUH_HOME: home, NATS_URL: nats.url, TAP_METRICS: 'no',
      TAP_CONTROL_SOCKET: sock, PREFIX: usr, UNITDIR: unitdir, TAP_SYSTEMD: 'no',
    },
  });
  t.equal(r.code, 0, 'tap.sh exits 0');
  if (r.code !== 0) t.comment(`${r.stdout}\n${r.stderr}`);
  t.match(r.stdout, /==> 1\. requirements: Node\.js v\d+/);
  t.match(r.stdout, /==> 2\. install: make install/);
  t.match(r.stdout, new RegExp(`installed: ${usr}/sbin/wazuh-nats-tap`));
  t.match(r.stdout, /==> 4\. start: skipped \(TAP_SYSTEMD=no\)/);

  // What make install put under the prefix, and nothing of it is a link into this checkout.
  const bin = join(usr, 'sbin/wazuh-nats-tap');
  const lib = join(usr, 'lib/wazuh-nats-tap');
  t.equal(readlinkSync(bin), join(lib, 'bin/wazuh-nats-tap.js'));
  t.notOk(lstatSync(join(lib, 'node_modules')).isSymbolicLink(), 'runtime packages copied, not linked');
  t.ok(statSync(join(lib, 'node_modules/koffi')).isDirectory());

  // The configuration: a file of its own beside ossec.conf, which stays as Wazuh had it.
  const conf = join(home, 'etc/nats-tap.conf');
  t.equal(readFileSync(join(home, 'etc/ossec.conf'), 'utf8'), wazuhConf, 'Wazuh\'s ossec.conf is untouched');
  t.equal(statSync(conf).mode & 0o777, 0o600);
  const confText = readFileSync(conf, 'utf8');
  t.match(confText, /<enabled>yes<\/enabled>/);
  t.match(confText, `<server_url>${nats.url}</server_url>`);
  t.match(confText, '<cluster><node_name>vagrant-sim</node_name></cluster>', 'the manager\'s node name');
  t.match(r.stdout, new RegExp(`server_url\\s+${nats.url.replace(/\./g, '\\.')}`), 'config check printed the effective configuration');

  // The unit and the drop-in `systemctl edit` would write: ExecStart as the guide gives it.
  const unit = readFileSync(join(unitdir, 'wazuh-nats-tap.service'), 'utf8');
  const dropin = readFileSync(join(unitdir, 'wazuh-nats-tap.service.d/override.conf'), 'utf8');
  t.match(dropin, /^\[Service\]\nExecStart=\nExecStart=/, 'the drop-in resets ExecStart before setting it');
  // systemd's own checker, offline: the unit with its drop-in (a second ExecStart without the
  // resetting `ExecStart=` would be refused here), the executable it names, every setting.
  const verify = await sh('systemd-analyze', ['verify', '--man=no', join(unitdir, 'wazuh-nats-tap.service')]);
  t.same([verify.code, verify.stderr], [0, ''], 'systemd-analyze verify: the unit and its drop-in');
  // systemd refuses to start a unit whose ReadWritePaths names a missing path, unless it is
  // marked optional with '-': a 4.x host has no /var/wazuh-manager, a 5.x host no /var/ossec.
  const rw = (/^ReadWritePaths=(.*)$/m.exec(unit)?.[1] ?? '').split(/\s+/);
  t.same(rw.filter((p) => p.includes('/var/')), ['-/var/ossec/var', '-/var/wazuh-manager/var'], 'both homes optional in ReadWritePaths');
  const argv = effectiveExecStart(unit, [dropin]);
  t.same(argv, [bin, 'run', '--home', home, '--config', conf, '--control-socket', sock]);
  const guide = readFileSync(join(ROOT, 'docs/integration.md'), 'utf8');
  const guideLines = guide.split('\n').filter((l) => l.startsWith('ExecStart=/'));
  t.same(guideLines, ['ExecStart=/usr/sbin/wazuh-nats-tap run --home /var/ossec --config /var/ossec/etc/nats-tap.conf'],
    'the guide gives one ExecStart');
  t.equal(`ExecStart=${argv.slice(0, 6).join(' ')}`, guideLines[0].replace('/usr/sbin/', `${usr}/sbin/`).replaceAll('/var/ossec', home),
    'the script\'s ExecStart is the guide\'s, with this machine\'s paths');

  // Start it as systemd would: the ExecStart command line and the unit's environment, nothing else.
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const got: Received[] = [];
  const sub = nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => { got.push({ subject: m.subject, body: contractJson(t, m) }); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  // The environment systemd gives the service: the unit's and its drop-in's `Environment=` lines, over PATH.
  // (And the test run's stand-in for the unit's StateDirectory, agent/spool-note.ts: not the machine's /var/lib.)
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', ...unitEnvironment(unit, dropin),
    ...(process.env.WAZUH_NATS_TAP_STATE_DIR && { WAZUH_NATS_TAP_STATE_DIR: process.env.WAZUH_NATS_TAP_STATE_DIR }),
  };
  t.equal(env.NODE_OPTIONS, '--max-semi-space-size=4', 'the unit sizes V8\'s young generation (node reads it before the tap runs)');
  t.equal(env.MALLOC_ARENA_MAX, '2', 'and glibc\'s malloc arenas (read when the process starts)');
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });

  const life = () => got.filter((m) => m.subject === 'wazuh.tap.vagrant-sim.events').map((m) => m.body.action);
  await waitFor(() => life().includes('attached') || proc.exitCode !== null, 30_000, 'the installed tap to publish attached')
    .catch((e) => { t.comment(out); throw e; });
  t.same(life(), ['started', 'attached'], 'the installed tap started and attached (wazuh.tap.<node>.events)');

  await sim.startup(A);
  await sim.keepalive(A);
  const status = () => got.filter((m) => m.subject === 'wazuh.agent.917.status');
  await waitFor(() => status().length >= 2, 10_000, 'two status events of agent 917').catch((e) => { t.comment(out); throw e; });
  t.match(status().map((m) => m.body), [
    { event_type: 'status_change', agent_name: 'agent01', previous_status: 'never_connected', current_status: 'pending', reason: 'agent_startup', manager_node: 'vagrant-sim' },
    { event_type: 'status_change', agent_name: 'agent01', previous_status: 'pending', current_status: 'active', reason: 'keepalive', ip_address: A.ip },
  ], 'a simulated agent\'s startup and keepalive, through the installed BPF object and shim');

  const st = await sh(bin, ['status', '--control-socket', sock], { env: { PATH: process.env.PATH } });
  t.equal(st.code, 0, 'wazuh-nats-tap status (the guide\'s step 5)');
  t.match(st.stdout, /^state\s+attached \(sendto\)/m);
  t.match(st.stdout, /^nats\s+connected/m);
  t.match(st.stdout, /^targets\s+.*wazuh-remoted \d+/m);

  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const exit = await exited;
  clearTimeout(timer);
  t.same(exit, { code: 0, signal: null }, 'SIGTERM (systemctl stop): exit 0');
  await nc.flush();
  // A concurrent run's simulated daemons are targets of this tap too: under their load the kernel
  // may drop records, which the tap reports (records_lost) between attached and stopped.
  const actions = life();
  t.same([actions.slice(0, 2), actions.at(-1)], [['started', 'attached'], 'stopped'], `lifecycle: ${actions.join(', ')}`);
  t.same(actions.slice(2, -1).filter((a) => a !== 'records_lost'), [], 'nothing else in between');
});
