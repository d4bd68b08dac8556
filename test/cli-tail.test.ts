// `wazuh-nats-tap tail`: what a person watches events with.
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { encrypt, encryptedHeaders, readKeyFile } from '../controller/src/publish/encryption.js';
import { onceAWindow } from '../controller/src/commands/tail.js';
import { startNats } from './helpers/nats-server.js';
import { BIN, WITHOUT_TEST_HOOKS } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const STATUS = {
  event_id: 'e1', event_type: 'status_change', agent_id: '001', agent_name: 'web01', previous_status: 'active',
  current_status: 'disconnected', status_code: 3, reason: 'agent_shutdown', ip_address: '10.0.0.1',
  timestamp: 1795800853, time: '2026-11-27T17:34:13.531Z', manager_node: 'n1', source: 'remoted', sync_status: 'synced',
};

function hdrs(h: Record<string, string>) {
  const out = headers();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

/** `tail ARGS` started, its output gathered, and ready once it said it subscribed. */
async function startTail(t: Tap.Test, args: string[]) {
  const p = spawn(process.execPath, [BIN, 'tail', ...args]);
  const io = { out: '', err: '' };
  p.stdout.on('data', (d) => { io.out += d; });
  p.stderr.on('data', (d) => { io.err += d; });
  const exit = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  t.teardown(() => p.kill('SIGKILL'));
  await waitFor(() => io.err.includes('Ctrl-C'), 10_000, 'tail to subscribe');
  return { p, io, exit };
}

for (const json of [false, true]) {
  t.test(`tail ${json ? '--json' : '(readable)'} prints what arrives and stops after --count`, async (t) => {
    const nats = await startNats();
    t.teardown(() => nats.stop());
    const { io, exit } = await startTail(t, ['wazuh.agent.>', '--nats-url', nats.url, '--count', '2', ...(json ? ['--json'] : [])]);
    const nc = await connect({ servers: nats.url });
    nc.publish('wazuh.tap.n1.events', JSON.stringify({ event_type: 'tap', action: 'started' })); // not subscribed
    nc.publish('wazuh.agent.001.status', JSON.stringify(STATUS));
    nc.publish('wazuh.agent.001.keepalive', JSON.stringify({ event_type: 'keepalive', agent_id: '001', agent_name: 'web01', status: 'active', version: 'Wazuh v4.7.5', ip_address: '10.0.0.1', time: STATUS.time }));
    await nc.drain();
    t.equal(await exit, 0);
    const lines = io.out.trim().split('\n');
    t.equal(lines.length, 2);
    if (json) {
      t.same(JSON.parse(lines[0]), { subject: 'wazuh.agent.001.status', ...STATUS });
      t.match(JSON.parse(lines[1]), { subject: 'wazuh.agent.001.keepalive', event_type: 'keepalive' });
    } else {
      t.equal(lines[0], '2026-11-27T17:34:13.531Z  wazuh.agent.001.status  agent 001 (web01) active -> disconnected  reason=agent_shutdown code=3 ip=10.0.0.1 via remoted');
      t.equal(lines[1], '2026-11-27T17:34:13.531Z  wazuh.agent.001.keepalive  agent 001 (web01) active Wazuh v4.7.5 ip=10.0.0.1');
    }
  });
}

t.test('tail: a second Ctrl-C while it drains is ignored: the drain ends it, exit 0 (not killed by the signal)', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  t.teardown(() => nats.proc.kill('SIGCONT'));
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS; // SIGINT's default action as a user's shell leaves it
  const p = spawn(cmd, [...pre, process.execPath, BIN, 'tail', 'wazuh.>', '--nats-url', nats.url]);
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => p.kill('SIGKILL'));
  await waitFor(() => err.includes('Ctrl-C'), 10_000, 'tail to subscribe');
  nats.proc.kill('SIGSTOP'); // a server gone silent: the drain waits for it (2 s at most), then the close
  const t0 = Date.now();
  p.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 200));
  p.kill('SIGINT');
  t.same(await exit, { code: 0, signal: null }, 'exit 0, by itself');
  t.ok(Date.now() - t0 < 6000, 'bounded all the same');
  nats.proc.kill('SIGCONT');
});

t.test('tail --config F --nats-url U: the file\'s prefix and key are kept, only its servers replaced (as run --nats-url); --nats-url alone reads none', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const dir = mkdtempSync(join(tmpdir(), 'wnt-tail-conf-'));
  mkdirSync(join(dir, 'etc'));
  const keyFile = join(dir, 'etc/enc.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const conf = join(dir, 'etc/nats-tap.conf');
  // Its own server is nobody (port 1): only --nats-url reaches the test's.
  writeFileSync(conf, `<ossec_config><nats><server_url>nats://127.0.0.1:1</server_url><subject_prefix>acme</subject_prefix>
    <encrypt_messages>yes</encrypt_messages><encryption_key>${keyFile}</encryption_key></nats></ossec_config>\n`, { mode: 0o640 });
  const key = readKeyFile(keyFile);
  for (const args of [['--config', conf], ['--home', dir]]) {
    const p = spawn(process.execPath, [BIN, 'tail', ...args, '--nats-url', nats.url, '--count', '1']);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const exit = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    t.teardown(() => p.kill('SIGKILL'));
    await waitFor(() => err.includes('Ctrl-C') || p.exitCode !== null, 10_000, 'tail to subscribe');
    t.match(err, `acme.> on 127.0.0.1:${nats.port}`, `${args[0]}: the file's prefix, the flag's server`);
    const nc = await connect({ servers: nats.url });
    nc.publish('acme.agent.001.status', encrypt(key, 'acme.agent.001.status', JSON.stringify(STATUS)), { headers: hdrs(encryptedHeaders(key, {})) });
    await nc.drain();
    await waitFor(() => p.exitCode !== null, 10_000, 'tail to end after --count 1');
    t.equal(await exit, 0);
    t.match(out, /^2026-11-27T17:34:13\.531Z {2}acme\.agent\.001\.status {2}agent 001 \(web01\) active -> disconnected/, `${args[0]}: decrypted with the file's key`);
  }
  // A bad --nats-url with the file: the same usage error as alone.
  const bad = spawn(process.execPath, [BIN, 'tail', '--config', conf, '--nats-url', 'not a url']);
  let badErr = '';
  bad.stderr.on('data', (d) => { badErr += d; });
  t.equal(await new Promise<number | null>((r) => bad.once('exit', (c) => r(c))), 2);
  t.match(badErr, /--nats-url: Invalid value for element 'server_url'/);
});

t.test('tail says what happens to the connection: lost (reconnecting), back, and why it ended (the server refusing it again)', async (t) => {
  // A real server with a user and password; restarted once as it was, then with another password.
  const nats = await startNats('authorization { user: tail, password: first-pw }');
  t.teardown(() => nats.stop());
  const url = `nats://tail:first-pw@127.0.0.1:${nats.port}`;
  const { io, exit } = await startTail(t, ['wazuh.>', '--nats-url', url]);

  await nats.restart();
  await waitFor(() => /connected again, to 127\.0\.0\.1/.test(io.err), 20_000, 'tail to say it is back');
  t.match(io.err, /the connection to NATS at 127\.0\.0\.1:\d+ was lost: reconnecting \(messages published meanwhile are not shown\)\n/, `the loss is said:\n${io.err}`);
  const nc = await connect({ servers: nats.url, user: 'tail', pass: 'first-pw' });
  nc.publish('wazuh.agent.001.status', JSON.stringify(STATUS));
  await nc.drain();
  await waitFor(() => io.out.includes('wazuh.agent.001.status'), 10_000, 'a message after the reconnect to be shown');

  writeFileSync(join(nats.dir, 'nats.conf'), readFileSync(join(nats.dir, 'nats.conf'), 'utf8').replace('first-pw', 'second-pw'));
  await nats.restart();
  t.equal(await exit, 1, 'refused again and again: it ends, exit 1');
  t.match(io.err, /NATS said: [^\n]*Authorization Violation/i, `the server's refusal is said:\n${io.err}`);
  t.match(io.err, /was lost: [^\n]*Authorization Violation[^\n]*\n$/i, 'and the last line says why it ended');
  t.notMatch(io.err, /first-pw/, 'the password is not shown');
});


t.test('tail\'s connection lines: once a window for each kind; what came meanwhile is said when it ends — the last line said is never older than what happened', async (t) => {
  const said: string[] = [];
  const lines = onceAWindow((x) => said.push(x), 100);
  // The connection's lines are one kind (tail's sayConnectionEvents): the latest state is what is said last,
  // with what the window held by tag — a loss held behind a return is still said.
  lines.line('connection', 'lost 1', 'lost');
  lines.line('connection', 'back 1', 'back'); // within the window: held
  lines.line('connection', 'lost 2', 'lost'); // held, replacing it
  t.same(said, ['lost 1'], 'held back for now');
  await new Promise((r) => setTimeout(r, 150));
  t.same(said, ['lost 1', 'lost 2 (in 0.1 s: back once, lost once)'], 'said when the window ended: the latest state, not a stale "back"');
  lines.line('connection', 'back 2', 'back');
  lines.line('connection', 'lost 3', 'lost');
  lines.line('connection', 'back 3', 'back');
  await new Promise((r) => setTimeout(r, 150));
  t.equal(said.at(-1), 'back 3 (in 0.1 s: back 2 times, lost once)', 'connected at the end, said last — and the loss between said too');
  for (let i = 0; i < 5; i++) lines.line('error', `-ERR ${i}`);
  lines.flush();
  t.same(said.slice(-2), ['-ERR 0', '-ERR 4 (in 0.1 s: 4 times)'], 'a flood: the first, then the latest with its count');
});
