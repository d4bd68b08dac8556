// examples/consumer, as a platform team would run it: compiled alone by its own tsconfig,
// against a real nats-server with JetStream fed by a real tap (the simulator, real eBPF),
// it prints the agents' current state from the KV bucket, then every event of the stream
// through its durable consumer — and a second run resumes after the last acknowledged one.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { SimManager } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { ROOT, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { waitFor } from './helpers/wait.js';
import { schemaValidator } from './helpers/contract.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const run = promisify(execFile);
const EXAMPLE = join(ROOT, 'examples/consumer');

t.test('the example consumer: KV state, then the stream through a durable consumer that resumes', async (t) => {
  // It type-checks and builds on its own (its tsconfig, its imports only).
  await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(EXAMPLE, 'tsconfig.json')], { cwd: EXAMPLE });

  const { nats, nc, got } = await natsCollecting(t, 'wazuh.>', { jetstream: true });
  const home = mkdtempSync(join(tmpdir(), 'wnt-example-'));
  writeOssecConf(home, '    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n    <agents_kv>yes</agents_kv>\n');
  const A = { id: 751, name: 'example-agent', ip: '192.168.56.51' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--nats-url', nats.url, '--node', 'example', '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await sim.keepalive(A);
  const jsm = await jetstreamManager(nc);
  const stored = async () => (await jsm.streams.info('WAZUH')).state.messages;
  // The keepalive comes in a keepalive_batch message (the default).
  const of751 = (m: { body: Record<string, any> }) => m.body.agent_id === '751' || m.body.events?.some((e: { agent_id: string }) => e.agent_id === '751');
  await waitFor(() => got.filter(of751).length >= 3, 10_000, 'pending, active, keepalive');
  // Everything core subscribers saw is in the stream (the tap publishes to JetStream, acknowledged).
  let n = 0;
  for (const end = Date.now() + 10_000; (n = await stored()) < got.length && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
  t.equal(n, got.length, 'the stream holds every event');

  const example = async (...args: string[]) => {
    const r = await run(process.execPath, [join(EXAMPLE, 'dist/main.js'), '--json', '--durable', 'example-test', ...args],
      { env: { ...process.env, NATS_URL: nats.url }, timeout: 30_000 });
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  };
  const first = await example('--max-events', String(n));
  const agents = first.filter((l) => l.kind === 'agent');
  t.same(agents.map((l) => [l.agent_id, l.state.current_status]), [['751', 'active']], 'the current state, from the KV bucket');
  t.ok(schemaValidator('StatusChangeEvent')(agents[0].state), 'a KV value is a status change of the contract');
  const events = first.filter((l) => l.kind === 'event');
  t.same(events.map((l) => [l.subject, l.event.event_id]), got.map((m) => [m.subject, m.body.event_id]),
    'every event, in the stream\'s order, each once');

  // A new transition; the same durable consumer resumes after what it acknowledged.
  await sim.shutdown(A);
  await waitFor(() => got.some((m) => m.body.current_status === 'disconnected'), 10_000, 'the shutdown');
  for (const end = Date.now() + 10_000; (await stored()) < got.length && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
  const second = await example('--max-events', '1');
  t.same(second.filter((l) => l.kind === 'agent').map((l) => l.state.current_status), ['disconnected'], 'the KV bucket follows');
  t.same(second.filter((l) => l.kind === 'event').map((l) => [l.event.agent_id, l.event.current_status, l.event.reason]),
    [['751', 'disconnected', 'agent_shutdown']], 'only the new event: the old ones were acknowledged');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});
