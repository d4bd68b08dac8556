// The instance lock (agent/instance-lock.ts) is the flock; the pid in its file only names the
// holder. On a full disk, where the first start has no file to rewrite, the pid cannot be written:
// the lock is taken all the same (it stopped the tap: exit 1, ENOSPC, restarted by systemd for
// ever), and a second instance is refused without a name rather than with a wrong one.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlreadyRunning, InstanceLock } from '../controller/src/agent/instance-lock.js';
import { fillDisk, mountTmpfs } from './helpers/tmpfs.js';

t.test('a lock taken on a full disk: held, unnamed; a second instance refused', async (t) => {
  const mnt = mountTmpfs(t, '256k');
  const dir = join(mnt, 'spool');
  mkdirSync(dir, { mode: 0o700 });
  const free = fillDisk(mnt);
  const lock = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.teardown(() => lock.release());
  t.doesNotThrow(() => lock.acquire(), 'taken: no room for the pid is no reason to stop');
  t.ok(lock.held());
  t.equal(statSync(join(dir, 'lock')).size, 0, 'the file left empty');
  const second = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.throws(() => second.acquire(), new AlreadyRunning(`another wazuh-nats-tap already runs on the spool ${dir} (lock ${join(dir, 'lock')})`),
    'refused, naming no pid');
  lock.release();
  free();
  const third = new InstanceLock(join(dir, 'lock'), `the spool ${dir}`);
  t.teardown(() => third.release());
  third.acquire();
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), `${process.pid}\n`, 'with room, the pid names the holder');
});

t.test('a part of a pid (no newline: a write cut short) names no one', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-lock-')), 'lock');
  const holder = new InstanceLock(path, 'the spool x');
  t.teardown(() => holder.release());
  holder.acquire();
  writeFileSync(path, '12'); // what a short write of "12345\n" leaves
  t.throws(() => new InstanceLock(path, 'the spool x').acquire(), { message: /^another wazuh-nats-tap already runs on the spool x/ });
  writeFileSync(path, '12345\n');
  t.throws(() => new InstanceLock(path, 'the spool x').acquire(), { message: /^another wazuh-nats-tap \(pid 12345\) already runs/ });
});
