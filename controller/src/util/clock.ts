// The kernel stamps records with CLOCK_MONOTONIC (bpf_ktime_get_ns); events carry
// wall-clock time. process.hrtime uses the same monotonic clock, so one offset
// taken at start converts between them.
export function monotonicToWallClock(): (tsNs: bigint) => number {
  const offsetMs = Date.now() - Number(process.hrtime.bigint()) / 1e6;
  return (tsNs: bigint) => offsetMs + Number(tsNs) / 1e6;
}
