// How long messages take, for `status` and the metrics: from the daemon's syscall to the moment the
// tap hands the message to NATS (the tap's own share of the end-to-end latency), and from there to
// NATS' acknowledgement. Plain numbers in fixed arrays: one sample a message, no object.

/** Of recent durations, ms: how many were ever added, the quantiles of the last ones, the largest. */
export interface TimesSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * How often the quantiles are worked out again while samples come: each time sorts a copy of the
 * ring (~0.3 ms for 4,096 samples). Read by every scrape of /metrics, which any local user can make
 * as often as they like, they were sorted anew for each — 4 ms of the event loop a scrape, records and
 * publishing held up behind it.
 */
export const QUANTILES_EVERY_MS = 1000;

/**
 * The last `size` durations (ms) and the largest since the start; quantiles when asked, worked out
 * again only when samples came since, and at most once per `minIntervalMs` (the count and the
 * largest are always the current ones).
 */
export class RecentTimes {
  private readonly ring: Float64Array;
  private n = 0;
  private maxMs = 0;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  /** The quantiles last worked out: of `n` samples, at `at`. */
  private cached = { n: 0, at: Number.NEGATIVE_INFINITY, p50: 0, p99: 0 };
  /** Sorts made (tests). */
  sorts = 0;

  constructor(size = 4096, o: { minIntervalMs?: number; now?: () => number } = {}) {
    this.ring = new Float64Array(size);
    this.minIntervalMs = o.minIntervalMs ?? QUANTILES_EVERY_MS;
    this.now = o.now ?? (() => performance.now());
  }

  add(ms: number): void {
    if (!(ms >= 0)) ms = 0; // a clock read a hair earlier than the capture's: no negative figure
    this.ring[this.n++ % this.ring.length] = ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  summary(): TimesSummary {
    const c = this.cached;
    if (this.n !== c.n) {
      const now = this.now();
      // The first samples are shown at once; after that, new ones at most once an interval.
      if (c.n === 0 || now - c.at >= this.minIntervalMs) {
        const k = Math.min(this.n, this.ring.length);
        const sorted = this.ring.slice(0, k).sort();
        this.sorts++;
        const q = (p: number) => (k ? sorted[Math.min(k - 1, Math.floor(p * k))] : 0);
        this.cached = { n: this.n, at: now, p50: q(0.5), p99: q(0.99) };
      }
    }
    return { count: this.n, p50: this.cached.p50, p99: this.cached.p99, max: this.maxMs };
  }
}

/**
 * Capture times of spooled messages by spool seq, until each is published. Seqs are handed out in
 * order and published in order, so this is a queue: publishing seq s drops the older entries (their
 * messages were shed, or are resent after a reconnect: a resend is not timed). Bounded: past
 * `size` waiting, the oldest are forgotten (their messages go untimed).
 */
export class CaptureTimes {
  private readonly seqs: Float64Array;
  private readonly ms: Float64Array;
  private head = 0;
  private tail = 0;

  constructor(size = 65536) {
    this.seqs = new Float64Array(size);
    this.ms = new Float64Array(size);
  }

  get waiting(): number {
    return this.tail - this.head;
  }

  /** Message `seq` comes from a syscall at `capturedMs` (CLOCK_MONOTONIC, ms). */
  note(seq: number, capturedMs: number): void {
    if (this.tail > this.head && seq <= this.seqs[(this.tail - 1) % this.seqs.length]) return; // out of order: untimed
    if (this.tail - this.head === this.seqs.length) this.head++;
    const i = this.tail++ % this.seqs.length;
    this.seqs[i] = seq;
    this.ms[i] = capturedMs;
  }

  /** The capture time of `seq`, now published (NaN when it has none); older entries are dropped. */
  take(seq: number): number {
    const len = this.seqs.length;
    while (this.head < this.tail && this.seqs[this.head % len] < seq) this.head++;
    if (this.head < this.tail && this.seqs[this.head % len] === seq) return this.ms[this.head++ % len];
    return NaN;
  }
}

/**
 * When messages were spooled, by seq, coarsely (one mark per `granularityMs` at most): how long the
 * oldest message NATS has not acknowledged has waited. A seq older than every mark — a message an
 * earlier run left in the spool — counts from `since` (this start). Bounded: past `size` marks, the
 * newer messages count from the last mark (older than they are: never younger).
 */
export class SpoolAges {
  private readonly seqs: Float64Array;
  private readonly ms: Float64Array;
  private head = 0;
  private tail = 0;

  constructor(private readonly since: number, size = 16384, private readonly granularityMs = 100) {
    this.seqs = new Float64Array(size);
    this.ms = new Float64Array(size);
  }

  /** Message `seq` (and those after it until the next mark) spooled at `ms` (performance.now()). */
  note(seq: number, ms: number): void {
    const len = this.seqs.length;
    if (this.tail > this.head) {
      const last = (this.tail - 1) % len;
      if (seq <= this.seqs[last] || ms - this.ms[last] < this.granularityMs) return;
      if (this.tail - this.head === len) return; // full: the last mark stands for the newer ones
    }
    const i = this.tail++ % len;
    this.seqs[i] = seq;
    this.ms[i] = ms;
  }

  /** How long message `oldest` has waited at `now`, ms; the marks of older seqs are dropped (`oldest` never goes back). */
  ageMs(oldest: number, now: number): number {
    const len = this.seqs.length;
    while (this.tail - this.head > 1 && this.seqs[(this.head + 1) % len] <= oldest) this.head++;
    const at = this.tail > this.head && this.seqs[this.head % len] <= oldest ? this.ms[this.head % len] : this.since;
    return Math.max(0, now - at);
  }
}
