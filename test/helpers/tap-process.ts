// The tap as users run it: `wazuh-nats-tap run …` in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { waitFor } from './wait.js';
import { onLines } from './lines.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/wazuh-nats-tap.js');

export interface TapProcess {
  proc: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Run the CLI to its end (bounded); for commands that exit by themselves. */
export async function runTap(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...pre] = WITHOUT_TEST_HOOKS;
  const proc = spawn(cmd, [...pre, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * What every tap these helpers start runs under: the test runner's hooks (NODE_OPTIONS'
 * @tapjs/processinfo, put back into every child a spawn makes, whatever its env says) bring
 * signal-exit, which takes every signal in the child — a SIGINT or SIGTERM the CLI left to its
 * default action would not kill it there, and a test of how the tap meets a signal could pass
 * without the tap's own handling. `env -u` drops them where the spawn cannot put them back.
 */
export const WITHOUT_TEST_HOOKS = ['env', '-u', 'NODE_OPTIONS'];

/** `wrap`: a command that execs the tap in its place, e.g. `['prlimit', '--nofile=200:200']` (the pid stays the tap's). */
export async function startTap(args: string[], readyMsg: RegExp | null = /^attached/, wrap: string[] = []): Promise<TapProcess> {
  return startTapCommand([...wrap, process.execPath, BIN], args, readyMsg);
}

/** Taps still running, killed when the test process exits: one listener for all (one each passed Node's limit of 10). */
const live = new Set<ChildProcess>();
process.once('exit', () => { for (const p of live) p.kill('SIGKILL'); });

/**
 * The tap started by `command` (e.g. a packaged /usr/sbin/wazuh-nats-tap) with `args`, in `env`
 * (default: this process's); resolves when it logged `readyMsg`.
 */
export async function startTapCommand(command: string[], args: string[], readyMsg: RegExp | null = /^attached/,
  env: NodeJS.ProcessEnv = process.env): Promise<TapProcess> {
  const [cmd, ...pre] = [...WITHOUT_TEST_HOOKS, ...command];
  const proc = spawn(cmd, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  onLines(proc.stdout!, (l) => {
    try {
      logs.push(JSON.parse(l));
    } catch {
      logs.push({ msg: l });
    }
  });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })));
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  if (readyMsg) {
    let exited = false;
    void exit.then(() => { exited = true; });
    await waitFor(() => exited || logs.some((l) => readyMsg.test(String(l.msg))), 20_000, `the tap to log ${readyMsg}`)
      .catch((e) => { proc.kill('SIGKILL'); throw e; });
    if (exited) throw new Error(`the tap exited early: ${err}\n${JSON.stringify(logs)}`);
  }
  return {
    proc, logs, stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const r = await exit;
      clearTimeout(t);
      return r;
    },
  };
}
