// The host agent (`wazuh-nats-tap run`): the parts it is made of, in the order
// they start. They stop in reverse, through one shutdown path with a deadline
// (agent/lifecycle.ts), whatever ends the agent: SIGTERM/SIGINT, a fatal
// error, `<enabled>no</enabled>` on reload, a lost lock.
import type { Logger } from 'pino';
import type { Hook } from './capture/capture.js';
import type { NatsSecurity } from './publish/connect-options.js';
import type { EncryptionKey } from './publish/encryption.js';
import type { AlertThresholds } from './alerts/alert-event.js';
import type { Lifecycle } from './agent/lifecycle.js';
import { Tap } from './agent/tap.js';
import { lockPart } from './agent/parts/lock.js';
import { publisherPart } from './agent/parts/publisher.js';
import { statePart } from './agent/parts/state.js';
import { wazuhDbPart } from './agent/parts/wazuh-db.js';
import { capturePart } from './agent/parts/capture.js';
import { alertsPart } from './agent/parts/alerts.js';
import { controlPart } from './agent/parts/control.js';
import { metricsPart } from './agent/parts/metrics.js';
import { notifySystemd } from './agent/systemd.js';
import { reloadHandler, type Reloading } from './agent/parts/reload.js';
import { checkControlSocketPath } from './control/protocol.js';

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
  /** Milliseconds between the capture's rounds while records flow (`capture_interval`; default 1). */
  captureIntervalMs?: number;
  /** Wazuh's alerts from `<home>/logs/alerts/alerts.json` (`alerts`, `alerts_min_level`, …). */
  alerts?: AlertOptions;
  /** The configuration the agent starts with, and how to read it again (SIGHUP). */
  reload?: Reloading;
  /** Delivery (SPEC §5): the disk spool and JetStream. */
  delivery?: {
    spoolDir?: string;
    spoolMaxBytes?: number;
    jetstream?: boolean;
    stream?: string;
    createStream?: boolean;
    /** Keep each agent's latest status in the KV bucket `<prefix>_agents`. */
    agentsKv?: boolean;
    /** Replicas of the stream and KV bucket the tap creates (`stream_replicas`): 1–5, or auto. */
    streamReplicas?: number | 'auto';
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

/** One line for `systemctl status`: what the tap does now. */
export function statusLine(tap: Tap): string {
  const c = tap.capture;
  const p = tap.publisher;
  return `${c?.attached ? `attached (${c.attachedHooks().join(', ')})` : 'detached'}, ${tap.state.size} agents, `
    + `NATS ${p?.connected ? 'connected' : 'disconnected'}, ${p?.published ?? 0} published`;
}

/** Runs until the lifecycle is asked to stop; returns the exit code (SPEC §7). */
export async function runAgent(opts: AgentOptions, life: Lifecycle): Promise<number> {
  // A --control-socket that cannot name a socket is a usage error (exit 2), before anything is opened.
  if (opts.controlSocket != null) checkControlSocketPath(opts.controlSocket);
  const tap = new Tap(opts, life);
  notifySystemd(life, { status: () => statusLine(tap), log: opts.log }); // READY=1, the watchdog, STOPPING=1
  const capture = capturePart(tap);
  const alerts = alertsPart(tap);
  life.add(lockPart(tap));             // one tap per home and spool
  life.add(publisherPart(tap));        // the spool and NATS: every event has somewhere to go
  life.add(statePart(tap));            // agents.status, client.keys, wazuh-db's view
  life.add(wazuhDbPart(tap));          // wazuh-db's view again whenever its socket (re)appears
  life.add(capture);                   // BPF programs → pipeline (decode → state → publish)
  life.add(alerts);                    // alerts.json → publish
  life.add(controlPart(tap, capture)); // status, attach, detach
  life.add(metricsPart(tap));          // /metrics
  if (opts.reload) life.setReload(reloadHandler(tap, alerts.follow, opts.reload));
  return life.run();
}
