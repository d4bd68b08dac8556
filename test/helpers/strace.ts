// strace attached to a running process (its threads too: -f), the calls `calls` written to `file` with
// their descriptors' paths (-yy) and whole buffers in hex (-xx); resolved once strace says it attached
// (5 s at most), killed at the test's end. `extra`: more flags (-ttt for times).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';

export async function straceAttached(t: Test, pid: number, file: string, calls: string, extra: string[] = []): Promise<ChildProcess> {
  const st = spawn('strace', ['-f', '-p', String(pid), '-yy', ...extra, '-xx', '-s', '70000', '-e', `trace=${calls}`, '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
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
