// The Wazuh manager simulator is the ground truth every capture test runs
// against, so this checks it against WAZUH-PROTOCOL.md byte for byte (under
// strace), and checks the state wazuh-db keeps.
import t, { type Test } from 'tap';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SimManager, type SimAgent } from '../scripts/sim/manager.mjs';
import { buildSim, SIM_NAMES } from '../scripts/sim/build-sim.mjs';
import { straceAttached } from './helpers/strace.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = await buildSim(path.join(repo, 'build', 'sim'));

const A1 = { id: 1, name: 'agent1', ip: '127.0.0.1' };
const A2 = { id: 2, name: 'agent2', ip: '10.0.0.2' };

// Payloads copied from WAZUH-PROTOCOL.md §9 (frames of a real 4.7.5 manager),
// with the doc's `header N` beside each: both must match what the sim sends.
const DOC = {
  groups: ['global get-distinct-groups \0', 28],
  reset: ['global reset-agents-connection synced\0', 38],
  pending: ['global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}\0', 86],
  selectGroup: ['global select-agent-group 1\0', 28],
  agentData: [
    String.raw`global update-agent-data {"id":1,"version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","agent_ip":"127.0.0.1","labels":"#\"_manager_hostname\":vm\n#\"_agent_ip\":127.0.0.1\n#\"_node_name\":node01\n#\"_wazuh_version\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}` +
      '\0',
    628,
  ],
  shutdown: [
    'global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}\0',
    115,
  ],
  // A never-connected agent's first connection (the document's agent 3, here agent 1: the same lengths).
  setGroups: ['global set-agent-groups {"mode":"empty_only","sync_status":"synced","data":[{"id":3,"groups":["default"]}]}\0'.replace('"id":3', '"id":1'), 108],
  firstData: [
    String.raw`global update-agent-data {"id":3,"version":"Wazuh v4.7.5","merged_sum":"x","manager_host":"vm","node_name":"node01","agent_ip":"127.0.0.1","labels":"#\"_manager_hostname\":vm\n#\"_agent_ip\":127.0.0.1\n#\"_node_name\":node01\n#\"_wazuh_version\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"not synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`.replace('"id":3', '"id":1') +
      '\0',
    553,
  ],
} as const;

function frame(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32LE(body.length);
  return Buffer.concat([hdr, body]);
}

function tmpHome(t: Test): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'wazuh-sim-'));
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  return home;
}

async function startManager(t: Test, opts: { agents?: SimAgent[] } = {}) {
  const m = new SimManager({ binDir, home: tmpHome(t), ...opts });
  t.teardown(() => m.stop());
  await m.start();
  return m;
}

function agentInfo(reply: string): Record<string, unknown> {
  if (!reply.startsWith('ok ')) throw new Error(`unexpected reply ${reply}`);
  const rows = JSON.parse(reply.slice(3)) as Record<string, unknown>[];
  if (rows.length !== 1) throw new Error(`expected one row: ${reply}`);
  return rows[0];
}

interface Sendto {
  pid: number;
  fd: number;
  bytes: Buffer;
  len: number;
  flags: string;
  ret: number | null;
}

// Lines like: 123 sendto(5, "\x74\x02...", 632, 0, NULL, 0) = 632
// (or split into `<unfinished ...>` / `<... sendto resumed>` when threads interleave).
function parseStrace(file: string): Sendto[] {
  const out: Sendto[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+sendto\((\d+), "((?:\\x[0-9a-f]{2})*)"(\.\.\.)?, (\d+), ([^,]+), NULL, 0\)(?: = (-?\d+))?/.exec(line);
    if (!m) continue;
    if (m[4]) throw new Error(`strace truncated a buffer, raise -s: ${line.slice(0, 120)}`);
    out.push({
      pid: Number(m[1]),
      fd: Number(m[2]),
      bytes: Buffer.from(m[3].replaceAll('\\x', ''), 'hex'),
      len: Number(m[5]),
      flags: m[6],
      ret: m[7] === undefined ? null : Number(m[7]),
    });
  }
  return out;
}

const isWdbRequest = (s: Sendto) => s.bytes.subarray(4, 11).toString() === 'global ';

function stracePresent(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('build lays out one real copy per daemon name', async (t) => {
  for (const name of SIM_NAMES) {
    const st = fs.lstatSync(path.join(binDir, name));
    t.ok(st.isFile() && !st.isSymbolicLink(), `${name} is a regular file`);
    t.ok(st.mode & 0o111, `${name} is executable`);
  }
  t.equal(await buildSim(path.join(repo, 'build', 'sim')), binDir, 'a second build is a no-op returning the same dir');
});

t.test('agent lifecycle through wazuh-db state', async (t) => {
  const m = await startManager(t, { agents: [A1, A2] });

  t.ok(fs.statSync(m.wdbPath).isSocket(), 'queue/db/wdb is a socket under the home');
  t.ok(fs.statSync(path.join(m.home, 'queue/sockets/queue')).isSocket(), 'analysisd queue socket exists');
  const pids = m.pids();
  t.same(Object.keys(pids).sort(), ['wazuh-analysisd', 'wazuh-db', 'wazuh-remoted']);
  for (const [name, pid] of Object.entries(pids)) {
    t.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), name, `comm of ${name}`);
    t.equal(path.basename(fs.readlinkSync(`/proc/${pid}/exe`)), name, `exe of ${name}`);
  }

  let row = agentInfo(await m.rawreq('global get-agent-info 1'));
  t.match(row, { id: 1, name: 'agent1', connection_status: 'never_connected' }, 'seeded from client.keys');
  t.match(row.internal_key, /^[0-9a-f]{64}$/, 'row carries a 64-hex internal_key like the real one');

  for (const a of [A1, A2]) await m.startup(a);
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { connection_status: 'pending', status_code: 0 });

  for (const a of [A1, A2]) await m.keepalive(a);
  row = agentInfo(await m.rawreq('global get-agent-info 2'));
  t.match(row, { id: 2, name: 'agent2', ip: '10.0.0.2', connection_status: 'active', version: 'Wazuh v4.7.5', os_platform: 'debian' });
  t.type(row.last_keepalive, 'number');
  t.equal(await m.rawreq('global get-agents-by-connection-status 0 active node01 -1'), 'ok [{"id":1},{"id":2}]');

  await m.shutdown(A1);
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'disconnected', status_code: 3 });
  t.equal(await m.rawreq('global get-agents-by-connection-status 0 active node01 -1'), 'ok [{"id":2}]');

  // A manager restart: agent 2 stays active until the new remoted resets it.
  const oldPid = m.pids()['wazuh-remoted'];
  await m.restartRemoted();
  t.not(m.pids()['wazuh-remoted'], oldPid, 'remoted was replaced');
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { connection_status: 'disconnected', status_code: 5 });
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'disconnected', status_code: 3 }, 'reset leaves disconnected agents alone');
  t.match(agentInfo(await m.rawreq('global get-agent-info 0')), { connection_status: 'active' }, 'reset spares the manager (id 0)');

  // monitord's sweep: the reply names the agents it disconnected.
  await m.startup(A2);
  await m.keepalive(A2);
  const monitord = await m.spawnClient('wazuh-monitord');
  const future = Math.floor(Date.now() / 1000) + 60;
  t.equal(await monitord.rawreq('global disconnect-agents 0 1 synced'), 'ok []', 'nothing older than 1970');
  t.equal(await monitord.rawreq(`global disconnect-agents 0 ${future} synced`), 'ok [{"id":2}]');
  t.match(agentInfo(await monitord.rawreq('global get-agent-info 2')), { connection_status: 'disconnected', status_code: 4 });
  t.equal(fs.readFileSync(`/proc/${monitord.pid}/comm`, 'utf8').trim(), 'wazuh-monitord');

  const authd = await m.spawnClient('wazuh-authd');
  const key = 'a'.repeat(64);
  t.equal(await authd.rawreq(`global insert-agent {"id":5,"name":"web05","ip":"any","register_ip":"any","internal_key":"${key}","date_add":1795796717}`), 'ok');
  t.match(agentInfo(await authd.rawreq('global get-agent-info 5')), { name: 'web05', connection_status: 'never_connected', internal_key: key, date_add: 1795796717 });
  t.equal(await authd.rawreq('global get-agent-info 77'), 'ok []');

  const replies = {
    'global get-distinct-groups ': 'ok [{"group":"default","group_hash":"37a8eec1"}]',
    'global select-agent-group 2': 'ok [{"group":"default"}]',
    'global update-status-code {"id":2,"status_code":1,"version":"Wazuh v4.15.0","sync_status":"synced"}': 'ok',
    'global update-keepalive {"id":1,"connection_status":"pending"': `err Invalid JSON syntax, near '{"id":1,"connection_'`,
    'global no-such-command 1': `err Invalid DB query syntax, near 'global no-such-comma'`,
    'mitre sql SELECT 1': `err Invalid DB query syntax, near 'mitre sql SELECT 1'`,
    'agent 001 syscheck save2 {}': 'ok',
    'task upgrade_cancel_tasks {"node":"node01"}': 'ok {"error":0}',
  };
  for (const [q, want] of Object.entries(replies)) t.equal(await m.rawreq(q), want, q);
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { status_code: 1, version: 'Wazuh v4.15.0' });
});

t.test('the load mode (make bench): the mix, the frame number in agent_ip, the stamps file', async (t) => {
  const m = await startManager(t);
  const stamps = path.join(m.home, 'stamps.bin');
  // 1,100 frames to 10 agents, unpaced, 2 connections; 20 in 1000 are status frames, a window that moves
  // by 7 each thousand: frames 0-19 (each agent's shutdown, then its startup), then 1000-1012 (the
  // shutdowns of agents 1-10, the startups of 1-3). The bound on time is only a bound (20 s), never reached.
  const out = await m.remoted!.proc.command(`load 10 0 1100 20000 2 20 1 ${stamps}`, 30_000);
  const r = Object.fromEntries(out.split(' ').map((kv) => kv.split('=')));
  t.same([r.sent, r.keepalives, r.status, r.errors], ['1100', '1067', '33', '0'], 'every frame sent and answered ok');
  t.equal(r.requests, String(2 * 1067 + 33), 'a keepalive is two requests (select-agent-group, update-agent-data), a status frame one');
  const b = fs.readFileSync(stamps);
  t.equal(b.length, 1100 * 16, 'two u64 per frame');
  const v = new BigUint64Array(b.buffer, b.byteOffset, b.length / 8);
  t.ok(v.every((x) => x > 0n), 'every frame has its send time and its time on the wire');
  // Agent 1's last frame is 1090 (a keepalive): active, its address 10.0.4.66 (1090 = 0x000442).
  const a1 = agentInfo(await m.remoted!.agentInfo(1));
  t.equal(a1.connection_status, 'active');
  t.equal(a1.ip, '10.0.4.66', 'the frame number is in agent_ip');
  t.match(await m.remoted!.proc.command('load 10 0 0 1000 1 0 1 -').catch((e: Error) => e.message), /usage: load/, 'a bad load is refused');
  // 1,000 agents (a multiple of 1000, as the bench's 10,000 and 100,000), two rounds. The status frames
  // once fell on the same 20 agents at every round, each always a shutdown: after the first round no
  // status changed. Now round 1's window is 993-999 and 0-12: agents 994-1000 shut down (their first
  // status frame), 1-13 start up (their second), 14-20 come back with a keepalive.
  await m.remoted!.proc.command('load 1000 0 2000 20000 2 20 1 -', 30_000);
  for (const [id, want] of [[1, 'pending'], [13, 'pending'], [14, 'active'], [20, 'active'], [994, 'disconnected'], [21, 'active']] as const) {
    t.equal(agentInfo(await m.remoted!.agentInfo(id)).connection_status, want, `agent ${id} after two rounds`);
  }
  // An id past any agent's (first_id + k overflowed the ids tracked for the background poll).
  t.match(await m.remoted!.proc.command('reconnect 2 9223372036854775807 0').catch((e: Error) => e.message), /usage: reconnect/, 'a first_id past 999999999 is refused');
});

t.test('a list longer than one reply comes in pages of less than 64 KiB (due), as wazuh-db pages them', async (t) => {
  const m = await startManager(t);
  // 6,000 agents made active by the load mode: their ids alone are ~80 KB of JSON.
  const out = await m.remoted!.proc.command('load 6000 0 6000 20000 4 0 1 -', 30_000);
  t.match(out, /errors=0 /);
  const first = await m.rawreq('global get-agents-by-connection-status 0 active node01 -1');
  t.match(first, /^due \[\{"id":1\},/, 'the first page says more follow');
  t.ok(first.length < 65536 - 512, `the page fits one reply: ${first.length} bytes`);
  const ids = await m.pollActive();
  t.same(ids, Array.from({ length: 6000 }, (_, i) => i + 1), 'every active agent, once, in order, over the pages');
});

t.test('wazuh-db with a cost per request (make bench): that much CPU each, one request at a time', async (t) => {
  // 2 ms of CPU per request, 2 connections: 10 keepalives = 20 requests = 40 ms of wazuh-db's CPU, and as
  // many of wall time since requests are served one at a time (the real one's global.db mutex).
  const m = new SimManager({ binDir, home: tmpHome(t), cpuPerRequestUs: 2000 });
  t.teardown(() => m.stop());
  await m.start();
  const cpu = () => {
    const f = fs.readFileSync(`/proc/${m.db!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // ms (USER_HZ 100)
  };
  const c0 = cpu();
  const out = await m.remoted!.proc.command('load 10 0 10 20000 2 0 1 -', 30_000);
  const r = Object.fromEntries(out.split(' ').map((kv) => kv.split('=')));
  t.same([r.sent, r.requests, r.errors], ['10', '20', '0'], 'every request answered ok');
  t.ok(Number(r.elapsed_ns) >= 38e6, `served one at a time: ${Number(r.elapsed_ns) / 1e6} ms for 20 requests of 2 ms on 2 connections`);
  // The tick is 10 ms: 40 ms of CPU reads 30 to 50.
  t.ok(cpu() - c0 >= 30, `wazuh-db spent the CPU: ${cpu() - c0} ms`);
  t.throws(() => new SimManager({ binDir, home: tmpHome(t), cpuPerRequestUs: -1 }), /cpuPerRequestUs/);
});


t.test('wazuh-db restarted (restartDb): a new socket; with persistDb the table it answered for, and clients that reconnect', async (t) => {
  for (const persistDb of [true, false]) {
    const m = new SimManager({ binDir, home: tmpHome(t), agents: [A1, A2], persistDb });
    t.teardown(() => m.stop());
    await m.start();
    const monitord = await m.spawnClient('wazuh-monitord');
    await m.startup(A1);
    await m.keepalive(A1);
    await m.startup(A2);
    const ino = fs.statSync(m.wdbPath).ino;
    const pid = m.pids()['wazuh-db'];
    await m.restartDb();
    t.not(m.pids()['wazuh-db'], pid, 'a new wazuh-db');
    // The inode number may be reused by the new socket; its ctime is new either way.
    t.ok(fs.statSync(m.wdbPath).isSocket(), `the socket is there again (inode ${ino} → ${fs.statSync(m.wdbPath).ino})`);
    // remoted's and monitord's long-lived connections broke: each reconnects at its next request.
    const [a1, a2] = [agentInfo(await monitord.rawreq('global get-agent-info 1')), agentInfo(await m.rawreq('global get-agent-info 2'))];
    if (persistDb) {
      t.match([a1, a2], [{ connection_status: 'active' }, { connection_status: 'pending' }], 'persistDb: every answered request kept');
    } else {
      t.match([a1, a2], [{ connection_status: 'never_connected' }, { connection_status: 'never_connected' }], 'without: seeded again from client.keys');
    }
    await m.keepalive(A2);
    t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { connection_status: 'active' }, 'requests go on');
    await m.stop();
  }
});
t.test('a non-Wazuh process runs the same protocol under its own name', async (t) => {
  const m = await startManager(t);
  const other = await m.spawnClient('not-wazuh');
  t.equal(fs.readFileSync(`/proc/${other.pid}/comm`, 'utf8').trim(), 'not-wazuh');
  await other.startup(A1);
  await other.keepalive(A1);
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'active', ip: '127.0.0.1' });
  const exit = await other.quit();
  t.same(exit, { code: 0, signal: null }, 'quit exits 0');
});

t.test('wazuh-db survives hostile and split frames', async (t) => {
  const m = await startManager(t);
  await m.startup(A1);

  // A frame split across two writes, as 5.x remoted may send it.
  const f = frame('global get-agent-info 1');
  await m.raw(f.subarray(0, 3));
  await m.raw(f.subarray(3));
  t.match(await m.recv(), /^ok \[\{"id":1,/, 'split frame reassembled');

  // Two frames in one write.
  await m.raw(Buffer.concat([frame('global select-agent-group 1\0'), frame('global get-distinct-groups \0')]));
  t.equal(await m.recv(), 'ok [{}]', 'agent 1 never connected: no group yet');
  t.equal(await m.recv(), 'ok [{"group":"default","group_hash":"37a8eec1"}]');

  // A garbage payload gets an error; a length over the cap drops the
  // connection, the client reconnects and wazuh-db keeps serving.
  await m.raw(frame('\x01\x02\xff{{{'));
  t.match(await m.recv(), /^err Invalid DB query syntax, near '/);
  await m.raw(Buffer.from([0xff]));
  await m.raw('ffffff7f');
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'pending' }, 'still served after hostile input');
  t.match(await m.rawreq('global update-agent-data {"id":1,"os_name":"\\u00e9\\"x"}'), /^ok$/, 'escapes parsed');
  t.equal(await m.rawreq('global update-agent-data {"id":1}junk'), `err Invalid JSON syntax, near '{"id":1}junk'`);
  t.equal(await m.rawreq('global update-agent-data {"name":"x"}'), `err Invalid JSON data, near '{"name":"x"}'`);
  t.ok(m.db && !m.db.exitInfo, 'wazuh-db still running');
});

t.test('stop terminates everything and removes the socket', async (t) => {
  const m = new SimManager({ binDir, home: tmpHome(t) });
  t.teardown(() => m.stop());
  await m.start({ reset: false });
  await m.spawnClient('not-wazuh');
  const pids = Object.values(m.pids());
  t.equal(pids.length, 4);
  await m.stop();
  for (const pid of pids) t.notOk(fs.existsSync(`/proc/${pid}`), `pid ${pid} reaped`);
  t.notOk(fs.existsSync(m.wdbPath), 'wazuh-db unlinked its socket on SIGTERM');
  await m.stop(); // idempotent
});

t.test('bytes on the wire match WAZUH-PROTOCOL.md (strace)', async (t) => {
  t.ok(stracePresent(), 'strace is installed (make test installs it)');
  const m = new SimManager({ binDir, home: tmpHome(t) });
  t.teardown(() => m.stop());
  await m.start({ reset: false });
  // Only wazuh-db and analysisd are needed; remoted runs under strace below.
  await m.remoted!.kill('SIGKILL');
  m.remoted = null;
  const dbPid = m.pids()['wazuh-db'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wazuh-sim-strace-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const dbTrace = path.join(dir, 'db.trace');
  const remTrace = path.join(dir, 'remoted.trace');
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

  // Attach to wazuh-db first and wait until strace says so, or its replies to
  // remoted's start-up queries could be missed.
  const dbStrace = await straceAttached(t, dbPid, dbTrace, 'sendto');

  const rem = spawn('strace', ['-f', '-e', 'trace=sendto', '-xx', '-s', '70000', '-o', remTrace, path.join(binDir, 'wazuh-remoted'), '--home', m.home], {
    cwd: m.home,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(rem);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: rem.stdout! }).on('line', (l) => {
    lines.push(l);
    waiters.splice(0).forEach((w) => w());
  });
  const waitLine = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(lines)}`)), 5000);
      const check = () => {
        const l = lines.find((x) => re.test(x));
        if (l) {
          clearTimeout(timer);
          resolve(l);
        } else waiters.push(check);
      };
      check();
    });
  await waitLine(/^ready$/);
  // Agent 1's first connection (its first keepalive), then a keepalive as every later one.
  rem.stdin!.write('startup 1 agent1 127.0.0.1\nkeepalive 1 agent1 127.0.0.1\nkeepalive 1 agent1 127.0.0.1\nshutdown 1 agent1 127.0.0.1\n');
  await waitLine(/^ok 4$/);
  t.same(lines.filter((l) => l !== 'ready'), ['ok 1', 'ok 2', 'ok 3', 'ok 4']);
  // The load mode (make bench): two keepalive frames for agent 1, each the same pair as the line command's.
  rem.stdin!.write('load 1 0 2 5000 1 0 1 -\n');
  t.match(await waitLine(/^ok 5 /), /^ok 5 sent=2 keepalives=2 status=0 requests=4 errors=0 elapsed_ns=\d+$/);
  rem.stdin!.write('quit\n');
  await exited(rem);
  dbStrace.kill('SIGINT'); // detaches; wazuh-db runs on
  await exited(dbStrace);
  t.ok(m.db && !m.db.exitInfo, 'wazuh-db survived the detach');

  const sent = parseStrace(remTrace);
  t.ok(sent.length > 0, 'remoted trace parsed');
  for (const s of sent) t.equal(s.ret, s.len, `every sendto wrote all ${s.len} bytes`);

  const all = sent.filter(isWdbRequest);
  const want = [DOC.groups, DOC.reset, DOC.pending, DOC.selectGroup, DOC.setGroups, DOC.firstData, DOC.selectGroup, DOC.agentData, DOC.shutdown];
  const reqs = all.slice(0, want.length);
  t.equal(all.length, want.length + 4, 'exactly the expected wdb requests, in order');
  want.forEach(([payload, header], i) => {
    const s = reqs[i];
    if (!s) return;
    t.equal(Buffer.byteLength(payload), header, `doc literal ${i} has the doc's length`);
    t.equal(s.bytes.readUInt32LE(0), header, `request ${i}: header ${header}`);
    t.equal(s.len, header + 4, `request ${i}: header and payload in one sendto`);
    t.equal(s.flags, '0', `request ${i}: flags 0`);
    t.ok(s.bytes.equals(frame(payload)), `request ${i}: bytes equal the doc: ${payload.slice(0, 40)}`);
  });
  const agentData = reqs[7];
  t.equal(agentData?.bytes.subarray(0, 4).toString('hex'), '74020000', 'update-agent-data header is 74 02 00 00');
  t.equal(agentData?.bytes.at(-1), 0, 'update-agent-data ends with the 4.x NUL');
  t.equal(reqs[6]?.fd, reqs[7]?.fd, 'keepalive: select-agent-group then update-agent-data on one connection');
  t.ok(reqs[3]?.fd === reqs[5]?.fd && reqs[4]?.fd !== reqs[3]?.fd, 'first connection: set-agent-groups on a short connection of its own');
  // The load's frames: the line command's bytes, with the frame number as the address (10.0.0.k).
  const load = all.slice(want.length);
  const withIp = (ip: string) => DOC.agentData[0].split('127.0.0.1').join(ip);
  t.same(
    load.map((s) => s.bytes.toString('hex')),
    [DOC.selectGroup[0], withIp('10.0.0.0'), DOC.selectGroup[0], withIp('10.0.0.1')].map((p) => frame(p).toString('hex')),
    'load: each keepalive is select-agent-group then update-agent-data, as the line command sends them',
  );
  t.ok(load.every((s) => s.fd === load[0]?.fd && s.flags === '0'), 'load: one long-lived connection, one sendto per frame');

  const text = (s: Sendto) => s.bytes.toString('latin1');
  const dgrams = sent.filter((s) => text(s).startsWith('1:['));
  t.same(
    dgrams.map(text),
    [
      "1:[001] (agent1) any->wazuh-agent:ossec: Agent started: 'agent1->127.0.0.1'.\0",
      '1:[001] (agent1) 127.0.0.1->/var/log/auth.log:Jan  1 00:00:00 agent1 sshd[1234]: Accepted publickey for root from 10.0.0.1 port 40000 ssh2\0',
      '1:[001] (agent1) 127.0.0.1->/var/log/auth.log:Jan  1 00:00:00 agent1 sshd[1234]: Accepted publickey for root from 10.0.0.1 port 40000 ssh2\0',
      "1:[001] (agent1) any->wazuh-agent:ossec: Agent stopped: 'agent1->127.0.0.1'.\0",
    ],
    'NUL-terminated look-alike datagrams to analysisd',
  );
  t.ok(sent.some((s) => s.flags === 'MSG_NOSIGNAL' && text(s) === '\x0d\0\0\0#!-agent ack '), 'length-prefixed TCP frame to the agent');

  // wazuh-db's replies, in the order of the requests.
  const replies = parseStrace(dbTrace);
  t.same(
    replies.map((s) => s.bytes.toString('hex')),
    ['ok [{"group":"default","group_hash":"37a8eec1"}]', 'ok', 'ok', 'ok [{}]', 'ok', 'ok', 'ok [{"group":"default"}]', 'ok', 'ok',
      'ok [{"group":"default"}]', 'ok', 'ok [{"group":"default"}]', 'ok'].map((r) => frame(r).toString('hex')),
    'replies: no NUL, length-prefixed',
  );
  t.equal(replies[7]?.bytes.toString('hex'), '020000006f6b', 'update-agent-data reply is 02 00 00 00 6f 6b');
  for (const s of replies) {
    t.equal(s.flags, '0', 'reply sent with flags 0 (OS_SendSecureTCP; SIGPIPE is ignored instead)');
    t.equal(s.len, s.bytes.readUInt32LE(0) + 4, 'reply: one sendto per frame');
  }
  // wazuh-db's worker pool: successive requests of one connection answered by different threads.
  const longLived = [2, 3, 5, 6, 7, 8].map((i) => replies[i]); // remoted's long-lived connection (4: set-agent-groups, a short one)
  t.equal(new Set(longLived.map((s) => s.fd)).size, 1, 'remoted\'s six requests on one connection');
  t.ok(new Set(longLived.map((s) => s.pid)).size > 1, `answered by more than one thread (tids ${longLived.map((s) => s.pid).join(', ')})`);
  t.ok(longLived.every((s, i) => i === 0 || s.pid !== longLived[i - 1].pid), 'never twice in a row by the same one');
});

t.test('wazuh-db: a zero-length frame closes the connection; a client gone before its reply costs it nothing (SIGPIPE ignored)', async (t) => {
  const m = await startManager(t, { agents: [A1] });
  const talk = (bytes: Buffer, ms = 3000) => new Promise<{ data: Buffer; closed: boolean }>((resolve, reject) => {
    const c = net.createConnection(m.wdbPath);
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => { c.destroy(); resolve({ data, closed: false }); }, ms);
    c.on('connect', () => c.write(bytes));
    c.on('data', (d) => { data = Buffer.concat([data, d]); });
    c.on('end', () => { clearTimeout(timer); c.destroy(); resolve({ data, closed: true }); });
    // Closed with a request unread in its buffer: the kernel resets the connection.
    c.on('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); if (e.code === 'ECONNRESET') resolve({ data, closed: true }); else reject(e); });
  });
  const zero = await talk(Buffer.concat([Buffer.alloc(4), frame('global get-agent-info 1\0')]), 1000);
  t.ok(zero.closed, 'wazuh-db closed the connection at the zero-length frame');
  t.equal(zero.data.length, 0, 'and answered nothing, not even the request after it');
  // Requests whose replies find the client gone: sent with flags 0, EPIPE, and wazuh-db lives on.
  for (let i = 0; i < 20; i++) {
    const c = net.createConnection(m.wdbPath);
    await new Promise<void>((r) => c.on('connect', () => r()));
    c.write(Buffer.concat(Array.from({ length: 50 }, () => frame('global get-agent-info 1\0'))));
    c.destroy();
  }
  await new Promise((r) => setTimeout(r, 200));
  t.equal(m.db!.exitInfo, null, 'wazuh-db still running');
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { id: 1, name: 'agent1' }, 'and answering');
});

t.test('update-agent-data keeps status_code and disconnection_time; only update-keepalive clears them (WDB_STMT_GLOBAL_UPDATE_AGENT_*)', async (t) => {
  const m = await startManager(t, { agents: [A1] });
  const row = async () => agentInfo(await m.rawreq('global get-agent-info 1'));
  await m.startup(A1);
  await m.keepalive(A1);
  const monitord = await m.spawnMonitord();
  t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) + 60), [1], 'monitord sweeps agent 1');
  const swept = await row();
  t.match(swept, { connection_status: 'disconnected', status_code: 4 });
  t.ok((swept.disconnection_time as number) > 0, 'the sweep stamped a disconnection time');

  await m.keepalive(A1); // select-agent-group + update-agent-data
  t.match(await row(), { connection_status: 'active', status_code: 4, disconnection_time: swept.disconnection_time },
    'a keepalive (update-agent-data) makes it active and keeps the reason and the time it went away');
  await m.refuse(1);
  await m.keepalive(A1);
  t.match(await row(), { connection_status: 'active', status_code: 1 }, 'the refusal\'s code 1 is kept too');

  await m.startup(A1); // update-keepalive … pending
  t.match(await row(), { connection_status: 'pending', status_code: 0, disconnection_time: 0 }, 'update-keepalive clears both');

  // Columns an update-agent-data leaves out are set to NULL (left out of the row); ip only when agent_ip is sent.
  t.equal(await m.rawreq('global update-agent-data {"id":1,"connection_status":"active","sync_status":"synced","version":"Wazuh v5.0.0","os_name":"Ubuntu"}'), 'ok');
  const r = await row();
  t.match(r, { version: 'Wazuh v5.0.0', os_name: 'Ubuntu', ip: '127.0.0.1', node_name: 'node01' });
  for (const k of ['config_sum', 'merged_sum', 'manager_host', 'os_version', 'os_platform', 'os_uname', 'os_arch']) t.notOk(k in r, `${k} is NULL again`);
});

/** Runs `name` from binDir under strace (sendto and fcntl), feeds it `commands`, waits for each answer, quits. */
async function traceClient(t: Test, m: SimManager, name: string, args: string[], commands: string[]): Promise<{ sent: Sendto[]; trace: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wazuh-sim-strace-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'client.trace');
  const c = spawn('strace', ['-f', '-e', 'trace=sendto,fcntl', '-xx', '-s', '70000', '-o', file, path.join(binDir, name), '--home', m.home, ...args], {
    cwd: m.home, stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: c.stdout! }).on('line', (l) => { lines.push(l); waiters.splice(0).forEach((w) => w()); });
  const waitLine = (re: RegExp) => new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(lines)}`)), 5000);
    const check = () => {
      const l = lines.find((x) => re.test(x));
      if (l) { clearTimeout(timer); resolve(l); } else waiters.push(check);
    };
    check();
  });
  await waitLine(/^ready$/);
  for (const [i, cmd] of commands.entries()) {
    c.stdin!.write(`${cmd}\n`);
    t.match(await waitLine(new RegExp(`^(ok|err) ${i + 1}( |$)`)), new RegExp(`^ok ${i + 1}`), cmd);
  }
  c.stdin!.write('quit\n');
  await new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
  return { sent: parseStrace(file), trace: fs.readFileSync(file, 'utf8') };
}

/** The wdb requests in a client's writes: per fd, the bytes in order, cut into frames. */
function wdbStreams(sent: Sendto[]): { fd: number; writes: Sendto[]; frames: Buffer[] }[] {
  const fds = [...new Set(sent.map((s) => s.fd))];
  const out = [];
  for (const fd of fds) {
    // A short connection's descriptor is taken again by the datagram socket to analysisd: leave those out.
    const writes = sent.filter((s) => s.fd === fd && !s.bytes.toString('latin1').startsWith('1:['));
    let buf = Buffer.concat(writes.map((s) => s.bytes));
    if (buf.length < 11 || buf.subarray(4, 11).toString() !== 'global ') continue; // datagrams, TCP frames
    const frames: Buffer[] = [];
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
      frames.push(buf.subarray(4, 4 + buf.readUInt32LE(0)));
      buf = buf.subarray(4 + buf.readUInt32LE(0));
    }
    if (buf.length) throw new Error(`fd ${fd}: ${buf.length} bytes past the last frame`);
    out.push({ fd, writes, frames });
  }
  return out;
}

t.test('5.x requests: one whole sendto(MSG_NOSIGNAL) a frame on a non-blocking socket, no NUL; --split cuts them on request (strace)', async (t) => {
  t.ok(stracePresent(), 'strace is installed (make test installs it)');
  const m = new SimManager({ binDir, home: tmpHome(t), version: 5 });
  t.teardown(() => m.stop());
  await m.start({ reset: false });
  const cmds = ['startup 1 agent1 127.0.0.1', 'keepalive 1 agent1 127.0.0.1', 'shutdown 1 agent1 127.0.0.1', 'rawreq global get-agent-info 1'];
  const payloads = (streams: ReturnType<typeof wdbStreams>) => streams.flatMap((s) => s.frames.map((f) => f.toString('latin1')));

  const whole = await traceClient(t, m, 'wazuh-manager-remoted', ['--no-reset'], cmds);
  const streams = wdbStreams(whole.sent);
  const want = payloads(streams);
  t.same(want.map((p) => p.split(' ').slice(0, 2).join(' ')), [
    'global get-distinct-groups', 'global update-keepalive', 'global select-agent-group', 'global update-agent-data',
    'global update-connection-status', 'global get-agent-info',
  ], 'the 5.x requests, in order');
  t.ok(want.every((p) => !p.endsWith('\0')), 'no trailing NUL (nlohmann::json, 5.x)');
  const writes = streams.flatMap((s) => s.writes);
  t.equal(writes.length, want.length, 'one write per frame');
  for (const w of writes) {
    t.equal(w.flags, 'MSG_NOSIGNAL', 'sendto with MSG_NOSIGNAL (no MSG_DONTWAIT: the socket itself is non-blocking)');
    t.equal(w.len, w.bytes.readUInt32LE(0) + 4, `whole: header and payload in one sendto (${w.len} bytes)`);
    t.equal(w.ret, w.len);
  }
  for (const s of streams) {
    t.match(whole.trace, new RegExp(`fcntl\\(${s.fd}, F_SETFL, O_RDWR\\|O_NONBLOCK\\) = 0`), `fd ${s.fd} made non-blocking`);
  }

  // --split halves: the header alone, then the payload in two halves.
  const halves = wdbStreams((await traceClient(t, m, 'wazuh-manager-remoted', ['--no-reset', '--split', 'halves'], cmds)).sent);
  t.same(payloads(halves), want, 'halves: the same frames');
  const hw = halves.flatMap((s) => s.writes);
  t.equal(hw.length, 3 * want.length, 'three writes a frame');
  t.ok(hw.every((w, i) => i % 3 !== 0 || w.len === 4), 'each frame\'s first write is its header alone');

  // --split random:<seed>: cut anywhere, the header too; the same seed cuts the same way.
  const cut = async () => wdbStreams((await traceClient(t, m, 'wazuh-manager-remoted', ['--no-reset', '--split', 'random:42'], cmds)).sent);
  const r1 = await cut();
  t.same(payloads(r1), want, 'random: the same frames');
  const rw = r1.flatMap((s) => s.writes);
  t.ok(rw.length > want.length, `more writes than frames (${rw.length} for ${want.length})`);
  t.ok(rw.some((w) => w.len < 4), 'some write ends or starts inside a header');
  t.same((await cut()).flatMap((s) => s.writes.map((w) => w.len)), rw.map((w) => w.len), 'the seed repeats the cuts');
});

t.test('the Python client (python3, as wazuh-clusterd) sends no trailing NUL: one sendto, flags 0 (strace)', async (t) => {
  t.ok(stracePresent(), 'strace is installed (make test installs it)');
  const m = await startManager(t);
  const { sent } = await traceClient(t, m, 'python3', ['--no-reset'], ['sync-set 20 w20 10.2.0.20 active worker01', 'rawreq global get-agent-info 20']);
  const writes = wdbStreams(sent).flatMap((s) => s.writes);
  const texts = writes.map((w) => w.bytes.subarray(4).toString('latin1'));
  t.same(texts.map((x) => x.split(' ').slice(0, 2).join(' ')), ['global get-distinct-groups', 'global sync-agent-info-set', 'global get-agent-info']);
  for (const w of writes) {
    t.equal(w.len, w.bytes.readUInt32LE(0) + 4, 'header and payload in one sendto');
    t.equal(w.flags, '0', 'flags 0 (socket.send)');
    t.not(w.bytes.at(-1), 0, `no trailing NUL: ${w.bytes.subarray(4, 40).toString('latin1')}…`);
  }
  t.ok(texts[1].endsWith('"labels":[]}]'), 'the sync payload ends with its array');
  t.match(agentInfo(await m.rawreq('global get-agent-info 20')), { name: 'w20', connection_status: 'active', node_name: 'worker01' });
  // The 4.x C daemons keep theirs.
  const c = wdbStreams((await traceClient(t, m, 'wazuh-monitord', ['--no-reset'], ['rawreq global get-agent-info 20'])).sent).flatMap((s) => s.writes);
  t.ok(c.length === 2 && c.every((w) => w.bytes.at(-1) === 0), 'a 4.x C client (monitord) sends the NUL');
});

t.test('raw and recv: each complete raw frame is a reply owed, read by recv; no other request goes on that connection meanwhile', async (t) => {
  const m = await startManager(t, { agents: [A1] });
  const groups = 'ok [{"group":"default","group_hash":"37a8eec1"}]';
  // A request right behind a raw write (no await between them) would read the raw frame's reply: refused.
  const [r1, r2] = await Promise.allSettled([m.raw(frame('global get-agent-info 1\0')), m.rawreq('global get-distinct-groups ')]);
  t.equal(r1.status, 'fulfilled', 'the raw write');
  t.match(r2.status === 'rejected' && String(r2.reason), /1 reply to raw frames not read: recv first/, 'the request behind it refused, nothing sent');
  t.match(await m.recv(), /^ok \[\{"id":1,/, 'recv reads the raw frame\'s reply');
  t.equal(await m.rawreq('global get-distinct-groups '), groups, 'the next request gets its own reply');

  // Two frames in one write, one recv: one still owed.
  await m.raw(Buffer.concat([frame('global get-agent-info 1\0'), frame('global get-distinct-groups \0')]));
  t.match(await m.recv(), /^ok \[\{"id":1,/);
  await t.rejects(m.keepalive(A1), /1 reply to raw frames not read/, 'a line command too');
  t.equal(await m.recv(), groups, 'the second reply, in order');
  await t.rejects(m.recv(), /no reply owed/, 'nothing more owed: recv says so at once');

  // A frame across two writes is owed once complete; half written, it blocks requests too.
  const f = frame('global get-agent-info 1\0');
  await m.raw(f.subarray(0, 2));
  await t.rejects(m.rawreq('global get-distinct-groups '), /a raw frame is incomplete/);
  await t.rejects(m.recv(), /no reply owed/);
  await m.raw(f.subarray(2, 10));
  await m.raw(f.subarray(10));
  t.match(await m.recv(), /^ok \[\{"id":1,/);

  // A length wazuh-db refuses ends the connection: the frame before it is still answered, the next
  // request goes on a new connection.
  await m.raw(Buffer.concat([frame('global get-distinct-groups \0'), Buffer.from('00000000', 'hex'), frame('global get-agent-info 1\0')]));
  t.equal(await m.recv(), groups);
  await t.rejects(m.recv(), /no reply owed/, 'nothing owed after the refused length');
  await m.keepalive(A1);
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'active' }, 'requests go on');
});

t.test('wazuh-db answers what §2 and §9 show: groups, find-agent, labels, sync-agent-info-get; an agent\'s first connection', async (t) => {
  const m = await startManager(t, { agents: [A1, A2] });
  t.equal(await m.rawreq('global select-agent-group 1'), 'ok [{}]', 'never connected: no group (NULL)');
  t.equal(await m.rawreq('global select-agent-group 77'), 'ok []', 'unknown agent: no row');
  t.notOk('group' in agentInfo(await m.rawreq('global get-agent-info 1')), 'no group in its row either');

  // The first keepalive of a never-connected agent: set-agent-groups on a short connection, the first form of update-agent-data.
  await m.startup(A1);
  await m.keepalive(A1);
  t.equal(await m.rawreq('global select-agent-group 1'), 'ok [{"group":"default"}]', 'remoted gave it the default group');
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { group: 'default', group_hash: '37a8eec1', merged_sum: 'x', group_config_status: 'not synced', connection_status: 'active' });
  t.notOk('config_sum' in agentInfo(await m.rawreq('global get-agent-info 1')), 'no config_sum at the first connection');
  await m.keepalive(A1);
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { config_sum: 'ab73af41699f13fdd81903b5f23d8d00', group_config_status: 'synced' }, 'every later keepalive: the usual form');
  t.equal(await m.rawreq('global get-labels 1'),
    String.raw`ok [{"id":1,"key":"#\"_agent_ip\"","value":"127.0.0.1"},{"id":1,"key":"#\"_manager_hostname\"","value":"vm"},{"id":1,"key":"#\"_node_name\"","value":"node01"},{"id":1,"key":"#\"_wazuh_version\"","value":"Wazuh v4.7.5"}]`,
    'get-labels: the keepalive\'s labels as rows, by key (§9)');
  t.equal(await m.rawreq('global get-labels 2'), 'ok []', 'none for an agent that sent none');

  // set-agent-groups modes, select-groups, find-group.
  const set = (mode: string, id: number, groups: string[]) =>
    m.rawreq(`global set-agent-groups {"mode":"${mode}","sync_status":"synced","data":[{"id":${id},"groups":${JSON.stringify(groups)}}]}`);
  t.equal(await set('empty_only', 1, ['web']), 'ok');
  t.equal(await m.rawreq('global select-agent-group 1'), 'ok [{"group":"default"}]', 'empty_only leaves a set group alone');
  t.equal(await set('override', 2, ['web']), 'ok');
  t.equal(await set('append', 2, ['db']), 'ok');
  t.equal(await m.rawreq('global select-agent-group 2'), 'ok [{"group":"web,db"}]');
  t.equal(await m.rawreq('global select-groups'), 'ok [{"name":"default"},{"name":"web"},{"name":"db"}]');
  t.equal(await m.rawreq('global find-group default'), 'ok [{"id":1}]');
  t.equal(await m.rawreq('global find-group db'), 'ok [{"id":3}]');
  t.equal(await m.rawreq('global find-group nope'), 'ok []');
  t.match(await m.rawreq('global set-agent-groups {"mode":"empty_only"'), /^err Invalid JSON syntax/);

  // find-agent: by name and registration address (monitord after a sweep, §9).
  t.equal(await m.rawreq('global find-agent {"name":"agent2","ip":"10.0.0.2"}'), 'ok [{"id":2}]');
  t.equal(await m.rawreq('global find-agent {"name":"agent2","ip":"any"}'), 'ok []');
  const authd = await m.spawnAuthd();
  await authd.register({ id: 7, name: 'web07', ip: 'any' });
  t.equal(await m.rawreq('global find-agent {"name":"web07","ip":"any"}'), 'ok [{"id":7}]');
  t.match(await m.rawreq('global find-agent {"name":"web07"}'), /^err Invalid JSON data/);

  // sync-agent-info-get: the rows a cluster worker owes the master (sync_status syncreq), each once.
  t.equal(await m.rawreq('global sync-agent-info-get last_id 0'), 'ok []', 'all synced');
  t.equal(await m.rawreq('global update-keepalive {"id":2,"connection_status":"pending","sync_status":"syncreq"}'), 'ok');
  const rows = await m.rawreq('global sync-agent-info-get last_id 0');
  t.match(rows, /^ok \[\{"id":2,"name":"agent2",/);
  t.match(JSON.parse(rows.slice(3)), [{ id: 2, connection_status: 'pending', status_code: 0, labels: [] }]);
  t.equal(await m.rawreq('global sync-agent-info-get last_id 0'), 'ok []', 'sent once: synced now');
});

t.test('authd and etc/client.keys: made when missing (0640), kept 0640 and its owner on removal, and a failure to write it fails the command', async (t) => {
  const m = await startManager(t); // no agents: no etc/ at all
  const keys = path.join(m.home, 'etc/client.keys');
  t.notOk(fs.existsSync(path.join(m.home, 'etc')), 'no etc/ before');
  const authd = await m.spawnAuthd();
  const key = await authd.register({ id: 7, name: 'web07', ip: 'any' });
  t.equal(fs.readFileSync(keys, 'utf8'), `007 web07 any ${key}\n`, 'the key line written, etc/ made');
  t.equal(fs.statSync(keys).mode & 0o777, 0o640, 'client.keys is 0640');
  await authd.register({ id: 8, name: 'web08', ip: 'any' });
  fs.chownSync(keys, 65534, 65534); // root:wazuh on a real manager: an owner that is not the daemon's
  t.match(await authd.remove(7), /^ok/);
  const st = fs.statSync(keys);
  t.equal(st.mode & 0o777, 0o640, 'still 0640 after the rewrite');
  t.same([st.uid, st.gid], [65534, 65534], 'and still its owner\'s');
  t.match(fs.readFileSync(keys, 'utf8'), /^007 !web07 any [0-9a-f]{64}\n008 web08 any [0-9a-f]{64}\n$/, 'the removed agent marked');
  t.notOk(fs.existsSync(`${keys}.sim-tmp`), 'no temporary file left');

  // client.keys cannot be written (a directory in its place): the registration fails and nothing reaches wazuh-db.
  fs.rmSync(keys);
  fs.mkdirSync(keys);
  await t.rejects(authd.register({ id: 9, name: 'web09', ip: 'any' }), /cannot open etc\/client\.keys/);
  t.equal(await m.rawreq('global get-agent-info 9'), 'ok []', 'no insert-agent sent');
  await t.rejects(authd.remove(8), /cannot read etc\/client\.keys|cannot rewrite etc\/client\.keys/, 'a removal that cannot mark the file fails too');
  t.match(agentInfo(await m.rawreq('global get-agent-info 8')), { name: 'web08' }, 'and sends no delete-agent');
});

t.test('pollActive and disconnect return every id, however many pages (14,000 agents: more than one 64 KiB line of ids)', async (t) => {
  const m = await startManager(t);
  const out = await m.remoted!.proc.command('load 14000 0 14000 30000 4 0 1 -', 30_000);
  t.match(out, /errors=0 /);
  const all = Array.from({ length: 14000 }, (_, i) => i + 1);
  t.same(await m.pollActive(), all, 'every active agent');
  const monitord = await m.spawnMonitord();
  t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) + 60), all, 'every agent the sweep disconnected');
  t.same(await m.pollActive(), [], 'and none left active');
});

t.test('raw of more frames than the sockets hold: the replies are read while it writes, and recv gives them in order (no deadlock)', async (t) => {
  const m = await startManager(t, { agents: [A1] });
  const groups = 'ok [{"group":"default","group_hash":"37a8eec1"}]';
  const N = 20_000; // 640,000 bytes: wazuh-db's replies fill the client's buffer long before the write ends
  const started = Date.now();
  await m.raw(Buffer.concat(Array.from({ length: N }, () => frame('global get-distinct-groups \0'))));
  t.ok(Date.now() - started < 5000, `the write ended (${Date.now() - started} ms)`);
  await t.rejects(m.keepalive(A1), /20000 replies to raw frames not read/);
  const replies = await Promise.all(Array.from({ length: N }, () => m.recv()));
  t.equal(replies.filter((r) => r === groups).length, N, 'every reply, each once');
  await t.rejects(m.recv(), /no reply owed/);
  await m.startup(A1);
  await m.keepalive(A1);
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'active' }, 'the connection goes on');
  t.equal(m.db!.exitInfo, null);
});

t.test('wazuh-modulesd (4.x and 5.x copies): the manager\'s row as §9 writes it, get-all-agents, tasks; analysisd\'s own wdb connection', async (t) => {
  t.ok(stracePresent(), 'strace is installed (make test installs it)');
  const m = await startManager(t, { agents: [A1, A2] });
  t.ok(fs.statSync(path.join(m.home, 'bin/wazuh-modulesd')).isFile(), 'wazuh-modulesd installed in the home');
  const { sent } = await traceClient(t, m, 'wazuh-modulesd', ['--no-reset'], [
    'manager-info', 'all-agents',
    'rawreq task set_timeout {"now":1795796712,"interval":900}', 'rawreq task delete_old {"timestamp":1795191912}',
    'rawreq global select-groups', 'rawreq global find-group default',
  ]);
  const writes = wdbStreams(sent).flatMap((s) => s.writes);
  const doc: [string, number][] = [
    ['global update-agent-name {"id":0,"name":"vm"}\0', 46],
    ['global update-agent-data {"id":0,"version":"Wazuh v4.7.5","manager_host":"vm","node_name":"node01","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}\0', 388],
  ];
  const mine = writes.slice(1, 3); // after get-distinct-groups (its start-up query, on a short connection)
  doc.forEach(([payload, header], i) => {
    t.equal(mine[i]?.bytes.readUInt32LE(0), header, `modulesd request ${i}: header ${header}`);
    t.ok(mine[i]?.bytes.equals(frame(payload)), `modulesd request ${i}: the bytes of §9`);
  });
  const row = agentInfo(await m.rawreq('global get-agent-info 0'));
  t.match(row, { id: 0, name: 'vm', version: 'Wazuh v4.7.5', os_platform: 'debian', connection_status: 'active', last_keepalive: 253402300799 }, 'the manager\'s row');

  const modulesd = await m.spawnModulesd();
  t.equal(fs.readFileSync(`/proc/${modulesd.pid}/comm`, 'utf8').trim(), 'wazuh-modulesd');
  t.same(await modulesd.allAgents(), [1, 2], 'get-all-agents last_id 0: every agent but the manager');
  t.equal(await modulesd.rawreq('task set_timeout {"now":1795796712,"interval":900}'), 'ok {"error":0,"timestamp":1795797612}', 'task set_timeout as §9');
  t.equal(await modulesd.rawreq('task delete_old {"timestamp":1795191912}'), 'ok {"error":0}');
  t.equal(await modulesd.rawreq('global select-groups'), 'ok [{"name":"default"}]');
  t.equal(await modulesd.rawreq('global find-group default'), 'ok [{"id":1}]');

  // analysisd polls on a connection of its own, and asks for labels.
  await m.startup(A1);
  await m.keepalive(A1);
  t.same(await m.analysisdPollActive(), [1], 'analysisd\'s poll: the same list as remoted\'s');
  t.same(await m.pollActive(), [1]);
  t.match(await m.analysisdLabels(1), /^ok \[\{"id":1,"key":"#\\"_agent_ip\\"","value":"127\.0\.0\.1"\},/);
  const fds = fs.readdirSync(`/proc/${m.analysisd!.pid}/fd`).map((fd) => { try { return fs.readlinkSync(`/proc/${m.analysisd!.pid}/fd/${fd}`); } catch { return ''; } });
  t.ok(fds.filter((l) => l.startsWith('socket:')).length >= 2, 'analysisd holds its queue socket and its wdb connection');

  // 5.x: wazuh-manager-modulesd, comm cut to wazuh-manager-m (monitord's too), sorted keys, no NUL.
  const m5 = new SimManager({ binDir, home: tmpHome(t), version: 5 });
  t.teardown(() => m5.stop());
  await m5.start();
  const mod5 = await m5.spawnModulesd();
  t.equal(fs.readFileSync(`/proc/${mod5.pid}/comm`, 'utf8').trim(), 'wazuh-manager-m');
  t.equal(path.basename(fs.readlinkSync(`/proc/${mod5.pid}/exe`)), 'wazuh-manager-modulesd');
  await mod5.managerInfo();
  t.match(agentInfo(await m5.rawreq('global get-agent-info 0')), { name: 'vm', version: 'Wazuh v5.0.0' });
});

t.test('restartManager: wazuh-db (a new socket, the same table), analysisd and remoted restarted; remoted resets; the given agents come back', async (t) => {
  await t.rejects(new SimManager({ binDir, home: tmpHome(t) }).restartManager(), /not started/);
  const plain = await startManager(t, { agents: [A1] });
  await t.rejects(plain.restartManager(), /needs persistDb/);
  const m = new SimManager({ binDir, home: tmpHome(t), agents: [A1, A2], persistDb: true });
  t.teardown(() => m.stop());
  await m.start();
  for (const a of [A1, A2]) {
    await m.startup(a);
    await m.keepalive(a);
  }
  const monitord = await m.spawnMonitord();
  const before = { ...m.pids() };
  const sock = fs.statSync(m.wdbPath);
  await new Promise((r) => setTimeout(r, 20)); // a ctime the new socket cannot share
  await m.restartManager({ reconnect: [A1] });
  const after = m.pids();
  for (const d of ['wazuh-db', 'wazuh-remoted', 'wazuh-analysisd']) t.not(after[d], before[d], `${d} restarted`);
  t.notOk('wazuh-monitord' in after, 'spawned clients stopped and forgotten');
  t.equal(monitord.proc.exitInfo !== null, true, 'monitord exited');
  t.ok(fs.statSync(m.wdbPath).ctimeMs > sock.ctimeMs, 'a new socket');
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { connection_status: 'active', status_code: 0 }, 'agent 1 reconnected (reset, then pending: code 0, then active)');
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { connection_status: 'disconnected', status_code: 5 }, 'agent 2 reset by the new remoted');
});

t.test('each agent reports its own version, os, labels and node; a 4.x update-agent-data over 2,048 bytes goes out cut and is refused', async (t) => {
  const m = await startManager(t, { agents: [A1, A2] });
  const B = { ...A2, version: 'Wazuh v4.9.2', node: 'node02', configSum: 'c0ffee', labels: { env: 'prod', 'team.x': 'a b' },
    os: { name: 'Ubuntu', version: '24.04', major: '24', codename: 'noble', platform: 'ubuntu', arch: 'aarch64', uname: '' } };
  for (const a of [A1, B]) {
    await m.startup(a);
    await m.keepalive(a); // the first connection
    await m.keepalive(a);
  }
  t.match(agentInfo(await m.rawreq('global get-agent-info 1')), { version: 'Wazuh v4.7.5', os_name: 'Debian GNU/Linux', node_name: 'node01' }, 'the defaults');
  const b = agentInfo(await m.rawreq('global get-agent-info 2'));
  t.match(b, { version: 'Wazuh v4.9.2', os_name: 'Ubuntu', os_version: '24.04', os_platform: 'ubuntu', os_arch: 'aarch64', node_name: 'node02', config_sum: 'c0ffee' });
  t.notOk('os_uname' in b, 'an empty value leaves the member out');
  const labels = JSON.parse((await m.rawreq('global get-labels 2')).slice(3)) as { key: string; value: string }[];
  t.same(labels.map((l) => `${l.key}=${l.value}`), [
    '#"_agent_ip"=10.0.0.2', '#"_manager_hostname"=vm', '#"_node_name"=node02', '#"_wazuh_version"=Wazuh v4.9.2', 'env=prod', 'team.x=a b',
  ], 'its own labels and the hidden ones, with its version and node');
  t.same(await m.rawreq('global get-agents-by-connection-status 0 active node02 -1'), 'ok [{"id":2}]', 'polled by its node');

  // A version change shows at the next keepalive.
  await m.keepalive({ ...B, version: 'Wazuh v4.10.0' });
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { version: 'Wazuh v4.10.0' });

  // Labels that make update-agent-data longer than 2,048 bytes: cut by remoted's helper, refused by wazuh-db.
  await t.rejects(m.keepalive({ ...B, labels: { big: 'x'.repeat(2000) } }), /wazuh-db answered an error: err Invalid JSON syntax/);
  t.match(agentInfo(await m.rawreq('global get-agent-info 2')), { version: 'Wazuh v4.10.0' }, 'nothing applied');
  await t.rejects(m.keepalive({ ...B, labels: { 'a:b': 'x' } }), /label key/);
});

t.test('wazuh-db state details: sync_status arguments, disconnection_time on reconnection, no row brought back for a removed agent', async (t) => {
  const m = await startManager(t, { agents: [A1, A2] });
  const row = async (id: number) => agentInfo(await m.rawreq(`global get-agent-info ${id}`));
  for (const a of [A1, A2]) {
    await m.startup(a);
    await m.keepalive(a);
  }
  // A cluster worker's reset and sweep mark the rows for the master (sync_status as the argument).
  t.equal(await m.rawreq('global reset-agents-connection syncreq'), 'ok');
  t.match([await row(1), await row(2)], [{ connection_status: 'disconnected', status_code: 5, sync_status: 'syncreq' }, { sync_status: 'syncreq' }]);
  await m.startup(A1);
  t.equal(await m.rawreq(`global disconnect-agents 0 ${Math.floor(Date.now() / 1000) + 60} syncreq_status`), 'ok [{"id":1}]');
  t.match(await row(1), { connection_status: 'disconnected', status_code: 4, sync_status: 'syncreq_status' });
  // update-connection-status to anything but disconnected sets disconnection_time to 0.
  t.ok(((await row(1)).disconnection_time as number) > 0);
  t.equal(await m.rawreq('global update-connection-status {"id":1,"connection_status":"active","sync_status":"synced","status_code":0}'), 'ok');
  t.match(await row(1), { connection_status: 'active', disconnection_time: 0 });

  // Removed: a keepalive (an UPDATE) touches no row, and answers ok; registered again, it is back.
  t.equal(await m.rawreq('global delete-agent 2'), 'ok');
  await m.keepalive(A2);
  t.equal(await m.rawreq('global get-agent-info 2'), 'ok []', 'the removed agent stays removed');
  t.equal(await m.rawreq('global update-keepalive {"id":2,"connection_status":"pending","sync_status":"synced"}'), 'ok');
  t.equal(await m.rawreq('global get-agent-info 2'), 'ok []');
  t.equal(await m.rawreq(`global insert-agent {"id":2,"name":"agent2b","register_ip":"any","internal_key":"${'b'.repeat(64)}","date_add":1795796717}`), 'ok');
  t.match(await row(2), { name: 'agent2b', connection_status: 'never_connected' });
  await m.startup(A2);
  t.match(await row(2), { connection_status: 'pending' }, 'registered again, it is updated again');
});

t.test('the driver leaves nothing behind: a client that does not quit is killed; a wazuh-db that does not start is not kept', async (t) => {
  const m = await startManager(t, { agents: [A1] });
  const c = await m.spawnClient('not-wazuh');
  const pid = c.pid!;
  process.kill(pid, 'SIGSTOP'); // it cannot read its quit
  await t.rejects(c.quit(300), /quit: timed out after 300 ms/);
  t.same(c.proc.exitInfo, { code: null, signal: 'SIGKILL' }, 'killed once the wait was over');
  t.notOk(fs.existsSync(`/proc/${pid}/stat`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')), 'gone');

  // wazuh-db cannot bind its socket any more (queue/db is a file now): restartDb fails, and keeps no process.
  fs.rmSync(path.join(m.home, 'queue/db'), { recursive: true, force: true });
  fs.writeFileSync(path.join(m.home, 'queue/db'), '');
  await t.rejects(m.restartDb(), /exited before ready/);
  t.equal(m.db, null, 'no half-started wazuh-db kept');
  t.notOk('wazuh-db' in m.pids());
});
