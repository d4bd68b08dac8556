// A disk whose fdatasync takes seconds (a busy or throttled volume; here an LD_PRELOAD that holds
// every fdatasync while a file exists, helpers/slow-sync.c): the spool's periodic and rotation syncs
// run on libuv's threads, so the event loop goes on — appends, rotations, timers — while they wait,
// and nothing appended is lost once the disk answers.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool } from '../controller/src/publish/spool.js';
import { slowSyncLib } from './helpers/slow-sync.mjs';
import { waitFor } from './helpers/wait.js';
import { onLines } from './helpers/lines.js';

t.test('a sync that hangs holds neither the appends nor the timers; every record is there after', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'wnt-slow-sync-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'spool');
  const hold = join(tmp, 'hold');
  writeFileSync(hold, ''); // every fdatasync waits from the first one on
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const p = spawn(process.execPath, [...loader, join(import.meta.dirname, 'helpers/spool-sync-child.ts'), dir], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', LD_PRELOAD: slowSyncLib(), SLOW_SYNC_HOLD: hold },
  });
  t.teardown(() => { rmSync(hold, { force: true }); p.kill('SIGKILL'); });
  const lines: Record<string, number>[] = [];
  let err = '';
  onLines(p.stdout!, (l) => lines.push(JSON.parse(l)));
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });

  await waitFor(() => existsSync(`${hold}.entered`), 10_000, `a sync to start: ${err}`);
  const at = lines.length;
  await new Promise((r) => setTimeout(r, 1000));
  const during = lines.slice(at).filter((l) => l.tick !== undefined);
  t.ok(during.length >= 20, `the event loop ticked while a sync hung (${during.length} ticks in 1 s)`);
  const grew = (during.at(-1)?.appended ?? 0) - (during[0]?.appended ?? 0);
  t.ok(grew >= 20, `appends went on meanwhile, rotations too (${grew} of ~1 KiB into 4 KiB segments)`);

  rmSync(hold); // the disk answers
  const n = lines.length;
  p.stdin!.write('close\n');
  await waitFor(() => lines.slice(n).some((l) => l.closed !== undefined), 10_000, `the child to close: ${err}`);
  const closed = lines.find((l) => l.closed !== undefined)!;
  t.equal(closed.writeErrors, 0, 'no write or sync failed');
  await new Promise<void>((r) => { if (p.exitCode !== null) r(); else p.once('exit', () => r()); });

  const s = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 4096 });
  t.teardown(() => s.close());
  const got = s.read(100_000).map((e) => e.eventId);
  t.equal(got.length, closed.closed, `every record appended is in the spool (${closed.closed})`);
  t.same(got, Array.from({ length: closed.closed }, (_, i) => `ev-${i}`), 'in order');
});
