// The tap's NATS connection security, against a real nats-server: TLS with a
// client certificate verified both ways, token and user/password
// authentication; a wrong CA or a wrong token is refused, and said so.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, credsAuthenticator, nkeyAuthenticator, nkeys, type Msg } from '@nats-io/transport-node';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { SimManager } from '../scripts/sim/manager.mjs';
import { startNatsServer } from './helpers/nats-server.js';
import { BIN, runTap, startTap, ROOT } from './helpers/tap-process.js';
import { spawn } from 'node:child_process';
import { writeOssecConf } from './helpers/config.js';
import { makePki } from './helpers/certs.js';
import { waitFor } from './helpers/wait.js';
import { checkContract, contractJson } from './helpers/contract.js';
import { decrypt, readKeyFile } from '../controller/src/publish/encryption.js';

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
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m: Msg) => { got.push(contractJson(t, m)); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock'), '--log-level', 'debug']);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  if (expectEvents) {
    // Only this test's agent counts (a simulator of a concurrent run could be traced too).
    const ours = () => got.filter((e) => (e as { agent_id?: string }).agent_id === '001');
    await waitFor(() => ours().length >= 1, 10_000, 'the status event over the secured connection');
    t.match(ours()[0], { agent_id: '001', current_status: 'pending' });
  } else {
    await new Promise((r) => setTimeout(r, 3000));
    t.equal(got.length, 0, 'nothing delivered');
  }
  return Object.assign(tap, { home });
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
  // The refusal is logged when the connection attempt fails: on a loaded machine, after the 3 s above.
  await waitFor(() => /certificate|self.signed|unable to verify/i.test(JSON.stringify(tap.logs)), 10_000, 'the refusal in the log').catch(() => {});
  t.match(JSON.stringify(tap.logs), /certificate|self.signed|unable to verify/i, 'the log names the certificate problem');
  t.equal(tap.proc.exitCode, null, 'the tap keeps capturing (events wait in the spool)');
});

t.test('an expired server certificate is refused, with a clear log', async (t) => {
  const old = makePki('expired-server', 2, 'server');
  const tls = `tls { cert_file: "${old.serverCert}", key_file: "${old.serverKey}", ca_file: "${old.ca}", verify: true }\n`;
  const tap = await scenario(t, tls, () => `    <tls_ca>${old.ca}</tls_ca>\n    <tls_cert>${old.clientCert}</tls_cert>\n    <tls_key>${old.clientKey}</tls_key>\n`,
    { tls: { caFile: old.ca, certFile: old.clientCert, keyFile: old.clientKey, rejectUnauthorized: false } }, false);
  // The refusal is logged when the connection attempt fails: on a loaded machine, after the 3 s above.
  await waitFor(() => /certificate has expired/.test(JSON.stringify(tap.logs)), 10_000, 'the refusal in the log').catch(() => {});
  t.match(JSON.stringify(tap.logs), /certificate has expired/, 'the log says the server certificate expired');
  t.equal(tap.proc.exitCode, null, 'the tap keeps capturing');
});

t.test('an expired client certificate: refused by the server, and the tap says why', async (t) => {
  const old = makePki('expired-client', 2, 'client');
  // The observer connects with a valid client certificate of another CA the server also trusts.
  const observer = makePki('observer');
  const bundle = join(old.dir, 'both-cas.pem');
  writeFileSync(bundle, readFileSync(old.ca, 'utf8') + readFileSync(observer.ca, 'utf8'));
  const tls = `tls { cert_file: "${old.serverCert}", key_file: "${old.serverKey}", ca_file: "${bundle}", verify: true }\n`;
  const tap = await scenario(t, tls, () => `    <tls_ca>${old.ca}</tls_ca>\n    <tls_cert>${old.clientCert}</tls_cert>\n    <tls_key>${old.clientKey}</tls_key>\n`,
    { tls: { caFile: old.ca, certFile: observer.clientCert, keyFile: observer.clientKey } }, false);
  const logs = JSON.stringify(tap.logs);
  t.match(logs, new RegExp(`"level":50[^}]*tls_cert ${old.clientCert} expired on 20`), 'an error at start names the expired certificate');
  t.equal(tap.proc.exitCode, null, 'the tap keeps capturing');
});

/** An operator-mode server: one account it trusts (no limits), and .creds for users of any account. */
async function operatorMode() {
  const op = createOperator();
  const acct = createAccount();
  const acctJwt = await encodeAccount('TAP', acct, {
    limits: { conn: -1, subs: -1, data: -1, payload: -1, leaf: -1, imports: -1, exports: -1, wildcards: true },
  }, { signer: op });
  const serverConf = `operator: "${await encodeOperator('test-op', op)}"\nresolver: MEMORY\n`
    + `resolver_preload: { ${acct.getPublicKey()}: "${acctJwt}" }\n`;
  const creds = async (name: string, issuer = acct) => {
    const user = createUser();
    return new TextDecoder().decode(fmtCreds(await encodeUser(name, user, issuer), user));
  };
  return { serverConf, creds };
}

t.test('a .creds file (operator mode: a user JWT signed by an account the server trusts)', async (t) => {
  const { serverConf, creds } = await operatorMode();
  const tapCreds = await creds('tap');
  await scenario(t, serverConf,
    (home) => `    <credentials_file>${secretFile(home, 'tap.creds', tapCreds)}</credentials_file>\n`,
    { authenticator: credsAuthenticator(new TextEncoder().encode(await creds('observer'))) }, true);
});

t.test('a .creds file of an account the server does not trust is refused, and no seed is logged', async (t) => {
  const { serverConf, creds } = await operatorMode();
  const badCreds = await creds('tap', createAccount());
  const tap = await scenario(t, serverConf,
    (home) => `    <credentials_file>${secretFile(home, 'tap.creds', badCreds)}</credentials_file>\n`,
    { authenticator: credsAuthenticator(new TextEncoder().encode(await creds('observer'))) }, false);
  // The refusal is logged when the connection attempt fails: on a loaded machine, after the 3 s above.
  await waitFor(() => /[Aa]uthorization/.test(JSON.stringify(tap.logs)), 10_000, 'the refusal in the log').catch(() => {});
  t.match(JSON.stringify(tap.logs), /[Aa]uthorization/, 'the log says authorization failed');
  const seed = /SU[A-Z2-7]{50,}/.exec(badCreds)![0];
  t.notMatch(JSON.stringify(tap.logs), seed, 'no seed in the log');
});

t.test('user and password', async (t) => {
  await scenario(t, 'authorization { user: "tap", password: "pa55-w0rd" }\n',
    (home) => `    <user>tap</user>\n    <password_file>${secretFile(home, 'nats.pass', 'pa55-w0rd')}</password_file>\n`,
    { user: 'tap', pass: 'pa55-w0rd' }, true);
});

t.test('a NATS user without permission to publish the events: refused, counted, said — not taken for delivered', async (t) => {
  // Core NATS answers the flush after a refused publish: without the server's -ERR the refused
  // messages would count as acknowledged, lost without a word.
  const tap = await scenario(t, `authorization { users: [
      { user: "tap", password: "pa55", permissions: { publish: { allow: ["wazuh.tap.>"] }, subscribe: { allow: ["_INBOX.>"] } } },
      { user: "obs", password: "obs" } ] }\n`,
    (home) => `    <user>tap</user>\n    <password_file>${secretFile(home, 'nats.pass', 'pa55')}</password_file>\n`,
    { user: 'obs', pass: 'obs' }, false);
  await waitFor(() => tap.logs.some((l) => String(l.msg).startsWith('NATS refused a publish of the tap')), 10_000, 'the refusal in the log');
  const line = tap.logs.find((l) => String(l.msg).startsWith('NATS refused a publish of the tap'))!;
  t.match(line, { level: 50, operation: 'publish', subject: 'wazuh.agent.001.status' });
  t.match(String(line.msg), /with core NATS those messages are lost; allow the user to publish/);
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', join(tap.home, 'tap.sock')])).stdout);
  t.ok(st.nats.denied >= 1, `status counts it (${st.nats.denied})`);
  t.equal(st.nats.last_denied, 'publish wazuh.agent.001.status');
  const table = (await runTap(['status', '--control-socket', join(tap.home, 'tap.sock')])).stdout;
  t.match(table, /DENIED by the user's permissions \d+ \(last: publish wazuh\.agent\.001\.status\)/, 'and its table says so');
});

t.test('an nkey seed file', async (t) => {
  const user = nkeys.createUser();
  const seed = new TextDecoder().decode(user.getSeed());
  await scenario(t, `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }\n`,
    (home) => `    <nkey_seed_file>${secretFile(home, 'nats.nk', `${seed}\n`)}</nkey_seed_file>\n`,
    { authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) }, true);
});

t.test('a wrong token is refused, and never logged', async (t) => {
  const tap = await scenario(t, 'authorization { token: "right-token" }\n',
    (home) => `    <token_file>${secretFile(home, 'nats.token', 'wrong-token-XYZ')}</token_file>\n`, { token: 'right-token' }, false);
  // The refusal is logged when the connection attempt fails: on a loaded machine, after the 3 s above.
  await waitFor(() => /[Aa]uthorization/.test(JSON.stringify(tap.logs)), 10_000, 'the refusal in the log').catch(() => {});
  t.match(JSON.stringify(tap.logs), /[Aa]uthorization/, 'the log says authorization failed');
  t.notMatch(JSON.stringify(tap.logs), /wrong-token-XYZ/, 'the token is not in the log');
});

t.test('encrypt_messages: ciphertext on the wire, tail decrypts with the key and says so without it', async (t) => {
  const nats = await startNatsServer({});
  t.teardown(() => nats.stop());
  const home = mkdtempSync(join(tmpdir(), 'wnt-enc-'));
  writeOssecConf(home, '');
  const key = secretFile(home, 'nats.key', `${'ab'.repeat(32)}\n`);
  writeOssecConf(home, `    <server_url>${nats.url}</server_url>\n    <encrypt_messages>yes</encrypt_messages>\n    <encryption_key>${key}</encryption_key>\n`);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const raw: Msg[] = [];
  const sub = nc.subscribe('wazuh.agent.*.status', { callback: (_e, m: Msg) => { raw.push(m); } });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  const tails = [
    spawnTail(nats.url, ['--encryption-key', key]),
    spawnTail(nats.url, []),
  ];
  t.teardown(() => tails.forEach((x) => x.p.kill('SIGKILL')));
  await waitFor(() => tails.every((x) => x.err().includes('Ctrl-C')), 10_000, 'the tails to subscribe');

  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [A] });
  t.teardown(() => sim.stop());
  await sim.start();
  const tap = await startTap(['run', '--home', home, '--control-socket', join(home, 'tap.sock')]);
  t.teardown(() => tap.stop('SIGKILL'));
  await sim.startup(A);
  await waitFor(() => raw.length >= 1 && tails.every((x) => x.out().trim().length > 0), 10_000, 'the encrypted event');

  const m = raw[0];
  // The encrypted message keeps the contract (its `encrypted` form), and so does what it decrypts to.
  const sealed = contractJson<string>(t, m);
  const plainHeaders = Object.fromEntries((m.headers?.keys() ?? []).filter((k) => !/^Wazuh-(Encryption|Key-Id)$/.test(k)).map((k) => [k, m.headers!.get(k)]));
  checkContract(t, { subject: m.subject, headers: { ...plainHeaders, 'Content-Type': 'application/json' },
    body: JSON.parse(decrypt(readKeyFile(key), m.subject, sealed)) });
  t.equal(m.headers?.get('Wazuh-Encryption'), 'AES-256-GCM');
  t.match(m.headers?.get('Wazuh-Key-Id'), /^[0-9a-f]{16}$/);
  t.ok(m.headers?.get('Wazuh-Agent-Id'), 'routing headers stay readable');
  t.throws(() => m.json(), 'the body is not JSON');
  t.notMatch(Buffer.from(m.data).toString('latin1'), /web-server-01|pending/, 'no plaintext on the wire');
  t.match(tails[0].out(), /agent 001 \(web-server-01\) never_connected -> pending {2}reason=agent_startup/, 'tail decrypts with the key');
  t.match(tails[1].out(), /wazuh\.agent\.001\.status {2}\(encrypted with key [0-9a-f]{16}: pass --encryption-key\)/, 'and says what is missing without it');
});

function spawnTail(url: string, extra: string[]) {
  const p = spawn(process.execPath, [BIN, 'tail', 'wazuh.agent.>', '--nats-url', url, '--count', '1', ...extra]);
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  return { p, out: () => out, err: () => err };
}
