// `discover_servers` against a real three-node cluster on loopback: the tap is given one URL of
// it, and that server dies. With `yes` (the default) the tap goes on through the servers the
// cluster announced (INFO `connect_urls`); with `no` it knows only its own URL — nothing a server
// announces sends it (or its credentials) anywhere else — and its events wait in the spool until
// that server is back.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Delivery } from '../controller/src/publish/delivery.js';
import { connectOptions } from '../controller/src/publish/connect-options.js';
import { startNatsCluster, type NatsCluster } from './helpers/nats-server.js';
import { testEvent } from './helpers/delivery-events.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The options `run` derives from a configuration with only `server_url` and `discover_servers` set. */
function fromConfig(seed: string, discoverServers: boolean) {
  return connectOptions({
    serverUrls: [seed], discoverServers,
    tlsCert: null, tlsKey: null, tlsCa: null, credentialsFile: null, nkeySeedFile: null, tokenFile: null, user: null, passwordFile: null,
  });
}

/** A subscriber on the cluster's third node, holding the event numbers it received. */
async function subscriber(cl: NatsCluster): Promise<{ nc: NatsConnection; got: Set<number> }> {
  const nc = await connect({ servers: cl.urls[2] });
  const got = new Set<number>();
  nc.subscribe('wazuh.>', { callback: (_e, m) => { got.add((m.json() as { n: number }).n); } });
  await nc.flush();
  return { nc, got };
}

/** Until every node routes to the others (bounded): a message published on each reaches the third. */
async function meshed(t: Tap.Test, cl: NatsCluster, sub: { nc: NatsConnection }): Promise<void> {
  const seen = new Set<string>();
  sub.nc.subscribe('probe.>', { callback: (_e, m) => { seen.add(m.subject); } });
  await sub.nc.flush();
  const pubs = await Promise.all(cl.urls.slice(0, 2).map((u) => connect({ servers: u, ignoreClusterUpdates: true })));
  t.teardown(() => Promise.all(pubs.map((p) => p.close())));
  await waitFor(() => {
    pubs.forEach((p, i) => p.publish(`probe.n${i + 1}`));
    return seen.size === 2;
  }, 15_000, 'the cluster routes between its three nodes');
}

for (const discover of [true, false]) {
  t.test(`discover_servers ${discover ? 'yes' : 'no'}: one URL of a three-node cluster, and that server dies`, async (t) => {
    const cl = await startNatsCluster(3, { jetstream: false, name: `disc-${discover ? 'yes' : 'no'}` });
    t.teardown(() => cl.stop());
    const sub = await subscriber(cl);
    t.teardown(() => sub.nc.close());
    await meshed(t, cl, sub);

    const lines: string[] = [];
    const log = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
    const d = new Delivery({
      servers: [cl.urls[0]], mode: 'core', log, spool: { dir: mkdtempSync(join(tmpdir(), 'spool-disc-')), maxBytes: 16 << 20 },
      reconnectDelayMs: 200, maxReconnects: 5, connectOptions: fromConfig(cl.urls[0], discover),
    });
    t.teardown(() => d.close(1000));
    d.start();
    await waitFor(() => d.stats().connected, 10_000, 'connected to the seed');
    d.enqueueMany([0, 1, 2, 3, 4].map((i) => testEvent(i, 5)));
    await waitFor(() => sub.got.size === 5, 10_000, 'the first events arrive through the seed');
    t.ok(await d.flush(5000), 'and are acknowledged');

    await cl.servers[0].kill();
    await waitFor(() => !d.stats().connected, 10_000, 'the seed\'s death is seen');
    d.enqueueMany([5, 6, 7, 8, 9].map((i) => testEvent(i, 5)));
    if (discover) {
      await waitFor(() => sub.got.size === 10, 30_000, 'the events after it arrive through an announced server');
      t.ok(d.stats().connected, 'connected again, to another node');
      t.ok(await d.flush(5000), 'every event acknowledged: nothing left waiting');
      const first = JSON.parse(lines.find((l) => l.includes('NATS connected'))!);
      t.same([...first.announced].sort(), cl.servers.map((s) => `127.0.0.1:${s.port}`).sort(),
        'the connected line names what the cluster announced: its three servers');
    } else {
      // Seven reconnect delays and more: long enough for an announced server to have been tried.
      await sleep(1500);
      t.equal(sub.got.size, 5, 'nothing arrives while the only known server is away');
      t.notOk(d.stats().connected, 'not connected to any other node');
      t.equal(d.stats().spoolRecords, 5, 'the events wait in the spool');
      const connected = lines.filter((l) => l.includes('NATS connected')).map((l) => JSON.parse(l));
      t.ok(connected.length >= 1 && connected.every((c) => c.server.endsWith(`:${cl.servers[0].port}`) && c.announced === undefined),
        'never connected anywhere but the seed, and nothing announced was taken');
      await cl.servers[0].restart();
      await waitFor(() => sub.got.size === 10, 20_000, 'the seed is back: the spooled events arrive');
    }
    t.same([...sub.got].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every event arrived');
  });
}

t.test('what a server announces is logged bounded: eight servers shown, the count of the rest, a change once a minute', async (t) => {
  const ports = (from: number) => Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}:${from + i}`);
  const info = (urls: string[]) => `INFO ${JSON.stringify({ server_id: 'FAKE', version: '2.9.10', proto: 1, headers: true, max_payload: 1048576, connect_urls: urls })}\r\n`;
  const open = new Set<Socket>();
  const server = createServer((s) => {
    open.add(s);
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
    s.write(info(ports(4000)));
    let buf = '';
    let announced = false;
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line === 'PING') s.write('PONG\r\n');
        if (line === 'PING' && !announced) {
          // The cluster changes twice, at once: the second change is held back by the log's limit.
          announced = true;
          setTimeout(() => s.write(info(ports(5000)) + info(ports(6000))), 100);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { for (const s of open) s.destroy(); return new Promise((r) => server.close(r)); });
  const url = `nats://127.0.0.1:${(server.address() as { port: number }).port}`;
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  const d = new Delivery({
    servers: [url], mode: 'core', log, spool: { dir: mkdtempSync(join(tmpdir(), 'spool-disc-')), maxBytes: 16 << 20 },
    reconnectDelayMs: 200, connectOptions: fromConfig(url, true),
  });
  t.teardown(() => d.close(500));
  d.start();
  const logged = (msg: string) => lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith(msg));
  await waitFor(() => logged('NATS servers announced').length > 0, 10_000, 'the change logged');
  await sleep(300);
  const [connected] = logged('NATS connected');
  t.same(connected.announced, [...ports(4000).slice(0, 8), '… 12 more'], 'at connect: eight servers, then how many more');
  const changes = logged('NATS servers announced');
  t.equal(changes.length, 1, 'two changes at once: one line (the second waits for the next minute)');
  // nats.js shuffles its list of servers: which eight are shown is its order.
  const bounded = (l: string[], of: string[]) => l.length === 9 && l[8] === '… 12 more' && new Set(l.slice(0, 8)).size === 8 && l.slice(0, 8).every((u) => of.includes(u));
  t.ok(bounded(changes[0].added, ports(5000)), `added, bounded the same way: ${JSON.stringify(changes[0].added)}`);
  t.ok(bounded(changes[0].deleted, ports(4000)), `and what the cluster no longer has: ${JSON.stringify(changes[0].deleted)}`);
});

t.test('discover_servers yes: the announced servers are kept across reconnect cycles — all three down past a cycle, two back, the tap connects to them (review F3)', async (t) => {
  const cl = await startNatsCluster(3, { jetstream: false, name: 'disc-cycle' });
  t.teardown(() => cl.stop());
  const sub0 = await subscriber(cl);
  await meshed(t, cl, sub0);
  await sub0.nc.close();
  const lines: string[] = [];
  const log = pino({ level: 'info' }, new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }));
  const d = new Delivery({
    servers: [cl.urls[0]], mode: 'core', log, spool: { dir: mkdtempSync(join(tmpdir(), 'spool-disc-cycle-')), maxBytes: 16 << 20 },
    reconnectDelayMs: 200, maxReconnects: 2, connectOptions: fromConfig(cl.urls[0], true),
  });
  t.teardown(() => d.close(1000));
  d.start();
  await waitFor(() => d.stats().connected, 10_000, 'connected to the seed');
  await waitFor(() => lines.some((l) => l.includes('NATS connected') && l.includes('announced')), 10_000, 'the cluster announced its servers');
  await Promise.all(cl.servers.map((s) => s.kill()));
  await waitFor(() => !d.stats().connected, 10_000, 'every server\'s death is seen');
  const cycles = d.stats().reconnectCycles;
  await waitFor(() => d.stats().reconnectCycles >= cycles + 2, 20_000, 'reconnect cycles exhausted: new ones follow');
  d.enqueueMany([0, 1, 2].map((i) => testEvent(i, 3)));
  await Promise.all([cl.servers[1].restart(), cl.servers[2].restart()]);
  const sub = await subscriber(cl); // on the third node
  t.teardown(() => sub.nc.close());
  await waitFor(() => d.stats().connected, 30_000, 'connected again, to a server the cluster had announced (the seed is still down)');
  await waitFor(() => sub.got.size === 3, 30_000, 'the events spooled meanwhile arrive');
  const last = lines.filter((l) => l.includes('NATS connected')).map((l) => JSON.parse(l)).pop();
  t.not(last.server, `127.0.0.1:${cl.servers[0].port}`, `connected to ${last.server}, not the seed`);
});
