// A log line that can repeat for every record (a hostile stream, a bug hit by every frame) must not
// flood the journal or cost the capture its CPU: at most `max` lines per `intervalMs`, then one line
// saying how many were left out. The counters in `status` and /metrics keep the full count.

export interface RateLimitOptions {
  /** Lines written per interval at most. Default 10. */
  max?: number;
  /** Default 60 s. */
  intervalMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export type LogWrite = (fields: Record<string, unknown>, msg: string) => void;

export class RateLimitedLog {
  private readonly max: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private windowStart = Number.NEGATIVE_INFINITY;
  private written = 0;
  private suppressed = 0;
  private lastMsg = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly write: LogWrite, opts: RateLimitOptions = {}) {
    this.max = Math.max(1, opts.max ?? 10);
    this.intervalMs = Math.max(1, opts.intervalMs ?? 60_000);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Lines left out so far in this interval. */
  get pending(): number {
    return this.suppressed;
  }

  log(fields: Record<string, unknown>, msg: string): void {
    const t = this.now();
    if (t - this.windowStart >= this.intervalMs) {
      this.summary();
      this.windowStart = t;
      this.written = 0;
    }
    if (this.written < this.max) {
      this.written++;
      this.write(fields, msg);
      return;
    }
    this.suppressed++;
    this.lastMsg = msg;
    // Say how many were left out when the interval ends, even if no line comes after it.
    if (!this.timer) this.sayAtEnd(t);
  }

  /**
   * A timer for the end of the interval. Node measures a timer from the event loop's time, taken when
   * the loop's turn began, which can be milliseconds before `now()` was read: the timer may fire before
   * the interval has ended by this clock, and is then set again for what is left (without that, the
   * count waited for the next line, however late).
   */
  private sayAtEnd(t: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = this.now();
      if (now - this.windowStart >= this.intervalMs) this.summary();
      else if (this.suppressed > 0) this.sayAtEnd(now);
    }, Math.max(1, this.windowStart + this.intervalMs - t));
    this.timer.unref();
  }

  /** Write the count of lines left out, if any (the interval ended, or the program stops). */
  summary(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.suppressed === 0) return;
    const n = this.suppressed;
    this.suppressed = 0;
    this.write({ suppressed: n, interval_s: this.intervalMs / 1000 }, `${this.lastMsg} (${n} more, not logged)`);
  }
}
