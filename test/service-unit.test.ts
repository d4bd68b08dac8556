// packaging/wazuh-nats-tap.service: what the unit sets, why, and that systemd's own checker
// accepts it. (This machine runs no systemd: test/install.test.ts and test/vagrant.test.ts check
// the unit as installed; what the tap does under it is approximated below where it can be.)
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, ROOT } from './helpers/tap-process.js';

const run = promisify(execFile);
const UNIT = readFileSync(join(ROOT, 'packaging/wazuh-nats-tap.service'), 'utf8');

/** The values of a setting in the unit's [Service] section, in order. */
function setting(name: string): string[] {
  return [...UNIT.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]);
}

t.test('systemd-analyze verify accepts the unit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-unit-'));
  symlinkSync(BIN, join(dir, 'wazuh-nats-tap'));
  const unit = join(dir, 'wazuh-nats-tap.service');
  writeFileSync(unit, UNIT.replaceAll('@BINDIR@', dir).replaceAll('@DOCDIR@', join(ROOT, 'docs')));
  const r = await run('systemd-analyze', ['verify', '--man=no', unit]).catch((e) => e as { code: number; stderr: string });
  t.same([(r as { code?: number }).code ?? 0, r.stderr], [0, '']);
});

t.test('LimitMEMLOCK=infinity: the perf buffer is locked memory, past systemd\'s 8 MiB from ~16 CPUs on', async (t) => {
  // Without it the unit's tap exits 3 ("cannot create the perf buffer: Operation not permitted") on
  // a large host: a service has no CAP_IPC_LOCK (test/kernel-readiness.test.ts shows the refusal).
  t.same(setting('LimitMEMLOCK'), ['infinity']);
  t.notMatch(setting('CapabilityBoundingSet').join(' '), /CAP_IPC_LOCK/, 'the limit, not a capability that lifts every limit');
});

t.test('Restart=on-failure, except the exits that no restart mends: 2 (configuration, usage) and 3 (privileges, kernel)', async (t) => {
  const { EXIT } = await import('../controller/src/cli.js');
  const { ConfigError, KernelSupportError } = await import('../controller/src/errors.js');
  t.same(setting('Restart'), ['on-failure']);
  t.same(setting('RestartPreventExitStatus'), [`${EXIT.usage} ${EXIT.kernel}`], 'exit 2 and 3 are not restarted');
  t.equal(new ConfigError('x').exitCode, EXIT.usage, 'a configuration error (and another tap holding the lock) exits 2');
  t.equal(new KernelSupportError('x').exitCode, EXIT.kernel, 'missing privileges or kernel support exit 3');
  t.notMatch(setting('RestartPreventExitStatus').join(' '), new RegExp(`\\b${EXIT.runtime}\\b`), 'a runtime failure (exit 1) is restarted');
});
