// How `run` ends its process. Node's process.exit() ends in the C library's exit(3), whose handlers
// include libuv's: it joins the threads of libuv's pool. A thread held by a disk that hangs (an
// fdatasync of the spool that never returns; a read on a dead network mount) holds that join, and
// the process with it — forever, past the shutdown's deadline, until systemd kills it. So the tap
// exits with _exit(2) when a request of that pool is still out: the kernel ends the held thread with
// the process. What was written is in the kernel already; only the log's last lines are in this
// process, and the 'exit' listeners (pino's among them) flush them first, as process.exit() would.
//
// And a deadline the kernel keeps (`kernelDeadline`): our timers need the event loop, and a loop held in
// a system call (a write to a disk or a log pipe that never drains) runs none of them. alarm(2) has the
// kernel send SIGALRM, whose default action ends the process (restored first: a library may have set a
// handler, which would need the loop) — the BPF programs go with it. What such an end looks like:
// killed by SIGALRM (exit status 142), said by systemd.
import { libc } from '../util/libc.js';

interface Libc {
  exit(code: number): void;
  /** alarm(2) with SIGALRM's default action restored first: a handler (a library's, in JavaScript) would need the event loop. */
  alarm(seconds: number): void;
}
let calls: Libc | null = null;

const SIGALRM = 14;

function loadLibc(): Libc {
  if (!calls) {
    const lib = libc();
    const signal = lib.func('void *signal(int sig, void *handler)') as (sig: number, handler: null) => unknown;
    const alarm = lib.func('unsigned int alarm(unsigned int)') as (seconds: number) => number;
    calls = {
      exit: lib.func('void _exit(int)') as (code: number) => void,
      alarm: (seconds) => {
        if (seconds > 0) signal(SIGALRM, null); // SIG_DFL
        alarm(seconds);
      },
    };
  }
  return calls;
}

/**
 * The kernel ends the process (SIGALRM) `ms` from now unless the returned function is called first.
 * One per process (alarm(2)): arming again replaces it.
 */
export function kernelDeadline(ms: number): () => void {
  const c = libcOrNull();
  c?.alarm(Math.max(1, Math.ceil(ms / 1000)));
  return () => { c?.alarm(0); };
}

/** libc's calls, or null where it cannot be loaded (then only our own timers keep the deadline). */
function libcOrNull(): Libc | null {
  try {
    return loadLibc();
  } catch {
    return null;
  }
}

/** The time the 'exit' listeners get in exitNow before the kernel ends the process all the same. */
const LISTENERS_MS = 2000;

/** End the process now with `code`, whatever libuv's threads wait on (after the 'exit' listeners). */
export function exitNow(code: number): never {
  const c = libcOrNull();
  if (!c) process.exit(code); // the best left
  // A listener that blocks (pino flushing into a pipe nobody reads) must not hold the exit either.
  c.alarm(Math.ceil(LISTENERS_MS / 1000));
  process.exitCode = code;
  try {
    process.emit('exit', code);
  } catch {
    // A listener that throws must not keep the process alive.
  }
  c.exit(code);
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
  kernelDeadline(waitMs + LISTENERS_MS); // process.exit() runs the 'exit' listeners too
  const end = performance.now() + waitMs;
  while (poolBusy() && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (!poolBusy()) process.exit(code);
  return exitNow(code);
}
