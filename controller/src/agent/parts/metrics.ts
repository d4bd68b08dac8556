// Prometheus metrics (SPEC §8), read from the parts' own counters at scrape time.
// Unavailable (the port taken): logged, the agent runs without it.
import type { Server } from 'node:http';
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { metricsRegistry, serveMetrics, type MetricsSources } from '../../metrics.js';
import type { DeliveryStats } from '../../publish/delivery.js';
import { logOutput } from '../../util/log.js';

/** What /metrics shows of the delivery statistics (SPEC §8: published, acknowledged, spooled, shed, the spool's disk). */
export function deliveryMetrics(st: DeliveryStats): ReturnType<MetricsSources['delivery']> {
  const shed = Object.values(st.shed).reduce((a, b) => a + b, 0);
  return {
    published: st.published, acknowledged: st.acknowledged, spooled: st.spooled, shed,
    failed: st.failures, rejected: st.rejected, denied: st.denied, deferred: st.deferred, spoolBytes: st.spoolBytes,
    spoolEvents: st.spoolRecords, spoolOldestAgeS: st.spoolOldestMs === null ? 0 : st.spoolOldestMs / 1000,
    // No sample yet: no figure (a 0 would read as a perfect measurement never made).
    latencyMs: st.latencyMs?.count ? st.latencyMs.p99 : undefined, delayMs: st.delayMs?.count ? st.delayMs.p99 : undefined,
    spoolBoundBytes: st.spoolBoundBytes, diskFull: st.diskFull, writeErrors: st.writeErrors, readErrors: st.readErrors,
  };
}

export function metricsPart(tap: Tap): Part {
  let server: Server | null = null;
  return {
    name: 'metrics',
    async start() {
      const addr = tap.opts.metrics;
      if (!addr) return;
      const registry = metricsRegistry({
        capture: () => tap.capture?.counters() ?? {},
        decoder: () => tap.decoder.summary(),
        errors: () => ({ records: tap.pipeline.errors, unpublishable: tap.publisher?.unpublishable ?? 0 }),
        events: () => tap.eventsByType,
        log: () => logOutput()?.stats() ?? { droppedLines: 0, pendingBytes: 0 },
        delivery: () => {
          const st = tap.publisher?.stats();
          return st ? deliveryMetrics(st) : { published: 0, failed: 0, spoolBoundBytes: tap.spoolMaxBytes };
        },
        natsConnected: () => tap.publisher?.connected ?? false,
        attached: () => tap.capture?.attached ?? false,
        agents: () => tap.state.countsByStatus(),
        alerts: () => {
          const a = tap.alertStatus() as Record<string, number>;
          return {
            published: a.published ?? 0, invalid_json: a.invalid_json ?? 0, not_an_object: a.not_an_object ?? 0, too_deep: a.too_deep ?? 0,
            unpublishable: a.unpublishable ?? 0, below_min_level: a.below_min_level ?? 0, too_long: a.too_long ?? 0,
            truncations: a.truncations ?? 0, rotations: a.rotations ?? 0, rotated_unread: a.rotated_unread ?? 0, rotated_compressed: a.rotated_compressed ?? 0,
            rotated_between: a.rotated_between ?? 0,
            untrusted_file: a.untrusted_file ?? 0,
          };
        },
      });
      try {
        server = await serveMetrics(registry, addr, tap.log);
        tap.log.info({ address: addr }, 'metrics on /metrics');
      } catch (e) {
        tap.log.error({ err: (e as Error).message, address: addr }, 'metrics endpoint unavailable');
      }
    },
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections?.();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
