// A TypeScript helper of the tests run in a child process, by the loader the tests themselves run
// under (tap's @tapjs/typescript import) and without the parent's NODE_OPTIONS (tap's own hooks).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface TsChildOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  stdio?: StdioOptions;
  /** A command that execs node in its place, e.g. `['prlimit', '--nofile=256:256']`. */
  wrap?: string[];
}

export function spawnTsChild(script: string, args: string[], o: TsChildOptions = {}): ChildProcess {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const [cmd, ...pre] = [...(o.wrap ?? []), process.execPath];
  return spawn(cmd, [...pre, ...loader, script, ...args],
    { stdio: o.stdio ?? ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '', ...o.env } });
}
