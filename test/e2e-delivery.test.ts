// The agent end to end with JetStream and its disk spool: NATS away at start,
// then the tap killed with SIGKILL and restarted — no status event lost, none
// duplicated in the stream, per-agent order kept.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { SimManager } from '../scripts/sim/manager.mjs';
import { freePort, startNatsServer } from './helpers/nats-server.js';
import { runTap, startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { contractJson, kvEntryError } from './helpers/contract.js';
import { parseJournal } from '../controller/src/state/sources/status-journal.js';

const agents = Array.from({ length: 5 }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, ip: `10.0.0.${i + 1}` }));

async function streamEvents(url: string): Promise<Record<string, any>[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('WAZUH');
    const out: Record<string, any>[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < 10_000; seq++) {
      const m = await jsm.streams.getMessage('WAZUH', { seq });
      if (m) out.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), ...m.json<object>() });
    }
    return out;
  } finally {
    await nc.close();
  }
}

t.test('NATS away at start, tap killed and restarted: every status event once, in order', async (t) => {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'wnt-deliv-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${port}</server_url>\n    <jetstream>yes</jetstream>\n`
    + `    <create_stream>yes</create_stream>\n    <reconnect_delay>1</reconnect_delay>\n    <keepalive_events>no</keepalive_events>\n`
    + `    <agents_kv>yes</agents_kv>\n`);
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents });
  t.teardown(() => sim.stop());
  await sim.start();

  const args = ['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--node', 'n1'];
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  // NATS does not exist yet: capture goes on, events wait in the spool.
  for (const a of agents) await sim.startup(a);
  for (const a of agents) await sim.keepalive(a);

  // Once the events are in the spool (2 lifecycle + 10 status), the tap is killed without a
  // chance to flush, and restarted on the same spool. (What the kernel held but the tap had not
  // read yet dies with it: the restart's resync from wazuh-db covers that, as a net change.)
  const spooled = async () => {
    const r = await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')]);
    return r.code === 0 ? Number(JSON.parse(r.stdout).spool?.records ?? 0) : 0;
  };
  const until = Date.now() + 10_000;
  while ((await spooled()) < 12 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  t.equal(await spooled(), 12, 'ten status events and two lifecycle events wait in the spool');
  await tap.stop('SIGKILL');
  tap = await startTap(args);
  for (const a of agents.slice(0, 3)) await sim.shutdown(a);

  const nats = await startNatsServer({ port, jetstream: true });
  t.teardown(() => nats.stop());
  // 5 startups + 5 first keepalives + 3 shutdowns, and the lifecycle events.
  let events: Record<string, any>[] = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    events = await streamEvents(nats.url).catch(() => []);
    if (events.filter((e) => e.event_type === 'status_change').length >= 13) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await new Promise((r) => setTimeout(r, 1500)); // a duplicate would be stored by now
  events = await streamEvents(nats.url);
  const status = events.filter((e) => e.event_type === 'status_change');
  t.equal(status.length, 13, 'every status event, once');
  t.equal(new Set(status.map((e) => e.event_id)).size, 13, 'no duplicate event_id in the stream');
  t.ok(status.every((e) => e.msgId === e.event_id), 'Nats-Msg-Id = event_id');
  for (const a of agents) {
    const id = String(a.id).padStart(3, '0');
    const seq = status.filter((e) => e.agent_id === id).map((e) => e.current_status);
    t.same(seq, a.id <= 3 ? ['pending', 'active', 'disconnected'] : ['pending', 'active'], `agent ${id} in order`);
  }
  t.notOk(events.some((e) => e.event_type === 'keepalive'), 'keepalive_events no: none published');

  // agents_kv: each agent's latest status in the KV bucket wazuh_agents, key = agent id.
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const latest = async (id: string) => {
    const value = (await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: `$KV.wazuh_agents.${id}` }))?.json<Record<string, unknown>>();
    const e = kvEntryError('wazuh_agents', id, value);
    if (e) t.fail(`KV entry outside the contract of docs/asyncapi.yaml: ${e}`);
    return value;
  };
  t.match(await latest('001'), { agent_id: '001', current_status: 'disconnected' });
  t.match(await latest('005'), { agent_id: '005', current_status: 'active' });
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a transition while the tap was down (or lost in its crash) is published at restart', async (t) => {
  const nats = await startNatsServer({});
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const got: Record<string, any>[] = [];
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m) => { got.push(contractJson(t, m)); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();

  const home = mkdtempSync(join(tmpdir(), 'wnt-journal-'));
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n`);
  const [A, B] = agents;
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  const args = ['run', '--home', home, '--control-socket', join(home, 'tap.sock')];
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  await sim.startup(B);
  const until = Date.now() + 10_000;
  while (got.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.equal(got.length, 3, 'A pending, A active, B pending');

  await tap.stop('SIGKILL');
  await sim.shutdown(A); // nobody captures this
  await sim.keepalive(B); // nor this
  tap = await startTap(args);
  const until2 = Date.now() + 10_000;
  while (new Set(got.map((e) => e.event_id)).size < 5 && Date.now() < until2) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  // Core NATS is at-least-once: what the killed tap had sent but not yet confirmed is sent
  // again from its spool, with the same event_id. Consumers de-duplicate by event_id.
  const seen = new Set<string>();
  const unique = got.filter((e) => !seen.has(e.event_id) && seen.add(e.event_id));
  t.same(unique.slice(3).map((e) => [e.agent_id, e.previous_status, e.current_status, e.status_code]).sort(), [
    ['001', 'active', 'disconnected', 3],
    ['002', 'pending', 'active', 0],
  ], 'each missed change is published once, from the last published status');
  t.equal(unique.length, 5, 'nothing else');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});

t.test('a tap killed between the spool\'s write and the journal\'s: the next start goes on from the spooled status', async (t) => {
  // A status change is written to the spool, then its line to agents.status: a SIGKILL between the
  // two leaves the spool with a change the journal lacks. The next start replays it to the consumers,
  // and must not compare wazuh-db with the journal's older status (chaos-e2e found the chain broken:
  // `was active, event says disconnected → active`). Here the journal's last lines are taken away
  // by hand, as that SIGKILL would have left it, while the changes wait in the spool (NATS away).
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'wnt-between-'));
  writeOssecConf(home, `    <server_url>nats://127.0.0.1:${port}</server_url>\n    <jetstream>yes</jetstream>\n`
    + `    <create_stream>yes</create_stream>\n    <reconnect_delay>1</reconnect_delay>\n    <keepalive_events>no</keepalive_events>\n`);
  const [A, B] = agents;
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A, B] });
  t.teardown(() => sim.stop());
  await sim.start();
  const sock = join(home, 'tap.sock');
  const args = ['run', '--home', home, '--control-socket', sock, '--node', 'n1'];
  let tap = await startTap(args);
  t.teardown(() => tap.stop('SIGKILL'));
  for (const a of [A, B]) {
    await sim.startup(a);
    await sim.keepalive(a);
  }
  const journalPath = join(home, 'var/nats-tap/agents.status');
  /** The journal's last line for an agent (the one that counts). */
  const journaled = (id: number) => parseJournal(readFileSync(journalPath, 'utf8')).get(id)?.status;
  const until = Date.now() + 10_000;
  while ((journaled(1) !== 'active' || journaled(2) !== 'active') && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  t.same([journaled(1), journaled(2)], ['active', 'active'], 'both agents\' changes journaled (and spooled: NATS is away)');
  await tap.stop('SIGKILL');
  writeFileSync(journalPath, '1 pending 0\n2 pending 0\n'); // the `active` lines never written
  await sim.shutdown(A); // a change while the tap is down: told at the next start
  tap = await startTap(args);
  t.ok(tap.logs.some((l) => l.msg === 'agents.status: statuses the spool held and the journal lacked, taken from the spool' && l.agents === 2),
    'the start says what it took from the spool');

  const nats = await startNatsServer({ port, jetstream: true });
  t.teardown(() => nats.stop());
  let status: Record<string, any>[] = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    status = (await streamEvents(nats.url).catch(() => [])).filter((e) => e.event_type === 'status_change');
    if (status.length >= 5) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  await new Promise((r) => setTimeout(r, 1500)); // anything more would be stored by now
  status = (await streamEvents(nats.url)).filter((e) => e.event_type === 'status_change');
  const chain = (id: string) => status.filter((e) => e.agent_id === id).map((e) => `${e.previous_status}>${e.current_status}`);
  t.same(chain('001'), ['never_connected>pending', 'pending>active', 'active>disconnected'], 'A: the spooled changes, then the one made while down, from active');
  t.same(chain('002'), ['never_connected>pending', 'pending>active'], 'B: the spooled changes, nothing told twice');
  t.same([journaled(1), journaled(2)], ['disconnected', 'active'], 'the journal caught up');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});
