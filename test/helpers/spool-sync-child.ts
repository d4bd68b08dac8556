// A spool in a process whose fdatasync may hang (LD_PRELOAD slow-sync.so, spool-slow-disk.test.ts).
// It appends a status change every 10 ms into small segments (a rotation every few appends) and
// prints one line a tick: {"tick": n, "appended": k}. `close` on stdin: the spool is closed, then
// {"closed": k}, and the process ends.
import { createInterface } from 'node:readline';
import { Spool } from '../../controller/src/publish/spool.js';

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
createInterface({ input: process.stdin }).on('line', (l) => {
  if (l.trim() !== 'close') return;
  clearInterval(timer);
  s.close();
  process.stdout.write(`${JSON.stringify({ closed: appended, writeErrors: s.stats().writeErrors })}\n`);
  process.exit(0);
});
