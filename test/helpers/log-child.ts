// The tap's logger (util/log.ts) on a FIFO nobody reads, ended the way `run` ends (exitWhenIdle).
// argv: <fifo> <mode> — mode `blocking` (the FIFO opened as journald's socket is: a write that
// waits), `nonblocking` (EAGAIN, retried by pino's sonic-boom), `drain` (filled past the bound, then
// the child reads the FIFO empty itself and prints what came out after). It logs 1 KiB lines until
// some are dropped, prints its LogOutput's stats as JSON on stderr, then exits with code 0.
import { constants, openSync, readSync } from 'node:fs';
import { createLogger, logOutput } from '../../controller/src/util/log.js';
import { exitWhenIdle } from '../../controller/src/agent/process-exit.js';

const [fifo, mode] = [process.argv[2], process.argv[3]];
const flags = constants.O_RDWR | (mode === 'nonblocking' ? constants.O_NONBLOCK : 0);
const fd = openSync(fifo, flags); // read-write: a reader exists, and never reads
const reader = mode === 'drain' ? openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK) : -1;
const log = createLogger('info', false, fd);
const out = logOutput()!;
const line = 'x'.repeat(1000);

const say = (what: string, o: object) => process.stderr.write(`${what} ${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  for (let i = 0; i < 20_000 && out.stats().droppedLines === 0; i++) {
    log.info({ i, line }, 'filler');
    if (i % 500 === 0) await new Promise((r) => setImmediate(r)); // let the first writes go out and block
  }
  for (let i = 0; i < 2000; i++) log.info({ i, line }, 'more'); // all past the bound
  await new Promise((r) => setTimeout(r, 1200)); // past LOG_STALL_MS
  say('stats', out.stats());
  if (mode === 'drain') {
    const buf = Buffer.alloc(1 << 20);
    let text = '';
    const end = Date.now() + 5000;
    while (!/lines dropped/.test(text) && Date.now() < end) {
      try {
        const n = readSync(reader, buf);
        text = (text + buf.subarray(0, n).toString()).slice(-8192); // the newest lines
      } catch {
        await new Promise((r) => setTimeout(r, 5)); // EAGAIN: the next writes are on their way
      }
    }
    // The notice is read as soon as write(2) put it in the pipe; its write's callback comes on a later turn.
    for (let i = 0; i < 200 && out.stats().pendingBytes > 0; i++) await new Promise((r) => setTimeout(r, 10));
    say('drained', { notice: text.split('\n').find((l) => /lines dropped/.test(l)) ?? null, stats: out.stats() });
  }
  await exitWhenIdle(0, 1000);
}
void main();
