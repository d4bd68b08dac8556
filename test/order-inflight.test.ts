// The capture's order guarantee, made deterministic (SPEC §3 "Order"): a write
// still inside its syscall holds back the later writes of other daemons, so
// records reach user space in the order the writes began, not the order they
// ended. Real eBPF, real simulated daemons; the wazuh-db here is the test's own
// socket, which stops reading for a moment so that one write stays in flight.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';
import { installSimDaemon, SimClient, SimProcess } from '../scripts/sim/manager.mjs';
import type { CaptureRecord } from '../controller/src/types.js';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';

const binDir = join(ROOT, 'build/sim/bin');

/** A wazuh-db that answers `ok` to every frame, and can stop reading every connection for a while. */
async function fakeWdb(t: Tap.Test, home: string) {
  const conns = new Set<Socket>();
  let paused = false;
  const srv = createServer((s) => {
    conns.add(s);
    s.on('error', () => {});
    s.on('close', () => conns.delete(s));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
        buf = buf.subarray(4 + buf.readUInt32LE(0));
        s.write(Buffer.from([2, 0, 0, 0, 0x6f, 0x6b])); // "ok"
      }
    });
    if (paused) s.pause();
  });
  await new Promise<void>((r) => srv.listen(join(home, 'queue/db/wdb'), () => r()));
  t.teardown(() => { for (const c of conns) c.destroy(); srv.close(); });
  return {
    pause() { paused = true; for (const c of conns) c.pause(); },
    resume() { paused = false; for (const c of conns) c.resume(); },
  };
}

const frame = (text: string) => {
  const body = Buffer.from(`${text}\0`);
  const b = Buffer.alloc(4 + body.length);
  b.writeUInt32LE(body.length, 0);
  body.copy(b, 4);
  return b;
};

t.test('a write in flight holds the later writes of other daemons: records arrive in the order the writes began', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-inflight-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  for (const n of ['wazuh-remoted', 'wazuh-authd']) installSimDaemon(binDir, home, n);
  mkdirSync(join(home, 'queue/db'), { recursive: true });
  const db = await fakeWdb(t, home);
  const capture = Capture.open({ ...artefacts(), home });
  t.teardown(() => capture.close());
  const batches: CaptureRecord[][] = [];
  capture.start((b) => { batches.push(b); }, (e) => t.fail(e.message));
  capture.attach();
  const client = async (name: string) => {
    const c = new SimClient(new SimProcess(join(home, 'bin'), name, home, ['--no-reset']));
    t.teardown(() => c.kill('SIGKILL'));
    await c.proc.ready();
    await c.rawreq('global get-distinct-groups'); // opens its long-lived connection
    return c;
  };
  const slow = await client('wazuh-remoted');
  const quick = await client('wazuh-authd');

  // remoted's write is larger than its socket can hold while wazuh-db does not read: it stays in its sendto.
  db.pause();
  const big = frame(`global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}${' '.repeat(600_000)}`);
  const bigSent = slow.raw(big);
  await new Promise((r) => setTimeout(r, 10));
  // authd's write begins after remoted's began, and ends long before it.
  await quick.raw(frame('global update-keepalive {"id":2,"connection_status":"pending","sync_status":"synced"}'));
  await new Promise((r) => setTimeout(r, 30));
  db.resume();
  await bigSent;

  const mine = () => batches.flat().filter((r) => r.tgid === slow.pid || r.tgid === quick.pid);
  await waitFor(() => mine().some((r) => r.tgid === slow.pid && r.syscallBytes > 500_000) && mine().some((r) => r.tgid === quick.pid && Buffer.from(r.data).includes('"id":2')),
    5000, 'both writes');
  const all = batches.flat();
  t.ok(all.every((r, i) => i === 0 || all[i - 1].tsNs <= r.tsNs), 'every record, across batches, in the order its write began');
  const firstBig = all.findIndex((r) => r.tgid === slow.pid && r.syscallBytes > 500_000);
  const small = all.findIndex((r) => r.tgid === quick.pid && Buffer.from(r.data).includes('"id":2'));
  t.ok(firstBig >= 0 && small > firstBig, `remoted's write (began first, ended last) comes before authd's (${firstBig} < ${small})`);
});
