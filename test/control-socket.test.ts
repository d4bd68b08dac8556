// The control socket: root is served, anyone else is refused by peer
// credentials (not only the file mode), bad requests never harm the agent, and
// clients are capped.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ControlServer, MAX_CONTROL_CONNECTIONS } from '../controller/src/control/server.js';
import { KernelSupportError } from '../controller/src/errors.js';
import { sendControl } from '../controller/src/control/client.js';
import { openToOthers, unprivilegedEnv } from './helpers/unprivileged.js';
import { BIN, ROOT, runTap } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const log = pino({ level: 'silent' });

async function raw(path: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = '';
    s.on('data', (d) => { out += d; });
    s.once('error', reject);
    s.once('close', () => resolve(out));
    s.once('connect', () => s.write(bytes));
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

t.test('serves root, refuses others by their credentials, survives bad requests', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  let attached = false;
  const server = new ControlServer({
    path, log,
    handlers: {
      status: () => ({ attached }),
      attach: () => { attached = true; return { attached }; },
      detach: () => { attached = false; return { attached }; },
    },
  });
  await server.listen();
  t.teardown(() => server.close());
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket file is 0600');

  t.same(await sendControl(path, 'status'), { ok: true, attached: false });
  t.same(await sendControl(path, 'attach'), { ok: true, attached: true });
  t.same(await sendControl(path, 'status'), { ok: true, attached: true });
  t.same(await sendControl(path, 'detach'), { ok: true, attached: false });

  t.match(JSON.parse(await raw(path, 'not json\n')), { ok: false, error: /one JSON object per line/ });
  t.match(JSON.parse(await raw(path, '{"cmd":"rm -rf /"}\n')), { ok: false, error: /unknown command/ });
  t.match(JSON.parse(await raw(path, '[1,2]\n')), { ok: false, error: /\{"cmd"/ });
  t.match(JSON.parse(await raw(path, 'x'.repeat(100_000))), { ok: false, error: /larger than 4096/ });
  t.same(await sendControl(path, 'status'), { ok: true, attached: false }, 'still serving after all that');

  // Open the file mode to everyone: the peer-credential check alone must refuse a non-root user.
  // (The test runner injects its hooks from this checkout into every node child: uid 65534 must read them.)
  openToOthers(ROOT);
  chmodSync(dir, 0o755);
  chmodSync(path, 0o666);
  const script = `const s=require('net').connect(${JSON.stringify(path)});let o='';s.on('data',d=>o+=d);` +
    `s.on('connect',()=>s.write('{"cmd":"detach"}\\n'));s.on('close',()=>process.stdout.write(o));`;
  // Asynchronously: the server answering it runs in this process.
  const { stdout: out } = await promisify(execFile)('setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { timeout: 10_000, env: unprivilegedEnv(), cwd: '/' });
  t.match(JSON.parse(out), { ok: false, error: /root only/, code: 'EPERM' }, 'uid 65534 refused, with a code the CLI maps to exit 3');
  await sendControl(path, 'attach');
  t.same(await sendControl(path, 'status'), { ok: true, attached: true }, 'the refused detach did nothing');
});

t.test('the client says clearly when no agent runs', async (t) => {
  await t.rejects(sendControl('/nonexistent/tap.sock', 'status'), /agent is not running/);
});

t.test(`at most ${MAX_CONTROL_CONNECTIONS} clients at once: idle ones past that are closed at once, said once; served again after`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const lines: string[] = [];
  const server = new ControlServer({
    path, log: pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } }),
    handlers: { status: () => ({ attached: true }), attach: () => ({}), detach: () => ({}) },
  });
  await server.listen();
  t.teardown(() => server.close());
  const idle: Socket[] = [];
  t.teardown(() => { for (const s of idle) s.destroy(); });
  let closedByServer = 0;
  await Promise.all(Array.from({ length: 40 }, () => new Promise<void>((resolve) => {
    const s = connect(path);
    idle.push(s);
    s.once('connect', () => resolve());
    s.once('error', () => resolve());
    s.once('close', () => { closedByServer++; });
    setTimeout(resolve, 2000).unref();
  })));
  await waitFor(() => closedByServer >= 40 - MAX_CONTROL_CONNECTIONS, 3000, 'the clients past the cap closed');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(closedByServer, 40 - MAX_CONTROL_CONNECTIONS, `${MAX_CONTROL_CONNECTIONS} idle clients kept (until their timeout), the rest closed`);
  t.equal(lines.filter((l) => /connections refused/.test(l)).length, 1, 'said once');
  for (const s of idle) s.destroy();
  await waitFor(() => server.connections === 0, 3000, 'the idle clients gone');
  t.same(await sendControl(path, 'status'), { ok: true, attached: true }, 'served again');
});

t.test('the socket file removed is made again; another file put at its path is left alone, and kept at close', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const lines: string[] = [];
  const said = pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l).msg); } });
  const server = new ControlServer({ path, log: said, handlers: { status: () => ({ n: 1 }), attach: () => ({}), detach: () => ({}) } });
  await server.listen();
  t.teardown(() => server.close());
  t.equal(await server.ensure(), 'ours', 'untouched: nothing to do');

  unlinkSync(path); // a tmp cleaner, an administrator's rm
  await t.rejects(sendControl(path, 'status'), 'unreachable while it is gone');
  t.equal(await server.ensure(), 'remade');
  t.equal(statSync(path).mode & 0o777, 0o600, 'made again with mode 0600');
  t.same(await sendControl(path, 'status'), { ok: true, n: 1 }, 'served again');
  t.ok(lines.includes('control socket: it was removed: made again'), 'said');

  unlinkSync(path);
  writeFileSync(path, 'not the agent\'s'); // something else took the path
  t.equal(await server.ensure(), 'other');
  t.equal(await server.ensure(), 'other');
  t.equal(lines.filter((l) => /holds another file/.test(l)).length, 1, 'said once');
  t.equal(readFileSync(path, 'utf8'), 'not the agent\'s', 'left alone');
  await server.close();
  t.equal(readFileSync(path, 'utf8'), 'not the agent\'s', 'and not removed at close');
  t.equal(await server.ensure(), 'unknown', 'closed: nothing made any more');
});

t.test('a socket another agent still serves is not taken; a stale one (its agent gone) is', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const handlers = (n: number) => ({ status: () => ({ n }), attach: () => ({}), detach: () => ({}) });
  const first = new ControlServer({ path, log, handlers: handlers(1) });
  await first.listen();
  const second = new ControlServer({ path, log, handlers: handlers(2) });
  await t.rejects(second.listen(), /served by another process/);
  t.same(await sendControl(path, 'status'), { ok: true, n: 1 }, 'the first agent still reachable');
  // The first agent killed: its socket file stays, nobody answers on it.
  await new Promise((r) => setTimeout(r, 10));
  const stale = `${path}.stale`;
  linkSync(path, stale); // keep the file libuv removes at close, as a SIGKILL leaves it
  await first.close();
  renameSync(stale, path);
  t.ok(existsSync(path), 'a stale socket file at the path');
  const third = new ControlServer({ path, log, handlers: handlers(3) });
  await third.listen();
  t.teardown(() => third.close());
  t.same(await sendControl(path, 'status'), { ok: true, n: 3 }, 'replaced');
});

/** The CLI run as uid 65534 (asynchronously: the server answering it runs in this process). */
async function cliAsNobody(args: string[]): Promise<{ code: number; stderr: string }> {
  openToOthers(ROOT);
  try {
    await promisify(execFile)('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, ...args],
      { timeout: 20_000, env: unprivilegedEnv(), cwd: '/' });
    return { code: 0, stderr: '' };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stderr: err.stderr ?? '' };
  }
}

t.test('status, attach and detach by a user who is not root exit 3 (missing privileges), not 1; the refusals are said once a minute', async (t) => {
  // SPEC §7: 3 is missing privileges. With 1 for every cause, a script could not tell "not root" from "the tap is down".
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'tap.sock');
  const lines: string[] = [];
  const server = new ControlServer({
    path, log: pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l).msg); } }),
    handlers: { status: () => ({ attached: true }), attach: () => ({}), detach: () => ({}) },
  });
  await server.listen();
  t.teardown(() => server.close());
  // The socket's own mode (0600) stops the connect: EACCES.
  const denied = await cliAsNobody(['status', '--control-socket', path]);
  t.equal(denied.code, 3, `EACCES on connect: exit 3 (${denied.stderr.trim()})`);
  t.match(denied.stderr, /permission denied on .*tap\.sock: run as root/);
  // The mode opened by hand: the peer's credentials refuse it, and the reply's code says why.
  chmodSync(path, 0o666);
  for (const cmd of ['status', 'attach', 'detach']) {
    const r = await cliAsNobody([cmd, '--control-socket', path]);
    t.equal(r.code, 3, `${cmd} refused by the agent: exit 3`);
    t.match(r.stderr, new RegExp(`wazuh-nats-tap ${cmd}: permission denied: the control socket serves root only`));
  }
  t.equal(lines.filter((l) => l === 'control socket: refused a client that is not root').length, 1,
    'three refusals, said once (a local user could otherwise fill the log when the mode lets them connect)');
});

t.test('attach refused by the kernel (missing kernel support) exits 3, as at run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const server = new ControlServer({
    path, log,
    handlers: {
      status: () => ({ attached: false }), detach: () => ({ attached: false }),
      attach: () => { throw new KernelSupportError('tracefs is not mounted at /sys/kernel/tracing and cannot be mounted'); },
    },
  });
  await server.listen();
  t.teardown(() => server.close());
  t.match(await sendControl(path, 'attach'), { ok: false, error: /tracefs/, code: 'KERNEL_SUPPORT' });
  const r = await runTap(['attach', '--control-socket', path]);
  t.equal(r.code, 3, 'exit 3');
  t.match(r.stderr, /wazuh-nats-tap attach: tracefs is not mounted/);
  const other = new ControlServer({
    path: join(dir, 'other.sock'), log,
    handlers: { status: () => ({}), detach: () => ({}), attach: () => { throw new Error('something else'); } },
  });
  await other.listen();
  t.teardown(() => other.close());
  t.equal((await runTap(['attach', '--control-socket', join(dir, 'other.sock')])).code, 1, 'any other failure: exit 1');
});

t.test('a client that sends a byte now and then is closed at the connection\'s deadline, not kept for hours', async (t) => {
  // The idle time-out (10 s) alone let a client sending a byte every 9 s hold a slot for ~10 h (4,096 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const server = new ControlServer({ path, log, deadlineMs: 1000, handlers: { status: () => ({ n: 1 }), attach: () => ({}), detach: () => ({}) } });
  await server.listen();
  t.teardown(() => server.close());
  const s = connect(path);
  t.teardown(() => s.destroy());
  s.on('error', () => {});
  let closed = false;
  s.once('close', () => { closed = true; });
  const drip = setInterval(() => { if (!s.destroyed) s.write(' '); }, 200);
  t.teardown(() => clearInterval(drip));
  await waitFor(() => closed, 6000, 'the server to close the trickling client').catch(() => {});
  t.ok(closed, 'closed by the server while it still sent bytes');
  t.same(await sendControl(path, 'status'), { ok: true, n: 1 }, 'others served');
});

t.test('the socket removed while a client holds a connection is made again at once, and again after a file stood in its way', async (t) => {
  // The review's probe: ensure() waited for every connection of the old server to end before it
  // listened again, and a listen that failed then (a file at the path meanwhile) left it with no
  // server: every later call returned 'unknown' and the socket was never made again.
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const path = join(dir, 'tap.sock');
  const lines: string[] = [];
  const server = new ControlServer({
    path, log: pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l).msg); } }),
    handlers: { status: () => ({ n: 1 }), attach: () => ({}), detach: () => ({}) },
  });
  await server.listen();
  t.teardown(() => server.close());
  const held = connect(path); // a root client that stays connected (idle, within its time-out)
  held.on('error', () => {});
  await new Promise((r) => held.once('connect', r));
  unlinkSync(path);
  let result: string | null = null;
  const first = server.ensure().then((r) => { result = r; });
  await new Promise((r) => setTimeout(r, 300));
  t.equal(result, 'remade', 'made again while the connection is still held, not after it ends');
  let planted = false;
  if (!existsSync(path)) {
    writeFileSync(path, 'in the way'); // where the old code waited: a file put there meanwhile
    planted = true;
  }
  held.destroy();
  await first;
  if (planted) unlinkSync(path);
  for (let i = 0; i < 3 && !existsSync(path); i++) await server.ensure();
  t.same(await sendControl(path, 'status'), { ok: true, n: 1 }, 'reachable again');
  t.ok(lines.includes('control socket: it was removed: made again'));
});

t.test('a re-make that fails is tried again at the next look', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const sub = join(dir, 'run');
  mkdirSync(sub);
  const path = join(sub, 'tap.sock');
  const server = new ControlServer({ path, log, handlers: { status: () => ({ n: 2 }), attach: () => ({}), detach: () => ({}) } });
  await server.listen();
  t.teardown(() => server.close());
  rmSync(sub, { recursive: true }); // the socket and its directory gone: a listen there fails (ENOENT)
  t.equal(await server.ensure(), 'gone', 'cannot be made yet');
  t.equal(await server.ensure(), 'gone', 'still not');
  mkdirSync(sub);
  t.equal(await server.ensure(), 'remade', 'made again once it can be');
  t.same(await sendControl(path, 'status'), { ok: true, n: 2 });
});

t.test('a file, a directory or a symbolic link at the path is refused as a configuration error (exit 2), untouched', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-ctl-'));
  const live = join(dir, 'live.sock');
  const liveServer = new ControlServer({ path: live, log, handlers: { status: () => ({ live: true }), attach: () => ({}), detach: () => ({}) } });
  await liveServer.listen();
  t.teardown(() => liveServer.close());
  const cases: [string, (p: string) => void][] = [
    ['a file', (p) => writeFileSync(p, 'x')],
    ['a directory', (p) => mkdirSync(p)],
    ['a symbolic link to a file', (p) => symlinkSync('/etc/passwd', p)],
    ['a symbolic link to a live socket', (p) => symlinkSync(live, p)],
    ['a dangling symbolic link', (p) => symlinkSync(join(dir, 'nothing-here'), p)],
  ];
  for (const [what, make] of cases) {
    const path = join(dir, what.replace(/ /g, '-'));
    make(path);
    const before = lstatSync(path);
    const server = new ControlServer({ path, log, handlers: { status: () => ({}), attach: () => ({}), detach: () => ({}) } });
    const err = await server.listen().then(() => null, (e: Error & { exitCode?: number }) => e);
    t.match(err, { message: /exists and is not a socket/, exitCode: 2 }, `${what}: a configuration error`);
    const after = lstatSync(path);
    t.ok(before.ino === after.ino && before.mode === after.mode, `${what}: left as it was`);
    if (after.isSymbolicLink()) t.ok(readlinkSync(path).length > 0);
  }
  t.same(await sendControl(live, 'status'), { ok: true, live: true }, 'the live socket behind a link is still its agent\'s');
});
