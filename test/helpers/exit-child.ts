// A process that ends the way `run` does (agent/process-exit.ts), in one of four ways (argv[2]):
//   now | idle — an fdatasync is started (LD_PRELOAD slow-sync.so may hold it), then exitNow(code) or
//                exitWhenIdle(code, 300); its 'exit' listener prints `exit listener <code>`;
//   listener   — exitNow(code) with an 'exit' listener that holds the event loop for 30 s;
//   shutdown   — a Lifecycle (deadline 300 ms) whose part's stop holds the event loop for 30 s.
import { openSync, writeSync, fdatasync } from 'node:fs';
import pino from 'pino';
import { exitNow, exitWhenIdle } from '../../controller/src/agent/process-exit.js';
import { Lifecycle } from '../../controller/src/agent/lifecycle.js';

const [how, file, code] = [process.argv[2], process.argv[3], Number(process.argv[4])];
/** The event loop held in one call, as by a system call that does not return. */
const holdLoop = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

if (how === 'now' || how === 'idle') {
  process.on('exit', (c) => { process.stdout.write(`exit listener ${c}\n`); });
  const fd = openSync(file, 'w');
  writeSync(fd, 'x');
  fdatasync(fd, () => { process.stdout.write('synced\n'); });
  setTimeout(() => {
    if (how === 'now') exitNow(code);
    else void exitWhenIdle(code, 300);
  }, 100);
} else if (how === 'listener') {
  process.on('exit', () => { process.stdout.write('listener holds\n'); holdLoop(30_000); });
  setTimeout(() => exitNow(code), 100);
} else if (how === 'shutdown') {
  const life = new Lifecycle(pino({ level: 'silent' }), 300);
  life.add({ name: 'held', start() {}, stop() { process.stdout.write('stop holds\n'); holdLoop(30_000); } });
  const run = life.run();
  setTimeout(() => life.requestStop({ why: 'SIGTERM', code }), 100);
  void run.then((c) => { process.stdout.write(`returned ${c}\n`); });
}
