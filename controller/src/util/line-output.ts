// The lines `tail` and `capture` print, to a reader that may stop reading (`| less` paused, a stuck
// pipe) or go away (`| head`). On Linux a pipe is written asynchronously by Node: a write() that
// returns false has still queued its bytes in the process, so a reader that stops made the process
// grow without bound — and hold its lines, and the exit, until the reader drained or died. Here a
// line is dropped (and counted) while more than `limit` bytes wait for the reader, a closed reader
// (EPIPE) ends the output quietly, and the end is bounded: what still waits after a while is given
// up, and the executable exits without waiting for it (outputAbandoned(), bin/wazuh-nats-tap.js):
// Node's stdout cannot be closed (its destroy() keeps the descriptor and the queued writes), so
// Ctrl-C ends the process whatever the reader does only by exiting.
import type { Writable } from 'node:stream';

let abandoned = false;

/** Some output was given up on (a reader that did not read): the process must exit, not wait for it. */
export function outputAbandoned(): boolean {
  return abandoned;
}

/** Bytes allowed to wait for a slow reader before lines are dropped (several seconds of a busy manager). */
export const OUTPUT_LIMIT_BYTES = 4 * 1024 * 1024;

export class LineOutput {
  /** Lines handed to the stream. */
  written = 0;
  /** Lines the stream passed on (to the file, the pipe, the terminal): what a summary calls printed. */
  delivered = 0;
  /** Lines not written: the reader was too slow. */
  dropped = 0;
  /** The reader closed (EPIPE), or a write failed: nothing more is written. */
  gone = false;
  /** Dropped since the reader last kept up (for the caller's "N not shown" message). */
  private streak = 0;
  private settled: (() => void) | null = null;

  constructor(
    private readonly out: Writable,
    private readonly hooks: {
      /**
       * The output ended (once): `failure` null when its reader closed (EPIPE: `| head` — the end,
       * quietly), else the write error (ENOSPC, EIO, EFBIG: a file that cannot take more), which the
       * operator must be told of: what follows is lost.
       */
      onGone?: (failure: Error | null) => void;
      /** Lines started to be dropped (once per streak). */
      onSlow?: () => void;
      /** The reader keeps up again after `n` dropped lines. */
      onCaughtUp?: (n: number) => void;
    } = {},
    private readonly limit = OUTPUT_LIMIT_BYTES,
  ) {
    out.on('error', this.onError);
  }

  private readonly onError = (e: NodeJS.ErrnoException): void => {
    // Whatever it is, nothing more is written (Node's unhandled 'error' would have thrown out of
    // the event loop with a stack trace); only a reader that went away is no failure.
    if (this.gone) return;
    this.gone = true;
    this.hooks.onGone?.(e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' ? null : e);
    this.settled?.();
  };

  /** Lines handed to the stream and neither passed on nor failed yet. */
  get pending(): number {
    return this.written - this.delivered - this.failed;
  }

  private failed = 0;

  /** Writes `text` (lines, newline-terminated); false when it was dropped or the reader is gone. */
  write(text: string, lines = 1): boolean {
    if (this.gone) return false;
    if (this.out.writableLength > this.limit) {
      this.dropped += lines;
      if (this.streak === 0) this.hooks.onSlow?.();
      this.streak += lines;
      return false;
    }
    if (this.streak > 0) {
      const n = this.streak;
      this.streak = 0;
      this.hooks.onCaughtUp?.(n);
    }
    this.written += lines;
    this.out.write(text, (err) => {
      if (err) this.failed += lines;
      else this.delivered += lines;
      if (this.pending === 0) this.settled?.();
    });
    return true;
  }

  /**
   * Waits up to `ms` for what was written to be passed on; past it (a reader that does not read),
   * what the stream holds is given up (outputAbandoned()). Returns how many lines were written but
   * not passed on.
   */
  async finish(ms: number): Promise<number> {
    if (!this.gone && this.pending > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.settled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.settled = null;
    }
    const lost = this.pending;
    if (lost > 0) abandoned = true;
    // Still listening: a late EPIPE must not be an unhandled 'error'.
    return lost;
  }
}
