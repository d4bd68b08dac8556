// A message that can repeat on every tick (a refused file, fd exhaustion, a failing accept) is
// logged the first time, then at most once per interval with how many were held back: the log
// stays readable and a local user cannot flood it (SPEC §8).
export class LogLimiter {
  private readonly seen = new Map<string, { at: number; held: number }>();

  constructor(private readonly intervalMs = 60_000, private readonly now: () => number = () => performance.now()) {}

  /** Whether to log `key` now; when so, `held` is how many were suppressed since the last one. */
  allow(key: string): { held: number } | null {
    const t = this.now();
    const s = this.seen.get(key);
    if (s && t - s.at < this.intervalMs) {
      s.held++;
      return null;
    }
    if (this.seen.size >= 1000) this.seen.clear(); // bounded: keys may come from file names
    this.seen.set(key, { at: t, held: 0 });
    return { held: s?.held ?? 0 };
  }
}
