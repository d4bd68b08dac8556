// A real nats-server (Debian's) on a loopback port, for the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Msg } from '@nats-io/transport-node';
import { checkContract, contractMessage } from './contract.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface NatsServer {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Directory of the config (and of the JetStream store, when enabled). */
  dir: string;
  /** The server's log so far (of the current process). */
  log(): string;
  /** SIGTERM (SIGKILL after 5 s); resolves when it exited. */
  stop(): Promise<void>;
  /** SIGKILL at once. */
  kill(): Promise<void>;
  /** Start it again on the same port with the same config and store. */
  restart(): Promise<void>;
}

export interface NatsServerOptions {
  /** Extra configuration lines. */
  extra?: string;
  /** Enable JetStream with a store under the server's temp dir. */
  jetstream?: boolean;
  /** Use this port (default: a free one). */
  port?: number;
  /** server_name (needed in a cluster). */
  name?: string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => { for (const p of running) p.kill('SIGKILL'); });

async function spawnNats(conf: string, readyTimeoutMs = 10_000): Promise<{ proc: ChildProcess; log: () => string }> {
  const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), readyTimeoutMs);
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.length > 1_000_000) log = log.slice(-500_000);
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${c}:\n${log}`));
    });
  });
  return { proc, log: () => log };
}

async function ended(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/**
 * Each server's directory (its config and JetStream store), removed when the test process exits: not
 * at stop(), which restart() follows (thousands were left in /tmp, a JetStream store each).
 */
const serverDirs = new Set<string>();
process.once('exit', () => {
  for (const d of serverDirs) rmSync(d, { recursive: true, force: true });
});

/** Start nats-server on 127.0.0.1; resolves when it accepts clients. */
export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  const port = o.port ?? await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'nats-'));
  serverDirs.add(dir);
  const conf = join(dir, 'nats.conf');
  const lines = [`listen: 127.0.0.1:${port}`];
  if (o.name) lines.push(`server_name: ${o.name}`);
  if (o.jetstream) lines.push(`jetstream { store_dir: "${join(dir, 'js')}" }`);
  writeFileSync(conf, `${lines.join('\n')}\n${o.extra ?? ''}\n`);
  let cur = await spawnNats(conf);
  const srv: NatsServer = {
    url: `nats://127.0.0.1:${port}`, port, dir, proc: cur.proc,
    log: () => cur.log(),
    stop: () => ended(srv.proc, 'SIGTERM'),
    kill: () => ended(srv.proc, 'SIGKILL'),
    restart: async () => {
      await ended(srv.proc, 'SIGTERM');
      // The port can take a moment to be free again.
      const end = Date.now() + 10_000;
      for (;;) {
        try {
          cur = await spawnNats(conf);
          break;
        } catch (e) {
          if (Date.now() > end) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      srv.proc = cur.proc;
    },
  };
  return srv;
}

/** Start nats-server on 127.0.0.1 with an optional extra config; resolves when it accepts clients. */
export async function startNats(extraConfig = ''): Promise<NatsServer> {
  return startNatsServer({ extra: extraConfig });
}

export interface NatsCluster {
  servers: NatsServer[];
  urls: string[];
  stop(): Promise<void>;
}

/** `n` nats-servers on loopback joined in a cluster (routes), JetStream on each by default. */
export async function startNatsCluster(n = 3, o: { jetstream?: boolean; name?: string } = {}): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const routes: number[] = [];
  for (let i = 0; i < n; i++) routes.push(await freePort());
  const cname = o.name ?? 'tapc';
  const servers = await Promise.all(ports.map((port, i) => startNatsServer({
    port, name: `${cname}-n${i + 1}`, jetstream: o.jetstream ?? true,
    extra: `cluster {\n  name: ${cname}\n  listen: 127.0.0.1:${routes[i]}\n  routes: [${routes
      .filter((_, j) => j !== i).map((r) => `nats-route://127.0.0.1:${r}`).join(', ')}]\n}`,
  })));
  return {
    servers, urls: servers.map((s) => s.url),
    stop: async () => { await Promise.all(servers.map((s) => s.stop())); },
  };
}

/** A message as the tests look at it: subject, headers, JSON body, arrival time (performance.now()). */
export interface Received { subject: string; headers: Record<string, string>; body: Record<string, any>; at: number }

export function received(m: Msg): Received {
  const headers: Record<string, string> = {};
  for (const k of m.headers?.keys() ?? []) headers[k] = m.headers!.get(k);
  return { subject: m.subject, headers, body: m.json(), at: performance.now() };
}

/**
 * A nats-server for one test and a connection that collects what arrives on `subject` (in `got`),
 * each message checked against the event contract, all stopped at the test's teardown. Resolves once the subscription is in place on the server.
 */
export async function natsCollecting(t: { teardown(fn: () => unknown): void; fail(msg: string): void }, subject: string, o: NatsServerOptions = {}) {
  const nats = await startNatsServer(o);
  t.teardown(() => nats.stop());
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const got: Received[] = [];
  // Every message is held to docs/asyncapi.yaml: one that breaks it fails the test, naming the schema error.
  nc.subscribe(subject, { callback: (_e, m) => { checkContract(t, contractMessage(m)); got.push(received(m)); } });
  await nc.flush();
  return { nats, nc, got };
}

/** The passwords the documented server's users get in the tests (the file has bcrypt placeholders). */
export const DOCUMENTED_PASSWORDS = { 'wazuh-tap': 'tap-pa55', xdr: 'xdr-pa55' } as const;

/**
 * docs/examples/nats-server.conf as shipped — its TLS with client certificates, its users and their
 * permissions, its JetStream — on a loopback port, with `pki`'s certificates, a store of its own and
 * each user's placeholder hash replaced by a plain password (DOCUMENTED_PASSWORDS): what the docs
 * promise of it (the tap delivers, the example consumer reads and acknowledges) is tested as written.
 */
export async function startDocumentedNats(pki: { ca: string; serverCert: string; serverKey: string }): Promise<NatsServer> {
  const doc = readFileSync(new URL('../../docs/examples/nats-server.conf', import.meta.url), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'nats-doc-'));
  serverDirs.add(dir);
  let user = '';
  const conf = doc
    .replace(/^listen:.*$/m, '') // startNatsServer's own, on a free loopback port
    .replace('"/etc/nats/server.pem"', JSON.stringify(pki.serverCert))
    .replace('"/etc/nats/server.key"', JSON.stringify(pki.serverKey))
    .replace('"/etc/nats/ca.pem"', JSON.stringify(pki.ca))
    .replace('"/var/lib/nats/jetstream"', JSON.stringify(join(dir, 'js')))
    .replace(/user: "([^"]+)"|password: "\$2a\$[^"]*"/g, (m, u: string | undefined) => {
      if (u) {
        user = u;
        return m;
      }
      const pw = (DOCUMENTED_PASSWORDS as Record<string, string>)[user];
      if (!pw) throw new Error(`docs/examples/nats-server.conf: a user the tests know no password of: ${user}`);
      return `password: "${pw}"`;
    });
  for (const f of ['/etc/nats/', '/var/lib/nats', '$2a$']) {
    if (conf.includes(f)) throw new Error(`docs/examples/nats-server.conf: ${f} left in it`);
  }
  return startNatsServer({ extra: conf });
}
