// `wazuh-nats-tap capture`, the real CLI in a child process, against the simulated manager:
// the exact exchanges printed (JSON and text), no key ever printed, exit 0, nothing left in the kernel.
import t from 'tap';

process.setMaxListeners(50); // startTap adds an exit listener per child
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { spawn } from 'node:child_process';
import { BIN, ROOT, startTap, WITHOUT_TEST_HOOKS, type TapProcess } from './helpers/tap-process.js';
import { bpfMark, leftBehind, tapProgramsOf } from './helpers/bpf.js';
import { humanLine, toRecord, wallMicros } from '../controller/src/commands/capture.js';
import { waitFor } from './helpers/wait.js';

// Tap programs loaded from here on: those a test leaves behind (another tap's are held by it, never counted).
const MARK = bpfMark();

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'agent1', ip: '127.0.0.1' };
const B = { id: 2, name: 'agent2', ip: '10.0.0.2' };
const READY = 'Ctrl-C to stop';

const JSON_KEYS = ['time', 'ts_ns', 'latency_us', 'pid', 'comm', 'exe', 'conn', 'command', 'agents', 'request',
  'status', 'reply', 'reply_len'];

async function startCapture(args: string[]): Promise<TapProcess> {
  const tap = await startTap(['capture', ...args], null);
  let exited = false;
  tap.proc.once('exit', () => { exited = true; });
  await waitFor(() => exited || tap.stderr().includes(READY), 20_000, 'capture to attach');
  if (exited) throw new Error(`capture exited early: ${tap.stderr()}`);
  return tap;
}

/** Waits (bounded) for the process to end by itself; then its exit status. */
async function exitOf(tap: TapProcess, ms = 10_000) {
  await waitFor(() => tap.proc.exitCode !== null || tap.proc.signalCode !== null, ms, 'capture to exit by itself');
  return tap.stop();
}

t.test('capture --json --count N prints exactly the exchanges, then detaches and exits 0', async (t) => {
  t.same(await leftBehind(MARK), [], 'no orphan tap program before');
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  // Agent 1 has connected before (its groups set): its keepalives below are the usual pair, not the
  // first connection's (set-agent-groups on a short connection, then the first form of update-agent-data).
  await sim.keepalive(A);

  const tap = await startCapture(['--json', '--count', '7', '--home', home]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  await sim.startup(B);
  await sim.shutdown(A);
  const authd = await sim.spawnAuthd();
  const key = await authd.register({ id: 3, name: 'agent3', ip: 'any' });
  t.match(key, /^[0-9a-f]{64}$/, 'authd sent a key on the wire');

  const r = await exitOf(tap);
  t.same(r, { code: 0, signal: null }, 'exits 0 by itself after --count exchanges');
  t.same(await leftBehind(MARK), [], 'no program left');

  const lines = tap.logs as Record<string, unknown>[];
  t.equal(lines.length, 7, 'exactly --count lines');
  for (const l of lines) t.same(Object.keys(l), JSON_KEYS, 'the documented shape, in order');
  const pids = sim.pids();
  t.same(lines.map((l) => [l.comm, l.command, l.agents, l.status]), [
    ['wazuh-remoted', 'update-keepalive', [{ id: 1, name: 'agent1' }], 'ok'],
    ['wazuh-remoted', 'select-agent-group', [{ id: 1, name: 'agent1' }], 'ok'],
    ['wazuh-remoted', 'update-agent-data', [{ id: 1, name: 'agent1' }], 'ok'],
    ['wazuh-remoted', 'update-keepalive', [{ id: 2, name: null }], 'ok'],
    ['wazuh-remoted', 'update-connection-status', [{ id: 1, name: 'agent1' }], 'ok'],
    ['wazuh-authd', 'get-distinct-groups', [], 'ok'],
    ['wazuh-authd', 'insert-agent', [{ id: 3, name: 'agent3' }], 'ok'],
  ], 'the exchanges, in order, with agents (names from client.keys or the request) and reply status');
  t.ok(lines.slice(0, 5).every((l) => l.pid === pids['wazuh-remoted']), 'remoted\'s pid');
  t.equal(new Set(lines.slice(0, 5).map((l) => l.conn)).size, 1, 'remoted\'s requests share one connection');
  t.ok(lines.every((l) => typeof l.conn === 'string' && /^[0-9]+$/.test(l.conn as string)), 'connection ids');
  t.same(lines[0].request, { cmd: 'update-keepalive', id: 1, connection_status: 'pending', sync_status: 'synced' });
  t.same(lines[4].request, {
    cmd: 'update-connection-status', id: 1, connection_status: 'disconnected', sync_status: 'synced', status_code: 3,
  });
  t.same(lines[1].reply, '[{"group":"default"}]', 'short reply text');
  t.equal(lines[1].reply_len, 21);
  t.equal((lines[6].request as { register_ip: string }).register_ip, 'any');
  for (const l of lines) {
    t.ok(Number.isFinite(Date.parse(l.time as string)) && Math.abs(Date.parse(l.time as string) - Date.now()) < 60_000,
      'wall-clock time');
    t.ok(typeof l.latency_us === 'number' && l.latency_us >= 0, 'latency');
  }
  const out = JSON.stringify(lines);
  t.notOk(out.includes(key), 'the agent key is not printed');
  t.notOk(/internal_key/i.test(out), 'no internal_key field');
  t.notOk(/[0-9a-f]{64}/i.test(out), 'nothing key-shaped');
  t.match(tap.stderr(), /stopped \(7 exchanges\): 7 exchanges printed; kernel: \d+ records captured, 0 lost/);
});

t.test('capture prints one text line per exchange, like tcpdump', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.keepalive(A); // connected before: the usual keepalive pair below

  const tap = await startCapture(['--count', '5', '--home', home]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.keepalive(A);
  await sim.shutdown(A);
  const authd = await sim.spawnAuthd();
  const key = await authd.register({ id: 4, name: 'agent4', ip: '10.0.0.4' });

  const r = await exitOf(tap);
  t.same(r, { code: 0, signal: null }, 'exit 0');
  t.same(await leftBehind(MARK), [], 'no program left');
  const lines = tap.logs.map((l) => String(l.msg));
  const rem = `wazuh-remoted\\[${sim.pids()['wazuh-remoted']}\\]`;
  const authdRe = `wazuh-authd\\[${authd.pid}\\]`;
  const head = '^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} ';
  const tail = ' \\d+us$';
  const expected = [
    `${rem} conn=\\d+ select-agent-group agents=001\\(agent1\\) 1 -> ok "\\[\\{\\\\"group\\\\":\\\\"default\\\\"\\}\\]"`,
    `${rem} conn=\\d+ update-agent-data agents=001\\(agent1\\) connection_status=active agent_ip=127\\.0\\.0\\.1 `
      + 'sync_status=synced group_config_status=synced version="Wazuh v4\\.7\\.5" node_name=node01 .* -> ok',
    `${rem} conn=\\d+ update-connection-status agents=001\\(agent1\\) connection_status=disconnected sync_status=synced status_code=3 -> ok`,
    `${authdRe} conn=\\d+ get-distinct-groups -> ok "\\[.*\\]"`,
    `${authdRe} conn=\\d+ insert-agent agents=004\\(agent4\\) name=agent4 register_ip=10\\.0\\.0\\.4 date_add=\\d+ -> ok`,
  ];
  t.equal(lines.length, expected.length, `5 lines:\n${lines.join('\n')}`);
  expected.forEach((re, i) => t.match(lines[i], new RegExp(`${head}${re}${tail}`), `line ${i + 1}`));
  t.notOk(lines.join('\n').includes(key), 'the agent key is not printed');
  t.notOk(/internal_key/i.test(lines.join('\n')), 'no internal_key');
});

t.test('capture stops on SIGINT and on --duration, exit 0, nothing left', async (t) => {
  const byDuration = await startCapture(['--duration', '1']);
  const t0 = Date.now();
  t.same(await exitOf(byDuration, 10_000), { code: 0, signal: null }, '--duration 1: exits 0 by itself');
  t.ok(Date.now() - t0 < 5000, 'about a second after attaching');
  t.match(byDuration.stderr(), /stopped \(1 s elapsed\): 0 exchanges printed/);
  t.same(await leftBehind(MARK), [], 'no program left after --duration');

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const tap = await startCapture(['--json']);
    t.ok(tapProgramsOf(tap.proc.pid!).length > 0, 'attached while running');
    t.same(await tap.stop(sig), { code: 0, signal: null }, `${sig}: exit 0`);
    t.match(tap.stderr(), new RegExp(`stopped \\(${sig}\\)`));
    t.same(await leftBehind(MARK), [], `no program left after ${sig}`);
  }
});

t.test('capture: a second Ctrl-C during the clean-up is ignored: everything detached, the summary, exit 0', async (t) => {
  const tap = await startTap(['capture', '--json'], null, WITHOUT_TEST_HOOKS); // SIGINT's default action as a user's shell leaves it
  t.teardown(() => tap.stop('SIGKILL'));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => tap.proc.once('exit', (code, signal) => r({ code, signal })));
  await waitFor(() => tap.stderr().includes(READY), 20_000, 'capture to attach');
  tap.proc.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 20)); // an impatient Ctrl-C Ctrl-C: the detach and close take hundreds of ms
  tap.proc.kill('SIGINT');
  t.same(await exit, { code: 0, signal: null }, 'not killed by the second');
  t.match(tap.stderr(), /stopped \(SIGINT\): \d+ exchanges printed/, 'the summary, naming the first');
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('capture: bad options are usage errors (exit 2)', async (t) => {
  for (const args of [['--count', '-1'], ['--count', '1.5'], ['--duration', 'soon'], ['--hooks', 'read']]) {
    const tap = await startTap(['capture', ...args], null);
    t.equal((await exitOf(tap)).code, 2, `capture ${args.join(' ')}: exit 2`);
    t.match(tap.stderr(), /--(count|duration|hooks)/, 'names the option');
  }
  t.same(await leftBehind(MARK), [], 'nothing loaded');
});

/** capture ARGS with its stdout as written (startTap parses the lines); resolves once attached. */
async function captureRaw(t: Tap.Test, args: string[]) {
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'capture', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor(() => err.includes(READY) || proc.exitCode !== null, 20_000, 'capture to attach');
  return { proc, out: () => out, err: () => err, exit };
}

t.test('capture shows wdb text escaped: C1 controls, bidi overrides and separators in requests and replies reach no terminal raw', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.keepalive(A);
  // (No U+2028 here: the simulator's command stream is read as lines, and takes it for a line break.)
  const HOSTILE = '\u009b2J\u009bHgrp\u202eevil\u2066x';
  for (const json of [false, true]) {
    const cap = await captureRaw(t, ['--home', home, '--count', '2', ...(json ? ['--json'] : [])]);
    // An `other` request (printed as its arguments), and select-agent-group, whose reply carries the groups back.
    await sim.rawreq(`global set-agent-groups {"mode":"append","sync_status":"syncreq","data":[{"id":1,"groups":["${HOSTILE}"]}]}`);
    await sim.rawreq('global select-agent-group 1');
    await waitFor(() => cap.proc.exitCode !== null, 10_000, 'capture to end after --count');
    t.same(await cap.exit, { code: 0, signal: null });
    const out = cap.out();
    t.equal(out.split('\n').filter(Boolean).length, 2, `two lines:\n${out}`);
    t.notOk(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(out), `nothing a terminal acts on:\n${out}`);
    if (json) {
      const first = JSON.parse(out.split('\n')[0]);
      t.match(JSON.stringify(first.request), HOSTILE, 'parsed, the JSON holds the exact text');
    } else {
      t.match(out, /set-agent-groups .*\\u009b2J\\u009bHgrp\\u202e/, 'the request (its first 80 characters), escaped');
      t.match(out, /select-agent-group .*-> ok .*\\u009b2J\\u009bHgrp\\u202eevil/, 'the reply, escaped');
    }
  }
});

t.test('capture: a reader that does not read — lines dropped and counted in the summary, not piled up; SIGINT detaches and ends it, exit 0', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.keepalive(A);
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  // stdout: a pipe nobody reads (a `| less` paused).
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'capture', '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor(() => err.includes(READY) || proc.exitCode !== null, 20_000, 'capture to attach');
  // 60,000 keepalives (two exchanges each): far more than the output may hold for a reader.
  await sim.remoted!.proc.command('load 2000 30000 60000 5000 4 0 1 -', 40_000);
  await waitFor(() => err.includes('not read fast enough'), 10_000, 'capture to say it drops lines');
  t.ok(tapProgramsOf(proc.pid!).length > 0, 'attached meanwhile');
  proc.kill('SIGINT');
  const end = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const r = await exit;
  clearTimeout(end);
  t.same(r, { code: 0, signal: null }, 'SIGINT ends it, exit 0, while the reader still reads nothing');
  const m = /stopped \(SIGINT\): (\d+) exchanges printed, (\d+) not printed \(the output was too slow\); kernel: (\d+) records captured/.exec(err);
  t.ok(m, `the summary counts what was not printed:\n${err}`);
  if (m) t.ok(Number(m[2]) > 0 && Number(m[1]) < 120_000, `${m[1]} printed (taken by the pipe), ${m[2]} not`);
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('capture: an output that fails other than by its reader closing (/dev/full) is said, detaches and exits 1', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const full = openSync('/dev/full', 'w');
  t.teardown(() => closeSync(full));
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, 'capture', '--home', home], { stdio: ['ignore', full, 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor(() => err.includes(READY) || proc.exitCode !== null, 20_000, 'capture to attach');
  await sim.keepalive(A);
  const end = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const r = await exit;
  clearTimeout(end);
  t.same(r, { code: 1, signal: null }, `exit 1, by itself:\n${err}`);
  t.match(err, /cannot write the output: .*(ENOSPC|no space)/i, 'said');
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('capture: the text line\'s time and the JSON time are one clock — the wall-clock time of the request, to the µs', async (t) => {
  // Pure first: a request captured at CLOCK_MONOTONIC 5.999750 s, when the wall clock read 12:00:00.250 UTC
  // at monotonic 6 s. Its µs are the wall clock's (.249750), not the monotonic clock's own fraction (.999750).
  const wallAt6s = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
  const wallMs = (ns: bigint) => wallAt6s + (Number(ns) - 6e9) / 1e6;
  const ex = {
    connId: '7', tgid: 42, comm: 'wazuh-remoted', tsNs: 5_999_750_000n, replyTsNs: 6_000_050_000n,
    request: { cmd: 'other', name: 'select-agent-group', args: '1' }, reply: { status: 'ok', payload: '' },
  } as unknown as Parameters<typeof humanLine>[1];
  const us = wallMicros(ex.tsNs, wallMs);
  const rec = toRecord(ex, us, new Map());
  t.equal(rec.time, '2026-01-01T12:00:00.249Z');
  const local = new Date(wallAt6s - 1);
  const hms = [local.getHours(), local.getMinutes(), local.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  t.match(humanLine(rec, ex, us), new RegExp(`^${hms}\\.249750 wazuh-remoted\\[42\\] conn=7 select-agent-group`));

  // Then two real captures side by side, text and JSON: the same exchanges at the same times.
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.keepalive(A);
  const N = 20;
  const text = await captureRaw(t, ['--home', home, '--count', String(N)]);
  const json = await captureRaw(t, ['--home', home, '--count', String(N), '--json']);
  for (let i = 0; i < N / 2; i++) {
    await sim.keepalive(A);
    await new Promise((r) => setTimeout(r, 37));
  }
  await waitFor(() => text.proc.exitCode !== null && json.proc.exitCode !== null, 20_000, 'both captures to end');
  const tl = text.out().split('\n').filter(Boolean);
  const jl = json.out().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  t.equal(tl.length, N);
  t.equal(jl.length, N);
  const ms = (hmsUs: string) => {
    const [h, m, sec] = hmsUs.split(':');
    return (Number(h) * 3600 + Number(m) * 60 + Number(sec)) * 1000;
  };
  let worst = 0;
  let back = 0;
  for (let i = 0; i < N; i++) {
    const d = new Date(jl[i].time);
    const jsonMs = ms(`${d.getHours()}:${d.getMinutes()}:${d.getSeconds()}.${String(d.getMilliseconds()).padStart(3, '0')}`);
    const textMs = ms(tl[i].split(' ')[0]);
    worst = Math.max(worst, Math.abs(textMs - jsonMs));
    if (i > 0 && textMs < ms(tl[i - 1].split(' ')[0])) back++;
  }
  t.ok(worst < 20, `text and JSON times agree (worst ${worst.toFixed(3)} ms apart; each process reads the clocks itself)`);
  t.equal(back, 0, 'the text times never go backwards');
});

t.test('capture and tail: SIGTERM or SIGINT while they load (after the executable took its signals) ends them with exit 0, not by the signal', async (t) => {
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS; // the signals' default actions, as a user's shell leaves them
  for (const [what, args] of [['capture', ['capture', '--duration', '10']], ['tail', ['tail', '--nats-url', 'nats://127.0.0.1:1', '--duration', '10']]] as const) {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      for (const delay of [0, 15, 60, 200]) {
        const proc = spawn(cmd, [...pre, process.execPath, BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
        const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
        // Until the executable names itself, after taking its signals: what came before is Node's own start.
        await waitFor(() => {
          try {
            return readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').startsWith(`wazuh-nats-tap ${what}`);
          } catch {
            return true;
          }
        }, 5000, `${what} to take its signals`);
        await new Promise((r) => setTimeout(r, delay));
        proc.kill(sig);
        const end = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        t.same(await exit, { code: 0, signal: null }, `${what}: ${sig} ${delay} ms in: exit 0`);
        clearTimeout(end);
      }
    }
  }
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('capture without --home finds a 5.x manager\'s home (/var/wazuh-manager) as run, tail and config check do', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-'));
  const sim = new SimManager({ binDir, home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  // In a mount namespace of its own: /var an empty tmpfs (no /var/ossec), the simulated home bound at /var/wazuh-manager.
  const script = `mount -t tmpfs tmpfs /var && mkdir /var/wazuh-manager && mount --bind "$HOME_DIR" /var/wazuh-manager && exec "$@"`;
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', cmd, ...pre, process.execPath, BIN, 'capture', '--duration', '30'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME_DIR: home } });
  let err = '';
  let out = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  await waitFor(() => err.includes(READY) || proc.exitCode !== null, 20_000, 'capture to attach');
  // (Its daemons run outside that namespace, where the home has its temporary path: the home and its
  // socket being found is what this shows, not their traffic.)
  t.match(err, /capturing wazuh-db traffic of \/var\/wazuh-manager: socket \/var\/wazuh-manager\/queue\/db \(/, `the 5.x home, its socket found:\n${err}`);
  t.notMatch(err, /agent names unavailable/, 'its client.keys read');
  proc.kill('SIGINT');
  t.same(await exit, { code: 0, signal: null });
  t.equal(out, '');
  t.same(await leftBehind(MARK), [], 'nothing left in the kernel');
});

t.test('capture: an exchange waiting for an earlier request\'s late reply is printed at Ctrl-C, not lost', async (t) => {
  // pending's reply comes 2 s late (wazuh-db's worker preempted); active, on another connection, is
  // answered at once and waits for it (decode/apply-order.ts). Ctrl-C meanwhile: the capture is over,
  // no reply can come — the complete exchange is printed (it was dropped).
  const home = mkdtempSync(join(tmpdir(), 'wnt-cli-capture-late-'));
  const sim = new SimManager({ binDir, home, agents: [A], lateReply: { match: '"connection_status":"pending"', us: 1_000_000 } });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startCapture(['--json', '--home', home]);
  t.teardown(() => tap.stop('SIGKILL'));
  const a = await sim.spawnClient(sim.daemon('remoted'));
  const b = await sim.spawnClient(sim.daemon('remoted'));
  const pending = a.startup(A);
  await new Promise((r) => setTimeout(r, 3));
  await b.keepalive(A);
  await new Promise((r) => setTimeout(r, 10));
  t.same(await tap.stop('SIGINT'), { code: 0, signal: null });
  await pending.catch(() => {});
  const printed = tap.logs.map((l) => l.command);
  t.ok(printed.includes('update-agent-data'), `the keepalive's exchange printed: ${printed.join(', ')}`);
});
