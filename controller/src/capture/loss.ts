// The capture's counters that mean records were lost, in a module of their own: the loss check of the
// running agent (agent/parts/capture.ts) and the `status` table of the CLI (commands/control.ts) read
// the same set — the table said `lost 0` while the shim had dropped thousands (queue_drops).
import type { CaptureCounters } from './record-layout.js';

/**
 * The counters whose rise means wazuh-db traffic never reached the decoder — a reply or a status
 * update that may leave an agent's status wrong until wazuh-db is asked again — and what the log
 * says of each. Not `output_failures`: a sample the perf buffer refuses is in `lost` too (the ring's
 * own count, told at its next sample), and would be counted twice.
 */
export const LOSS_COUNTERS = {
  lost: 'the kernel dropped records (perf buffer full)',
  queue_drops: 'the shim dropped records (its queue or reorder heap full: the controller did not take them in time)',
  scratch_failures: 'the kernel could not read a write (user memory or its scratch map)',
  inflight_full: 'the kernel could not follow a write (its map of writes in flight full)',
  truncated: 'the kernel cut writes longer than it sends (three chunks of 32 KiB): the frames past the cut never reached the decoder',
} as const satisfies Partial<Record<keyof CaptureCounters, string>>;

/** The loss counters that are not zero, by name, and their sum: what `status` says was lost. */
export function lossOf(counters: Partial<Record<string, number>>): { total: number; by: [string, number][] } {
  const by = Object.keys(LOSS_COUNTERS).map((k): [string, number] => [k, counters[k] ?? 0]).filter(([, n]) => n > 0);
  return { total: by.reduce((a, [, n]) => a + n, 0), by };
}
