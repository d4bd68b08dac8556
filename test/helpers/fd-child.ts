// An alerts follower in a process of its own, for the fd-exhaustion test: its descriptors can be
// used up (`exhaust <left>`: open /dev/null until EMFILE, then close <left> of them) and given
// back (`release`) without touching the test runner's. Commands on stdin, one a line: start,
// exhaust <n>, release, stats, close. Replies and the follower's log as JSON lines on stdout.
import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { AlertsFollower } from '../../controller/src/alerts/follower.js';

const [file, positionFile] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
let follower: AlertsFollower | null = null;
const held: number[] = [];

const commands: Record<string, (arg: string) => void> = {
  start() {
    follower = new AlertsFollower({
      file, positionFile, fromBeginning: true, pollMs: 100, retryMs: 100,
      sink: (lines) => { out({ ev: 'lines', lines: lines.map((l) => l.text) }); return lines.length; },
      log: {
        info: (o, msg) => out({ ev: 'log', level: 'info', msg, o }),
        warn: (o, msg) => out({ ev: 'log', level: 'warn', msg, o }),
      },
    });
    follower.start();
  },
  exhaust(arg) {
    for (let i = 0; i < 100_000; i++) {
      try {
        held.push(openSync('/dev/null', 'r'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EMFILE') throw e;
        break;
      }
    }
    for (let i = 0; i < Number(arg) && held.length; i++) closeSync(held.pop()!);
  },
  release() {
    while (held.length) closeSync(held.pop()!);
  },
  stats() {
    out({ ev: 'stats', stats: follower?.stats() ?? null });
  },
  close() {
    follower?.close();
    out({ ev: 'done', cmd: 'close', held: held.length });
    process.exit(0);
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg = ''] = line.trim().split(' ');
  commands[cmd]?.(arg);
  out({ ev: 'done', cmd, held: held.length });
});
