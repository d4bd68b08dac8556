// A spool in a process whose fdatasync may be held, failed or traced (LD_PRELOAD slow-sync.so:
// spool-after-sync.test.ts). Args: <dir> <fsync policy> <segmentBytes> <fsyncIntervalMs>. Commands
// on stdin, one a line: `append <n>` (n status records of ~1 KiB in one append; {"appended": [seqs]}),
// `after <id> [now]` (afterSync(now); {"after": id, "durable": bool} once it resolves), `ack` (every
// record read and acknowledged; {"acked": n}), `close` (closed, its last sync waited for up to a
// second; {"closed": true}, then the process ends).
import { createInterface } from 'node:readline';
import { Spool } from '../../controller/src/publish/spool.js';
import { exitNow } from '../../controller/src/agent/process-exit.js';

const [dir, fsync, segmentBytes, intervalMs] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const s = Spool.open({
  dir, maxBytes: 16 << 20, segmentBytes: Number(segmentBytes), fsync: fsync as 'always' | 'interval' | 'never', fsyncIntervalMs: Number(intervalMs),
});
let n = 0;
createInterface({ input: process.stdin }).on('line', async (l) => {
  const [cmd, a, b] = l.trim().split(' ');
  if (cmd === 'append') {
    const seqs = s.append(Array.from({ length: Number(a) }, () => ({
      subject: 'wazuh.agent.001.status', headers: { 'Wazuh-Agent-Id': '001' },
      body: JSON.stringify({ i: n, pad: 'x'.repeat(900) }), kind: 'status' as const, eventId: `ev-${n++}`,
    })));
    out({ appended: seqs });
  } else if (cmd === 'after') {
    void s.afterSync(b === 'now').then((durable) => out({ after: a, durable }));
  } else if (cmd === 'ack') {
    const got = s.read(100_000);
    for (const e of got) s.ack(e.seq);
    out({ acked: got.length });
  } else if (cmd === 'close') {
    s.close();
    await s.synced(1000);
    out({ closed: true });
    exitNow(0);
  }
});
