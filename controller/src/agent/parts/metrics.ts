// Prometheus metrics (SPEC §8), read from the parts' own counters at scrape time.
// Unavailable (the port taken): said, shown in `status`, and tried again every METRICS_RETRY_MS —
// the agent runs on meanwhile. Given up after one failure, a port a local user took at boot (or in
// the seconds of a restart) left the tap without metrics for the rest of its life, and Prometheus
// scraping whatever that user served in its name.
import type { Server } from 'node:http';
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { metricsRegistry, serveMetrics, type MetricsSources } from '../../metrics.js';
import type { DeliveryStats } from '../../publish/delivery.js';
import { logOutput } from '../../util/log.js';
import { LogLimiter } from '../../util/log-limiter.js';

/** How often a metrics port that could not be listened on is tried again. */
export const METRICS_RETRY_MS = 5000;

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
    kvPending: st.kv?.pending,
  };
}

/** The endpoint as `status` shows it: where, whether it listens, and why not. */
export interface MetricsState {
  address: string;
  listening: boolean;
  /** The last listen's error (EADDRINUSE …) while it does not listen; null once it does. */
  error: string | null;
  /** Failed listens so far. */
  failures: number;
  /** Seconds between the attempts while it does not listen. */
  retry_s: number;
}

export function metricsPart(tap: Tap): Part {
  let server: Server | null = null;
  let retry: NodeJS.Timeout | null = null;
  let stopped = false;
  const said = new LogLimiter();
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
      const address = addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
      const state: MetricsState = { address, listening: false, error: null, failures: 0, retry_s: METRICS_RETRY_MS / 1000 };
      tap.metricsState = state;
      const attempt = async (): Promise<void> => {
        retry = null;
        try {
          const s = await serveMetrics(registry, addr, tap.log);
          if (stopped) {
            s.close();
            return;
          }
          server = s;
          Object.assign(state, { listening: true, error: null });
          if (state.failures) tap.log.warn({ address: addr, failures: state.failures }, 'metrics endpoint listening now, after failed attempts: serving /metrics');
          else tap.log.info({ address: addr }, 'metrics on /metrics');
        } catch (e) {
          const err = (e as Error).message;
          state.failures++;
          state.error = err;
          // Said at once, then once a minute (with the attempts in between): it is tried every few seconds.
          const say = said.allow('listen');
          if (say) {
            tap.log.error({ err, address: addr, failures: state.failures, held: say.held },
              `metrics endpoint unavailable: trying again every ${METRICS_RETRY_MS / 1000} s (another process on that port? Prometheus may be scraping it)`);
          }
          if (!stopped) {
            retry = setTimeout(() => void attempt(), METRICS_RETRY_MS);
            retry.unref();
          }
        }
      };
      await attempt();
    },
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      retry = null;
      const s = server;
      server = null;
      if (!s) return;
      s.closeAllConnections?.();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
}
