// make install / make uninstall into a DESTDIR: what is installed runs on its own.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';

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
});
