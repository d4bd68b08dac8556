// The shim's C that parses what an agent writes — the fast path (bpf/shim/fastpath.c: frames, `"id":N`,
// the keyed hash, its tables) and the reorder heap (reorder.c) — under libFuzzer with AddressSanitizer,
// UndefinedBehaviorSanitizer and LeakSanitizer. remoted copies an agent's name, OS and labels into
// update-agent-data, so a hostile agent shapes these bytes, parsed as root in the tap's process. The
// harness and its invariants (a tick only for the payload the controller has, the held requests
// counted, the heap's order) are in test/helpers/fastpath-fuzz.c. It found, on its first minute: the
// records read through misaligned pointers (the heap's copies, perf's raw samples, the tick's buffer)
// and a request held in a free slot of the connection table when its inode read as 0.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/tap-process.js';

const dir = join(ROOT, 'build/test');
mkdirSync(dir, { recursive: true });

function build(name: string, defines: string[] = []): string {
  const out = join(dir, name);
  execFileSync('clang', ['-g', '-O1', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=all',
    '-Wall', '-Wextra', '-Werror', ...defines, '-o', out,
    join(ROOT, 'test/helpers/fastpath-fuzz.c'), join(ROOT, 'bpf/shim/reorder.c')], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

/** One record in the harness's input language: op 0, flags (bit 7 reply, bits 5-6 the connection), u16 length, bytes. */
function rec(reply: boolean, conn: number, data: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16LE(data.length);
  return Buffer.concat([Buffer.from([0, (reply ? 0x80 : 0) | (conn << 5)]), len, data]);
}
function frame(text: string): Buffer {
  const b = Buffer.from(text);
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return Buffer.concat([n, b]);
}
const KEEPALIVE = frame('global update-agent-data {"id":1,"version":"Wazuh v4.7.5","agent_ip":"192.168.56.21",' +
  '"connection_status":"active","sync_status":"synced"}');
const OK = frame('ok');
const forget = (key: number) => { const b = Buffer.alloc(5); b[0] = 2; b.writeUInt32LE(key, 1); return b; };
// An agent's unchanged keepalive twice (a tick), the controller forgetting it, twice more (whole, then a tick).
const SEQUENCE = Buffer.concat([Buffer.from([0]),
  rec(false, 1, KEEPALIVE), rec(true, 1, OK), rec(false, 1, KEEPALIVE), rec(true, 1, OK),
  forget(1),
  rec(false, 1, KEEPALIVE), rec(true, 1, OK), rec(false, 1, KEEPALIVE), rec(true, 1, OK)]);
// Seeds for the campaign beside it: the heap (first byte odd), a flood of connections after a held request.
const HEAP = Buffer.from([1, 0x10, 5, 0, 0x11, 9, 0, 0x20, 3, 0, 0x13, 4, 0, 0x15, 0xff, 0xff]);
const FLOOD = Buffer.concat([Buffer.from([0]), rec(false, 2, KEEPALIVE), rec(true, 2, OK), rec(false, 2, KEEPALIVE), Buffer.from([3, 255])]);
// A request from a socket whose inode reads 0 (the harness's connection 0), held for its reply, then the
// same bytes from connection 1 and a flood of connections over the table: before the fix the request sat
// in a free slot (inode 0 marks one), the flood took the slot, and the held request was lost
// ("invariant: held 64, counted 65", and a leak).
const INODE_0 = Buffer.concat([Buffer.from([0]), rec(false, 0, KEEPALIVE), rec(true, 0, OK), rec(false, 0, KEEPALIVE),
  rec(false, 1, KEEPALIVE), Buffer.from([3, 200])]);

function run(bin: string, args: string[], timeoutMs: number) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
  const counts = /fastpath-fuzz: (\d+) inputs, (\d+) ticks, (\d+) keyed/.exec(r.stderr ?? '');
  return { status: r.status, stderr: r.stderr ?? '', inputs: Number(counts?.[1]), ticks: Number(counts?.[2]), keyed: Number(counts?.[3]) };
}

t.test('the fast path under libFuzzer and the sanitizers', async (t) => {
  let bin: string, planted: string;
  try {
    bin = build('fastpath-fuzz');
    planted = build('fastpath-fuzz-planted', ['-DPLANT_FORGET_IGNORED']);
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
    t.fail(`clang could not build the harness with libFuzzer and the sanitizers (Debian's libclang-rt-dev, which make test installs): ${err.slice(0, 2000)}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'wnt-fuzz-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const seq = join(work, 'keepalives');
  writeFileSync(seq, SEQUENCE);

  t.test('an unchanged keepalive becomes a tick, and the model agrees with every one', async (t) => {
    const r = run(bin, [seq], 60_000);
    t.equal(r.status, 0, 'no finding', { stderr: r.stderr.slice(-3000) });
    t.ok(r.inputs >= 1, 'the input ran');
    t.equal(r.ticks, 2 * r.inputs, 'two ticks an input: before and after the controller forgot the agent');
    t.equal(r.keyed, 2 * r.inputs, 'sent whole twice an input: the first time, and after it was forgotten');
  });

  t.test('the model catches a tick for a payload the controller no longer has (a planted defect)', async (t) => {
    const r = run(planted, [seq], 60_000);
    t.not(r.status, 0, 'the planted harness fails');
    t.match(r.stderr, /invariant: a tick for agent 1, whose payload the controller does not have/);
  });

  t.test('a socket whose inode reads 0 is no connection of the fast path: nothing held is lost', async (t) => {
    const file = join(work, 'inode-0');
    writeFileSync(file, INODE_0);
    const r = run(bin, [file], 60_000);
    t.equal(r.status, 0, 'no finding', { stderr: r.stderr.slice(-3000) });
    t.equal(r.ticks, 0, 'no reply came for the held requests: no tick');
    t.ok(r.keyed >= r.inputs, 'the payload went whole once an input (connection 1 first, not 0)');
  });

  t.test('a bounded campaign from seeds finds nothing', async (t) => {
    const corpus = join(work, 'corpus');
    mkdirSync(corpus);
    writeFileSync(join(corpus, 'keepalives'), SEQUENCE);
    writeFileSync(join(corpus, 'heap'), HEAP);
    writeFileSync(join(corpus, 'flood'), FLOOD);
    writeFileSync(join(corpus, 'inode-0'), INODE_0);
    const dict = join(work, 'dict');
    writeFileSync(dict, '"global update-agent-data "\n"\\"id\\":"\n"\\x02\\x00\\x00\\x00ok"\n');
    const seed = Date.now() % 2 ** 31; // another path each run; a failure names it, and keeps its input
    t.comment(`libFuzzer -seed=${seed}`);
    const r = run(bin, [corpus, `-dict=${dict}`, `-seed=${seed}`, '-max_total_time=20', '-max_len=4096', '-timeout=10',
      '-rss_limit_mb=2048', `-artifact_prefix=${dir}/fuzz-`, '-print_final_stats=1'], 120_000);
    t.equal(r.status, 0, `no finding (libFuzzer -seed=${seed}; a failing input is kept as build/test/fuzz-*)`,
      { stderr: r.stderr.slice(-4000) });
    const execs = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(r.stderr)?.[1]);
    t.ok(execs >= 1000, `it ran: ${execs} inputs`);
    t.ok(readdirSync(corpus).length > 4, 'it found new paths beyond the seeds');
  });
});
