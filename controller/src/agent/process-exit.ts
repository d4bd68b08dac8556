// How `run` ends its process. Node's process.exit() ends in the C library's exit(3), whose handlers
// include libuv's: it joins the threads of libuv's pool. A thread held by a disk that hangs (an
// fdatasync of the spool that never returns; a read on a dead network mount) holds that join, and
// the process with it — forever, past the shutdown's deadline, until systemd kills it. So the tap
// exits with _exit(2) when a request of that pool is still out: the kernel ends the held thread with
// the process. What was written is in the kernel already; only the log's last lines are in this
// process, and the 'exit' listeners (pino's among them) flush them first, as process.exit() would.
import koffi from 'koffi';

let libcExit: ((code: number) => void) | null = null;

/** End the process now with `code`, whatever libuv's threads wait on (after the 'exit' listeners). */
export function exitNow(code: number): never {
  libcExit ??= koffi.load('libc.so.6').func('void _exit(int)') as (code: number) => void;
  process.exitCode = code;
  try {
    process.emit('exit', code);
  } catch {
    // A listener that throws must not keep the process alive.
  }
  libcExit(code);
  throw new Error('_exit returned'); // never reached
}

/** A request is out on libuv's pool (file system work: a sync, a write, a read), or one of its callbacks is due. */
function poolBusy(): boolean {
  return process.getActiveResourcesInfo().some((r) => r === 'FSReqCallback' || r === 'FSReqPromise');
}

/**
 * The end of `run`: process.exit(code) once libuv's pool is idle — what it holds usually returns in
 * milliseconds (a log line being written) — or, when `waitMs` passed first, exitNow(code).
 */
export async function exitWhenIdle(code: number, waitMs: number): Promise<never> {
  const end = Date.now() + waitMs;
  while (poolBusy() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (!poolBusy()) process.exit(code);
  return exitNow(code);
}
