// The capture layer against real syscalls: every write path, split and merged
// frames, 64 KiB replies, 5.x partial sends, and daemons started after the tap.
import t from 'tap';
import { mkdtempSync, renameSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, type Hook } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { WdbDecoder } from '../controller/src/decode/index.js';
import { SimManager, type SimSplit } from '../scripts/sim/manager.mjs';
import type { CaptureRecord, WdbExchange } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'agent1', ip: '10.0.0.1' };

interface Session {
  capture: Capture;
  records: CaptureRecord[];
  exchanges: () => WdbExchange[];
  sim: SimManager;
}

async function session(t: Tap.Test, hooks: Hook[], simOpts: { version?: 4 | 5; agents?: typeof A[]; split?: SimSplit } = {}): Promise<Session> {
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-paths-')), ...simOpts });
  const capture = Capture.open({ ...artefacts(), home: sim.home, hooks });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const exchanges = () => {
    const d = new WdbDecoder();
    return [...records].sort((a, b) => (a.tsNs < b.tsNs ? -1 : 1)).flatMap((r) => d.push(r));
  };
  return { capture, records, exchanges, sim };
}

const label = (ex: WdbExchange) => {
  const r = ex.request as { cmd: string; name?: string };
  return r.cmd === 'other' ? r.name : r.cmd;
};

for (const syscall of ['write', 'writev', 'sendmsg'] as const) {
  t.test(`${syscall}: captured when hooked, ignored when not`, async (t) => {
    const { capture, records, exchanges, sim } = await session(t, ['sendto', syscall]);
    t.same(capture.attachedHooks().sort(), ['sendto', syscall].sort());
    const client = await sim.spawnClient('wazuh-authd', { syscall });
    const pid = client.pid!;
    await client.startup(A);
    await client.keepalive(A);
    await waitFor(() => exchanges().filter((e) => e.tgid === pid).length >= 5, 5000, `${syscall} exchanges`);
    const mine = records.filter((r) => r.tgid === pid);
    t.ok(mine.every((r) => r.syscall === syscall && r.direction === 'request'), `requests came through ${syscall}`);
    const ex = exchanges().filter((e) => e.tgid === pid).map(label);
    // Agent 1 never connected: its first keepalive sets its groups on a short connection (through the same syscall).
    t.same(ex, ['get-distinct-groups', 'update-keepalive', 'select-agent-group', 'set-agent-groups', 'update-agent-data'],
      'decoded and paired with their replies');
    if (syscall !== 'write') {
      t.ok(mine.some((r) => r.offset === 4), 'the payload iovec is its own record after the 4-byte header');
    }
  });
}

t.test('every program loads with room under the verifier\'s limit, and the capture says how much', async (t) => {
  // Linux 6.18.44 refused every exit program (E2BIG: past its million instructions) while the loops'
  // state (the frame walk's position, the iovec walk's) was on the stack: each step made a new verifier state.
  const home = mkdtempSync(join(tmpdir(), 'wnt-paths-'));
  new SimManager({ binDir, home }); // lays the home out
  const capture = Capture.open({ ...artefacts(), home, hooks: ['sendto', 'write', 'writev', 'sendmsg'] });
  t.teardown(() => capture.close());
  const v = capture.verifier;
  t.ok(v, 'the kernel said what verifying took');
  t.match(v?.program, /^tp_/, `the longest program is named (${v?.program}: ${v?.instructions} instructions)`);
  t.ok(v!.instructions > 0 && v!.instructions <= v!.limit / 10, `within a tenth of the limit (${v?.instructions} of ${v?.limit})`);
});

t.test('sendto alone (the default) ignores other syscalls', async (t) => {
  const { capture, records, sim } = await session(t, ['sendto']);
  t.same(capture.attachedHooks(), ['sendto']);
  const client = await sim.spawnClient('wazuh-authd', { syscall: 'write' });
  await client.startup(A);
  await sim.keepalive(A); // remoted still uses sendto: proves the tap is capturing
  await waitFor(() => records.some((r) => Buffer.from(r.data).includes('update-agent-data')), 5000, 'remoted keepalive');
  t.notOk(records.some((r) => r.tgid === client.pid), 'nothing from write()');
});

t.test('split and merged frames arrive intact', async (t) => {
  const { records, exchanges, sim } = await session(t, ['sendto']);
  const frame = (s: string) => {
    const b = Buffer.alloc(4 + s.length + 1);
    b.writeUInt32LE(s.length + 1, 0);
    b.write(s, 4);
    return b;
  };
  const one = frame('global update-keepalive {"id":7,"connection_status":"pending","sync_status":"synced"}');
  const two = frame('global get-agent-info 7');
  // Two frames in one write.
  await sim.raw(Buffer.concat([one, two]));
  t.match(await sim.recv(), /^ok/);
  t.match(await sim.recv(), /^ok/);
  // One frame in three writes: a header alone, then the payload in two pieces.
  const three = frame('global update-connection-status {"id":7,"connection_status":"disconnected","sync_status":"synced","status_code":3}');
  await sim.raw(three.subarray(0, 4));
  await sim.raw(three.subarray(4, 30));
  await sim.raw(three.subarray(30));
  t.match(await sim.recv(), /^ok/);
  await waitFor(() => exchanges().filter((e) => label(e) !== 'get-distinct-groups' && label(e) !== 'reset-agents-connection').length >= 3,
    5000, 'three exchanges');
  const ex = exchanges().filter((e) => ['update-keepalive', 'get-agent-info', 'update-connection-status'].includes(label(e)!));
  t.same(ex.map(label), ['update-keepalive', 'get-agent-info', 'update-connection-status']);
  t.ok(ex.every((e) => e.reply.status === 'ok'));
  t.ok(records.some((r) => r.data.length === 4 && r.direction === 'request'), 'the lone header was passed on (undecided in the kernel)');
});

t.test('64 KiB replies are captured whole, in chunks', async (t) => {
  const agents = Array.from({ length: 4000 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: '10.1.0.1' }));
  const { records, exchanges, capture, sim } = await session(t, ['sendto'], { agents });
  const reply = await sim.rawreq('global get-all-agents last_id 0');
  t.match(reply, /^(ok|due) \[\{"id":1\}/);
  await waitFor(() => exchanges().some((e) => label(e) === 'get-all-agents'), 5000, 'the get-all-agents exchange');
  const big = records.filter((r) => r.direction === 'reply' && r.syscallBytes > 32768);
  t.ok(big.length >= 2, `a reply of ${big[0]?.syscallBytes} bytes came as ${big.length} records`);
  t.ok(big.every((r) => !r.truncated));
  t.equal(big.reduce((n, r) => n + r.data.length, 0), big[0].syscallBytes, 'every byte, once');
  const ex = exchanges().find((e) => label(e) === 'get-all-agents')!;
  t.equal(ex.reply.payload.length + 3, big[0].syscallBytes - 4, 'the decoded reply is the whole payload');
  t.equal(capture.counters().lost, 0);
});

t.test('a burst of large replies fits the perf buffer: nothing lost', async (t) => {
  const agents = Array.from({ length: 4000 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: '10.1.0.1' }));
  const { exchanges, capture, sim } = await session(t, ['sendto'], { agents });
  const q = 'global get-all-agents last_id 0';
  const f = Buffer.alloc(4 + q.length + 1);
  f.writeUInt32LE(q.length + 1, 0);
  f.write(q, 4);
  // 24 requests, 8 in one write on each of three connections: wazuh-db answers ~1.1 MB back to back,
  // faster than one poll. (Three connections, not three writes on one: a request of a later write
  // says the earlier ones were answered — the pairer abandons a request whose reply it did not see
  // once a later write's is answered.)
  const clients = [sim, await sim.spawnClient('wazuh-authd'), await sim.spawnClient('wazuh-monitord')];
  for (const c of clients) await c.raw(Buffer.concat(Array.from({ length: 8 }, () => f)));
  for (const c of clients) for (let i = 0; i < 8; i++) t.match(await c.recv(), /^(ok|due) \[/);
  await waitFor(() => exchanges().filter((e) => label(e) === 'get-all-agents').length >= 24, 10_000, '24 large exchanges');
  t.equal(exchanges().filter((e) => label(e) === 'get-all-agents').length, 24, 'every reply decoded and paired');
  t.equal(capture.counters().lost, 0, 'no perf sample lost');
  t.equal(capture.counters().unframed, 0, 'every write framed in the kernel');
});

t.test('a pipeline of 20 requests in one write: every reply kept, nothing passed unframed', async (t) => {
  // The kernel walked 16 frames of a write: the rest went to user space unframed, agent-scoped frames and
  // all, and their wanted requests were never counted, so wazuh-db's replies to them were dropped (review #5).
  const { records, capture, sim } = await session(t, ['sendto']);
  const before = capture.counters();
  const keepalive = (i: number) => `global update-keepalive {"id":${100 + i},"connection_status":"active","sync_status":"synced"}`;
  const f = (s: string) => {
    const b = Buffer.alloc(4 + s.length + 1);
    b.writeUInt32LE(s.length + 1, 0);
    b.write(s, 4);
    return b;
  };
  await sim.raw(Buffer.concat(Array.from({ length: 20 }, (_, i) => f(keepalive(i)))));
  for (let i = 0; i < 20; i++) t.match(await sim.recv(), /^ok/);
  const pid = sim.pids()['wazuh-remoted'];
  const pipelined = () => records.find((r) => r.tgid === pid && r.syscallBytes > 1000 && r.direction === 'request');
  await waitFor(() => pipelined() !== undefined, 5000, 'the pipelined write');
  const conn = pipelined()!.localIno;
  const replies = () => records.filter((r) => r.direction === 'reply' && r.peerIno === conn);
  await waitFor(() => replies().length >= 20, 3000, 'the 20 replies');
  await new Promise((r) => setTimeout(r, 200)); // anything extra would show up now
  t.equal(replies().length, 20, 'every reply, once');
  const after = capture.counters();
  t.equal(after.unframed - before.unframed, 0, 'the write was framed in the kernel');
  t.equal(after.content_dropped - before.content_dropped, 0, 'no reply dropped as unwanted');
});

t.test('5.x: wazuh-manager-* daemons by executable name; each frame one non-blocking write, captured whole', async (t) => {
  const { records, exchanges, sim } = await session(t, ['sendto'], { version: 5 });
  await sim.startup(A);
  await sim.keepalive(A);
  await sim.shutdown(A);
  await waitFor(() => exchanges().some((e) => label(e) === 'update-connection-status'), 5000, '5.x shutdown');
  const reqs = records.filter((r) => r.direction === 'request');
  t.ok(reqs.every((r) => r.comm === 'wazuh-manager-r'), 'comm is cut to 15 characters');
  t.ok(reqs.length > 0 && reqs.every((r) => r.offset === 0 && r.syscallBytes === r.data.length && Buffer.from(r.data).readUInt32LE(0) + 4 === r.data.length),
    'every request a whole frame in one record (the real 5.x remoted\'s usual write)');
  t.same(exchanges().map(label).filter((l) => !['get-distinct-groups', 'reset-agents-connection'].includes(l!)),
    ['update-keepalive', 'select-agent-group', 'update-agent-data', 'update-connection-status']);
  t.ok(exchanges().every((e) => e.reply.status === 'ok'));
});

// A 5.x remoted resends the tail of a partial non-blocking send: one frame can come in several writes.
// The simulator cuts frames only when asked (split).
t.test('5.x: a frame in three writes (the header alone, then the payload in two halves) is reassembled', async (t) => {
  const { records, exchanges, sim } = await session(t, ['sendto'], { version: 5, split: 'halves' });
  await sim.startup(A);
  await sim.keepalive(A);
  await sim.shutdown(A);
  await waitFor(() => exchanges().some((e) => label(e) === 'update-connection-status'), 5000, '5.x shutdown');
  const reqs = records.filter((r) => r.direction === 'request');
  t.ok(reqs.some((r) => r.data.length === 4), 'headers written alone');
  t.same(exchanges().map(label).filter((l) => !['get-distinct-groups', 'reset-agents-connection'].includes(l!)),
    ['update-keepalive', 'select-agent-group', 'update-agent-data', 'update-connection-status']);
});

t.test('5.x: frames cut anywhere (inside the header too) are reassembled, every request paired', async (t) => {
  const agents = Array.from({ length: 8 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: `10.0.0.${i + 1}` }));
  const { records, exchanges, sim } = await session(t, ['sendto'], { version: 5, split: 'random:7', agents });
  for (const a of agents) {
    await sim.startup(a);
    await sim.keepalive(a);
    await sim.shutdown(a);
  }
  const mine = () => exchanges().filter((e) => !['get-distinct-groups', 'reset-agents-connection'].includes(label(e)!));
  await waitFor(() => mine().length >= 4 * agents.length, 5000, 'every exchange');
  const reqs = records.filter((r) => r.direction === 'request' && r.tgid === sim.pids()['wazuh-manager-remoted']);
  t.ok(reqs.some((r) => r.data.length < 4), 'some write cut inside a header');
  t.same(mine().map(label), agents.flatMap(() => ['update-keepalive', 'select-agent-group', 'update-agent-data', 'update-connection-status']));
  t.same(mine().map((e) => (e.request as { id?: number }).id ?? (e.request as { data?: { id: number } }).data?.id),
    agents.flatMap((a) => [a.id, undefined, a.id, a.id]), 'for the right agents');
  t.ok(mine().every((e) => e.reply.status === 'ok'), 'each paired with its ok');
});

t.test('5.x: sends the kernel cuts short (a full send buffer: a short count, EAGAIN, then the tail) are captured as written, every request paired', async (t) => {
  // The real 5.x remoted's case (WAZUH-PROTOCOL §1): the kernel takes part of a frame, the next sendto
  // fails with EAGAIN, the tail goes after poll(). Not the simulator's --split (whole writes of parts):
  // here the syscall is given the whole frame and returns less.
  const { capture, records, exchanges, sim } = await session(t, ['sendto'], { version: 5 });
  const exe = join(sim.home, 'bin/wazuh-manager-remoted');
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', `${exe}.new`, join(ROOT, 'test/helpers/short-send-client.c')]);
  renameSync(`${exe}.new`, exe); // a new file under the name: the running simulated remoted keeps its own
  const K = 6;
  const client = spawnSync(exe, [String(K), '101'], { cwd: sim.home, encoding: 'utf8', timeout: 20_000 });
  const said = /sent (\d+) short=(\d+) eagain=(\d+) replies_ok=(\d+)/.exec(client.stdout);
  t.ok(said, `the client ran: ${client.stdout}${client.stderr}`);
  const [, , shorts, eagains, oks] = said!.map(Number);
  t.equal(oks, K, 'wazuh-db answered every request');
  t.ok(shorts > 0, `the kernel cut sends short (${shorts} short counts, ${eagains} EAGAIN): the case is really made`);
  const mine = () => exchanges().filter((e) => e.comm === 'wazuh-manager-r' && label(e) === 'update-agent-data'
    && ((e.request as { data: { id: number } }).data.id >= 101));
  await waitFor(() => mine().length >= K, 5000, 'every request');
  t.same(mine().map((e) => (e.request as { data: { id: number; agent_ip?: string } }).data).map((d) => [d.id, d.agent_ip]),
    Array.from({ length: K }, (_, i) => [101 + i, `10.3.0.${101 + i}`]), 'each request whole, for its agent, in order');
  t.ok(mine().every((e) => e.reply.status === 'ok'), 'each paired with its ok');
  const parts = records.filter((r) => r.direction === 'request' && r.comm === 'wazuh-manager-r' && r.data.length > 0
    && !(r.offset === 0 && Buffer.from(r.data).readUInt32LE(0) + 4 === r.data.length));
  t.ok(parts.length > 0, `frames captured in parts, as the kernel took them (${parts.length} records)`);
  if (eagains > 0) t.ok(capture.counters().failed_writes > 0, 'the EAGAINs counted as failed writes, nothing of them kept');
});

t.test('a daemon started or restarted after attach is captured at once; one running before is found in /proc', async (t) => {
  // wazuh-db and analysisd start before the tap here; remoted after.
  const home = mkdtempSync(join(tmpdir(), 'wnt-restart-'));
  const sim = new SimManager({ binDir, home });
  t.teardown(() => sim.stop());
  await sim.start();
  const capture = Capture.open({ ...artefacts(), home, rescanMs: 60_000 }); // the periodic rescan must not be what finds it
  t.teardown(() => capture.close());
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.ok(capture.targets().includes(sim.pids()['wazuh-db']), 'wazuh-db, already running, found through /proc');
  await sim.keepalive(A);
  await waitFor(() => records.some((r) => r.tgid === sim.pids()['wazuh-remoted']), 3000, 'the running remoted');
  const oldPid = sim.pids()['wazuh-remoted'];
  await sim.restartRemoted();
  const newPid = sim.pids()['wazuh-remoted'];
  t.not(newPid, oldPid, 'remoted restarted with a new pid');
  t.ok(capture.targets().includes(newPid), 'followed from exec');
  t.notOk(capture.targets().includes(oldPid), 'the old pid is forgotten at exit');
  const started = Date.now();
  await sim.keepalive(A);
  // Its keepalive is its last write: records come in the order of the writes, so once it is here every
  // request before it is too (waiting for any record of the new pid raced: get-distinct-groups comes
  // first at start, and the round that took it could run before reset-agents-connection was written).
  const sent = (r: CaptureRecord, what: string) => r.tgid === newPid && Buffer.from(r.data).includes(what);
  await waitFor(() => records.some((r) => sent(r, 'update-agent-data')), 1000, 'the new remoted\'s keepalive within one second');
  t.ok(Date.now() - started < 1000);
  t.ok(records.some((r) => sent(r, 'get-distinct-groups')), 'its first request at start');
  t.ok(records.some((r) => sent(r, 'reset-agents-connection')), 'and the reset after it');
  t.ok(capture.counters().targets_exec >= 1);
});

t.test('the state\'s commands only: a keepalive is one request and its reply; select-agent-group costs no copy', async (t) => {
  const { STATE_COMMANDS } = await import('../controller/src/state/commands.js');
  const sim = new SimManager({ binDir, home: mkdtempSync(join(tmpdir(), 'wnt-cmds-')) });
  const capture = Capture.open({ ...artefacts(), home: sim.home, commands: STATE_COMMANDS });
  const records: CaptureRecord[] = [];
  capture.start((b) => { records.push(...b); }, (e) => t.fail(e.message));
  capture.attach();
  t.teardown(async () => { await sim.stop(); await capture.close(); });
  await sim.start();
  const before = capture.counters().content_dropped;
  await sim.keepalive(A);
  await sim.rawreq('global get-agents-by-connection-status 0 active node01 -1'); // 31 characters: the longest
  await sim.rawreq('global get-labels 1');
  await waitFor(() => records.filter((r) => r.tgid === sim.pids()['wazuh-remoted']).length >= 2, 5000, 'the keepalive');
  await new Promise((r) => setTimeout(r, 300));
  const d = new WdbDecoder();
  const got = [...records].flatMap((r) => d.push(r)).map(label);
  t.same(got, ['reset-agents-connection', 'update-agent-data', 'get-agents-by-connection-status'],
    'remoted\'s reset and update-agent-data, the listing; no select-agent-group, get-distinct-groups or get-labels');
  t.notOk(records.some((r) => Buffer.from(r.data).includes('select-agent-group') || Buffer.from(r.data).includes('"group":"default"')),
    'neither the request nor its group-list reply left the kernel');
  t.ok(capture.counters().content_dropped - before >= 4, 'dropped in the kernel: select-agent-group, get-labels and their replies');
});
