// The NATS edge: turns events into messages (subject, headers, JSON) and
// publishes them on core NATS.
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { AgentEvent } from '../types.js';
import { agentSubject, tapSubject } from './subjects.js';

export interface PublisherOptions {
  servers: string[];
  prefix: string;
  node: string;
  log: Logger;
  /** Milliseconds between reconnect attempts. */
  reconnectDelayMs?: number;
}

export interface TapLifecycleEvent {
  event_type: 'tap';
  action: 'started' | 'attached' | 'detached' | 'records_lost' | 'spool_full' | 'stopped';
  manager_node: string;
  time: string;
  timestamp: number;
  [k: string]: unknown;
}

export class Publisher {
  private nc: NatsConnection | null = null;
  published = 0;
  failed = 0;

  constructor(private readonly opts: PublisherOptions) {}

  async connect(): Promise<void> {
    const { log } = this.opts;
    this.nc = await connect({
      servers: this.opts.servers,
      name: `wazuh-nats-tap@${this.opts.node}`,
      maxReconnectAttempts: -1, // the tap never gives up on NATS
      reconnectTimeWait: this.opts.reconnectDelayMs ?? 2000,
      waitOnFirstConnect: true,
    });
    log.info({ server: this.nc.getServer() }, 'connected to NATS');
    void (async () => {
      for await (const s of this.nc!.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ server: s.server }, `NATS ${s.type}`);
      }
    })().catch(() => {});
  }

  get connected(): boolean {
    return this.nc !== null && !this.nc.isClosed();
  }

  publishAgentEvent(ev: AgentEvent): void {
    const h = headers();
    h.set('Content-Type', 'application/json');
    h.set('Wazuh-Event-Type', ev.event_type);
    h.set('Wazuh-Agent-Id', ev.agent_id);
    this.send(agentSubject(this.opts.prefix, ev), JSON.stringify(ev), h);
  }

  publishLifecycle(action: TapLifecycleEvent['action'], extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    const ev: TapLifecycleEvent = {
      event_type: 'tap', action, manager_node: this.opts.node,
      time: new Date(now).toISOString(), timestamp: Math.floor(now / 1000), ...extra,
    };
    const h = headers();
    h.set('Content-Type', 'application/json');
    h.set('Wazuh-Event-Type', 'tap');
    this.send(tapSubject(this.opts.prefix, this.opts.node), JSON.stringify(ev), h);
  }

  private send(subject: string, body: string, h: ReturnType<typeof headers>): void {
    if (!this.nc) throw new Error('publisher is not connected');
    try {
      this.nc.publish(subject, body, { headers: h });
      this.published++;
    } catch (e) {
      this.failed++;
      this.opts.log.error({ err: e, subject }, 'publish failed');
    }
  }

  /** Send everything buffered and close. */
  async close(): Promise<void> {
    if (!this.nc) return;
    const nc = this.nc;
    this.nc = null;
    try {
      await nc.drain();
    } catch {
      await nc.close();
    }
  }
}
