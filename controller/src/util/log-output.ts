// The tap's log lines on their way to stdout. pino writes them through sonic-boom, asynchronously:
// lines wait in a buffer while the last write is out. A stdout that stops draining — journald
// stalled, a pipe whose reader went to sleep — grew that buffer without bound (at debug level a
// line per event: megabytes a second), and at exit pino's flush blocked in write(2) until the
// kernel's deadline ended the process by SIGALRM. Here the buffer is bounded (sonic-boom's
// maxLength: past it a line is dropped and counted), the drops are said once the output drains
// again, and an exit whose log made no progress for LOG_STALL_MS does not flush it: the lines
// waiting are lost (counted), the exit is clean and on time.
import { Buffer } from 'node:buffer';
import { pino } from 'pino';

/** What waits for stdout at most; past it, lines are dropped and counted. A few thousand lines. */
export const LOG_BUFFER_BYTES = 4 << 20;
/** Lines waiting this long with no write done: the output is stalled, and the exit does not flush it. */
export const LOG_STALL_MS = 1000;

export interface LogOutputStats {
  /** Lines dropped since the start: the buffer was full. */
  droppedLines: number;
  /** Their bytes, and those an exit did not wait for (a stalled output). */
  droppedBytes: number;
  /** Bytes handed to the output not yet written. */
  pendingBytes: number;
  /** How long those bytes have waited with no write done (0 when none wait). */
  stalledMs: number;
}

/** The part of sonic-boom this uses (pino.destination's stream). */
export interface LogStream {
  write(line: string): unknown;
  on(event: 'write', fn: (n: number) => void): unknown;
  on(event: 'drop', fn: (data: string | Buffer) => void): unknown;
  flushSync(): void;
  flush(cb?: (err?: Error) => void): void;
}

export class LogOutput {
  readonly stream: LogStream;
  private handedBytes = 0;
  private writtenBytes = 0;
  private dropped = { lines: 0, bytes: 0 };
  private told = { lines: 0, bytes: 0 }; // drops already said
  private firstDropAt = 0;
  /** When the bytes pending last made progress, or began to wait. */
  private since = 0;
  private drained: ((lines: number, bytes: number, ms: number) => void) | null = null;
  private abandoned = false;
  private telling = false;

  /**
   * `fd`: the output (1, stdout). `stream` and `now` for tests; by default pino's own destination,
   * asynchronous, bounded at `maxBytes`, with its flush at exit (which `beforeExit` may disarm).
   */
  constructor(fd = 1, private readonly maxBytes = LOG_BUFFER_BYTES, stream?: LogStream, private readonly now: () => number = () => performance.now()) {
    this.stream = stream ?? (pino.destination({ dest: fd, sync: false, maxLength: maxBytes }) as unknown as LogStream);
    this.stream.on('write', (n) => this.wrote(n));
    this.stream.on('drop', (data) => {
      if (this.dropped.lines === this.told.lines) this.firstDropAt = this.now();
      this.dropped.lines++;
      this.dropped.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    });
    // Before pino's own 'exit' listener (the flush): prepended, whatever was registered first.
    process.prependListener('exit', () => this.beforeExit());
  }

  /** pino's streamWrite hook: every line on its way to the stream. */
  handed(line: string): string {
    if (this.pending() === 0) this.since = this.now();
    this.handedBytes += Buffer.byteLength(line);
    return line;
  }

  /** Called with what was dropped, once the output writes again after dropping lines. */
  onDrained(fn: (lines: number, bytes: number, ms: number) => void): void {
    this.drained = fn;
  }

  stats(): LogOutputStats {
    const pendingBytes = this.pending();
    return {
      droppedLines: this.dropped.lines, droppedBytes: this.dropped.bytes, pendingBytes,
      stalledMs: pendingBytes > 0 ? Math.max(0, this.now() - this.since) : 0,
    };
  }

  /**
   * At exit: an output stalled for LOG_STALL_MS is not flushed — pino's flush would block in
   * write(2), or retry EAGAIN forever, holding the exit. Its lines are counted as dropped (what pino
   * itself does when stdout is a broken pipe: its flush made a no-op).
   */
  beforeExit(): void {
    if (this.abandoned || this.stats().stalledMs < LOG_STALL_MS) return;
    this.abandoned = true;
    this.dropped.bytes += this.pending();
    this.stream.flushSync = () => {};
    this.stream.flush = (cb) => cb?.();
  }

  private pending(): number {
    return this.handedBytes - this.writtenBytes - this.dropped.bytes;
  }

  private wrote(n: number): void {
    this.writtenBytes += n;
    this.since = this.now();
    // Said once the output has drained to half the bound — not at every write of a slow reader's,
    // where the notice itself would find the buffer full — and after the stream has counted this
    // write (it emits 'write' before it frees the bytes).
    if (this.dropped.lines > this.told.lines && this.drained && !this.telling && this.pending() <= this.maxBytes / 2) {
      this.telling = true;
      setImmediate(() => {
        this.telling = false;
        const lines = this.dropped.lines - this.told.lines;
        const bytes = this.dropped.bytes - this.told.bytes;
        this.told = { ...this.dropped };
        if (lines > 0) this.drained?.(lines, bytes, this.now() - this.firstDropAt);
      });
    }
  }
}
