// The alerts follower feeding a spool, as the tap runs them, in a process of its own whose fdatasync
// and rename may be held, failed or traced (LD_PRELOAD slow-sync.so: alerts-position.test.ts).
// Args: <alerts.json> <spool dir> <fsyncIntervalMs> <stopWaitMs>. Each line the follower hands over
// is spooled as an alert; a line a tick (every 10 ms): {"tick": n, "lines": k, "position_errors": e};
// its log as {"log": level, "msg": …}. `close` on stdin: the follower is closed as the tap's stop
// does, then {"closed": ms it took, …}, the spool closed, and the process ends (exitNow: a sync that
// hangs does not hold it).
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { AlertsFollower } from '../../controller/src/alerts/follower.js';
import { Spool } from '../../controller/src/publish/spool.js';
import { exitNow } from '../../controller/src/agent/process-exit.js';

const [file, dir, intervalMs, stopWaitMs] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const spool = Spool.open({ dir, maxBytes: 64 << 20, fsync: 'interval', fsyncIntervalMs: Number(intervalMs) });
const follower = new AlertsFollower({
  file, positionFile: join(dir, 'alerts.position'), fromBeginning: true, pollMs: 50, stopWaitMs: Number(stopWaitMs),
  sink: (lines) => spool.append(lines.map((l) => ({
    subject: 'wazuh.alert.low', headers: {}, body: l.text, kind: 'alert' as const, eventId: `alert-${l.end}`,
  })), true).filter((seq) => seq > 0).length,
  afterSync: (now) => spool.afterSync(now),
  log: { info: (_o, msg) => out({ log: 'info', msg }), warn: (o, msg) => out({ log: 'warn', msg, o }) },
});
follower.start();
let tick = 0;
const timer = setInterval(() => {
  const st = follower.stats();
  out({ tick: ++tick, lines: st.lines, position_errors: st.position_errors });
}, 10);
createInterface({ input: process.stdin }).on('line', async (l) => {
  if (l.trim() !== 'close') return;
  clearInterval(timer);
  const t0 = performance.now();
  await follower.close();
  out({ closed: Math.round(performance.now() - t0), lines: follower.stats().lines, position_errors: follower.stats().position_errors });
  spool.close();
  await spool.synced(1000);
  exitNow(0); // not process.exit(): it would wait for a sync that hangs (agent/process-exit.ts)
});
