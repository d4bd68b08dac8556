// A path below a container's root is looked up as the container looks it up (util/in-view.ts). The kernel,
// walking /proc/<pid>/root/…, resolves the container's absolute links and `..` against the *tap's* root:
// a container's `/var/ossec -> /data/ossec` (a volume) led the tap to the host's /data/ossec, and a link
// its root user made to a host path led it there. A real process with a root of its own (chroot(2)),
// real links; every check here sees the host's file with a plain stat and the container's with the module.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, constants as fc, closeSync, fstatSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openInView, readdirInView, rootViewOf, statInView, viewProblem, withPathInView } from '../controller/src/util/in-view.js';
import { lstatOrNull, readRegularFileSync } from '../controller/src/util/read-file.js';
import { openChecked } from '../controller/src/util/checked-open.js';
import { loadConfig } from '../controller/src/config/ossec-conf.js';
import { ROOT, runTap } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

function scratch(t: Tap.Test, tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `wnt-view-${tag}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A process chroot'ed in `root`: its /proc/<pid>/root, as the host reaches a container's. */
async function rootedIn(t: Tap.Test, root: string): Promise<string> {
  const exe = join(ROOT, 'build/test/chroot-pause');
  mkdirSync(join(ROOT, 'build/test'), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', exe, join(ROOT, 'test/helpers/chroot-pause.c')]);
  const p = spawn(exe, [root], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { p.kill('SIGKILL'); });
  let out = '';
  p.stdout.on('data', (d: Buffer) => { out += d; });
  await waitFor(() => out.includes('ready'), 5000, 'the chroot\'ed process');
  return `/proc/${p.pid}/root`;
}

/**
 * A container root whose manager lives in /srv/<unique>/ossec, reached as /var/ossec by an absolute link
 * (a volume's layout), and a host directory of the same absolute path holding another "home": what the
 * kernel's walk found before.
 */
async function layout(t: Tap.Test) {
  const host = scratch(t, 'host'); // stands for the host's tree at that absolute path
  const root = scratch(t, 'root');
  const inner = host; // the same absolute path, inside the container's root
  mkdirSync(join(root, inner, 'ossec/queue/db'), { recursive: true });
  mkdirSync(join(root, inner, 'ossec/bin'), { recursive: true });
  writeFileSync(join(root, inner, 'ossec/bin/wazuh-db'), 'container\n');
  mkdirSync(join(host, 'ossec/queue/db'), { recursive: true });
  mkdirSync(join(host, 'ossec/bin'), { recursive: true });
  writeFileSync(join(host, 'ossec/bin/wazuh-db'), 'host\n');
  writeFileSync(join(host, 'secret'), 'host only\n');
  mkdirSync(join(root, 'var'));
  symlinkSync(join(inner, 'ossec'), join(root, 'var/ossec')); // absolute: the container's /srv/…/ossec
  symlinkSync(host, join(root, 'var/to-host')); // absolute, to a path only the host has a file under
  symlinkSync(`../../../../../../../..${host}`, join(root, 'var/up')); // `..` past the container's root
  const view = await rootedIn(t, root);
  return { host, root, inner, view };
}

const ino = (p: string) => statSync(p, { bigint: true }).ino;

t.test('a container\'s absolute link is resolved in its root, not on the host', async (t) => {
  const { host, root, inner, view } = await layout(t);
  const path = `${view}/var/ossec/queue/db`;
  t.equal(ino(path), ino(join(host, 'ossec/queue/db')), 'the kernel\'s own walk: the host\'s directory (what the tap followed before)');
  t.equal(statInView(path, { bigint: true }).ino, ino(join(root, inner, 'ossec/queue/db')), 'in view: the container\'s');
  t.same(readdirInView(`${view}/var/ossec/bin`), ['wazuh-db']);
  const fd = openInView(`${view}/var/ossec/bin/wazuh-db`, fc.O_RDONLY);
  try {
    t.equal(fstatSync(fd, { bigint: true }).ino, ino(join(root, inner, 'ossec/bin/wazuh-db')), 'the container\'s file opened');
  } finally {
    closeSync(fd);
  }
  t.equal(readRegularFileSync(`${view}/var/ossec/bin/wazuh-db`).toString(), 'container\n', 'read-file: the container\'s');
  t.equal(lstatOrNull(`${view}/var/ossec/bin/wazuh-db`)?.ino, Number(ino(join(root, inner, 'ossec/bin/wazuh-db'))));
  const r = openChecked(`${view}/var/ossec/bin/wazuh-db`, fc.O_RDONLY, () => null);
  t.ok('fd' in r && Number(ino(join(root, inner, 'ossec/bin/wazuh-db'))) === (r as { st: { ino: number } }).st.ino, 'checked-open: the container\'s');
  if ('fd' in r) closeSync(r.fd);
});

t.test('the container\'s ossec.conf is read for the node name through its own links (the host has no file at that path)', async (t) => {
  const { root, inner, view } = await layout(t);
  mkdirSync(join(root, inner, 'ossec/etc'));
  writeFileSync(join(root, inner, 'ossec/etc/ossec.conf'), '<ossec_config><cluster><node_name>container-node</node_name></cluster></ossec_config>\n');
  const hostConf = join(scratch(t, 'conf'), 'nats-tap.conf');
  writeFileSync(hostConf, '<ossec_config><nats><enabled>yes</enabled></nats></ossec_config>\n', { mode: 0o640 });
  const c = loadConfig({ home: `${view}/var/ossec`, file: hostConf });
  t.equal(c.managerNode, 'container-node', 'the node name of the container\'s manager, not the host name');
});

t.test('links to the host\'s paths, and `..` past the root, stay in the container', async (t) => {
  const { view } = await layout(t);
  t.equal(String(statSync(`${view}/var/to-host/secret`).size), '10', 'the kernel\'s walk reaches the host\'s file');
  t.throws(() => statInView(`${view}/var/to-host/secret`), { code: 'ENOENT' }, 'in view: nothing there in the container');
  t.equal(String(statSync(`${view}/var/up/secret`).size), '10', 'the kernel\'s walk: `..` leaves the container\'s root');
  t.throws(() => statInView(`${view}/var/up/secret`), { code: 'ENOENT' }, 'in view: `..` stops at its root');
  t.equal(lstatOrNull(`${view}/var/to-host/secret`), null);
  t.throws(() => readRegularFileSync(`${view}/var/to-host/secret`), { code: 'ENOENT' });
  t.throws(() => openInView(`${view}/var/ossec`, fc.O_RDONLY | fc.O_NOFOLLOW | fc.O_DIRECTORY), { code: /ELOOP|ENOTDIR/ }, 'O_NOFOLLOW: the link itself refused');
  t.ok(statInView(`${view}/var/ossec`, { follow: false }).isSymbolicLink(), 'follow: false: the link itself');
});

t.test('a host link into the container\'s root: the rest still resolved in it', async (t) => {
  const { root, inner, view } = await layout(t);
  const hostSide = scratch(t, 'hostlink');
  symlinkSync(`${view}/var`, join(hostSide, 'mgr')); // an administrator's link to the container's /var
  const v = rootViewOf(join(hostSide, 'mgr/ossec/queue'));
  t.same(v, { root: view, rest: 'var/ossec/queue' });
  t.equal(statInView(join(hostSide, 'mgr/ossec/queue/db'), { bigint: true }).ino, ino(join(root, inner, 'ossec/queue/db')));
});

t.test('a path that is not there yet and is then made a host link into the container\'s root: followed into it at once', async (t) => {
  // "No container on the way" was kept 30 s for a path that was not there: the tap then took the kernel's
  // walk through the new link — the host's directories at the container's absolute links (helper-69).
  const { root, inner, view } = await layout(t);
  const hostSide = scratch(t, 'later');
  const later = join(hostSide, 'mgr');
  t.throws(() => statInView(join(later, 'ossec/queue/db')), { code: 'ENOENT' }, 'not there yet');
  symlinkSync(`${view}/var`, later);
  t.equal(statInView(join(later, 'ossec/queue/db'), { bigint: true }).ino, ino(join(root, inner, 'ossec/queue/db')), 'the container\'s, at the next look');
});

t.test('a link whose last name leads into a container\'s root is the link where the last name is not followed (O_NOFOLLOW, lstat)', async (t) => {
  // The Wazuh user may write logs/alerts: `alerts.json -> /proc/<pid>/root/<a root-only file>` was opened
  // as that file (the walk by hand followed the last name too, then openat2's O_NOFOLLOW saw none), and a
  // one-line JSON in it published as an alert (helper-70). O_NOFOLLOW refused the link before.
  const { root, inner, view } = await layout(t);
  writeFileSync(join(root, inner, 'ossec/secret.json'), '{"password":"root only"}\n', { mode: 0o600 });
  const logs = scratch(t, 'logs');
  const planted = join(logs, 'alerts.json');
  symlinkSync(`${view}/var/ossec/secret.json`, planted);
  const r = openChecked(planted, fc.O_RDONLY, () => null);
  t.ok('refused' in r && r.refused === 'a symbolic link', `openChecked refuses the link (${JSON.stringify('refused' in r ? r.refused : 'opened')})`);
  if ('fd' in r) closeSync(r.fd);
  t.throws(() => openInView(planted, fc.O_RDONLY | fc.O_NOFOLLOW), { code: 'ELOOP' });
  t.ok(lstatOrNull(planted)?.isSymbolicLink(), 'lstat: the link itself');
  t.ok(statInView(planted, { follow: false }).isSymbolicLink());
  t.equal(statInView(planted, { bigint: true }).ino, ino(join(root, inner, 'ossec/secret.json')), 'followed when asked: the container\'s file');
  // Below the container's root, the last name not followed either: its own link seen as a link.
  t.ok(statInView(`${view}/var/ossec`, { follow: false }).isSymbolicLink());
  // A path that ends in a directory (`x/`, `x/.`, `x/..`) follows its last link whatever the flags, in the
  // container's root: not the link, and not the host's directory at its target (helper-71).
  symlinkSync(`${view}/var`, join(logs, 'v'));
  for (const p of [join(logs, 'v/to-host') + '/.', join(logs, 'v/to-host') + '/', join(logs, 'v/to-host/ossec') + '/..']) {
    t.equal(statInView(p, { follow: false, bigint: true }).ino, ino(join(root, inner)), `${p.slice(logs.length)}: the container's directory`);
  }
  // O_CREAT|O_EXCL never follows a last link, even a dangling one (the kernel: EEXIST).
  symlinkSync(`${view}/var/ossec/made-by-the-tap`, join(logs, 'dangling'));
  t.throws(() => openInView(join(logs, 'dangling'), fc.O_WRONLY | fc.O_CREAT | fc.O_EXCL), { code: 'EEXIST' });
  t.throws(() => statSync(join(root, inner, 'ossec/made-by-the-tap')), { code: 'ENOENT' }, 'nothing made in the container');
});

t.test('a socket below the container\'s root: connected through the descriptor', async (t) => {
  const { root, inner, view } = await layout(t);
  const sockPath = join(root, inner, 'ossec/queue/db/wdb');
  const server = net.createServer((c) => c.end('from the container\n')).listen(sockPath);
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => server.close());
  const got = await new Promise<string>((resolve, reject) => {
    const c = withPathInView(`${view}/var/ossec/queue/db/wdb`, (p) => net.createConnection({ path: p }));
    let s = '';
    c.on('data', (d) => { s += d; });
    c.on('end', () => resolve(s));
    c.on('error', reject);
  });
  t.equal(got, 'from the container\n');
  t.throws(() => withPathInView(`${view}/var/to-host/secret`, () => 0), { code: 'ENOENT' }, 'the host\'s file at the link\'s target: not there in the container');
});

t.test('what is not below another process\'s root is the kernel\'s to resolve, as before', async (t) => {
  const d = scratch(t, 'plain');
  mkdirSync(join(d, 'real'));
  symlinkSync(join(d, 'real'), join(d, 'link'));
  t.equal(rootViewOf(join(d, 'link')), null);
  t.equal(statInView(join(d, 'link'), { bigint: true }).ino, ino(join(d, 'real')));
  t.same(readdirInView(d).sort(), readdirSync(d).sort());
  t.equal(rootViewOf('/proc/self/fd/0'), null, 'the tap\'s own descriptors');
  t.equal(rootViewOf(`/proc/self/fd/0/${'x'}`), null, 'one name in a directory it holds');
  t.equal(rootViewOf(`/proc/${process.pid}/root/etc`), null, 'the tap\'s own root');
  t.equal(viewProblem(d), null);
});

t.test('a home through another entry than the root, or one that cannot be told, is a problem said at start', async (t) => {
  const { view } = await layout(t);
  const pid = view.split('/')[2];
  t.equal(viewProblem(`${view}/var/ossec`), null, 'through the root: followed');
  t.match(viewProblem(`/proc/${pid}/cwd/var/ossec`), /another process's entry in \/proc than its root/);
  t.throws(() => statInView(`/proc/${pid}/cwd/var/ossec`), { code: 'EXDEV' }, 'never looked up on the host\'s terms');
  for (const cmd of [['capture', '--count', '1'], ['config', 'check']]) {
    const r = await runTap([...cmd, '--home', `/proc/${pid}/cwd/var/ossec`]);
    t.equal(r.code, 2, `${cmd[0]} with such a home: exit 2`);
    t.match(r.stderr, /cannot be followed: it goes through another process's entry in \/proc than its root/);
  }
});

t.test('a relative link with `..` while renames happen elsewhere: every look succeeds (the kernel\'s EAGAIN is tried again)', async (t) => {
  // openat2 RESOLVE_IN_ROOT refuses a walk through `..` with EAGAIN when any rename or mount happened
  // meanwhile on the machine (it cannot vouch the walk stayed inside the root). ~1 % of looks failed under
  // a rename loop: each taken for a missing directory (a resync, a skipped rotated alerts file).
  const root = scratch(t, 'dotdot');
  mkdirSync(join(root, 'srv/ossec/queue/db'), { recursive: true });
  mkdirSync(join(root, 'var'));
  symlinkSync('../srv/ossec', join(root, 'var/ossec'));
  const view = await rootedIn(t, root);
  const busy = scratch(t, 'renames');
  writeFileSync(join(busy, 'a'), '');
  const renamer = spawn(process.execPath, ['-e', `const fs = require('fs'); const d = ${JSON.stringify(busy)};
    for (;;) { fs.renameSync(d + '/a', d + '/b'); fs.renameSync(d + '/b', d + '/a'); }`], { stdio: 'ignore' });
  t.teardown(() => { renamer.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 300));
  const failed: Record<string, number> = {};
  const N = 20_000;
  for (let i = 0; i < N; i++) {
    try {
      statInView(`${view}/var/ossec/queue/db`);
    } catch (e) {
      const code = String((e as NodeJS.ErrnoException).code);
      failed[code] = (failed[code] ?? 0) + 1;
    }
  }
  t.same(failed, {}, `${N} looks under a rename loop: none failed`);
});
