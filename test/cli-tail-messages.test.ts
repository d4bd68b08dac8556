// `wazuh-nats-tap tail` against what anyone with publish rights under the prefix can send (and what
// the tap itself forwards from an alert's text): the real CLI in a child process, a real nats-server.
// Each message is one line of output, printable on a terminal, and the subscription goes on.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { natsCollecting, startNats, type NatsServer } from './helpers/nats-server.js';
import { SimManager } from '../scripts/sim/manager.mjs';
import { writeOssecConf } from './helpers/config.js';
import { alertLine } from './helpers/alerts.js';
import { BIN, ROOT, runTap, startTap, WITHOUT_TEST_HOOKS } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { encrypt, encryptedHeaders, readKeyFile, type EncryptionKey } from '../controller/src/publish/encryption.js';

/** Any byte or character a terminal could act on, or that breaks a line: what printable() escapes. */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const GOOD = (n: number, name = 'ok') => JSON.stringify({
  event_type: 'status_change', time: '2024-05-28T12:35:00.123Z', agent_id: '001', agent_name: `${name}-${n}`,
  previous_status: 'active', current_status: 'disconnected', reason: 'agent_shutdown', status_code: 3, ip_address: '1.2.3.4', source: 'remoted',
});

export interface Tail {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `tail ARGS` on the server, subscribed (its `Ctrl-C to stop` seen). `read: false`: its stdout is a
 * pipe nobody reads (a `| less` paused, a stuck reader).
 */
async function startTail(t: Tap.Test, nats: { url: string }, args: string[], { read = true, stdout = 'pipe' as 'pipe' | number } = {}): Promise<Tail> {
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'tail', '--nats-url', nats.url, ...args], { stdio: ['ignore', stdout, 'pipe'] });
  let out = '';
  let err = '';
  if (read && proc.stdout) proc.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor(() => err.includes('Ctrl-C') || proc.exitCode !== null, 10_000, 'tail to subscribe');
  return { proc, out: () => out, err: () => err, exit };
}

async function publisher(t: Tap.Test, nats: NatsServer): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  return nc;
}

function pub(nc: NatsConnection, subject: string, body: string | Uint8Array, hdrs?: Record<string, string>): void {
  let h;
  if (hdrs) {
    h = natsHeaders();
    for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
  }
  nc.publish(subject, typeof body === 'string' ? new TextEncoder().encode(body) : body, h ? { headers: h } : undefined);
}

async function stopped(tail: Tail): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  tail.proc.kill('SIGINT');
  return tail.exit;
}

t.test('tail: control characters, line breaks and bidi controls in fields, headers and the subject are shown escaped: one line a message', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const tail = await startTail(t, nats, ['wazuh.>']);
  const nc = await publisher(t, nats);
  const FAKE = '2024-05-28T12:35:01.000Z  wazuh.agent.001.status  agent 001 (web-01) disconnected -> active  reason=agent_startup code=1 ip=10.0.0.1 via remoted';
  pub(nc, 'wazuh.test.a', JSON.stringify({
    event_type: 'status_change', time: '2024-05-28T12:35:00.123Z', agent_id: '001', agent_name: 'web\x1b[2J\x1b[H\x1b]0;pwned\x07\rFAKE',
    previous_status: 'active', current_status: 'disconnected', reason: 'agent_shutdown', status_code: 3, ip_address: '1.2.3.4', source: 'remoted',
  }));
  pub(nc, 'wazuh.test.b', JSON.stringify({ event_type: 'alert', time: '2024-05-28T12:35:00.123Z', rule_id: 5502, level: 3, agent_id: '002', description: `benign\n${FAKE}` }));
  pub(nc, 'wazuh.test.c', JSON.stringify({ event_type: 'keepalive', time: 'T\x1b[31mRED', agent_id: '003', agent_name: 'x', status: 'active', version: 'Wazuh v4\x1b[0m\r', ip_address: 'x' }));
  pub(nc, 'wazuh.test.d', JSON.stringify({ event_type: 'tap', time: 't', action: 'started\x1b]52;c;ZWNobyBwd25lZA==\x07' }));
  pub(nc, 'wazuh.test.e', JSON.stringify({ event_type: 'alert', time: 't', rule_id: 1, level: 1, description: 'C1 \u009b2J bidi \u202eevil\u202c sep\u2028x' }));
  pub(nc, 'wazuh.test.f', JSON.stringify({ event_type: 'other', note: '\u009b2J\u2066x' }));
  pub(nc, 'wazuh.test.g', 'not json', { 'Wazuh-Encryption': 'AES-256-GCM', 'Wazuh-Key-Id': 'abc\x1b[2J\x1b[1;1Hfake' });
  pub(nc, 'wazuh.x\x1b[31m.red', 'not json either');
  pub(nc, 'wazuh.test.h', JSON.stringify({ event_type: 'alert', time: 't', rule_id: 1, level: 1, description: 'A'.repeat(100_000) }));
  pub(nc, 'wazuh.test.z', GOOD(1));
  await nc.flush();
  await waitFor(() => tail.out().includes('ok-1'), 10_000, 'the last message');
  t.same(await stopped(tail), { code: 0, signal: null });
  const out = tail.out();
  const lines = out.split('\n').filter(Boolean);
  t.equal(lines.length, 10, `one line a message:\n${out}`);
  t.notOk(UNSAFE.test(out), 'nothing a terminal acts on, no line break inside a line');
  t.match(lines[0], 'agent 001 (web\\u001b[2J\\u001b[H\\u001b]0;pwned\\u0007\\u000dFAKE) active -> disconnected');
  t.match(lines[1], `benign\\u000a${FAKE}`, 'the forged line is part of the description, visibly');
  t.match(lines[2], /^T\\u001b\[31mRED {2}wazuh\.test\.c {2}agent 003 \(x\) active Wazuh v4\\u001b\[0m\\u000d ip=x$/);
  t.match(lines[3], 'tap started\\u001b]52;c;ZWNobyBwd25lZA==\\u0007');
  t.match(lines[4], 'C1 \\u009b2J bidi \\u202eevil\\u202c sep\\u2028x');
  t.match(lines[5], '\\u009b2J\\u2066x');
  t.match(lines[6], /^wazuh\.test\.g {2}\(encrypted with key abc\\u001b\[2J\\u001b\[1;1Hfake/);
  t.match(lines[7], /^wazuh\.x\\u001b\[31m\.red {2}/);
  t.ok(lines[8].length < 1000, `a long field is cut (${lines[8].length} characters)`);
  t.match(lines[8], /A…\(100000 chars\)$/);
});

t.test('tail: a message that is no event (null, a number, an array, a bad batch, deep nesting) is one line, and every message after it is shown', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  for (const json of [false, true]) {
    const tail = await startTail(t, nats, ['wazuh.>', ...(json ? ['--json'] : [])]);
    const nc = await publisher(t, nats);
    const BAD = ['null', '42', '"hello"', '[1,2]', JSON.stringify({ event_type: 'keepalive_batch', events: [null, 7, { event_type: 'keepalive_batch', events: [] }] }),
      '['.repeat(100_000) + ']'.repeat(100_000), `{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}`, '{"event_type":"keepalive_batch","events":{"length":1e9}}'];
    for (let i = 0; i < 5; i++) pub(nc, 'wazuh.test.x', GOOD(i));
    for (const b of BAD) pub(nc, 'wazuh.test.bad', b);
    for (let i = 5; i < 200; i++) pub(nc, 'wazuh.test.x', GOOD(i));
    await nc.flush();
    await waitFor(() => tail.out().includes('ok-199'), 10_000, 'the last good message');
    t.same(await stopped(tail), { code: 0, signal: null }, 'exit 0');
    const lines = tail.out().split('\n').filter(Boolean);
    const good = lines.filter((l) => /ok-\d+/.test(l));
    t.equal(good.length, 200, 'every good message shown');
    t.equal(lines.filter((l) => l.includes('wazuh.test.bad')).length, json ? BAD.length : BAD.length + 2,
      `one line a bad message (the bad batch: one a bad entry):\n${lines.filter((l) => l.includes('wazuh.test.bad')).join('\n')}`);
    t.notMatch(tail.err(), /TypeError|RangeError|\n\s+at /, 'no stack trace');
    if (json) for (const l of lines) t.doesNotThrow(() => JSON.parse(l), `one JSON object: ${l.slice(0, 100)}`);
  }
});

t.test('tail --json: one JSON object a line whatever comes — encrypted, not JSON, no event — and the subject is the one it came on', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const tail = await startTail(t, nats, ['wazuh.>', '--json']);
  const nc = await publisher(t, nats);
  pub(nc, 'wazuh.test.enc', 'AAAA', { 'Wazuh-Encryption': 'AES-256-GCM', 'Wazuh-Key-Id': 'abc' });
  pub(nc, 'wazuh.test.nj', 'this is not json');
  pub(nc, 'wazuh.test.bin', new Uint8Array([0x1b, 0x5b, 0x32, 0x4a, 0xff, 0x00]));
  pub(nc, 'wazuh.test.over', JSON.stringify({ subject: 'wazuh.agent.999.status', event_type: 'status_change' }));
  pub(nc, 'wazuh.test.num', '42');
  pub(nc, 'wazuh.test.str', '"hello"');
  pub(nc, 'wazuh.test.z', GOOD(1));
  await nc.flush();
  await waitFor(() => tail.out().includes('ok-1'), 10_000, 'the last message');
  t.same(await stopped(tail), { code: 0, signal: null });
  const lines = tail.out().split('\n').filter(Boolean);
  t.equal(lines.length, 7, tail.out());
  const objs = lines.map((l) => JSON.parse(l));
  t.same(objs[0], { subject: 'wazuh.test.enc', error: 'encrypted', bytes: 4, key_id: 'abc' });
  t.same(objs[1], { subject: 'wazuh.test.nj', error: 'not_json', bytes: 16 });
  t.same(objs[2], { subject: 'wazuh.test.bin', error: 'not_json', bytes: 6 });
  t.same(objs[3], { subject: 'wazuh.test.over', event_type: 'status_change' }, 'the body\'s own subject does not replace the real one');
  t.equal(Object.keys(objs[3])[0], 'subject', 'the subject first');
  t.same(objs[4], { subject: 'wazuh.test.num', error: 'not_an_event', bytes: 2, json_type: 'a number' });
  t.same(objs[5], { subject: 'wazuh.test.str', error: 'not_an_event', bytes: 7, json_type: 'a string' });
  t.match(objs[6], { subject: 'wazuh.test.z', event_type: 'status_change', agent_name: 'ok-1' });
});

t.test('tail with a key: an unencrypted message is not shown as an event (anyone could have written it); --allow-plaintext shows it marked; a wrong key is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-tail-key-'));
  const keyFile = (name: string) => {
    const f = join(dir, name);
    writeFileSync(f, randomBytes(32).toString('hex'), { mode: 0o600 });
    return { file: f, key: readKeyFile(f) };
  };
  const k1 = keyFile('k1');
  const k2 = keyFile('k2');
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const encrypted = (nc: NatsConnection, subject: string, k: EncryptionKey, body: string, aad = subject) =>
    pub(nc, subject, encrypt(k, aad, body), encryptedHeaders(k, {}));
  for (const allow of [false, true]) {
    for (const json of [false, true]) {
      const tail = await startTail(t, nats, ['wazuh.>', '--encryption-key', k1.file, ...(allow ? ['--allow-plaintext'] : []), ...(json ? ['--json'] : [])]);
      const nc = await publisher(t, nats);
      encrypted(nc, 'wazuh.e.1', k1.key, GOOD(1, 'enc'));
      encrypted(nc, 'wazuh.e.2', k2.key, GOOD(2, 'enc'));
      encrypted(nc, 'wazuh.e.3', k1.key, GOOD(3, 'enc'), 'wazuh.other');
      pub(nc, 'wazuh.e.4', GOOD(4, 'forged'));
      pub(nc, 'wazuh.e.5', 'AAAA', { 'Wazuh-Encryption': 'AES-256-GCM', 'Wazuh-Key-Id': k1.key.id });
      encrypted(nc, 'wazuh.e.6', k1.key, GOOD(6, 'enc'));
      await nc.flush();
      await waitFor(() => tail.out().includes('enc-6'), 10_000, 'the last message');
      t.same(await stopped(tail), { code: 0, signal: null });
      const lines = tail.out().split('\n').filter(Boolean);
      t.equal(lines.length, 6, tail.out());
      const what = `${allow ? '--allow-plaintext' : 'a key'}${json ? ' --json' : ''}`;
      if (json) {
        const o = lines.map((l) => JSON.parse(l));
        t.match(o[0], { subject: 'wazuh.e.1', agent_name: 'enc-1' }, `${what}: decrypted`);
        t.notOk('not_encrypted' in o[0], 'an authenticated event is not marked');
        t.match(o[1], { subject: 'wazuh.e.2', error: 'cannot_decrypt', key_id: k2.key.id, reason: `cannot decrypt: encrypted with key ${k2.key.id}, the key given is ${k1.key.id}` });
        t.match(o[2], { subject: 'wazuh.e.3', error: 'cannot_decrypt', reason: /^cannot decrypt: wrong key, or the message was altered or moved/ });
        if (allow) t.match(o[3], { subject: 'wazuh.e.4', agent_name: 'forged-4', not_encrypted: true }, `${what}: shown, marked`);
        else t.same(o[3], { subject: 'wazuh.e.4', error: 'not_encrypted', bytes: GOOD(4, 'forged').length }, `${what}: not shown as an event`);
        t.match(o[4], { subject: 'wazuh.e.5', error: 'cannot_decrypt', reason: 'not an encrypted message (too short)' });
      } else {
        t.match(lines[0], /^2024-05-28T12:35:00\.123Z {2}wazuh\.e\.1 {2}agent 001 \(enc-1\)/, `${what}: decrypted`);
        t.equal(lines[1], `wazuh.e.2  (cannot decrypt: encrypted with key ${k2.key.id}, the key given is ${k1.key.id})`);
        t.match(lines[2], /^wazuh\.e\.3 {2}\(cannot decrypt: wrong key, or the message was altered or moved to another subject\)$/);
        if (allow) t.match(lines[3], /^\(NOT ENCRYPTED\) 2024-05-28T12:35:00\.123Z {2}wazuh\.e\.4 {2}agent 001 \(forged-4\)/, `${what}: shown, marked`);
        else t.equal(lines[3], 'wazuh.e.4  (not encrypted, so not authenticated: not shown (--allow-plaintext shows it, marked))', `${what}: not shown as an event`);
        t.equal(lines[4], 'wazuh.e.5  (not an encrypted message (too short))');
        t.notOk(lines.some((l) => l.includes('forged') && !l.startsWith('(NOT ENCRYPTED) ')), 'nothing unauthenticated looks authenticated');
      }
    }
  }
});

t.test('tail: a reader that goes away (`| head -1`) ends it quietly, exit 0', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const tail = await startTail(t, nats, ['wazuh.>']);
  const nc = await publisher(t, nats);
  pub(nc, 'wazuh.test.x', GOOD(0));
  await nc.flush();
  await waitFor(() => tail.out().includes('ok-0'), 10_000, 'the first line');
  tail.proc.stdout!.destroy(); // the reader closes its end, as head does after its line
  for (let i = 1; i < 2000; i++) pub(nc, 'wazuh.test.x', GOOD(i));
  await nc.flush();
  const end = setTimeout(() => tail.proc.kill('SIGKILL'), 15_000);
  const r = await tail.exit;
  clearTimeout(end);
  t.same(r, { code: 0, signal: null }, 'exit 0, by itself');
  t.notMatch(tail.err(), /EPIPE|Unhandled|\n\s+at /, `nothing but its start line on stderr:\n${tail.err()}`);
});

t.test('tail: an output that fails other than by its reader closing (a full disk: /dev/full) is said, exit 1 — not taken for `| head`', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const full = openSync('/dev/full', 'w');
  t.teardown(() => closeSync(full));
  const tail = await startTail(t, nats, ['wazuh.>'], { stdout: full });
  const nc = await publisher(t, nats);
  pub(nc, 'wazuh.test.x', GOOD(0));
  await nc.flush();
  const end = setTimeout(() => tail.proc.kill('SIGKILL'), 15_000);
  const r = await tail.exit;
  clearTimeout(end);
  t.same(r, { code: 1, signal: null }, 'exit 1, by itself');
  t.match(tail.err(), /cannot write the output: .*(ENOSPC|no space)/i, `said on stderr:\n${tail.err()}`);
});

t.test('tail: what the NATS server says (an -ERR) is printed escaped — a server may be anyone\'s', async (t) => {
  // A server that greets, then refuses the connection with a text holding OSC and CSI sequences.
  const srv = createServer((s) => {
    s.on('error', () => {});
    s.write('INFO {"server_id":"x","version":"2.10.0","proto":1,"max_payload":1048576,"headers":true}\r\n');
    s.once('data', () => s.write("-ERR 'Authorization Violation \u001b]0;PWNED\u0007\u001b[2J\u001b[31mfake line'\r\n"));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => srv.close());
  const url = `nats://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'tail', '--nats-url', url, '--duration', '5', 'wazuh.>'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const code = await new Promise<number | null>((r) => proc.once('exit', r));
  t.not(code, 0, `it ends in failure (exit ${code})`);
  t.match(err, /Authorization Violation/, `the server's words are said:\n${err}`);
  t.notMatch(err, UNSAFE, 'and no control character of theirs reaches the terminal');
});

/** The resident memory of a process, in kB. */
function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

t.test('tail: a reader that does not read — messages are dropped and counted, not piled up in memory; SIGINT still ends it, exit 0', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const tail = await startTail(t, nats, ['wazuh.>'], { read: false });
  const nc = await publisher(t, nats);
  const before = rssKb(tail.proc.pid!);
  const body = JSON.stringify({ event_type: 'alert', time: 't', rule_id: 1, level: 1, description: 'x'.repeat(1000) });
  for (let i = 0; i < 200; i++) { // 200,000 messages of 1 KB: 200 MB for a reader that takes none
    for (let j = 0; j < 1000; j++) pub(nc, 'wazuh.test.x', body);
    await nc.flush();
  }
  await waitFor(() => tail.err().includes('not read fast enough'), 10_000, 'tail to say it drops messages');
  const grown = rssKb(tail.proc.pid!) - before;
  t.ok(grown < 100_000, `its memory grew by ${grown} kB, not by the 200 MB the reader did not take`);
  tail.proc.kill('SIGINT');
  const end = setTimeout(() => tail.proc.kill('SIGKILL'), 15_000);
  const r = await tail.exit;
  clearTimeout(end);
  t.same(r, { code: 0, signal: null }, 'SIGINT ends it, exit 0, while the reader still reads nothing');
  t.match(tail.err(), /\d+ messages not shown in all: the output was too slow/, 'and it says how many were not shown');
});

t.test('tail --count N counts messages: a keepalive batch is one (its lines all shown), a message that is no event one too', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.stop());
  const tail = await startTail(t, nats, ['wazuh.>', '--count', '3']);
  const nc = await publisher(t, nats);
  const ka = (n: number) => ({ event_type: 'keepalive', time: 't', agent_id: `00${n}`, agent_name: `a${n}`, status: 'active', version: 'Wazuh v4.7.5', ip_address: '10.0.0.1' });
  pub(nc, 'wazuh.agent.batch.keepalive', JSON.stringify({ event_type: 'keepalive_batch', events: [ka(1), ka(2), ka(3)] }));
  pub(nc, 'wazuh.test.nj', 'not json');
  pub(nc, 'wazuh.test.enc', 'AAAA', { 'Wazuh-Encryption': 'AES-256-GCM', 'Wazuh-Key-Id': 'abc' });
  pub(nc, 'wazuh.test.z', GOOD(1));
  await nc.flush();
  const end = setTimeout(() => tail.proc.kill('SIGKILL'), 15_000);
  t.same(await tail.exit, { code: 0, signal: null }, 'ends by itself after the third message');
  clearTimeout(end);
  const lines = tail.out().split('\n').filter(Boolean);
  t.equal(lines.length, 5, `three keepalives, the not-JSON and the encrypted message:\n${tail.out()}`);
  t.notOk(tail.out().includes('ok-1'), 'not the fourth message');
  const help = await runTap(['tail', '--help']);
  t.match(help.stdout.replace(/\s+/g, ' '), /stop after N messages, not lines: a keepalive batch is one; a message that is no event counts too/, '--help says so');
});

t.test('end to end: an alert whose description holds ESC, CR and a forged line — run publishes it escaped (alert kept exact), tail prints one safe line', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.security.alerts.>');
  const home = mkdtempSync(join(tmpdir(), 'wnt-tail-e2e-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home });
  t.teardown(() => sim.stop());
  await sim.start();
  const tapRun = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tapRun.stop('SIGKILL'));
  await waitFor(() => tapRun.logs.some((l) => l.msg === 'following Wazuh\'s alerts'), 5000, 'the follower');
  const tail = await startTail(t, nats, ['wazuh.security.alerts.>']);
  const desc = 'Logon failure for user \u001b[2J\u001b[Hroot\u001b]0;owned\u0007\r2024-05-28T12:35:00.123Z  fake line';
  const alert = JSON.parse(alertLine({ n: 1, level: 5 }));
  alert.rule.description = desc;
  await sim.writeAlertBytes(`${JSON.stringify(alert)}\n`);
  await waitFor(() => got.length >= 1 && tail.out().includes('fake line'), 10_000, 'the alert, on NATS and in tail');
  t.equal(got[0].body.description, 'Logon failure for user \\u001b[2J\\u001b[Hroot\\u001b]0;owned\\u0007\\u000d2024-05-28T12:35:00.123Z  fake line',
    'the published summary field, escaped');
  t.equal(got[0].body.alert.rule.description, desc, 'the alert as analysisd wrote it, exact');
  t.same(await stopped(tail), { code: 0, signal: null });
  const lines = tail.out().split('\n').filter(Boolean);
  t.equal(lines.length, 1, tail.out());
  t.notOk(UNSAFE.test(tail.out()), 'nothing a terminal acts on');
  t.equal(lines[0], '2024-05-28T12:35:00.123Z  wazuh.security.alerts.low  rule 5502 level 5 agent 001: Logon failure for user '
    + '\\u001b[2J\\u001b[Hroot\\u001b]0;owned\\u0007\\u000d2024-05-28T12:35:00.123Z  fake line', 'the forged line is visibly part of the description');
});
