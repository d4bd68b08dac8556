// Secret files rotated while the tap runs: nats.js's authenticators call back at every CONNECT,
// and the tap reads the file there, so a new token (or .creds, nkey seed, password) is used from
// the next connection on — no restart. A file that cannot be read at that moment (gone while it
// is replaced, made readable by others) keeps the contents read before, and says why.
import t from 'tap';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Delivery } from '../controller/src/publish/delivery.js';
import { connectOptions, credentialProblem } from '../controller/src/publish/connect-options.js';
import { startNatsServer, type NatsServer } from './helpers/nats-server.js';
import { testEvent } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';
import { runTap } from './helpers/tap-process.js';

const log = pino({ level: process.env.DEBUG_CRED ? 'debug' : 'silent' });

t.test('the CA is read by the tap for each connection, and only while root\'s: one another user could replace is not trusted', async (t) => {
  // nats.js read caFile itself at each connection, whoever had written it since: a CA swapped in by the
  // owner of its directory vouched for their server, which then read the tap's credentials.
  const dir = mkdtempSync(join(tmpdir(), 'wnt-cred-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tlsCa = join(dir, 'ca.pem');
  writeFileSync(tlsCa, 'FIRST CA\n', { mode: 0o644 });
  const sec = {
    serverUrls: ['tls://127.0.0.1:4222'], tlsCa,
    tlsCert: null, tlsKey: null, tokenFile: null, credentialsFile: null, nkeySeedFile: null, user: null, passwordFile: null,
  };
  const opts = connectOptions(sec);
  const tls = opts.tls as { ca?: Buffer[]; caFile?: string };
  t.equal(tls.caFile, undefined, 'no path for nats.js to read');
  t.equal(String(tls.ca), 'FIRST CA\n');
  writeFileSync(tlsCa, 'ROTATED CA\n');
  t.equal(String(tls.ca), 'ROTATED CA\n', 'read again at the next connection: a renewed CA is used without a restart');
  writeFileSync(tlsCa, 'PLANTED CA\n');
  chownSync(tlsCa, 65534, 65534);
  t.equal(String(tls.ca), 'ROTATED CA\n', 'not what another user\'s file holds');
  t.match(credentialProblem(opts), /^tls_ca .*ca\.pem: owned by uid 65534, not by root: its owner can replace it \(chown root:\); the contents read before are used$/);
  t.throws(() => connectOptions(sec), /owned by uid 65534/, 'at the start: refused');
  chownSync(tlsCa, 0, 0);
  chmodSync(tlsCa, 0o666);
  t.equal(String(tls.ca), 'ROTATED CA\n', 'nor what anyone may write');
  chmodSync(tlsCa, 0o644);
  t.equal(String(tls.ca), 'PLANTED CA\n', 'root\'s again, written by root only: read');
  t.equal(credentialProblem(opts), null);
});

/** The server's token changed: its configuration rewritten, the server restarted (its clients are cut). */
async function serverToken(srv: NatsServer, token: string): Promise<void> {
  writeFileSync(join(srv.dir, 'nats.conf'), `listen: 127.0.0.1:${srv.port}\nauthorization { token: "${token}" }\n`);
  await srv.restart();
}

/** A subscriber with `token`, counting the events it receives. */
async function listener(t: Tap.Test, srv: NatsServer, token: string): Promise<{ got: Set<number>; nc: NatsConnection }> {
  const nc = await connect({ servers: srv.url, token });
  t.teardown(() => nc.close());
  const got = new Set<number>();
  nc.subscribe('wazuh.>', { callback: (_e, m) => { got.add((m.json() as { n: number }).n); } });
  await nc.flush();
  return { got, nc };
}

t.test('a token rotated in its file is used from the next connection; a file that cannot be read keeps the last one, and says why', async (t) => {
  const srv = await startNatsServer({ extra: 'authorization { token: "first-token" }' });
  t.teardown(() => srv.stop());
  const dir = mkdtempSync(join(tmpdir(), 'wnt-cred-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'first-token\n', { mode: 0o600 });
  const opts = connectOptions({
    serverUrls: [srv.url], tokenFile,
    tlsCert: null, tlsKey: null, tlsCa: null, credentialsFile: null, nkeySeedFile: null, user: null, passwordFile: null,
  });
  const d = new Delivery({
    servers: [srv.url], mode: 'core', log, spool: { dir: join(dir, 'spool'), maxBytes: 16 << 20 },
    reconnectDelayMs: 200, maxReconnects: 5, connectOptions: opts,
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.stats().connected, 10_000, 'connected with the first token');

  // Rotation: a new token on the server and in the file.
  writeFileSync(tokenFile, 'second-token\n');
  await serverToken(srv, 'second-token');
  const l2 = await listener(t, srv, 'second-token');
  d.enqueueMany([0, 1, 2].map((i) => testEvent(i, 3)));
  await waitFor(() => [0, 1, 2].every((n) => l2.got.has(n)), 15_000, 'the events through a connection made with the new token');
  t.equal(credentialProblem(opts), null, 'nothing to say');
  t.ok(await d.flush(5000), 'acknowledged');

  // The file gone (a rotation that deletes before it writes), then the server restarted: the token read last still works.
  rmSync(tokenFile);
  await srv.restart();
  const l3 = await listener(t, srv, 'second-token');
  d.enqueueMany([3, 4, 5].map((i) => testEvent(i, 3)));
  await waitFor(() => [3, 4, 5].every((n) => l3.got.has(n)), 15_000, 'the events through a connection made with the token read before');
  t.match(credentialProblem(opts), /^token_file .*token: .*(ENOENT|no such file).*; the contents read before are used$/, 'and why it was used');
  t.ok(await d.flush(5000), 'acknowledged');

  // Back, but readable by others: refused as at start; the token read before is used.
  writeFileSync(tokenFile, 'third-token\n');
  chmodSync(tokenFile, 0o644);
  await srv.restart();
  const l4 = await listener(t, srv, 'second-token');
  d.enqueueMany([6, 7].map((i) => testEvent(i, 3)));
  await waitFor(() => [6, 7].every((n) => l4.got.has(n)), 15_000, 'the events, with the token read before');
  t.match(credentialProblem(opts), /^token_file .*: mode 0644 gives access to group or others \(chmod 600\); the contents read before are used$/);
  t.notMatch(String(credentialProblem(opts)), /token\b.*(second|third)/, 'the problem never quotes the secret');
});

t.test('a secret file given to another user is refused: at the start, and when read again (the contents read before are used)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-cred-owner-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'first-token\n', { mode: 0o600 });
  const sec = {
    serverUrls: ['nats://127.0.0.1:4222'], tokenFile,
    tlsCert: null, tlsKey: null, tlsCa: null, credentialsFile: null, nkeySeedFile: null, user: null, passwordFile: null,
  };
  const opts = connectOptions(sec);
  const auth = () => (opts.authenticator as (nonce?: string) => { auth_token?: string })();
  t.equal(auth().auth_token, 'first-token');
  writeFileSync(tokenFile, 'planted-token\n');
  chownSync(tokenFile, 65534, 65534); // the user who can now replace it at will
  t.equal(auth().auth_token, 'first-token', 'not what another user\'s file holds');
  t.match(credentialProblem(opts), /^token_file .*token: owned by uid 65534, not by root: its owner can read and replace it \(chown root:\); the contents read before are used$/);
  t.throws(() => connectOptions(sec), /owned by uid 65534/, 'at the start: refused');
  chownSync(tokenFile, 0, 0);
  t.equal(auth().auth_token, 'planted-token', 'root\'s again: read');
  t.equal(credentialProblem(opts), null);
});

t.test('credentials written in server_url are sent (nats.js alone does not): user:password, a token, %-escapes; an element comes first', async (t) => {
  const srv = await startNatsServer({ extra: 'authorization { users: [ { user: "tap", password: "p@ss:w/rd" }, { user: "obs", password: "obs" } ] }' });
  t.teardown(() => srv.stop());
  const tokenSrv = await startNatsServer({ extra: 'authorization { token: "s3cret-token" }' });
  t.teardown(() => tokenSrv.stop());
  const none = { tlsCert: null, tlsKey: null, tlsCa: null, credentialsFile: null, nkeySeedFile: null, tokenFile: null, user: null, passwordFile: null };
  const dir = mkdtempSync(join(tmpdir(), 'wnt-cred-url-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const connects = async (url: string, extra: object = {}) => {
    const d = new Delivery({
      servers: [url], mode: 'core', log, spool: { dir: mkdtempSync(join(dir, 's-')), maxBytes: 1 << 20 },
      reconnectDelayMs: 200, connectTimeoutMs: 2000, connectOptions: connectOptions({ ...none, serverUrls: [url], ...extra }),
    });
    d.start();
    try {
      await waitFor(() => d.stats().connected, 3000, 'connected');
      return true;
    } catch {
      return false;
    } finally {
      await d.close(500);
    }
  };
  const hostPort = (s: NatsServer) => `127.0.0.1:${s.port}`;
  t.ok(await connects(`nats://tap:p%40ss%3Aw%2Frd@${hostPort(srv)}`), 'user and password, %-escaped');
  t.ok(await connects(`nats://s3cret-token@${hostPort(tokenSrv)}`), 'a token (a lone user part)');
  t.notOk(await connects(`nats://tap:wrong@${hostPort(srv)}`), 'a wrong password is refused (what is sent is the URL\'s)');
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'not-the-token\n', { mode: 0o600 });
  t.notOk(await connects(`nats://s3cret-token@${hostPort(tokenSrv)}`, { tokenFile }), 'token_file comes first');

  // tail --nats-url with credentials receives what is published.
  const pubNc = await connect({ servers: srv.url, user: 'obs', pass: 'obs' });
  t.teardown(() => pubNc.close());
  const tail = runTap(['tail', '--json', '--nats-url', `nats://tap:p%40ss%3Aw%2Frd@${hostPort(srv)}`, '--count', '1', '--duration', '10'], 15_000);
  const pump = setInterval(() => pubNc.publish('wazuh.agent.001.status', JSON.stringify({ event_type: 'status_change', agent_id: '001' })), 200);
  const r = await tail;
  clearInterval(pump);
  t.equal(r.code, 0, `tail ended by --count (${r.stderr.trim().split('\n').pop()})`);
  t.match(JSON.parse(r.stdout.trim().split('\n')[0]), { subject: 'wazuh.agent.001.status', agent_id: '001' });
  t.notMatch(r.stderr, /p@ss|p%40ss/, 'the password is not shown');
});
