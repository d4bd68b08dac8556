// The simulator's background traffic (SimManager `background`, WAZUH-PROTOCOL §2 "Seen on a running
// 4.7.5 manager"), checked under strace, each daemon traced on its own: remoted's poll of the active
// agents on one long-lived connection of its own (paged on `due`, only once it tracks an agent), its
// get-distinct-groups each on a short connection, its agent messages from 4 worker connections;
// analysisd's poll on its own connection; monitord's get-agent-info (and find-agent) after a sweep's
// hits. Every frame one sendto, 4.x with the NUL and flags 0, 5.x without and MSG_NOSIGNAL; threads
// keep the process's comm; stop() leaves nothing running. Off by default: no background without it.
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimManager, REAL_BACKGROUND, type SimAgent } from '../scripts/sim/manager.mjs';
import { buildSim } from '../scripts/sim/build-sim.mjs';
import { straceAttached, wholeCalls } from './helpers/strace.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = await buildSim(path.join(repo, 'build', 'sim'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const A: SimAgent[] = [1, 2, 3].map((id) => ({ id, name: `agent${id}`, ip: `10.0.0.${id}` }));

interface Send { tid: number; conn: string; bytes: Buffer; len: number; flags: string; ret: number }

/** A client's sendto calls on UNIX stream sockets (strace -f -yy -xx), `<unfinished ...>` pairs joined per thread; `conn` is the client's socket inode. */
function parseSends(file: string): Send[] {
  const out: Send[] = [];
  const full = /^(\d+)\s+sendto\(\d+<UNIX-STREAM:\[(\d+)(?:->(\d+))?\]>, "((?:\\x[0-9a-f]{2})*)"(\.\.\.)?, (\d+), ([^,]+), NULL, 0\)\s+= (-?\d+)/;
  for (const l of wholeCalls(file, /^(\d+)\s+<\.\.\. sendto resumed>(.*)$/)) {
    const m = full.exec(l);
    if (!m) continue;
    if (m[5]) throw new Error('strace cut a buffer: raise -s');
    // The client's own socket inode names the connection (strace does not always resolve the peer).
    out.push({ tid: Number(m[1]), conn: m[2], bytes: Buffer.from(m[4].replaceAll('\\x', ''), 'hex'), len: Number(m[6]), flags: m[7], ret: Number(m[8]) });
  }
  return out;
}

function trace(t: Test, pid: number, file: string): Promise<ChildProcess> {
  return straceAttached(t, pid, file, 'sendto', ['-yy']);
}

async function detach(st: ChildProcess): Promise<void> {
  if (st.exitCode !== null || st.signalCode !== null) return;
  const gone = new Promise((r) => st.once('exit', r));
  st.kill('SIGINT');
  await gone;
}

for (const version of [4, 5] as const) {
  t.test(`background traffic (${version}.x): the frames, their connections and processes of §2`, async (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bg-'));
    t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
    const m = new SimManager({ binDir, home, agents: A, version, pageRows: 2, background: { remotedPollMs: 100, groupsMs: 150, analysisdPollMs: 120 } });
    t.teardown(() => m.stop());
    await m.start();
    const monitord = await m.spawnMonitord();
    const nul = version === 4 ? '\0' : '';
    const flags = version === 4 ? '0' : 'MSG_NOSIGNAL';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bg-trace-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const pids = m.pids();
    const files = { remoted: path.join(dir, 'remoted'), analysisd: path.join(dir, 'analysisd'), monitord: path.join(dir, 'monitord') };
    const straces = [
      await trace(t, pids[m.daemon('remoted')], files.remoted),
      await trace(t, pids[m.daemon('analysisd')], files.analysisd),
      await trace(t, pids[m.daemon('monitord')], files.monitord),
    ];

    await sleep(450); // no agent yet: remoted does not poll; its groups and analysisd's polls go on
    for (const a of A) await m.startup(a);
    for (const a of A) await m.keepalive(a);
    await sleep(450);
    await m.shutdown(A[2]);
    t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) + 60), [1, 2], 'the sweep disconnects 1 and 2');
    await sleep(150);
    // Every thread of every daemon is named as its process: 4.x names none of its threads.
    for (const d of ['remoted', 'analysisd', 'monitord']) {
      const pid = pids[m.daemon(d)];
      const comms = new Set(fs.readdirSync(`/proc/${pid}/task`).map((x) => fs.readFileSync(`/proc/${pid}/task/${x}/comm`, 'utf8').trim()));
      t.same([...comms], [m.daemon(d).slice(0, 15)], `${d}: every thread's comm is ${m.daemon(d).slice(0, 15)}`);
    }
    const remotedThreads = fs.readdirSync(`/proc/${pids[m.daemon('remoted')]}/task`).length;
    for (const st of straces) await detach(st);
    if (process.env.SIM_BG_KEEP) fs.cpSync(dir, `${process.env.SIM_BG_KEEP}/${version}`, { recursive: true });

    const text = (s: Send) => s.bytes.subarray(4).toString('latin1');
    const check = (who: string, sends: Send[]) => {
      for (const s of sends) {
        if (s.ret !== s.len || s.len !== s.bytes.readUInt32LE(0) + 4 || s.flags !== flags || !text(s).startsWith('global ') || !text(s).endsWith(`${nul}`) || (version === 5 && text(s).includes('\0'))) {
          t.fail(`${who}: not one whole ${version}.x frame a sendto: ${JSON.stringify({ ...s, bytes: text(s) })}`);
          return;
        }
      }
      t.pass(`${who}: ${sends.length} frames, each one whole sendto (flags ${flags}, ${version === 4 ? 'the NUL' : 'no NUL'})`);
    };

    // remoted
    const rem = parseSends(files.remoted);
    check('remoted', rem);
    const poll = (last: number) => `global get-agents-by-connection-status ${last} active node01 -1${nul}`;
    const groups = `global get-distinct-groups ${nul}`;
    const polls = rem.filter((s) => text(s).startsWith('global get-agents-by-connection-status '));
    const firstAgent = rem.findIndex((s) => !text(s).startsWith('global get-agents-by-connection-status ') && text(s) !== groups);
    t.ok(firstAgent > 0, 'agent messages traced');
    t.equal(rem.slice(0, firstAgent).filter((s) => polls.includes(s)).length, 0, 'no poll while remoted tracks no agent');
    t.ok(polls.length >= 4, `remoted polled (${polls.length} frames)`);
    t.equal(new Set(polls.map((s) => s.conn)).size, 1, 'all its polls on one long-lived connection');
    t.ok(rem.every((s) => polls.includes(s) || s.conn !== polls[0]?.conn), 'that connection carries nothing else');
    t.equal(polls[0]?.bytes.readUInt32LE(0), version === 4 ? 58 : 57, `header ${version === 4 ? 58 : 57} (§9: 58 with the NUL)`);
    // Pages of 2 rows: a listing of more than 2 active agents asks again from the last id (paged on `due`).
    const pollTexts = polls.map(text);
    t.ok(pollTexts.every((x) => x === poll(0) || x === poll(2)), 'polls from last_id 0, and from 2 after a `due` page of 1 and 2');
    t.ok(pollTexts.includes(poll(2)), 'a second page was asked while 3 agents were active');
    pollTexts.forEach((x, i) => { if (x === poll(2) && pollTexts[i - 1] !== poll(0)) t.fail(`page 2 without page 1 before it (#${i})`); });
    const grp = rem.filter((s) => text(s) === groups);
    t.ok(grp.length >= 5, `get-distinct-groups every interval (${grp.length})`);
    t.equal(grp[0]?.bytes.readUInt32LE(0), version === 4 ? 28 : 27, 'get-distinct-groups: header of §9');
    const connCount = (c: string) => rem.filter((s) => s.conn === c).length;
    t.ok(grp.every((s) => connCount(s.conn) === 1), 'each get-distinct-groups on a connection of its own');
    t.equal(new Set(grp.map((s) => s.conn)).size, grp.length, 'a new one each time');
    const agentMsgs = rem.filter((s) => !polls.includes(s) && !grp.includes(s));
    t.same(agentMsgs.map((s) => text(s).split(/[ {]/)[1]), [
      'update-keepalive', 'update-keepalive', 'update-keepalive',
      ...(version === 4 ? ['select-agent-group', 'set-agent-groups', 'update-agent-data'] : ['select-agent-group', 'update-agent-data']),
      ...(version === 4 ? ['select-agent-group', 'set-agent-groups', 'update-agent-data'] : ['select-agent-group', 'update-agent-data']),
      ...(version === 4 ? ['select-agent-group', 'set-agent-groups', 'update-agent-data'] : ['select-agent-group', 'update-agent-data']),
      'update-connection-status',
    ], 'the agent messages, in order');
    const workerConns = agentMsgs.filter((s) => !text(s).startsWith('global set-agent-groups')).map((s) => s.conn);
    t.equal(new Set(workerConns).size, 4, 'on 4 long-lived worker connections');
    t.ok(workerConns.every((c, i) => i === 0 || c !== workerConns[i - 1] || text(agentMsgs.filter((s) => !text(s).startsWith('global set-agent-groups'))[i]).startsWith('global update-agent-data')),
      'each message on the next worker\'s connection (a keepalive\'s pair on one)');
    t.equal(new Set(agentMsgs.map((s) => s.tid)).size, 4, 'from 4 worker threads');
    t.equal(remotedThreads, 7, 'remoted: its main thread, 4 workers, the poll and the groups timer');

    // analysisd
    const an = parseSends(files.analysisd);
    check('analysisd', an);
    t.ok(an.length >= 6, `analysisd polled (${an.length} frames) from the start, agents or none`);
    t.ok(an.every((s) => text(s) === poll(0) || text(s) === poll(2)), 'only its paged poll');
    t.equal(new Set(an.map((s) => s.conn)).size, 1, 'on its own one connection');

    // monitord
    const mon = parseSends(files.monitord).map(text);
    check('monitord', parseSends(files.monitord));
    const find = (name: string, ip: string) => (version === 4 ? `global find-agent {"name":"${name}","ip":"${ip}"}${nul}` : `global find-agent {"ip":"${ip}","name":"${name}"}${nul}`);
    t.match(mon[0], /^global disconnect-agents 0 \d+ synced/, 'the sweep (one page: 2 rows, pages of 2)');
    t.same(mon.slice(1), [
      `global get-agent-info 1${nul}`, find('agent1', '10.0.0.1'),
      `global get-agent-info 2${nul}`, find('agent2', '10.0.0.2'),
    ], 'after the sweep: get-agent-info of each agent it disconnected, then find-agent with its name and register_ip (§9)');
    t.equal(new Set(parseSends(files.monitord).map((s) => s.conn)).size, 1, 'monitord: all on its one long-lived connection');

    // stop(): nothing of the simulator runs on, so none of its timers or connections.
    const all = Object.values(m.pids());
    await m.stop();
    const alive = all.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
    t.same(alive, [], 'stop() ended every daemon, their timer threads with them');
    t.notOk(fs.existsSync(m.wdbPath), 'and wazuh-db\'s socket is gone');
  });
}

t.test('background: off by default; true is the real intervals; bad values refused', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bg-'));
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  t.equal(new SimManager({ binDir, home }).background, null, 'off by default');
  t.same(new SimManager({ binDir, home, background: true }).background, { remotedPollMs: 5000, groupsMs: 10000, analysisdPollMs: 5000 }, 'true: 5 s, 10 s, 5 s');
  t.same(REAL_BACKGROUND, { remotedPollMs: 5000, groupsMs: 10000, analysisdPollMs: 5000 });
  t.same(new SimManager({ binDir, home, background: { groupsMs: 200 } }).background, { remotedPollMs: 5000, groupsMs: 200, analysisdPollMs: 5000 }, 'the others real');
  for (const bad of [{ groupsMs: 0 }, { remotedPollMs: 1.5 }, { analysisdPollMs: 3_600_001 }, { pollMs: 100 }, 'yes', null]) {
    t.throws(() => new SimManager({ binDir, home, background: bad as never }), TypeError, `refused: ${JSON.stringify(bad)}`);
  }
});

t.test('background: restartRemoted and restartManager keep it; a new remoted polls once it tracks an agent again', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bg-'));
  t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
  const m = new SimManager({ binDir, home, agents: A, persistDb: true, background: { remotedPollMs: 50, groupsMs: 50, analysisdPollMs: 50 } });
  t.teardown(() => m.stop());
  await m.start();
  const threads = (d: string) => fs.readdirSync(`/proc/${m.pids()[m.daemon(d)]}/task`).length;
  t.equal(threads('remoted'), 7);
  await m.restartRemoted();
  t.equal(threads('remoted'), 7, 'restartRemoted: the new remoted has its background threads');
  await m.restartManager({ reconnect: [A[0]] });
  t.equal(threads('remoted'), 7, 'restartManager: remoted too');
  t.equal(threads('analysisd'), 4, 'and analysisd its poll thread');
  t.same(await m.pollActive(), [1], 'agent 1 back');
  await sleep(400);
  // wazuh-db restarted: the polls' connections break; the daemons live on and poll again on new ones.
  await m.restartDb();
  await sleep(500); // ten polls of each
  t.same([m.analysisd?.exitInfo ?? null, m.remoted?.proc.exitInfo ?? null], [null, null], 'analysisd and remoted run on: a write on the broken connection is an error to retry (SIGPIPE ignored), not their end');
  t.same(await m.analysisdPollActive(), [1], 'analysisd asks on a new connection');
  const plain = new SimManager({ binDir, home: fs.mkdtempSync(path.join(os.tmpdir(), 'sim-bg-plain-')), agents: A });
  t.teardown(() => fs.rmSync(plain.home, { recursive: true, force: true }));
  t.teardown(() => plain.stop());
  await plain.start();
  t.equal(fs.readdirSync(`/proc/${plain.pids()[plain.daemon('remoted')]}/task`).length, 1, 'without background: remoted is one thread, as before');
});
