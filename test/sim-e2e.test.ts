// The simulator's real bytes on the wdb socket (read and written by wazuh-db, traced with strace -yy,
// which names both socket inodes of each connection) run through WdbDecoder + AgentStateTable: every
// transition end to end, 4.x and 5.x (no NUL, sorted keys), with the table seeded by the initial
// sync, and no key seen on the wire anywhere in the output.
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SimManager, type SimAgent } from '../scripts/sim/manager.mjs';
import { buildSim } from '../scripts/sim/build-sim.mjs';
import { WdbDecoder } from '../controller/src/decode/index.js';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { initialSync, seedTable } from '../controller/src/state/sources/initial-sync.js';
import type { AgentEvent, CaptureRecord, StatusChangeEvent, WdbExchange, WdbRequest } from '../controller/src/types.js';
import { straceAttached, wholeCalls } from './helpers/strace.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binDir = await buildSim(path.join(repo, 'build', 'sim'));

interface Io { tid: number; tsNs: bigint; call: 'recvfrom' | 'sendto'; srv: number; cli: number; bytes: Buffer; ret: number }

/** strace -f -yy -ttt -xx lines, with `<unfinished ...>` / `<... resumed>` pairs joined per thread. */
function parseTrace(file: string): Io[] {
  const out: Io[] = [];
  const full = /^(\d+)\s+(\d+)\.(\d{6}) (recvfrom|sendto)\(\d+<UNIX-STREAM:\[(\d+)->(\d+)[^>]*>, "((?:\\x[0-9a-f]{2})*)"(\.\.\.)?, \d+, [^)]*\)\s+= (-?\d+)/;
  for (const l of wholeCalls(file, /^(\d+)\s+\d+\.\d{6} <\.\.\. (?:recvfrom|sendto) resumed>(.*)$/)) {
    const m = full.exec(l);
    if (!m) continue;
    if (m[8]) throw new Error('strace cut a buffer: raise -s');
    const ret = Number(m[9]);
    if (ret <= 0) continue;
    out.push({
      tid: Number(m[1]), tsNs: BigInt(m[2]) * 1_000_000_000n + BigInt(m[3]) * 1000n, call: m[4] as Io['call'],
      srv: Number(m[5]), cli: Number(m[6]), bytes: Buffer.from(m[7].replaceAll('\\x', ''), 'hex').subarray(0, ret), ret,
    });
  }
  return out;
}

/** Inode of every socket each running sim process holds → that process's comm (15 characters). */
function socketOwners(m: SimManager, into: Map<number, string>): void {
  for (const [name, pid] of Object.entries(m.pids())) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const l = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (l) into.set(Number(l[1]), name.slice(0, 15));
      } catch {
        // closed meanwhile
      }
    }
  }
}

function traceDb(t: Test, pid: number, file: string): Promise<ChildProcess> {
  return straceAttached(t, pid, file, 'recvfrom,sendto', ['-yy', '-ttt']);
}

const A: SimAgent[] = [1, 2, 3, 4].map((id) => ({ id, name: `agent${id}`, ip: `10.0.0.${id}` }));

for (const version of [4, 5] as const) {
  t.test(`every transition end to end through the simulator's bytes (${version}.x)`, async (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-e2e-'));
    t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
    const m = new SimManager({ binDir, home, agents: A, version, pageRows: 2 });
    t.teardown(() => m.stop());
    await m.start();
    const comm = (d: string) => m.daemon(d).slice(0, 15);

    // The tap starts: the table is seeded from wazuh-db itself.
    const table = new AgentStateTable({ managerNode: 'mgr', wallClockMs: (ns) => Number(ns / 1_000_000n) });
    const sync = await initialSync({ home, timeoutMs: 5000 });
    t.equal(sync.reason, null);
    t.equal(seedTable(table, sync.agents), 4);
    t.same(table.countsByStatus().never_connected, 4);

    const trace = path.join(home, 'db.trace');
    const st = await traceDb(t, m.db!.pid!, trace);
    const owners = new Map<number, string>();
    const monitord = await m.spawnMonitord();
    const authd = await m.spawnAuthd();
    const cluster = await m.spawnClusterd();

    for (const a of A.slice(0, 3)) await m.startup(a);
    for (const a of A.slice(0, 3)) await m.keepalive(a);
    await m.keepalive(A[0]);
    await m.shutdown(A[2]);
    t.same(await m.pollActive(), [1, 2]);
    t.same(await monitord.disconnect(Math.floor(Date.now() / 1000) + 60), [1, 2], 'monitord sweeps 1 and 2 (due pages of 2)');
    t.match(await monitord.agentInfo(1), /"connection_status":"disconnected"/);
    const key = await authd.register({ id: 9, name: 'web09', ip: 'any' });
    t.match(key, /^[0-9a-f]{64}$/);
    await authd.rename(9, 'web09b');
    await m.refuse(2);
    await m.startup(A[0]);
    await m.keepalive(A[0]);
    t.match(await m.rawreq('global update-keepalive {"id":1,"connection_status":"pending"'), /^err /, 'a bad request: err');
    socketOwners(m, owners);
    await m.restartRemoted(); // the new remoted's reset-agents-connection: agent 1 → disconnected (5)
    t.match(await authd.remove(4), /^ok/);
    await cluster.syncSet({ id: 20, name: 'w20', ip: '10.2.0.20' }, 'active', 'worker01');
    // Agent 2 (refused, code 1) comes back with a keepalive: active, and update-agent-data keeps its code.
    await m.keepalive(A[1]);
    socketOwners(m, owners);
    const infoKey = /"internal_key":"([0-9a-f]{64})"/.exec(await monitord.agentInfo(9))?.[1];
    t.equal(infoKey, key, 'the key went over the wire twice: insert-agent and get-agent-info');
    // The client can read a reply before strace has written wazuh-db's sendto line: wait (bounded) until
    // the trace holds as many replies as requests before detaching.
    for (let i = 0; i < 50; i++) {
      const io = parseTrace(trace);
      const reqs = io.filter((x) => x.call === 'recvfrom' && x.ret === 4).length;
      if (io.filter((x) => x.call === 'sendto').length >= reqs) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    st.kill('SIGINT');
    await new Promise((r) => st.once('exit', r));

    // Capture records as the kernel would report them: requests as wazuh-db read them (header, then
    // payload: the stream, in pieces), replies as wazuh-db wrote them.
    const ios = parseTrace(trace).sort((a, b) => (a.tsNs < b.tsNs ? -1 : a.tsNs > b.tsNs ? 1 : 0));
    t.ok(ios.length > 40, `traced ${ios.length} reads and writes`);
    t.ok(ios.some((io) => io.bytes.includes(Buffer.from(key))), 'the key is on the wire');
    const decoder = new WdbDecoder();
    const exchanges: WdbExchange<WdbRequest>[] = [];
    const events: AgentEvent[] = [];
    for (const io of ios) {
      const request = io.call === 'recvfrom';
      // Short connections (start-up queries, the reset) closed before they could be seen: remoted's.
      const who = owners.get(io.cli) ?? comm('remoted');
      const rec: CaptureRecord = {
        tsNs: io.tsNs, tgid: request ? 1 : 2, tid: io.tid, comm: request ? who : comm('db'),
        localIno: request ? io.cli : io.srv, peerIno: request ? io.srv : io.cli, direction: request ? 'request' : 'reply',
        syscallBytes: io.ret, offset: 0, data: io.bytes, truncated: false, syscall: io.call,
      };
      for (const ex of decoder.push(rec)) {
        exchanges.push(ex);
        events.push(...table.apply(ex));
      }
    }
    const ds = decoder.stats();
    t.equal(ds.reassembler.malformed, 0);
    t.equal(ds.pairer.unpaired, 0);
    t.equal(ds.pairer.requests, ds.pairer.paired, `every request paired with its reply: ${JSON.stringify(ds.pairer)}`);

    const src = (d: string) => (version === 5 && d === 'authd' ? 'wazuh-manager' : d);
    const got = events.filter((e): e is StatusChangeEvent => e.event_type === 'status_change')
      .map((e) => `${e.agent_id}:${e.previous_status}>${e.current_status}/${e.status_code}/${e.reason}/${e.source}`);
    t.same(got, [
      '001:never_connected>pending/0/agent_startup/remoted',
      '002:never_connected>pending/0/agent_startup/remoted',
      '003:never_connected>pending/0/agent_startup/remoted',
      '001:pending>active/0/keepalive/remoted',
      '002:pending>active/0/keepalive/remoted',
      '003:pending>active/0/keepalive/remoted',
      '003:active>disconnected/3/agent_shutdown/remoted',
      '001:active>disconnected/4/no_keepalive/monitord',
      '002:active>disconnected/4/no_keepalive/monitord',
      `009:unknown>never_connected/0/registered/${src('authd')}`,
      '002:disconnected>disconnected/1/invalid_version/remoted',
      '001:disconnected>pending/0/agent_startup/remoted',
      '001:pending>active/0/keepalive/remoted',
      '001:active>disconnected/5/manager_reset/remoted',
      `004:never_connected>unknown/0/removed/${src('authd')}`,
      '002:disconnected>active/1/keepalive/remoted',
    ], 'exactly one status event per transition, in order');
    t.equal(events.filter((e) => e.event_type === 'keepalive').length, 6);
    t.match(table.get(9), { name: 'web09b', status: 'never_connected' });
    t.match(table.get(20), { name: 'w20', status: 'active', node: 'worker01' }, 'cluster sync applied silently');
    t.match(table.stats(), { invalid: 1, rejected: 0 }, 'the broken request is counted as invalid (wazuh-db answered err)');

    // The table agrees with wazuh-db about every agent.
    const after = await initialSync({ home, timeoutMs: 5000 });
    t.equal(after.reason, null);
    for (const row of after.agents) {
      t.same([table.get(row.id)?.status, table.get(row.id)?.status_code], [row.connection_status, row.status_code],
        `agent ${row.id}: ${row.connection_status}, code ${row.status_code}`);
    }
    t.equal(table.get(4), undefined);

    const dump = JSON.stringify({ events, exchanges, agents: table.all(), stats: table.stats(), ds }, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    t.notMatch(dump, key, 'the registration key appears nowhere in the output');
    for (const io of ios) {
      for (const k of io.bytes.toString('latin1').matchAll(/"internal_key":"([0-9a-f]{64})"/g)) t.notMatch(dump, k[1]);
    }
    t.notMatch(dump, 'internal_key');
  });
}
