// The publisher the agent uses (publishAgentEvent, publishLifecycle, connect, close),
// over the delivery engine: every event goes through the disk spool, and is
// delivered by core NATS or JetStream (SPEC §4, §5).
import { randomUUID } from 'node:crypto';
import { encrypt, encryptedHeaders, type EncryptionKey } from './encryption.js';
import type { Logger } from 'pino';
import type { AgentEvent } from '../types.js';
import { Delivery, type DeliveryMessage, type DeliveryStats, type StreamOptions } from './delivery.js';
import type { MessageKind, SpoolOptions } from './spool.js';
import { agentSubject, alertSubject, assertAgentIdToken, isAgentIdToken, keepaliveBatchSubject, tapSubject } from './subjects.js';
import { DEFAULT_BATCH_BYTES, KeepaliveBatcher, type ClosedBatch } from './keepalive-batch.js';
import { keepaliveJson, statusJson } from './event-json.js';
import { spooledStatus, type SpooledStatus } from './spooled-status.js';
import type { AlertEvent } from '../alerts/alert-event.js';
import type { ConnectionOptions } from '@nats-io/transport-node';

/** Events shed because the spool was full, by kind (keepalives go first). */
export type ShedCounts = Record<MessageKind, number>;

/** What each lifecycle action carries beyond the common fields (docs/asyncapi.yaml TapEvent says the same). */
export interface TapLifecycleDetails {
  started: { home: string };
  attached: Record<never, never>;
  detached: Record<never, never>;
  records_lost: { lost: number };
  spool_full: { shed: ShedCounts; shed_total: ShedCounts };
  stopped: { records: number; events: number };
}
export type TapAction = keyof TapLifecycleDetails;

/** The tap's own lifecycle, on `<prefix>.tap.<node>.events`: exactly the JSON published. */
export interface TapLifecycleEvent {
  event_id: string;
  event_type: 'tap';
  action: TapAction;
  manager_node: string;
  time: string;
  timestamp: number;
  /** started: the Wazuh home the tap follows. */
  home?: string;
  /** records_lost: records (or whole writes) the kernel or the shim could not deliver since the last report. */
  lost?: number;
  /** spool_full: events shed since the last report, and since the start, by kind. */
  shed?: ShedCounts;
  shed_total?: ShedCounts;
  /** stopped: capture records handled and events produced. */
  records?: number;
  events?: number;
}

export interface ReliablePublisherOptions {
  servers: string[];
  prefix: string;
  node: string;
  log: Logger;
  /** Spool directory and bound (spool_dir, spool_max_size). */
  spoolDir: string;
  spoolMaxBytes: number;
  jetstream?: boolean;
  /** Stream name (default WAZUH). */
  stream?: string;
  createStream?: boolean;
  /** Duplicate window of a created stream (default 2 h): at least the longest expected outage. */
  duplicateWindowMs?: number;
  /** Replicas of the stream and the KV bucket the tap creates (stream_replicas): a number, or auto (default). */
  replicas?: number | 'auto';
  /** Keep each agent's latest status in the KV bucket `<prefix>_agents` (JetStream only). */
  kv?: boolean;
  maxReconnects?: number;
  reconnectDelayMs?: number;
  connectOptions?: Partial<ConnectionOptions>;
  spool?: Partial<SpoolOptions>;
  /** Encrypt every payload (encrypt_messages): before the spool, so it is at rest encrypted too. */
  encryption?: EncryptionKey;
  window?: number;
  ackTimeoutMs?: number;
  /** Batch keepalives (keepalive_batch): up to maxEvents per message, none waiting longer than intervalMs. */
  keepaliveBatch?: { maxEvents: number; intervalMs: number; maxBytes?: number };
  /** A likely cause of a failed connection that nats.js does not tell (e.g. an expired client certificate). */
  diagnose?: () => string | null;
  /** An agent event was dropped as unpublishable (log it, rate-limited). */
  onUnpublishable?: (e: unknown, ev: AgentEvent) => void;
  /** Each status change an earlier run left in the spool, in order, as it is opened (spooled-status.ts). */
  onSpooledStatus?: (s: SpooledStatus) => void;
}

const ACCEPTED = -1;
const DROPPED = -2;

/** Room left in a message for a batch's envelope and the message's headers (NATS counts both in max_payload). */
const BATCH_HEADROOM = 4096;

/**
 * The byte bound of keepalive batches for a server whose max_payload is `maxPayload`: a batch
 * larger than that is refused by the server, and no retry can deliver it. A tenth is kept back
 * because the batcher counts characters (text beyond ASCII takes more bytes); an encrypted body
 * is base64 of nonce, ciphertext and tag (4/3 of the JSON, plus 28 bytes).
 */
export function batchBytesFor(maxPayload: number, configured: number, encrypted: boolean): number {
  let room = Math.floor((maxPayload - Math.min(BATCH_HEADROOM, Math.floor(maxPayload / 4))) * 0.9);
  if (encrypted) room = Math.floor(room * 3 / 4) - 64;
  return Math.max(1024, Math.min(configured, room));
}

/** KV bucket names allow letters, digits, '-' and '_': the prefix's dots become '_'. */
export function kvBucketName(prefix: string): string {
  return `${prefix.replace(/\./g, '_')}_agents`;
}

export class ReliablePublisher {
  readonly delivery: Delivery;
  private readonly opts: ReliablePublisherOptions;
  private readonly batcher: KeepaliveBatcher | null;
  private batchTimer: NodeJS.Timeout | null = null;
  private unpublishableCount = 0;

  constructor(opts: ReliablePublisherOptions) {
    this.opts = opts;
    const kb = opts.keepaliveBatch;
    this.batcher = kb && kb.maxEvents > 0
      ? new KeepaliveBatcher({ maxEvents: kb.maxEvents, maxBytes: kb.maxBytes ?? DEFAULT_BATCH_BYTES, manager_node: opts.node })
      : null;
    const stream: StreamOptions | undefined = opts.jetstream
      ? {
          name: opts.stream ?? 'WAZUH', subjects: [`${opts.prefix}.>`], create: !!opts.createStream,
          duplicateWindowMs: opts.duplicateWindowMs, replicas: opts.replicas,
        }
      : undefined;
    this.delivery = new Delivery({
      servers: opts.servers, mode: opts.jetstream ? 'jetstream' : 'core', log: opts.log,
      name: `wazuh-nats-tap@${opts.node}`,
      spool: {
        dir: opts.spoolDir, maxBytes: opts.spoolMaxBytes, ...opts.spool,
        onWarn: opts.spool?.onWarn ?? ((msg, fields) => opts.log.warn(fields, msg)),
        onRecovered: opts.onSpooledStatus ? (e) => {
          const st = spooledStatus(e, opts.encryption);
          if (st) opts.onSpooledStatus!(st);
        } : opts.spool?.onRecovered,
      },
      maxReconnects: opts.maxReconnects, reconnectDelayMs: opts.reconnectDelayMs, connectOptions: opts.connectOptions,
      window: opts.window, ackTimeoutMs: opts.ackTimeoutMs, stream,
      kvBucket: opts.jetstream && opts.kv ? kvBucketName(opts.prefix) : undefined, prefix: opts.prefix, encryption: opts.encryption,
      diagnose: opts.diagnose,
      onShed: (delta, total) => {
        opts.log.warn({ shed: delta, total }, 'spool full: events shed');
        this.publishLifecycle('spool_full', { shed: delta, shed_total: total });
      },
    });
  }

  /** Start delivering. Returns at once: events are spooled while NATS is away. */
  async connect(): Promise<void> {
    this.delivery.start();
  }

  get connected(): boolean {
    return this.delivery.connected;
  }

  /** Messages acknowledged by NATS. */
  get published(): number {
    return this.delivery.stats().acknowledged;
  }

  /** Messages shed because the spool was full. */
  get failed(): number {
    const s = this.delivery.stats().shed;
    return s.status + s.keepalive + s.alert + s.tap;
  }

  stats(): DeliveryStats {
    return this.delivery.stats();
  }

  publishAgentEvent(ev: AgentEvent): boolean {
    return this.publishAgentEvents([ev])[0];
  }

  /**
   * Spool many events with one write (a batch of the pipeline); per event, true when it is spooled (or
   * waits in the open keepalive batch). An event that cannot become a message (an agent id that is not
   * a subject token: the decoder lets none through, so this is a bug) is dropped and counted as
   * `unpublishable` (false); the others of the batch are spooled all the same. `capturedMs`: the
   * capture time of the earliest record behind the events (CLOCK_MONOTONIC ms), to time their delay.
   */
  publishAgentEvents(evs: AgentEvent[], capturedMs = NaN): boolean[] {
    const b = this.batcher;
    if (b && this.delivery.maxPayload !== this.fittedTo) this.fitBatches(b);
    // Keepalives go into the open batch (accepted: true); a batch that closes is spooled in
    // place, so every message keeps its order in the spool.
    const out: DeliveryMessage[] = [];
    const at: number[] = []; // per event: its index in out, ACCEPTED (in the batch) or DROPPED
    for (const ev of evs) {
      try {
        assertAgentIdToken(ev.agent_id); // a batched keepalive too: its id goes into the batch's events
        if (b && ev.event_type === 'keepalive') {
          for (const full of b.add(ev, capturedMs)) out.push(this.batchMessage(full));
          at.push(ACCEPTED);
          continue;
        }
        // The message first: if it cannot be made, nothing else moved.
        const m = this.agentMessage(ev, capturedMs);
        if (b?.holds(ev.agent_id)) out.push(this.batchMessage(b.take()!));
        at.push(out.length);
        out.push(m);
      } catch (e) {
        this.unpublishableCount++;
        at.push(DROPPED);
        try {
          this.opts.onUnpublishable?.(e, ev);
        } catch {
          // the report failed; the event is counted all the same
        }
      }
    }
    const interval = this.opts.keepaliveBatch?.intervalMs ?? 0;
    // Interval 0: the batch is this call's keepalives (one batch of captured records): it closes now.
    if (b?.size && interval === 0) out.push(this.batchMessage(b.take()!));
    else if (b?.size && !this.batchTimer) {
      this.batchTimer = setTimeout(() => this.flushBatch(), interval);
      this.batchTimer.unref();
    }
    const ok = out.length ? this.delivery.enqueueMany(out) : [];
    return at.map((i) => (i === ACCEPTED ? true : i === DROPPED ? false : ok[i]));
  }

  /** The max_payload the keepalive batches were last fitted to (null: the configured bound). */
  private fittedTo: number | null = null;

  /** Batches as large as configured, but never larger than the server (or the JetStream stream) accepts. */
  private fitBatches(b: KeepaliveBatcher): void {
    const mp = this.delivery.maxPayload;
    this.fittedTo = mp;
    if (mp === null) return;
    const configured = this.opts.keepaliveBatch?.maxBytes ?? DEFAULT_BATCH_BYTES;
    const bytes = batchBytesFor(mp, configured, !!this.opts.encryption);
    if (bytes === b.maxBytes) return;
    b.maxBytes = bytes;
    if (bytes < configured) {
      this.opts.log.info({ batch_bytes: b.maxBytes, message_limit: mp, configured },
        'keepalive batches made smaller: NATS takes messages of message_limit bytes at most (the server\'s max_payload, or the stream\'s max_msg_size)');
    }
  }

  /** Agent events dropped because they could not be made into a message (see publishAgentEvents). */
  get unpublishable(): number {
    return this.unpublishableCount;
  }

  /** Spool the open keepalive batch now (its time is up, or the tap stops). */
  flushBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    const full = this.batcher?.take();
    if (full) this.delivery.enqueue(this.batchMessage(full));
  }

  private agentMessage(ev: AgentEvent, capturedMs: number): DeliveryMessage {
    return this.timed(capturedMs, {
      subject: agentSubject(this.opts.prefix, ev),
      headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': ev.event_type, 'Wazuh-Agent-Id': ev.agent_id },
      body: ev.event_type === 'keepalive' ? keepaliveJson(ev) : statusJson(ev),
      kind: (ev.event_type === 'status_change' ? 'status' : 'keepalive') as MessageKind,
      eventId: ev.event_id,
    });
  }

  private batchMessage(b: ClosedBatch): DeliveryMessage {
    return this.timed(b.capturedMs, {
      subject: keepaliveBatchSubject(this.opts.prefix),
      headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'keepalive_batch', 'Wazuh-Event-Count': String(b.count) },
      body: b.body, kind: 'keepalive' as MessageKind, eventId: b.eventId,
    });
  }

  /**
   * Spool alerts with one write; per alert, true when it is on disk (then its position in
   * alerts.json may be saved). `Wazuh-Agent-Id` only when the alert's agent id is Wazuh's digits.
   */
  publishAlerts(evs: AlertEvent[]): boolean[] {
    return this.delivery.enqueueMany(evs.map((ev) => {
      const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'alert' };
      if (ev.agent_id !== null && isAgentIdToken(ev.agent_id)) headers['Wazuh-Agent-Id'] = ev.agent_id;
      return this.seal({
        subject: alertSubject(this.opts.prefix, ev.severity),
        headers, body: JSON.stringify(ev), kind: 'alert' as MessageKind, eventId: ev.event_id,
      });
    }), true); // refused alerts stay in alerts.json: the follower offers them again
  }

  /** The message sealed, with the capture time it is timed from (when known). */
  private timed(capturedMs: number, m: DeliveryMessage & { body: string }): DeliveryMessage {
    const sealed: DeliveryMessage = this.seal(m);
    if (capturedMs === capturedMs) sealed.capturedMs = capturedMs; // not NaN
    return sealed;
  }

  private seal<M extends { subject: string; headers: Record<string, string>; body: string }>(m: M): M {
    const k = this.opts.encryption;
    return k ? { ...m, headers: encryptedHeaders(k, m.headers), body: encrypt(k, m.subject, m.body) } : m;
  }

  publishLifecycle<A extends TapAction>(action: A, extra: TapLifecycleDetails[A]): boolean {
    const now = Date.now();
    const ev: TapLifecycleEvent = {
      event_id: randomUUID(), event_type: 'tap', action, manager_node: this.opts.node,
      time: new Date(now).toISOString(), timestamp: Math.floor(now / 1000), ...extra,
    };
    return this.delivery.enqueue(this.seal({
      subject: tapSubject(this.opts.prefix, this.opts.node),
      headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': 'tap' },
      body: JSON.stringify(ev), kind: 'tap' as MessageKind, eventId: ev.event_id,
    }));
  }

  /** Deliver what can be within `timeoutMs` and close; the rest stays spooled for the next start. */
  async close(timeoutMs = 5000): Promise<void> {
    this.flushBatch();
    await this.delivery.close(timeoutMs);
  }
}
