// The tap's NATS connection security, against a real nats-server: TLS with a
// client certificate verified both ways, token and user/password
// authentication; a wrong CA or a wrong token is refused, and said so.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startNatsServer } from './helpers/nats-server.js';
import { startTap, ROOT } from './helpers/tap-process.js';
import { writeOssecConf } from './helpers/config.js';
import { makePki } from './helpers/certs.js';
import { waitFor } from './helpers/wait.js';

const A = { id: 1, name: 'web-server-01', ip: '192.168.56.21' };
const pki = makePki('good');
const other = makePki('other');

function secretFile(home: string, name: string, content: string): string {
  const f = join(home, 'etc', name);
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

async function scenario(t: Tap.Test, serverConf: string, natsConf: (home: string) => string, clientOpts: object, expectEvents: boolean) {
  const nats = await startNatsServer({ extra: serverConf });
  t.teardown(() => nats.stop());
  const home = mkdtempSync(join(tmpdir(), 'wnt-sec-'));
  writeOssecConf(home, ''); // makes etc/
  writeOssecConf(home, `    <server_url>${nats.url.replace('nats://', serverConf.includes('tls') ? 'tls://' : 'nats://')}</server_url>\n${natsConf(home)}`);
  const nc = await connect({ servers: nats.url, ...clientOpts });
  t.teardown(() => nc.close());
  const got: unknown[] = [];
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m: Msg) => { got.push(m.json()); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--log-level', 'debug']);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  if (expectEvents) {
    await waitFor(() => got.length >= 1, 10_000, 'the status event over the secured connection');
    t.match(got[0], { agent_id: '001', current_status: 'pending' });
  } else {
    await new Promise((r) => setTimeout(r, 3000));
    t.equal(got.length, 0, 'nothing delivered');
  }
  return tap;
}

t.test('TLS, the server verified against tls_ca and the client by its certificate, with a token', async (t) => {
  const tls = `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}", verify: true }\n`
    + 'authorization { token: "t0ken-of-the-tap" }\n';
  await scenario(t, tls, (home) => `    <tls_ca>${pki.ca}</tls_ca>\n    <tls_cert>${pki.clientCert}</tls_cert>\n`
    + `    <tls_key>${pki.clientKey}</tls_key>\n    <token_file>${secretFile(home, 'nats.token', 't0ken-of-the-tap\n')}</token_file>\n`,
  { tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey }, token: 't0ken-of-the-tap' }, true);
});

t.test('a server whose certificate another CA signed is refused, with a clear log', async (t) => {
  const tls = `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}", verify: true }\n`;
  const tap = await scenario(t, tls, () => `    <tls_ca>${other.ca}</tls_ca>\n    <tls_cert>${pki.clientCert}</tls_cert>\n    <tls_key>${pki.clientKey}</tls_key>\n`,
    { tls: { caFile: pki.ca, certFile: pki.clientCert, keyFile: pki.clientKey } }, false);
  t.match(JSON.stringify(tap.logs), /certificate|self.signed|unable to verify/i, 'the log names the certificate problem');
  t.equal(tap.proc.exitCode, null, 'the tap keeps capturing (events wait in the spool)');
});

t.test('user and password', async (t) => {
  await scenario(t, 'authorization { user: "tap", password: "pa55-w0rd" }\n',
    (home) => `    <user>tap</user>\n    <password_file>${secretFile(home, 'nats.pass', 'pa55-w0rd')}</password_file>\n`,
    { user: 'tap', pass: 'pa55-w0rd' }, true);
});

t.test('a wrong token is refused, and never logged', async (t) => {
  const tap = await scenario(t, 'authorization { token: "right-token" }\n',
    (home) => `    <token_file>${secretFile(home, 'nats.token', 'wrong-token-XYZ')}</token_file>\n`, { token: 'right-token' }, false);
  t.match(JSON.stringify(tap.logs), /[Aa]uthorization/, 'the log says authorization failed');
  t.notMatch(JSON.stringify(tap.logs), /wrong-token-XYZ/, 'the token is not in the log');
});
