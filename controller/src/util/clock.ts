// Two clocks, each for its own job.
//
// Wall-clock time is what an event says (`time`, `timestamp`): the kernel stamps records with
// CLOCK_MONOTONIC (bpf_ktime_get_ns), and process.hrtime reads the same clock, so an offset turns
// one into the other. That offset is not constant: it changes when the wall clock is stepped (an NTP
// correction — chrony's makestep at boot —, `date -s`) and when the machine sleeps (the monotonic
// clock stops during a suspend, the wall clock does not). Taken once at start, every event after a
// step was off by the step for the life of the process; it is read again as capture time passes.
//
// Everything the tap waits for — retries, deadlines, backoffs, once-a-minute logs — is measured on
// the monotonic clock (performance.now()): a wall clock stepped back an hour must not hold a retry
// for that hour, nor a step forward fire every deadline at once.

/**
 * Milliseconds on CLOCK_MONOTONIC, the clock of the kernel's capture times (bpf_ktime_get_ns). Read
 * each time (one a published message): an offset to performance.now() taken once was found 1.3 ms off
 * (the first performance.now() of a process loads perf_hooks between the two reads).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The offset is read again once capture time has moved this far (ms) since it was last read. */
const REANCHOR_MS = 100;

/** Converts a capture timestamp (CLOCK_MONOTONIC ns) to wall-clock milliseconds, by the wall clock of about then. */
export function monotonicToWallClock(): (tsNs: bigint) => number {
  let anchorMs = 0;
  let offsetMs = 0;
  const anchor = (): void => {
    anchorMs = monotonicMs();
    offsetMs = Date.now() - anchorMs;
  };
  anchor();
  return (tsNs: bigint) => {
    const ms = Number(tsNs) / 1e6;
    if (ms - anchorMs > REANCHOR_MS) anchor();
    return offsetMs + ms;
  };
}
