// SIGHUP: read the configuration again. A bad file changes nothing (the running
// configuration stays); `<enabled>no</enabled>` stops the agent (exit 0). The
// elements the schema marks live are applied at once; every other setting that
// differs from the running one is named in the log (`needs_restart`) — found by
// comparing the whole configuration, so none is dropped without a word (an
// `encrypt_messages yes` said "reloaded" while events went on in clear). The log
// names settings, never their values: one may be a URL's password.
import type { Tap } from '../tap.js';
import type { EffectiveConfig } from '../../config/ossec-conf.js';
import { NATS_ELEMENTS } from '../../config/schema.js';
import { readKeyFile } from '../../publish/encryption.js';
import { maskSecrets, maskUrlsIn, urlSecrets } from '../../util/mask-url.js';

/** The configuration the agent started with, and how to read it again. */
export interface Reloading {
  running: EffectiveConfig;
  load: () => EffectiveConfig;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The settings of `next` a reload does not apply that differ from `running`, by element name
 * (`manager_node` for the node name): every element of the schema not marked live, by value.
 */
export function needsRestart(running: EffectiveConfig, next: EffectiveConfig): string[] {
  const names = NATS_ELEMENTS.filter((e) => !e.live && !same(running[e.key], next[e.key])).map((e) => e.element);
  if (running.managerNode !== next.managerNode) names.push('manager_node');
  return names;
}

/** The running configuration with the live elements of `next`: what the tap runs after the reload. */
function applied(running: EffectiveConfig, next: EffectiveConfig): EffectiveConfig {
  const out = { ...running } as Record<string, unknown>;
  for (const e of NATS_ELEMENTS) if (e.live) out[e.key] = next[e.key];
  return out as unknown as EffectiveConfig;
}

/**
 * The key was read once, at the start: the same path holding another key (rotated in place) needs
 * a restart too. A file that cannot be read as a key counts as another one (loadConfig checked it).
 */
function keyChanged(tap: Tap, next: EffectiveConfig): boolean {
  const running = tap.opts.delivery?.encryption;
  if (!running || !next.encryptMessages || !next.encryptionKey) return false;
  try {
    return readKeyFile(next.encryptionKey).id !== running.id;
  } catch {
    return true;
  }
}

export function reloadHandler(tap: Tap, follow: (on: boolean) => void, reloading: Reloading): () => void {
  const { log } = tap;
  let running = reloading.running;
  return () => {
    let cfg: EffectiveConfig;
    try {
      cfg = reloading.load();
    } catch (e) {
      // The journal keeps it: a URL's password masked (the new file's by the loader, the running one's here too).
      log.error({ err: maskSecrets((e as Error).message, urlSecrets(running.serverUrls)) }, 'configuration reload failed: keeping the running configuration');
      return;
    }
    for (const w of cfg.warnings) log.warn(maskUrlsIn(w)); // as at the start (an unreadable ossec.conf: why the node name changed)
    if (!cfg.enabled) {
      log.info({ file: cfg.file }, 'disabled in the configuration (<enabled>no</enabled>): stopping');
      tap.life.requestStop({ why: 'disabled', code: 0 });
      return;
    }
    tap.keepaliveEvents = cfg.keepaliveEvents;
    tap.capture?.setRoundMs(cfg.captureIntervalMs); // the capture runs from start to stop, and a reload waits for the start
    tap.alertOpts = {
      ...tap.alertOpts, enabled: cfg.alerts, minLevel: cfg.alertsMinLevel, thresholds: cfg.alertThresholds,
      fromBeginning: cfg.alertsFromBeginning, // read when the follower starts with no position saved
    };
    follow(cfg.alerts);
    const restart = needsRestart(running, cfg);
    if (!restart.includes('encryption_key') && keyChanged(tap, cfg)) restart.push('encryption_key');
    running = applied(running, cfg);
    tap.restartNeeded = restart; // `status` says it until the next reload or restart: the file is not what runs
    const fields = { keepalive_events: tap.keepaliveEvents, capture_interval_ms: cfg.captureIntervalMs, alerts: cfg.alerts, alerts_min_level: cfg.alertsMinLevel, needs_restart: restart };
    if (!restart.length) log.info(fields, 'configuration reloaded');
    else log.warn(fields, `configuration reloaded, but these settings changed and apply only after a restart (the running values stay): ${restart.join(', ')}`);
  };
}
