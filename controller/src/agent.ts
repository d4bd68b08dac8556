// The host agent (`wazuh-nats-tap run`): wires the capture, the pipeline and the
// publisher, and owns their lifecycle. SIGINT/SIGTERM: stop capturing, detach,
// flush NATS, exit 0.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { StatusJournal } from './state/sources/status-journal.js';
import type { Logger } from 'pino';
import { Capture, type Hook } from './capture/capture.js';
import { WdbDecoder } from './decode/index.js';
import { AgentStateTable } from './state/agents.js';
import { initialSync, seedTable } from './state/sources/initial-sync.js';
import { applyClientKeys, clientKeysPath, watchClientKeys } from './state/sources/client-keys.js';
import { Pipeline } from './pipeline.js';
import type { AgentEvent, StatusChangeEvent } from './types.js';
import { ReliablePublisher } from './publish/reliable.js';
import { clientCertificateProblem, connectOptions, type NatsSecurity } from './publish/connect-options.js';
import type { EncryptionKey } from './publish/encryption.js';
import { validatePrefix } from './publish/subjects.js';
import { artefacts } from './paths.js';
import { monotonicToWallClock } from './util/clock.js';
import { ControlServer } from './control/server.js';
import { describeTargets } from './capture/targets.js';
import { metricsRegistry, serveMetrics } from './metrics.js';
import type { EffectiveConfig } from './config/ossec-conf.js';
import { AlertsFollower } from './alerts/follower.js';
import { AlertSink } from './alerts/alert-sink.js';
import { DEFAULT_THRESHOLDS, type AlertThresholds } from './alerts/alert-event.js';

export interface AgentOptions {
  home: string;
  natsUrls: string[];
  prefix: string;
  node?: string;
  attach: boolean;
  hooks?: Hook[];
  /** The control socket for `attach`, `detach`, `status` (null: none). */
  controlSocket?: string | null;
  /** Where Prometheus scrapes /metrics (null: no endpoint). */
  metrics?: { host: string; port: number } | null;
  /** Publish keepalive events (`keepalive_events`). */
  keepaliveEvents?: boolean;
  /** Wazuh's alerts from `<home>/logs/alerts/alerts.json` (`alerts`, `alerts_min_level`, …). */
  alerts?: AlertOptions;
  /** Read the configuration again (SIGHUP). */
  reload?: () => EffectiveConfig;
  /** Delivery (SPEC §5): the disk spool and JetStream. */
  delivery?: {
    spoolDir?: string;
    spoolMaxBytes?: number;
    jetstream?: boolean;
    stream?: string;
    createStream?: boolean;
    /** Keep each agent's latest status in the KV bucket `<prefix>_agents`. */
    agentsKv?: boolean;
    maxReconnects?: number;
    reconnectDelaySec?: number;
    /** TLS and authentication, from the configuration. */
    security?: NatsSecurity;
    /** Payload encryption (encrypt_messages). */
    encryption?: EncryptionKey;
    /** Keepalives per message (keepalive_batch); 0 or unset: one per message. */
    keepaliveBatch?: number;
    keepaliveBatchIntervalSec?: number;
  };
  log: Logger;
}

export interface AlertOptions {
  enabled: boolean;
  minLevel: number;
  thresholds: AlertThresholds;
  fromBeginning: boolean;
  /** Default `<home>/logs/alerts/alerts.json`. */
  file?: string;
}

export async function runAgent(opts: AgentOptions): Promise<number> {
  const { log } = opts;
  const prefix = validatePrefix(opts.prefix);
  const node = opts.node ?? hostname();
  let rescanErrors = 0;
  const capture = Capture.open({
    ...artefacts(), home: opts.home, hooks: opts.hooks,
    // EMFILE and the like: the next rescan (2 s) tries again; logged rate-limited, never fatal.
    onRescanError: (e) => { if (rescanErrors++ % 100 === 0) log.warn({ err: e.message, failures: rescanErrors }, 'cannot scan /proc for Wazuh daemons: retrying'); },
  });
  // Every event goes to the disk spool first, then to NATS: capture never waits for NATS,
  // and what NATS has not acknowledged is replayed after a reconnect or a restart.
  const d = opts.delivery ?? {};
  const spoolDir = d.spoolDir ?? join(opts.home, 'var/nats-tap');
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  const certProblem = d.security ? () => clientCertificateProblem(d.security!) : () => null;
  const problem = certProblem();
  if (problem) log.error(problem);
  const spoolMaxBytes = d.spoolMaxBytes ?? 512 * 1024 * 1024;
  const publisher = new ReliablePublisher({
    servers: opts.natsUrls, prefix, node, log,
    spoolDir,
    spoolMaxBytes,
    jetstream: d.jetstream, stream: d.stream ?? 'WAZUH', createStream: d.createStream, kv: d.agentsKv,
    maxReconnects: d.maxReconnects ?? 10, reconnectDelayMs: (d.reconnectDelaySec ?? 2) * 1000,
    connectOptions: d.security ? connectOptions(d.security) : undefined,
    encryption: d.encryption, diagnose: certProblem,
    keepaliveBatch: d.keepaliveBatch ? { maxEvents: d.keepaliveBatch, intervalMs: (d.keepaliveBatchIntervalSec ?? 1) * 1000 } : undefined,
  });
  try {
    await publisher.connect();
  } catch (e) {
    await capture.close();
    throw e;
  }

  const decoder = new WdbDecoder();
  const state = new AgentStateTable({ managerNode: node, wallClockMs: monotonicToWallClock() });
  // What this tap last published for each agent (before a restart, or a crash).
  const journal = new StatusJournal(join(spoolDir, 'agents.status'), {
    onError: (e, op, failures) => log.warn({ err: e.message, op, failures }, 'agents.status: cannot write (disk full?): kept in memory, retrying'),
    onRecovered: () => log.info('agents.status: writing again'),
  });
  const published = journal.open();
  for (const [id, p] of published) state.setKnown({ id, status: p.status, status_code: p.status_code });

  const eventsByType: Record<string, number> = { status_change: 0, keepalive: 0, alert: 0 };
  let keepaliveEvents = opts.keepaliveEvents ?? true;
  // Events are spooled a batch of records at a time: one spool write for all the events a poll
  // brought (one per event cost a write(2) each, the largest single cost in the profile).
  const publishEvents = (all: AgentEvent[]) => {
    const evs = keepaliveEvents ? all : all.filter((ev) => ev.event_type !== 'keepalive');
    if (!evs.length) return;
    for (const ev of evs) {
      eventsByType[ev.event_type] = (eventsByType[ev.event_type] ?? 0) + 1;
      if (log.isLevelEnabled('debug')) log.debug({ event: ev }, 'event');
    }
    const accepted = publisher.publishAgentEvents(evs);
    const statuses: { agentId: string; status: StatusChangeEvent['current_status']; statusCode: number }[] = [];
    evs.forEach((ev, i) => {
      if (accepted[i] && ev.event_type === 'status_change') {
        published.set(Number(ev.agent_id), { status: ev.current_status, status_code: ev.status_code });
        statuses.push({ agentId: ev.agent_id, status: ev.current_status, statusCode: ev.status_code });
      }
    });
    if (statuses.length) journal.recordMany(statuses);
  };
  let fromRecords: AgentEvent[] = [];
  const pipeline = new Pipeline(decoder, state, {
    event: (ev) => { fromRecords.push(ev); },
    flush: () => {
      const evs = fromRecords;
      fromRecords = [];
      publishEvents(evs);
    },
  });

  // Names and addresses from client.keys, now and whenever the file changes (no events).
  let keys: { close(): void } = { close() {} };
  try {
    const w = watchClientKeys(clientKeysPath(opts.home), (k) => applyClientKeys(state, k),
      { onError: (e) => log.warn({ err: e.message }, 'cannot read client.keys') });
    await w.ready;
    keys = w;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'agent names unavailable: cannot watch client.keys');
  }

  // Every agent's current status from wazuh-db, so the first transition has the right previous_status.
  // An agent whose last published status differs (it changed while the tap was down, or in records
  // a crash lost) gets one status event now; the others are adopted silently.
  const first = await initialSync({ home: opts.home });
  seedTable(state, first.agents.filter((r) => !published.has(r.id)));
  const missed = state.resync(first.agents.filter((r) => published.has(r.id)), first.startedNs);
  if (first.complete) log.info({ agents: first.agents.length, ms: first.elapsedMs, corrected: missed.length }, 'initial state from wazuh-db');
  else log.warn({ reason: first.reason, described: first.agents.length, listed: first.ids.length }, 'initial sync incomplete');
  publishEvents(missed);

  /**
   * Ask wazuh-db again and correct what drifted while nothing was captured
   * (between the first sync and attach, after lost records, after a re-attach):
   * each corrected agent is one status event; changes captured since the
   * query began are not overridden.
   */
  let resyncing = false;
  const resync = async (why: string) => {
    if (resyncing) return;
    resyncing = true;
    try {
      const r = await initialSync({ home: opts.home });
      const events = state.resync(r.agents, r.startedNs);
      publishEvents(events);
      log.info({ why, corrected: events.length, complete: r.complete }, 'state resynchronised from wazuh-db');
    } catch (e) {
      log.warn({ err: (e as Error).message, why }, 'resynchronisation failed');
    } finally {
      resyncing = false;
    }
  };

  let lastLost = 0;
  const lossCheck = setInterval(() => {
    const lost = capture.counters().lost;
    if (lost > lastLost) {
      log.warn({ lost: lost - lastLost }, 'the kernel dropped records (perf buffer full)');
      publisher.publishLifecycle('records_lost', { lost: lost - lastLost });
      lastLost = lost;
      void resync('records lost');
    }
  }, 1000);

  const attach = () => {
    if (capture.attached) return;
    capture.attach();
    publisher.publishLifecycle('attached');
    const identity = capture.identity();
    log.info({ home: opts.home, node, prefix, hooks: capture.attachedHooks(), targets: capture.targets().length, identity },
      'attached: capturing wazuh-db traffic');
    if (!identity.wdb_dir || !identity.exe_dirs.length) {
      log.warn({ home: opts.home }, `${opts.home} has no ${identity.wdb_dir ? 'bin/' : 'queue/db/'} (yet): nothing is captured until the manager is installed there (checked every 2 s)`);
    }
    // What changed while nothing was captured (since the first sync, or while detached).
    void resync('attached');
  };
  const detach = () => {
    if (!capture.attached) return;
    capture.detach();
    publisher.publishLifecycle('detached');
    log.info('detached: no hook left in the kernel');
  };
  const startedAt = Date.now();
  const status = () => {
    const delivery = publisher.stats();
    return {
      attached: capture.attached,
      hooks: capture.attachedHooks(),
      targets: capture.attached ? describeTargets(capture.targetDaemons()) : [],
      identity: capture.identity(),
      counters: capture.counters(),
      decoder: decoder.stats().reassembler,
      nats: { connected: publisher.connected, servers: opts.natsUrls, published: publisher.published, failed: publisher.failed },
      spool: { records: delivery.spoolRecords, bytes: delivery.spoolBytes },
      agents: state.countsByStatus(),
      alerts: alertStatus(),
      node, home: opts.home, prefix, uptime_s: Math.round((Date.now() - startedAt) / 1000),
    };
  };

  capture.start((records) => pipeline.push(records), (e) => log.error({ err: e }, 'capture failed'));
  publisher.publishLifecycle('started', { home: opts.home });
  if (opts.attach) attach();
  else log.info('started detached (--no-attach)');

  // Wazuh's alerts: followed in alerts.json (not captured: a write tracepoint would cost every
  // write on the machine). The position is saved beside the spool, behind what the spool holds.
  let alertOpts: AlertOptions = opts.alerts ?? { enabled: true, minLevel: 0, thresholds: DEFAULT_THRESHOLDS, fromBeginning: false };
  const alertsFile = alertOpts.file ?? join(opts.home, 'logs/alerts/alerts.json');
  const alertSink = new AlertSink(
    () => ({ managerNode: node, thresholds: alertOpts.thresholds, minLevel: alertOpts.minLevel }),
    (evs) => {
      // The spool refused alerts (full of undelivered events, no keepalive left to drop): the
      // follower reads them again from alerts.json later, so they are not lost. Until the spool
      // drained below 90 %, do not offer them again (a refusal is counted as deferred, not shed).
      if (alertsBlocked) {
        const sp = publisher.stats(); // the bound in force: spool_max_size, or less while the disk is full
        if (sp.spoolBytes > sp.spoolBoundBytes * 0.9) return evs.map(() => false);
        alertsBlocked = false;
      }
      const ok = publisher.publishAlerts(evs);
      if (ok.includes(false)) {
        alertsBlocked = true;
        log.warn('spool full: alerts wait in alerts.json until it has room');
      }
      for (const r of ok) if (r) eventsByType.alert = (eventsByType.alert ?? 0) + 1;
      return ok;
    },
    (why, line) => {
      const n = alertSink.counters.invalid_json + alertSink.counters.not_an_object + alertSink.counters.too_deep;
      if (why !== 'below_min_level' && (n <= 10 || n % 1000 === 0)) {
        log.warn({ why, end: line.end, skipped: n, line: line.text.slice(0, 200) }, 'alerts.json: a line that is not an alert was skipped');
      }
    },
  );
  let alertsBlocked = false;
  let follower: AlertsFollower | null = null;
  const followAlerts = (on: boolean) => {
    if (on && !follower) {
      follower = new AlertsFollower({
        file: alertsFile, positionFile: join(spoolDir, 'alerts.position'), fromBeginning: alertOpts.fromBeginning,
        sink: (lines) => alertSink.take(lines), log,
      });
      follower.start();
      log.info({ file: alertsFile, min_level: alertOpts.minLevel }, 'following Wazuh\'s alerts');
    } else if (!on && follower) {
      follower.close();
      follower = null;
      log.info('alerts: no longer followed (<alerts>no</alerts>)');
    }
  };
  followAlerts(alertOpts.enabled);
  const alertStatus = () => ({
    enabled: follower !== null, file: alertsFile, ...alertSink.counters,
    ...((follower as AlertsFollower | null)?.stats() ?? {}),
  });

  const control = opts.controlSocket
    ? new ControlServer({
      path: opts.controlSocket, log,
      handlers: {
        status,
        attach: () => { attach(); return status(); },
        detach: () => { detach(); return status(); },
      },
    })
    : null;
  try {
    await control?.listen();
  } catch (e) {
    log.error({ err: (e as Error).message, path: opts.controlSocket }, 'control socket unavailable: attach/detach/status will not reach this agent');
  }

  const metrics = opts.metrics
    ? await serveMetrics(metricsRegistry({
      capture: () => capture.counters(),
      decoder: () => decoder.stats().reassembler,
      events: () => eventsByType,
      delivery: () => {
        const st = publisher.stats();
        const shed = Object.values(st.shed as Record<string, number>).reduce((a, b) => a + b, 0);
        return {
          published: st.published, acknowledged: st.acknowledged, spooled: st.spooled, shed,
          failed: st.failures, rejected: st.rejected, deferred: st.deferred, spoolBytes: st.spoolBytes, latencyMs: st.latencyMs?.p99,
        };
      },
      natsConnected: () => publisher.connected,
      attached: () => capture.attached,
      agents: () => state.countsByStatus(),
      alerts: () => {
        const a = alertStatus();
        return { published: a.published, invalid_json: a.invalid_json, not_an_object: a.not_an_object, too_deep: a.too_deep, unpublishable: a.unpublishable,
          below_min_level: a.below_min_level, too_long: a.too_long ?? 0, truncations: a.truncations ?? 0,
          rotations: a.rotations ?? 0, rotated_unread: a.rotated_unread ?? 0, rotated_compressed: a.rotated_compressed ?? 0 };
      },
    }), opts.metrics).catch((e: Error) => {
      log.error({ err: e.message, address: opts.metrics }, 'metrics endpoint unavailable');
      return null;
    })
    : null;
  if (metrics) log.info({ address: opts.metrics }, 'metrics on /metrics');

  // SIGHUP: read the configuration again. A bad file changes nothing (the running
  // configuration stays); what cannot change without a restart is named.
  const onHup = () => {
    if (!opts.reload) return;
    try {
      const cfg = opts.reload();
      keepaliveEvents = cfg.keepaliveEvents;
      alertOpts = { ...alertOpts, enabled: cfg.alerts, minLevel: cfg.alertsMinLevel, thresholds: cfg.alertThresholds };
      followAlerts(cfg.alerts);
      const restart = [
        cfg.serverUrls.join(',') !== opts.natsUrls.join(',') && 'server_url',
        cfg.subjectPrefix !== prefix && 'subject_prefix',
        cfg.managerNode !== node && 'manager_node',
        cfg.hooks.join(',') !== capture.attachedHooks().join(',') && capture.attached && 'hooks',
        (cfg.keepaliveBatch !== (d.keepaliveBatch ?? 0) || cfg.keepaliveBatchIntervalSec !== (d.keepaliveBatchIntervalSec ?? 1)) && 'keepalive_batch',
      ].filter(Boolean);
      log.info({ keepalive_events: keepaliveEvents, alerts: cfg.alerts, alerts_min_level: cfg.alertsMinLevel, needs_restart: restart },
        'configuration reloaded');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'configuration reload failed: keeping the running configuration');
    }
  };
  process.on('SIGHUP', onHup);

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.off('SIGHUP', onHup);
  log.info({ signal }, 'stopping');
  clearInterval(lossCheck);
  followAlerts(false); // its position is saved behind what is in the spool
  await control?.close();
  metrics?.close();
  keys.close();
  journal.close(published);
  capture.detach();
  await capture.stop();
  const counters = capture.counters();
  await capture.close();
  publisher.flushBatch();
  publisher.publishLifecycle('stopped', { records: pipeline.records, events: pipeline.events });
  await publisher.close();
  log.info({ counters, decoder: decoder.stats(), state: state.stats(), delivery: publisher.stats() }, 'stopped');
  return 0;
}
