// The capture's order guarantee, made deterministic (SPEC §3 "Order"): a write
// still inside its syscall holds back the later writes of other daemons, so
// records reach user space in the order the writes began, not the order they
// ended. Real eBPF, real simulated daemons; the wazuh-db here is the test's own
// socket, which stops reading for a moment so that one write stays in flight.
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

/** Whether a thread of `pid` is inside sendto(2) now (/proc/<pid>/task/<tid>/syscall: its number first; 44 on x86-64). */
const inSendto = (pid: number) => readdirSync(`/proc/${pid}/task`).some((tid) => {
  try { return readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').startsWith('44 '); } catch { return false; }
});

// The shim holds the watermark for a write in flight up to STALL_NS (50 ms, wdbtap_shim.c): one held longer
// is passed on purpose (a sendto blocked on a full socket must not stop the capture). So an attempt counts
// only when remoted's write was in flight for less than HOLD_MAX_MS from when it was seen in its sendto to
// when wazuh-db read again; on a busy machine (a full test run on two cores) the steps between can take
// longer, and the attempt is made again — at most ATTEMPTS times, and one must count.
const HOLD_MAX_MS = 35;
const ATTEMPTS = 5;

t.test('a write in flight holds the later writes of other daemons: records arrive in the order the writes began', async (t) => {
  if (process.arch !== 'x64') throw new Error('this test reads the x86-64 syscall number of sendto');
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

  const held: number[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const id = 10 * attempt;
    const first = batches.flat().length;
    // remoted's write is larger than its socket can hold while wazuh-db does not read: it stays in its sendto.
    db.pause();
    const big = frame(`global update-keepalive {"id":${id},"connection_status":"pending","sync_status":"synced"}${' '.repeat(600_000)}`);
    const bigSent = slow.raw(big);
    await waitFor(() => inSendto(slow.pid), 5000, "remoted's write in its sendto", 1);
    const since = performance.now();
    // authd's write begins after remoted's began, and ends long before it; then a few of the controller's
    // rounds (1 ms each) go by, in which its record would have been released had nothing held it.
    await quick.raw(frame(`global update-keepalive {"id":${id + 1},"connection_status":"pending","sync_status":"synced"}`));
    await new Promise((r) => setTimeout(r, 10));
    db.resume();
    const heldMs = performance.now() - since;
    await bigSent;
    held.push(Math.round(heldMs));
    const isBig = (r: CaptureRecord) => r.tgid === slow.pid && r.syscallBytes > 500_000 && Buffer.from(r.data).includes(`"id":${id},`);
    const isSmall = (r: CaptureRecord) => r.tgid === quick.pid && Buffer.from(r.data).includes(`"id":${id + 1},`);
    await waitFor(() => batches.flat().some(isBig) && batches.flat().some(isSmall), 5000, 'both writes');
    if (heldMs >= HOLD_MAX_MS) continue; // the machine was too slow to tell: another attempt
    // This attempt's records (an attempt passed over may have had its write passed on purpose).
    const mine = batches.flat().slice(first);
    t.ok(mine.every((r, i) => i === 0 || mine[i - 1].tsNs <= r.tsNs), 'every record, across batches, in the order its write began');
    const firstBig = mine.findIndex(isBig);
    const small = mine.findIndex(isSmall);
    t.ok(firstBig >= 0 && small > firstBig, `remoted's write (began first, ended last) comes before authd's (${firstBig} < ${small}; held ${Math.round(heldMs)} ms)`);
    return;
  }
  t.fail(`no attempt held remoted's write less than ${HOLD_MAX_MS} ms (held ${held.join(', ')} ms): the machine is too busy to tell`);
});
