// A spool in a process whose fdatasync may hang (LD_PRELOAD slow-sync.so, spool-slow-disk.test.ts).
// It appends a status change every 10 ms into small segments (a rotation every few appends) and
// prints one line a tick: {"tick": n, "appended": k}. `close` on stdin: the spool is closed, then
// {"closed": k}, and the process ends; `close-wait`: the same, after waiting up to a second for the
// last sync ({"closed": k, "synced": "synced" | "timeout" | errno code}).
import { createInterface } from 'node:readline';
import { Spool } from '../../controller/src/publish/spool.js';
import { exitNow } from '../../controller/src/agent/process-exit.js';

const dir = process.argv[2];
const s = Spool.open({ dir, maxBytes: 16 << 20, segmentBytes: 4096, fsync: 'interval', fsyncIntervalMs: 20 });
let appended = 0;
let tick = 0;
const timer = setInterval(() => {
  const seqs = s.append([{
    subject: 'wazuh.agent.001.status', headers: { 'Wazuh-Agent-Id': '001' },
    body: JSON.stringify({ i: appended, pad: 'x'.repeat(900) }), kind: 'status', eventId: `ev-${appended}`,
  }]);
  if (seqs[0] > 0) appended++;
  process.stdout.write(`${JSON.stringify({ tick: ++tick, appended })}\n`);
}, 10);
createInterface({ input: process.stdin }).on('line', async (l) => {
  const cmd = l.trim();
  if (cmd !== 'close' && cmd !== 'close-wait') return;
  clearInterval(timer);
  s.close();
  const synced = cmd === 'close-wait' ? await s.synced(1000) : undefined;
  process.stdout.write(`${JSON.stringify({
    closed: appended, writeErrors: s.stats().writeErrors, synced: typeof synced === 'object' ? synced.code : synced,
  })}\n`);
  // Not process.exit(): it would wait for a sync that hangs (agent/process-exit.ts).
  exitNow(0);
});
