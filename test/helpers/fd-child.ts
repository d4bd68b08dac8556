// A process of its own for the fd-exhaustion tests: the parts of the tap that open files on
// events (the alerts follower, the client.keys watcher, the initial sync, the delivery's reads of
// its spool) and the metrics endpoint run here, and this
// process's descriptors can be used up (`exhaust <left>`: open /dev/null until EMFILE, then close
// <left> of them) and given back (`release`) without touching the test runner's. Commands on
// stdin, one a line; replies, what the parts report and their log as JSON lines on stdout.
import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AlertsFollower } from '../../controller/src/alerts/follower.js';
import { watchClientKeys } from '../../controller/src/state/sources/client-keys.js';
import { initialSync } from '../../controller/src/state/sources/initial-sync.js';
import { Registry } from 'prom-client';
import { serveMetrics } from '../../controller/src/metrics.js';
import { Delivery } from '../../controller/src/publish/delivery.js';
import { testEvent } from './delivery-events.js';
import { publishedStatus, StatusJournal, type PublishedStatus } from '../../controller/src/state/sources/status-journal.js';

const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const log = {
  info: (o: object, msg: string) => out({ ev: 'log', level: 'info', msg, o }),
  warn: (o: object, msg: string) => out({ ev: 'log', level: 'warn', msg, o }),
  error: (o: object, msg: string) => out({ ev: 'log', level: 'error', msg, o }),
  debug: () => {},
};
const error = (e: Error) => out({ ev: 'error', code: (e as NodeJS.ErrnoException).code ?? null, message: e.message });
let follower: AlertsFollower | null = null;
let keys: { close(): void } | null = null;
let delivery: Delivery | null = null;
let enqueued = 0;
const held: number[] = [];
let journal: StatusJournal | null = null;
let journalKnown = new Map<number, PublishedStatus>();

const commands: Record<string, (...args: string[]) => void> = {
  /** `follow <file> <position> [end]`: with `end`, no saved position means the end of the file (the tap's default). */
  follow(file, positionFile, from) {
    follower = new AlertsFollower({
      file, positionFile, fromBeginning: from !== 'end', pollMs: 100, retryMs: 100, log,
      sink: (lines) => { out({ ev: 'lines', lines: lines.map((l) => l.text) }); return lines.length; },
    });
    follower.start();
  },
  keys(file) {
    keys = watchClientKeys(file, (k) => out({ ev: 'keys', ids: k.agents.map((a) => a.id) }), { debounceMs: 20, retryMs: 200, onError: error });
  },
  metrics(port) {
    void serveMetrics(new Registry(), { host: '127.0.0.1', port: Number(port) }, log).then(() => out({ ev: 'metrics' }));
  },
  sync(socketPath) {
    void initialSync({ socketPath, timeoutMs: 10_000 }).then((r) => out({ ev: 'sync', complete: r.complete, reason: r.reason, ids: r.ids }));
  },
  /** A delivery to core NATS whose spool keeps nothing in memory: every record is read back from its segment file. */
  delivery(url, dir) {
    delivery = new Delivery({
      servers: [url], mode: 'core', log: log as never, reconnectDelayMs: 200,
      spool: { dir, maxBytes: 64 << 20, memCacheBytes: 0 },
    });
    delivery.start();
  },
  enqueue(n) {
    delivery!.enqueueMany(Array.from({ length: Number(n) }, () => testEvent(enqueued++, 5)));
  },
  /** `journal <path>`: open the status journal (what it knows is said); `journal-close`: record one status, close it as the tap does. */
  journal(path) {
    journal = new StatusJournal(path, { onError: (e, op) => out({ ev: 'journal-error', op, code: (e as NodeJS.ErrnoException).code ?? null }) });
    journalKnown = journal.open();
    out({ ev: 'journal', known: [...journalKnown.keys()] });
  },
  'journal-close'() {
    journal!.recordMany([{ agentId: '009', status: 'active', statusCode: 0 }]);
    journal!.close(new Map([...journalKnown, [9, publishedStatus('active', 0)]]));
  },
  dstats() {
    out({ ev: 'stats', stats: delivery?.stats() ?? null });
  },
  exhaust(left) {
    for (let i = 0; i < 100_000; i++) {
      try {
        held.push(openSync('/dev/null', 'r'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EMFILE') throw e;
        break;
      }
    }
    for (let i = 0; i < Number(left) && held.length; i++) closeSync(held.pop()!);
  },
  release() {
    while (held.length) closeSync(held.pop()!);
  },
  stats() {
    out({ ev: 'stats', stats: follower?.stats() ?? null });
  },
  async close() {
    await delivery?.close(1000);
    await follower?.close();
    keys?.close();
    out({ ev: 'done', cmd: 'close', held: held.length });
    process.exit(0);
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(' ');
  commands[cmd]?.(...args);
  out({ ev: 'done', cmd, held: held.length });
});
