// The capture's round (capture_interval): how long flowing records wait for the event loop to take
// them. Its bounds live here, apart from capture.ts, so that the configuration and `status` read
// them without loading the shim's binding.

/**
 * While records flow, the event loop takes them this often by default: the batch's wait (its share of
 * SPEC §9's 2 ms p99) against a wake-up and a NATS write per batch (~60 and ~70 µs of CPU on a 2-core
 * VM like ours, whatever the batch holds).
 */
export const DEFAULT_ROUND_MS = 1;
/** The longest round capture_interval allows: a record waits at most about this long while records flow. */
export const MAX_ROUND_MS = 100;

/** A round capture_interval allows: a whole number of milliseconds from 1 to MAX_ROUND_MS. */
export function isRoundMs(ms: number): boolean {
  return Number.isInteger(ms) && ms >= 1 && ms <= MAX_ROUND_MS;
}
