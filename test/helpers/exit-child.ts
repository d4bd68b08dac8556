// A process whose libuv pool may hold a thread on a hung disk (LD_PRELOAD slow-sync.so,
// process-exit.test.ts): it starts an fdatasync, then ends with `exitWhenIdle(code, waitMs)` or
// `exitNow(code)` as argv says. Its 'exit' listener prints `exit listener <code>`.
import { openSync, writeSync, fdatasync } from 'node:fs';
import { exitNow, exitWhenIdle } from '../../controller/src/agent/process-exit.js';

const [how, file, code] = [process.argv[2], process.argv[3], Number(process.argv[4])];
process.on('exit', (c) => { process.stdout.write(`exit listener ${c}\n`); });
const fd = openSync(file, 'w');
writeSync(fd, 'x');
fdatasync(fd, () => { process.stdout.write('synced\n'); });
setTimeout(() => {
  if (how === 'now') exitNow(code);
  else void exitWhenIdle(code, 300);
}, 100);
