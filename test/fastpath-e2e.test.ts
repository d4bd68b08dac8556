// The keepalive that changes nothing (bpf/shim/fastpath.h): the shim sends an unchanged
// update-agent-data, answered ok, as a small tick instead of its bytes, and the controller applies
// the parse it kept. Through the real eBPF path and the simulated daemons: ticks publish exactly the
// events whole records give, a tick still moves an agent that monitord disconnected back to active,
// and a keepalive whose bytes changed comes whole again.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager, type SimSplit } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { startTap, ROOT } from './helpers/tap-process.js';
import { sendControl } from '../controller/src/control/client.js';
import { waitFor } from './helpers/wait.js';
import { wire } from './helpers/frames.js';
import { prng } from './helpers/prng.js';
import { WdbDecoder } from '../controller/src/decode/index.js';
import type { CaptureRecord } from '../controller/src/types.js';

const binDir = join(ROOT, 'build/sim/bin');
const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };

function home(t: Tap.Test, nats: string): string {
  const h = mkdtempSync(join(tmpdir(), 'wnt-fastpath-'));
  t.teardown(() => rmSync(h, { recursive: true, force: true }));
  mkdirSync(join(h, 'etc'));
  writeFileSync(join(h, 'etc/ossec.conf'), '<ossec_config>\n  <cluster>\n    <node_name>node01</node_name>\n  </cluster>\n</ossec_config>\n');
  // One message per keepalive: each event is seen on its own subject.
  writeFileSync(join(h, 'etc/nats-tap.conf'), `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n    <server_url>${nats}</server_url>\n`
    + '    <metrics>no</metrics>\n    <keepalive_batch>0</keepalive_batch>\n  </nats>\n</ossec_config>\n');
  return h;
}

/**
 * The tap's status, asked on its control socket from this process: a `status` command is a Node process
 * to start, half a second or more on a loaded machine — longer than the 400 ms a keepalive is held below,
 * so a poll by command missed the hold as often as not, and waited for it until its time ran out.
 */
async function status(sock: string): Promise<Record<string, any>> {
  const r = await sendControl(sock, 'status');
  if (!r.ok) throw new Error(`status: ${r.error}`);
  return r;
}

/** A NATS server collecting the agent subjects, the simulated manager with agent A, and a tap on both. */
async function tapWithAgent(t: Tap.Test, opts: { version?: 4 | 5; split?: SimSplit } = {}) {
  const { nats, got } = await natsCollecting(t, 'wazuh.agent.>');
  const h = home(t, nats.url);
  const sock = join(h, 'tap.sock');
  const sim = new SimManager({ binDir, home: h, agents: [A], ...opts });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', h, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  return { got, sock, sim };
}

t.test('unchanged keepalives are ticks: the same events as whole records, a disconnected agent comes back, a change comes whole', async (t) => {
  const { got, sock, sim } = await tapWithAgent(t);

  await sim.startup(A);
  for (let i = 0; i < 6; i++) await sim.keepalive(A);
  const keepalives = () => got.filter((m) => m.subject === 'wazuh.agent.001.keepalive').map((m) => m.body);
  await waitFor(() => keepalives().length >= 6, 10_000, 'six keepalive events');
  let st = await status(sock);
  t.ok(st.fastpath.ticks >= 4, `the repeated keepalives came as ticks (${st.fastpath.ticks} of 6)`);
  t.equal(st.fastpath.applied, st.fastpath.ticks, 'every tick applied from the kept parse');
  t.equal(st.fastpath.misses, 0, 'no tick missed its parse');

  const kas = keepalives();
  const strip = (b: Record<string, unknown>) => ({ ...b, event_id: 'x', timestamp: 0, time: 'x' });
  // The first keepalive is the agent's first connection (group_config_status "not synced"); the second,
  // whole, has the bytes the ticks after it repeat.
  t.match(kas[0], { group_config_status: 'not synced' });
  for (const k of kas.slice(2)) t.same(strip(k), strip(kas[1]), 'a tick\'s event is the whole record\'s, but for its id and time');
  t.match(kas[1], {
    agent_id: '001', agent_name: 'web-server-01', ip_address: '192.168.56.21', status: 'active', source: 'remoted', manager_node: 'node01',
  });
  t.equal(new Set(kas.map((k) => k.event_id)).size, kas.length, 'each keepalive its own event_id');
  t.ok(kas.every((k, i) => i === 0 || k.time >= kas[i - 1].time), 'in order');

  // monitord disconnects the agent; its next keepalive (the same bytes: a tick) makes it active again.
  const statuses = () => got.filter((m) => m.subject === 'wazuh.agent.001.status').map((m) => m.body);
  const before = statuses().length;
  const ticksBefore = st.fastpath.ticks;
  const monitord = await sim.spawnMonitord();
  const gone = await monitord.disconnect(Math.floor(Date.now() / 1000) + 60);
  t.same(gone, [1], 'monitord disconnected the agent');
  await sim.keepalive(A);
  await waitFor(() => statuses().length >= before + 2, 10_000, 'two status events');
  t.same(statuses().slice(before).map((b) => [b.previous_status, b.current_status, b.reason, b.source]), [
    ['active', 'disconnected', 'no_keepalive', 'monitord'],
    ['disconnected', 'active', 'keepalive', 'remoted'],
  ]);
  st = await status(sock);
  t.ok(st.fastpath.ticks > ticksBefore, 'that keepalive was a tick, and it still changed the status');

  // A keepalive whose bytes changed (a new address) is sent whole and its change published.
  const keyedBefore = st.fastpath.keyed;
  await sim.keepalive({ ...A, ip: '192.168.56.99' });
  await waitFor(() => keepalives().at(-1)?.ip_address === '192.168.56.99', 10_000, 'the new address');
  st = await status(sock);
  t.ok(st.fastpath.keyed > keyedBefore, 'the changed keepalive came whole (keyed again)');
  t.equal(st.fastpath.held, 0, 'every reply came: nothing held');

  // An unchanged keepalive whose reply does not come yet (wazuh-db stopped) is held for it, and counted:
  // the capture's rounds take again while something is held (wdbtap_take's *more). The same
  // update-agent-data twice on remoted's connection: whole (keyed) the first time, held the second.
  const data = wire('global update-agent-data {"id":1,"version":"Wazuh v4.7.5","agent_ip":"192.168.56.99","connection_status":"active"}', true);
  const remoted = sim.remoted!;
  const n = keepalives().length;
  await remoted.raw(data);
  t.match(await remoted.recv(), /^ok/, 'wazuh-db took the first');
  await waitFor(() => keepalives().length > n, 10_000, 'its keepalive event');
  const db = sim.db!.pid!;
  process.kill(db, 'SIGSTOP');
  let stopped = true;
  t.teardown(() => { if (stopped) process.kill(db, 'SIGCONT'); });
  // A stop is delivered, not done, when kill() returns: each of its threads stops on its own.
  await waitFor(() => readdirSync(`/proc/${db}/task`).every((tid) => readFileSync(`/proc/${db}/task/${tid}/stat`, 'utf8').split(') ')[1][0] === 'T'),
    5000, 'wazuh-db stopped');
  await remoted.raw(data);
  await waitFor(async () => (await status(sock)).fastpath.held === 1, 10_000, 'the second held for its reply');
  t.equal(keepalives().length, n + 1, 'no event before the reply');
  process.kill(db, 'SIGCONT');
  stopped = false;
  t.match(await remoted.recv(), /^ok/, 'wazuh-db answered it once running again');
  await waitFor(() => keepalives().length > n + 1, 10_000, 'its event once wazuh-db replied');
  st = await status(sock);
  t.equal(st.fastpath.held, 0, 'and nothing held any more');
  t.equal(st.fastpath.misses, 0, 'a tick, applied from the kept parse');
});

t.test('5.x: each keepalive is one whole non-blocking write, so the unchanged ones are ticks too; cut into writes, none is', async (t) => {
  for (const split of ['none', 'halves'] as const) {
    const { got, sock, sim } = await tapWithAgent(t, { version: 5, split });
    await sim.startup(A);
    for (let i = 0; i < 6; i++) await sim.keepalive(A);
    const keepalives = () => got.filter((m) => m.subject === 'wazuh.agent.001.keepalive').map((m) => m.body);
    await waitFor(() => keepalives().length >= 6, 10_000, `six keepalive events (split ${split})`);
    const st = await status(sock);
    t.match(keepalives().at(-1), { agent_id: '001', agent_name: 'web-server-01', ip_address: '192.168.56.21', status: 'active', version: 'Wazuh v5.0.0', source: 'remoted' },
      `split ${split}: the 5.x keepalive decoded`);
    if (split === 'none') {
      t.ok(st.fastpath.ticks >= 4, `whole 5.x frames: the repeated keepalives came as ticks (${st.fastpath.ticks} of 6)`);
      t.equal(st.fastpath.applied, st.fastpath.ticks, 'every tick applied from the kept parse');
      t.equal(st.fastpath.misses, 0);
      const kas = keepalives();
      const strip = (b: Record<string, unknown>) => ({ ...b, event_id: 'x', timestamp: 0, time: 'x' });
      for (const k of kas.slice(1)) t.same(strip(k), strip(kas[0]), 'a tick\'s event is the whole record\'s');
    } else {
      t.equal(st.fastpath.ticks, 0, 'frames cut into writes never take the fast path: the controller reassembles them');
    }
    await sim.stop();
  }
});

t.test('the decoder: a tick whose parse it lost, or whose payload hash differs, is a miss that asks for the next whole', async (t) => {
  const missed: number[] = [];
  const d = new WdbDecoder({ onTickMiss: (key) => missed.push(key) });
  const tick = (key: number, hash: number): CaptureRecord => ({
    tsNs: 5n, localIno: 1, peerIno: 2, tgid: 1, tid: 1, syscallBytes: 600, offset: 0, direction: 'request', truncated: false,
    syscall: 'sendto', comm: 'wazuh-remoted', data: new Uint8Array(0), keyed: { key, hash }, tick: { replyTsNs: 6n },
  });
  t.same(d.push(tick(7, 99)), [], 'never kept: nothing');
  t.same(missed, [7], 'the shim is told to send key 7 whole');

  // The shim sends key 7's payload whole (keyed, hash 1), wazuh-db answers ok: the decoder keeps its parse.
  const text = new TextEncoder().encode('global update-agent-data {"id":1,"version":"Wazuh v4.7.5","agent_ip":"10.0.0.1","connection_status":"active"}');
  const frame = (body: Uint8Array, nul: boolean) => {
    const f = new Uint8Array(4 + body.length + (nul ? 1 : 0));
    new DataView(f.buffer).setUint32(0, body.length + (nul ? 1 : 0), true);
    f.set(body, 4);
    return f;
  };
  const rec = (direction: 'request' | 'reply', data: Uint8Array, ts: bigint): CaptureRecord => ({
    tsNs: ts, localIno: direction === 'request' ? 1 : 2, peerIno: direction === 'request' ? 2 : 1, tgid: 1, tid: 1,
    syscallBytes: data.length, offset: 0, direction, truncated: false, syscall: 'sendto', comm: 'wazuh-remoted', data,
  });
  d.push({ ...rec('request', frame(text, true), 1n), keyed: { key: 7, hash: 1 } });
  const whole = d.push(rec('reply', frame(new TextEncoder().encode('ok'), false), 2n));
  t.equal(whole.length, 1, 'the whole keepalive is an exchange');
  t.equal(d.stats().keyed, 1, 'its parse kept for key 7');

  t.same(d.push(tick(7, 2)), [], 'a tick whose hash differs: nothing');
  t.same(missed, [7, 7], 'and a miss');
  const ex = d.push(tick(7, 1));
  t.equal(ex.length, 1, 'the matching tick is an exchange');
  t.same(ex[0].request, whole[0].request, 'of the kept parse (the fields the state applies)');
  t.equal(ex[0].tsNs, 5n, 'at the tick\'s own time');
  t.equal(ex[0].replyTsNs, 6n);
  t.same(d.stats().ticks, 1);
  t.same(d.stats().tickMisses, 2);
});

// The shim's payload hash before it was keyed (bpf/shim/siphash.h): a public chain of murmur3's
// finaliser, each step invertible. Kept here as the attack: the bytes an agent can choose (its os
// name) are solved so that a keepalive announcing another version hashes as the last one.
const M64 = (1n << 64n) - 1n;
const K1 = 0xff51afd7ed558ccdn;
const K2 = 0xc4ceb9fe1a85ec53n;
const GOLD = 0x9e3779b97f4a7c15n;
const inverse = (k: bigint) => { let x = k; for (let i = 0; i < 6; i++) x = (x * (2n - k * x)) & M64; return x; };
const mix = (h: bigint) => { h ^= h >> 33n; h = (h * K1) & M64; h ^= h >> 33n; h = (h * K2) & M64; return h ^ (h >> 33n); };
const unmix = (h: bigint) => { h ^= h >> 33n; h = (h * inverse(K2)) & M64; h ^= h >> 33n; h = (h * inverse(K1)) & M64; return h ^ (h >> 33n); };
const word = (p: Uint8Array, at: number, n = 8) => { let w = 0n; for (let i = n - 1; i >= 0; i--) w = (w << 8n) | BigInt(p[at + i]); return w; };
function unkeyedHash(p: Uint8Array): bigint {
  let h = GOLD ^ BigInt(p.length);
  let i = 0;
  for (; i + 8 <= p.length; i += 8) h = (mix(h ^ word(p, i)) + GOLD) & M64;
  h = mix(h ^ word(p, i, p.length - i) ^ (BigInt(p.length - i) << 56n));
  return h || 1n;
}

/** B's 16 bytes at `at` (a multiple of 8) made printable JSON string characters with unkeyedHash(B) === target. */
function collide(b: Uint8Array, at: number, target: bigint): boolean {
  const n = b.length;
  const rest = n % 8;
  let need = unmix(target) ^ word(b, n - rest, rest) ^ (BigInt(rest) << 56n);
  for (let j = n - rest - 8; j >= at + 16; j -= 8) need = unmix((need - GOLD) & M64) ^ word(b, j);
  let before = GOLD ^ BigInt(n);
  for (let j = 0; j < at; j += 8) before = (mix(before ^ word(b, j)) + GOLD) & M64;
  const ok = (c: number) => c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c;
  const rand = prng(16);
  for (let tries = 0; tries < 1_000_000; tries++) {
    for (let i = 0; i < 8; i++) b[at + i] = 0x61 + Math.floor(rand() * 26);
    const h1 = (mix(before ^ word(b, at)) + GOLD) & M64;
    let w2 = unmix((need - GOLD) & M64) ^ h1;
    const bytes: number[] = [];
    for (let i = 0; i < 8; i++, w2 >>= 8n) bytes.push(Number(w2 & 0xffn));
    if (bytes.every(ok)) {
      b.set(bytes, at + 8);
      return true;
    }
  }
  return false;
}

t.test('a keepalive made to hash as the last one is still sent whole: the payload hash is keyed', async (t) => {
  const { got, sock, sim } = await tapWithAgent(t);
  await sim.startup(A);

  // The agent writes its version and os name; remoted puts them in update-agent-data. Both payloads have
  // the same length, and the 16 bytes the agent solves start at a multiple of 8 of the payload.
  const payload = (version: string, os: string) =>
    `global update-agent-data {"id":1,"version":"${version}","agent_ip":"192.168.56.21","connection_status":"active","os_name":"${os}"}`;
  const lead = payload('Wazuh v4.7.5', '').length - 2; // where the os name's value begins
  const pad = 'x'.repeat((8 - ((lead + 6) % 8)) % 8);
  const osA = `Linux ${pad}${'a'.repeat(16)}`;
  const a = wire(payload('Wazuh v4.7.5', osA), true);
  const b = wire(payload('Wazuh v9.9.9', osA), true);
  const at = lead + 6 + pad.length;
  t.equal(at % 8, 0);
  const bPayload = b.subarray(4);
  t.ok(collide(bPayload, at, unkeyedHash(a.subarray(4))), 'the agent found its 16 bytes');
  t.equal(unkeyedHash(bPayload), unkeyedHash(a.subarray(4)), 'the two payloads collide under the unkeyed hash');
  t.not(Buffer.from(bPayload).toString(), Buffer.from(a.subarray(4)).toString(), 'and differ');

  const versions = () => got.filter((m) => m.subject === 'wazuh.agent.001.keepalive').map((m) => m.body.version);
  const remoted = sim.remoted!;
  for (let i = 0; i < 3; i++) {
    await remoted.raw(a);
    t.match(await remoted.recv(), /^ok/);
  }
  await waitFor(() => versions().length >= 3 && versions().at(-1) === 'Wazuh v4.7.5', 10_000, 'the first version');
  t.ok((await status(sock)).fastpath.ticks >= 2, 'the repeats came as ticks');
  await remoted.raw(b);
  t.match(await remoted.recv(), /^ok/);
  await waitFor(() => versions().length >= 4, 10_000, 'the crafted keepalive');
  t.equal(versions().at(-1), 'Wazuh v9.9.9', 'the new version is published, not the last one again');
  t.equal((await status(sock)).fastpath.misses, 0);
});

t.test('a keepalive held for a reply that never comes (wazuh-db killed mid-request) is let go whole: nothing stays held', async (t) => {
  const { nats } = await natsCollecting(t, 'wazuh.agent.>');
  const h = home(t, nats.url);
  const sock = join(h, 'tap.sock');
  // wazuh-db at 400 ms a request: the keepalive's update-agent-data stays in its hands long enough to kill it there.
  const sim = new SimManager({ binDir, home: h, agents: [A], cpuPerRequestUs: 400_000 });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', h, '--control-socket', sock]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  for (let i = 0; i < 3; i++) await sim.keepalive(A);
  // 30 s: each request burns 400 ms of wazuh-db's CPU, seconds of it before the first tick, and a full
  // run on two busy cores stretched that past 10 s once.
  await waitFor(async () => (await status(sock)).fastpath.ticks >= 1, 30_000, 'a tick: the payload is the controller\'s');
  const expired0 = (await status(sock)).fastpath.expired; // a keepalive queued behind others may have waited a second already
  const pending = sim.keepalive(A).catch(() => null);
  // select-agent-group answered after 400 ms of wazuh-db's CPU, then update-agent-data in its hands for as
  // long: killed once the shim holds it (a fixed 600 ms missed it on a loaded machine: nothing was held).
  await waitFor(async () => (await status(sock)).fastpath.held >= 1, 20_000, 'the keepalive held for its reply')
    .catch(async (e) => { const s = await status(sock); throw new Error(`${e.message}: ${JSON.stringify({ fastpath: s.fastpath, decoder: s.decoder, capture: s.capture })}`); });
  process.kill(sim.db!.pid!, 'SIGKILL');
  await pending;
  // Held for good before: the controller's rounds never rested again, and every resynchronisation
  // waited for that keepalive's time.
  await waitFor(async () => { const f = (await status(sock)).fastpath; return f.expired > expired0 && f.held === 0; }, 5000,
    'the held keepalive let go after a second').catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify((await status(sock)).fastpath)}`); });
  const f = (await status(sock)).fastpath;
  t.ok(f.expired > expired0, `the keepalive wazuh-db died with let go whole (expired ${expired0} → ${f.expired})`);
  t.equal(f.held, 0, 'nothing held');
});
