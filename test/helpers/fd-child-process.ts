// fd-child.ts started under a small descriptor limit (prlimit): what it reports, and `send` to
// give it a command and wait until it was done.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './wait.js';
import { onLines } from './lines.js';
import { spawnTsChild } from './ts-child.js';

export interface FdChild {
  p: ChildProcess;
  /** Lines the follower handed over. */
  got: string[];
  logs: { level: string; msg: string; o: Record<string, unknown> }[];
  /** Everything else it wrote: replies, `keys`, `error`. */
  events: Record<string, any>[];
  stderr(): string;
  /** Run a command; resolves with its `stats` reply, if any, else its `done` reply. */
  send(cmd: string): Promise<Record<string, any>>;
}

export function startFdChild(t: { teardown(fn: () => unknown): void }, nofile = 256): FdChild {
  const p = spawnTsChild(join(import.meta.dirname, 'fd-child.ts'), [], { wrap: ['prlimit', `--nofile=${nofile}:${nofile}`] });
  t.teardown(() => { p.kill('SIGKILL'); });
  let err = '';
  const c: FdChild = {
    p, got: [], logs: [], events: [], stderr: () => err,
    async send(cmd: string) {
      const n = c.events.length;
      p.stdin!.write(`${cmd}\n`);
      // 20 s: the first command waits for the child's start too (tsx compiling it and its imports),
      // which a full run on two busy cores took past 5 s (fd-exhaustion, the spool drain's test).
      await waitFor(() => c.events.slice(n).some((r) => r.ev === 'done'), 20_000, `the child to do ${cmd}: ${err}`);
      const mine = c.events.slice(n);
      return mine.find((r) => r.ev === 'stats')?.stats ?? mine.find((r) => r.ev === 'done');
    },
  };
  onLines(p.stdout!, (l) => {
    const m = JSON.parse(l);
    if (m.ev === 'lines') c.got.push(...m.lines);
    else if (m.ev === 'log') c.logs.push(m);
    else c.events.push(m);
  });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return c;
}
