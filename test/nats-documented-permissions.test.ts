// docs/examples/nats-server.conf as shipped (TLS with client certificates, its users and their
// permissions, JetStream), and the tap connecting as its user "wazuh-tap": every event is delivered
// — core NATS and JetStream, with agents_kv and without — and nothing is refused. The permissions
// docs/integration.md and docs/troubleshooting.md give are those of that file, and the least of
// integration.md's table suffices. A user without the KV bucket's subjects is told which subject to allow.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { SimManager } from '../scripts/sim/manager.mjs';
import { DOCUMENTED_PASSWORDS, startDocumentedNats, startNatsServer } from './helpers/nats-server.js';
import { ROOT, runTap, startTap } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { makePki } from './helpers/certs.js';
import { waitFor } from './helpers/wait.js';
import { publishPermissionHint } from '../controller/src/publish/delivery.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const pki = makePki('documented');

t.test('the hint of a refused publish names the subjects to allow', async (t) => {
  t.equal(publishPermissionHint('$KV.wazuh_agents.001', 'wazuh'), 'allow the user to publish to $KV.wazuh_agents.> (the KV bucket of agents_kv)');
  t.equal(publishPermissionHint('$KV.soc_wazuh_agents.001', 'soc.wazuh'), 'allow the user to publish to $KV.soc_wazuh_agents.> (the KV bucket of agents_kv)');
  t.equal(publishPermissionHint('soc.wazuh.agent.001.status', 'soc.wazuh'), 'allow the user to publish to soc.wazuh.> (the subject prefix)');
});

/** A simulated manager with one agent, and the tap on it with `nats` (the elements beyond enabled). */
async function tapOn(t: Tap.Test, nats: string, id: number, user = 'wazuh-tap') {
  const home = mkdtempSync(join(tmpdir(), 'wnt-perm-'));
  writeOssecConf(home, '');
  const pass = join(home, 'etc/nats.password');
  writeFileSync(pass, DOCUMENTED_PASSWORDS['wazuh-tap'], { mode: 0o600 });
  writeOssecConf(home, `    <user>${user}</user>\n    <password_file>${pass}</password_file>\n${nats}`);
  const A = { id, name: `perm-${id}`, ip: '192.168.56.61' };
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--node', 'perm']);
  t.teardown(() => tap.stop('SIGKILL'));
  return { home, A, sim, tap };
}

const tls = (srvPort: number) => `    <server_url>tls://127.0.0.1:${srvPort}</server_url>\n    <tls_ca>${pki.ca}</tls_ca>\n`
  + `    <tls_cert>${pki.clientCert}</tls_cert>\n    <tls_key>${pki.clientKey}</tls_key>\n`;

const MODES = [
  { name: 'core NATS', conf: '', js: false, kv: false },
  { name: 'core NATS, agents_kv set (it needs JetStream: unused)', conf: '    <agents_kv>yes</agents_kv>\n', js: false, kv: false },
  { name: 'JetStream, create_stream', conf: '    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n', js: true, kv: false },
  { name: 'JetStream, create_stream and agents_kv', conf: '    <jetstream>yes</jetstream>\n    <create_stream>yes</create_stream>\n    <agents_kv>yes</agents_kv>\n', js: true, kv: true },
];

t.test('the tap\'s user of docs/examples/nats-server.conf: every event delivered, none refused', async (t) => {
  const nats = await startDocumentedNats(pki);
  t.teardown(() => nats.stop());
  // The consumer's user of the same file reads what arrives.
  const nc: NatsConnection = await connect({
    servers: nats.url, user: 'xdr', pass: DOCUMENTED_PASSWORDS.xdr,
    tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey },
  });
  t.teardown(() => nc.close());
  const got: { subject: string; body: any }[] = [];
  nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => { got.push({ subject: m.subject, body: m.json() }); } });
  await nc.flush();
  const jsm = await jetstreamManager(nc);
  let id = 660;
  for (const mode of MODES) {
    await t.test(mode.name, async (t) => {
      const { home, A, sim, tap } = await tapOn(t, tls(nats.port) + mode.conf, ++id);
      const agent = String(A.id).padStart(3, '0');
      await sim.startup(A);
      await sim.keepalive(A);
      await sim.shutdown(A);
      const mine = () => got.filter((m) => m.body.agent_id === agent);
      await waitFor(() => mine().filter((m) => m.subject.endsWith('.status')).length >= 3, 15_000, 'pending, active, disconnected');
      await waitFor(() => got.some((m) => m.subject === 'wazuh.agent.batch.keepalive'
        && m.body.events.some((e: any) => e.agent_id === agent)), 15_000, 'the keepalive, in a batch');
      t.same(mine().map((m) => m.body.current_status), ['pending', 'active', 'disconnected'], 'the status changes');
      const st = JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout);
      if (mode.js) {
        // Every event stored (acknowledged): the spool empties.
        await waitFor(async () => JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout)
          .spool.records === 0, 15_000, 'the spool empty: every event acknowledged');
        const stored = await jsm.streams.getMessage('WAZUH', { last_by_subj: `wazuh.agent.${agent}.status` });
        t.equal(stored?.json<any>().current_status, 'disconnected', 'the stream holds them');
      }
      if (mode.kv) {
        await waitFor(async () => (await jsm.streams.getMessage('KV_wazuh_agents', { last_by_subj: `$KV.wazuh_agents.${agent}` })
          .catch(() => null))?.json<any>().current_status === 'disconnected', 15_000, 'the agent\'s latest status in the KV bucket');
        t.pass('the KV bucket holds the agent\'s latest status');
      }
      t.equal(st.nats.denied, 0, 'nothing refused by the user\'s permissions');
      t.notOk(tap.logs.some((l) => /permissions violation/.test(String(l.msg))), 'no permissions violation in the log');
      t.notOk(/Violation/.test(nats.log()), 'nor in the server\'s');
      t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
    });
  }
});

t.test('a user without $KV.<bucket>.>: the KV puts are refused, and the log says which subject to allow', async (t) => {
  const nats = await startNatsServer({
    jetstream: true,
    extra: `authorization { users: [
      { user: "wazuh-tap", password: "${DOCUMENTED_PASSWORDS['wazuh-tap']}", permissions: { publish: ["wazuh.>", "$JS.API.>"], subscribe: ["_INBOX.>"] } } ] }\n`,
  });
  t.teardown(() => nats.stop());
  const { home, A, sim, tap } = await tapOn(t, `    <server_url>${nats.url}</server_url>\n    <jetstream>yes</jetstream>\n`
    + '    <create_stream>yes</create_stream>\n    <agents_kv>yes</agents_kv>\n', 690);
  await sim.startup(A);
  const refused = () => tap.logs.find((l) => String(l.msg).startsWith('NATS refused a publish of the tap'));
  await waitFor(() => !!refused(), 15_000, 'the refusal in the log');
  t.match(refused(), { level: 50, operation: 'publish', subject: '$KV.wazuh_agents.690' });
  t.match(String(refused()!.msg), /the message waits and is retried until allowed; allow the user to publish to \$KV\.wazuh_agents\.> \(the KV bucket of agents_kv\)$/);
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout);
  t.equal(st.nats.last_denied, 'publish $KV.wazuh_agents.690', 'status names it');
});

t.test('the least each mode needs, as integration.md\'s table gives it: core publishes <prefix>.> only; JetStream without create_stream also subscribes to _INBOX.>', async (t) => {
  const pw = DOCUMENTED_PASSWORDS['wazuh-tap'];
  const nats = await startNatsServer({
    jetstream: true,
    extra: `authorization { users: [
      { user: "core", password: "${pw}", permissions: { publish: ["wazuh.>"], subscribe: { deny: [">"] } } }
      { user: "js", password: "${pw}", permissions: { publish: ["wazuh.>"], subscribe: ["_INBOX.>"] } }
      { user: "jsinfo", password: "${pw}", permissions: { publish: ["wazuh.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.WAZUH"], subscribe: ["_INBOX.>"] } }
      { user: "admin", password: "admin" } ] }\n`,
  });
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url, user: 'admin', pass: 'admin' });
  t.teardown(() => nc.close());
  const got: { subject: string; body: any }[] = [];
  nc.subscribe('wazuh.>', { callback: (_e, m: Msg) => { got.push({ subject: m.subject, body: m.json() }); } });
  await nc.flush();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'WAZUH', subjects: ['wazuh.>'] }); // made by an administrator: no create_stream
  const js = '    <jetstream>yes</jetstream>\n';
  for (const [user, conf, id] of [['core', '', 695], ['js', js, 696], ['jsinfo', js, 697]] as const) {
    await t.test(`${user === 'core' ? 'core NATS' : 'JetStream'}, user ${user}`, async (t) => {
      const { home, A, sim, tap } = await tapOn(t, `    <server_url>${nats.url}</server_url>\n${conf}`, id, user);
      await sim.startup(A);
      await waitFor(() => got.some((m) => m.body.agent_id === String(id).padStart(3, '0')), 15_000, 'the status change');
      await waitFor(async () => JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout)
        .spool.records === 0, 15_000, 'every event acknowledged');
      const st = JSON.parse((await runTap(['status', '--json', '--control-socket', join(home, 'tap.sock')])).stdout);
      t.equal(st.nats.denied, 0, 'nothing refused');
      t.same(await tap.stop('SIGTERM'), { code: 0, signal: null });
    });
  }
  // The one refusal: JetStream's optional look at the stream's max_msg_size, whose first step is
  // $JS.API.INFO; with it and $JS.API.STREAM.INFO.<stream> (jsinfo), nothing is refused.
  const refused = [...nats.log().matchAll(/Violation - User "(\w+)", Subject "([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
  t.same([...new Set(refused)], ['js $JS.API.INFO'], 'refused on the server: the optional look at the stream only');
});
