// Memory a test can read without noise from garbage: V8 collects twice first (`--expose-gc` set at run
// time, `gc` taken from a fresh context), then the figure is read. For tests that a value kept holds
// nothing more than itself (a slice of a larger string, a view of a larger buffer).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null = null;

function collect(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
}

/** V8's heap in use, after a full collection. */
export function heapUsedAfterGc(): number {
  collect();
  return process.memoryUsage().heapUsed;
}

/** Array buffers alive (Buffers, typed arrays), after a full collection. */
export function arrayBuffersAfterGc(): number {
  collect();
  return process.memoryUsage().arrayBuffers;
}
