// SIGHUP: read the configuration again. A bad file changes nothing (the running
// configuration stays); `<enabled>no</enabled>` stops the agent (exit 0); what
// cannot change without a restart is named in the log.
import type { Tap } from '../tap.js';
import type { EffectiveConfig } from '../../config/ossec-conf.js';

export function reloadHandler(tap: Tap, follow: (on: boolean) => void, reload: () => EffectiveConfig): () => void {
  const { log, opts } = tap;
  const d = opts.delivery ?? {};
  return () => {
    let cfg: EffectiveConfig;
    try {
      cfg = reload();
    } catch (e) {
      log.error({ err: (e as Error).message }, 'configuration reload failed: keeping the running configuration');
      return;
    }
    if (!cfg.enabled) {
      log.info({ file: cfg.file }, 'disabled in the configuration (<enabled>no</enabled>): stopping');
      tap.life.requestStop({ why: 'disabled', code: 0 });
      return;
    }
    tap.keepaliveEvents = cfg.keepaliveEvents;
    tap.capture?.setRoundMs(cfg.captureIntervalMs); // the capture runs from start to stop, and a reload waits for the start
    tap.alertOpts = { ...tap.alertOpts, enabled: cfg.alerts, minLevel: cfg.alertsMinLevel, thresholds: cfg.alertThresholds };
    follow(cfg.alerts);
    const capture = tap.capture;
    const restart = [
      cfg.serverUrls.join(',') !== opts.natsUrls.join(',') && 'server_url',
      cfg.subjectPrefix !== tap.prefix && 'subject_prefix',
      cfg.managerNode !== tap.node && 'manager_node',
      capture?.attached && cfg.hooks.join(',') !== capture.attachedHooks().join(',') && 'hooks',
      (cfg.keepaliveBatch !== (d.keepaliveBatch ?? 0) || cfg.keepaliveBatchIntervalSec !== (d.keepaliveBatchIntervalSec ?? 0)) && 'keepalive_batch',
    ].filter(Boolean);
    log.info({ keepalive_events: tap.keepaliveEvents, capture_interval_ms: cfg.captureIntervalMs, alerts: cfg.alerts, alerts_min_level: cfg.alertsMinLevel, needs_restart: restart },
      'configuration reloaded');
  };
}
