// strace attached to a running process (its threads too: -f), the calls `calls` written to `file` with
// whole buffers in hex (-xx); resolved once strace says it attached (5 s at most), killed at the test's
// end if still running. `extra`: more flags (-yy for the descriptors' paths, -ttt for times).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Test } from 'tap';

export async function straceAttached(t: Test, pid: number, file: string, calls: string, extra: string[] = []): Promise<ChildProcess> {
  const st = spawn('strace', ['-f', '-p', String(pid), ...extra, '-xx', '-s', '70000', '-e', `trace=${calls}`, '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (st.exitCode === null && st.signalCode === null) st.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`strace did not attach: ${err}`)), 5000);
    st.stderr!.on('data', (d) => {
      err += d;
      if (/Process \d+ attached/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    st.once('exit', () => reject(new Error(`strace exited: ${err}`)));
  });
  return st;
}

/**
 * The lines of an `strace -f` output file, each call whole: a thread's `<unfinished ...>` line joined with
 * its `<... resumed>` one. `resumed` matches the latter: group 1 the thread id, group 2 the rest of the call.
 */
export function wholeCalls(file: string, resumed: RegExp): string[] {
  const out: string[] = [];
  const pending = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const un = /^(\d+)\s+(.*) <unfinished \.\.\.>$/.exec(line);
    if (un) {
      pending.set(un[1], line.slice(0, line.length - ' <unfinished ...>'.length));
      continue;
    }
    const re = resumed.exec(line);
    if (!re) {
      out.push(line);
      continue;
    }
    const head = pending.get(re[1]);
    pending.delete(re[1]);
    if (head !== undefined) out.push(head + re[2]);
  }
  return out;
}
