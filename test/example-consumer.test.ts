// examples/consumer, as a platform team would run it: compiled alone by its own tsconfig,
// against a real nats-server with JetStream fed by a real tap (the simulator, real eBPF),
// it prints the agents' current state from the KV bucket, then every event of the stream
// through its durable consumer — and a second run resumes after the last acknowledged one.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { DOCUMENTED_PASSWORDS, natsCollecting, startDocumentedNats } from './helpers/nats-server.js';
import { makePki } from './helpers/certs.js';
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

t.test('the example consumer as the "xdr" user of docs/examples/nats-server.conf: TLS, user and password from the environment, acknowledgements allowed', async (t) => {
  // The first subtest built dist/.
  const pki = makePki('consumer-doc');
  const nats = await startDocumentedNats(pki);
  t.teardown(() => nats.stop());
  const home = mkdtempSync(join(tmpdir(), 'wnt-example-doc-'));
  writeOssecConf(home, '');
  const pass = join(home, 'etc/nats.password');
  writeFileSync(pass, DOCUMENTED_PASSWORDS['wazuh-tap'], { mode: 0o600 });
  writeOssecConf(home, `    <server_url>tls://127.0.0.1:${nats.port}</server_url>\n    <tls_ca>${pki.ca}</tls_ca>\n`
    + `    <tls_cert>${pki.clientCert}</tls_cert>\n    <tls_key>${pki.clientKey}</tls_key>\n`
    + `    <user>wazuh-tap</user>\n    <password_file>${pass}</password_file>\n`
    + '    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n    <agents_kv>yes</agents_kv>\n');
  const A = { id: 752, name: 'example-doc-agent', ip: '192.168.56.52' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--node', 'example-doc', '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  const nc = await connect({ servers: nats.url, user: 'xdr', pass: DOCUMENTED_PASSWORDS.xdr,
    tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey } });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const stored = async () => (await jsm.streams.info('WAZUH').catch(() => null))?.state.messages ?? 0;
  await sim.startup(A);
  await sim.keepalive(A);
  // started, attached, pending, active, the keepalive's batch.
  await waitFor(async () => (await stored()) >= 5, 15_000, 'the events in the stream');
  const n = await stored();
  const env = {
    ...process.env, NATS_URL: `tls://127.0.0.1:${nats.port}`, NATS_USER: 'xdr', NATS_PASSWORD: DOCUMENTED_PASSWORDS.xdr,
    NATS_CA: pki.ca, NATS_CERT: pki.clientCert, NATS_KEY: pki.clientKey,
  };
  const example = async (...args: string[]) => {
    const r = await run(process.execPath, [join(EXAMPLE, 'dist/main.js'), '--json', '--durable', 'xdr-doc', ...args], { env, timeout: 30_000 });
    return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  };
  const first = await example('--max-events', String(n));
  t.same(first.filter((l) => l.kind === 'agent').map((l) => [l.agent_id, l.state.current_status]), [['752', 'active']], 'the KV bucket, read as xdr');
  t.equal(first.filter((l) => l.kind === 'event').length, n, 'every stored event, each acknowledged');
  await sim.shutdown(A);
  await waitFor(async () => (await stored()) > n, 15_000, 'the shutdown in the stream');
  const second = await example('--max-events', '1');
  t.same(second.filter((l) => l.kind === 'event').map((l) => [l.event.agent_id, l.event.current_status]), [['752', 'disconnected']],
    'a second run resumes after the acknowledged ones');
  t.notOk(/Violation/.test(nats.log()), 'no permissions violation on the server');
  t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
});
