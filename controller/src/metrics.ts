// Prometheus metrics (SPEC §8), read from the stages' own counters at scrape
// time: nothing on the hot path updates a metric.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { listenGuarded } from './util/listener.js';

export interface MetricsSources {
  capture(): Record<string, number>;
  decoder(): { frames: number; malformed: number; placedByWrite?: number };
  events(): Record<string, number>; // by event type
  delivery(): {
    published: number; failed: number; acknowledged?: number; spooled?: number; shed?: number; rejected?: number; denied?: number; deferred?: number;
    spoolBytes?: number;
    /** Messages in the spool NATS has not acknowledged yet, and how long the oldest of them has waited (s; 0 when none). */
    spoolEvents?: number; spoolOldestAgeS?: number;
    /** p99 of recent messages, ms: publish → acknowledgement, and capture → publish (agent events); undefined before a first sample. */
    latencyMs?: number; delayMs?: number;
    /** The spool's disk: the bound in force, whether the disk limits it, failed writes and reads. */
    spoolBoundBytes?: number; diskFull?: boolean; writeErrors?: number; readErrors?: number;
    /** agents_kv: agents whose latest status the KV bucket lacks yet (undefined without agents_kv). */
    kvPending?: number;
  };
  natsConnected(): boolean;
  attached(): boolean;
  agents(): Record<string, number>;
  /** alerts.json: lines by outcome (published, invalid_json, too_long, …), rotations, truncations, untrusted_file. */
  alerts?(): Record<string, number>;
  /** The log's way to stdout: lines dropped while it did not drain, bytes waiting. */
  log?(): { droppedLines: number; pendingBytes: number };
  /** The capture path's last guards: records given up (`records`), events dropped as `unpublishable`. */
  errors?(): Record<string, number>;
}

/** Counters taken as they are at scrape time. */
function snapshotCounter(reg: Registry, name: string, help: string, labelNames: string[], read: (c: Counter) => void) {
  return new Counter({
    name, help, labelNames, registers: [reg],
    collect() { this.reset(); read(this); },
  });
}

/**
 * A registry whose sources are read once a scrape: every collector of one `metrics()` sees the same
 * snapshot. The delivery statistics alone were read seven times a scrape, each a new DeliveryStats.
 */
class ScrapeRegistry extends Registry {
  private readonly taken = new Map<string, unknown>();

  /** What `read` gives, read once until this scrape ends. */
  once<T>(key: string, read: () => T): () => T {
    return () => {
      if (!this.taken.has(key)) this.taken.set(key, read());
      return this.taken.get(key) as T;
    };
  }

  override async metrics(): Promise<string> {
    this.taken.clear();
    try {
      return await super.metrics();
    } finally {
      this.taken.clear();
    }
  }
}

/** A gauge with no sample at all (not 0) while `read` gives undefined: a figure never measured is not shown as one. */
function sampledGauge(reg: Registry, name: string, help: string, read: () => number | undefined): void {
  const g = new Gauge({ name, help, registers: [reg] });
  const get = g.get.bind(g);
  g.get = async () => {
    const v = read();
    if (v === undefined) return { ...(await get()), values: [] };
    g.set(v);
    return get();
  };
}

export function metricsRegistry(sources: MetricsSources): Registry {
  const reg = new ScrapeRegistry();
  const src: MetricsSources = {
    ...sources,
    capture: reg.once('capture', () => sources.capture()),
    decoder: reg.once('decoder', () => sources.decoder()),
    delivery: reg.once('delivery', () => sources.delivery()),
    alerts: sources.alerts && reg.once('alerts', sources.alerts),
    log: sources.log && reg.once('log', sources.log),
  };
  snapshotCounter(reg, 'wazuh_nats_tap_records_total', 'Capture records by outcome (captured, lost, truncated, filtered, content_dropped, …)',
    ['outcome'], (c) => { for (const [k, v] of Object.entries(src.capture())) c.inc({ outcome: k }, v); });
  snapshotCounter(reg, 'wazuh_nats_tap_frames_total', 'wdb frames decoded, and malformed (bad framing, requests with values Wazuh cannot write, replies without a status)', ['outcome'], (c) => {
    const d = src.decoder();
    c.inc({ outcome: 'decoded' }, d.frames);
    c.inc({ outcome: 'malformed' }, d.malformed);
  });
  snapshotCounter(reg, 'wazuh_nats_tap_placed_by_write_total', 'Exchanges put in wazuh-db\'s order by their request\'s write: wazuh-db\'s read of it not seen (a few at a start; growing with the traffic: the order is the clients\')', [], (c) => {
    c.inc(src.decoder().placedByWrite ?? 0);
  });
  if (src.errors) {
    const errors = src.errors;
    snapshotCounter(reg, 'wazuh_nats_tap_errors_total', 'Records given up and events dropped because something threw (each is a bug to report)',
      ['kind'], (c) => { for (const [k, v] of Object.entries(errors())) c.inc({ kind: k }, v); });
  }
  snapshotCounter(reg, 'wazuh_nats_tap_events_total', 'Events produced, by type', ['type'],
    (c) => { for (const [k, v] of Object.entries(src.events())) c.inc({ type: k }, v); });
  snapshotCounter(reg, 'wazuh_nats_tap_delivery_total', 'Delivery to NATS: published, acknowledged, spooled, shed, failed, rejected (larger than max_payload), denied (refused by the NATS user\'s permissions), deferred (alerts waiting in alerts.json for room)', ['outcome'], (c) => {
    const d = src.delivery();
    for (const k of ['published', 'acknowledged', 'spooled', 'shed', 'failed', 'rejected', 'denied', 'deferred'] as const) {
      if (d[k] !== undefined) c.inc({ outcome: k }, d[k]!);
    }
  });
  new Gauge({ name: 'wazuh_nats_tap_spool_bytes', help: 'Disk the spool\'s segment files take: what waits for NATS, and records already delivered until their segment (8 MiB at most) is removed — not a backlog (see wazuh_nats_tap_spool_events)', registers: [reg],
    collect() { this.set(src.delivery().spoolBytes ?? 0); } });
  new Gauge({ name: 'wazuh_nats_tap_spool_events', help: 'Messages in the spool that NATS has not acknowledged yet (a keepalive batch is one)', registers: [reg],
    collect() { this.set(src.delivery().spoolEvents ?? 0); } });
  new Gauge({ name: 'wazuh_nats_tap_spool_oldest_age_seconds', help: 'How long the oldest message NATS has not acknowledged has waited, seconds (0: none waits; one an earlier run left counts from this start)', registers: [reg],
    collect() { this.set(src.delivery().spoolOldestAgeS ?? 0); } });
  new Gauge({ name: 'wazuh_nats_tap_kv_pending_agents', help: 'agents_kv: agents whose latest status the KV bucket does not hold yet (its puts wait apart from the stream: a bucket away lags, delivery goes on); 0 without agents_kv', registers: [reg],
    collect() { this.set(src.delivery().kvPending ?? 0); } });
  new Gauge({ name: 'wazuh_nats_tap_spool_bound_bytes', help: 'The bound of the disk spool in force: spool_max_size, or less while the disk is full', registers: [reg],
    collect() { this.set(src.delivery().spoolBoundBytes ?? 0); } });
  new Gauge({ name: 'wazuh_nats_tap_spool_disk_full', help: '1 while the spool\'s disk is full: new events are refused (keepalives first, counted) until there is room', registers: [reg],
    collect() { this.set(src.delivery().diskFull ? 1 : 0); } });
  snapshotCounter(reg, 'wazuh_nats_tap_spool_errors_total', 'Spool file operations that failed: write (an append, the ack cursor, a compaction, an fdatasync: disk full, quota, I/O error; the events of a failed append are refused and counted as shed or deferred), read (out of descriptors, I/O error: retried, nothing lost)',
    ['op'], (c) => {
      const d = src.delivery();
      c.inc({ op: 'write' }, d.writeErrors ?? 0);
      c.inc({ op: 'read' }, d.readErrors ?? 0);
    });
  sampledGauge(reg, 'wazuh_nats_tap_publish_latency_ms', 'p99 of recent messages from their publishing to NATS\' acknowledgement, milliseconds (JetStream: the PubAck; core: the PONG to the PING the tap sends 20 ms after the oldest unconfirmed message with the next one, or on a timer at 40 ms — ~40-45 ms at a few messages a second is that timing, not NATS); no sample before the first acknowledgement',
    () => src.delivery().latencyMs);
  sampledGauge(reg, 'wazuh_nats_tap_capture_delay_ms', 'p99 of recent agent event messages from the daemon\'s syscall (the capture) to their publishing to NATS: the tap\'s own share of the latency, milliseconds; no sample before the first agent event',
    () => src.delivery().delayMs);
  new Gauge({ name: 'wazuh_nats_tap_nats_connected', help: '1 when connected to NATS', registers: [reg],
    collect() { this.set(src.natsConnected() ? 1 : 0); } });
  new Gauge({ name: 'wazuh_nats_tap_attached', help: '1 when the eBPF programs are attached', registers: [reg],
    collect() { this.set(src.attached() ? 1 : 0); } });
  new Gauge({ name: 'wazuh_nats_tap_agents', help: 'Agents by connection status', labelNames: ['status'], registers: [reg],
    collect() { this.reset(); for (const [k, v] of Object.entries(src.agents())) this.set({ status: k }, v); } });
  processMetrics(reg);
  if (src.log) {
    const log = src.log;
    new Counter({ name: 'wazuh_nats_tap_log_dropped_lines_total', help: 'Log lines dropped because stdout did not drain (journald or the pipe\'s reader stalled; the buffer is bounded)', registers: [reg],
      collect() { this.reset(); this.inc(log().droppedLines); } });
    new Gauge({ name: 'wazuh_nats_tap_log_pending_bytes', help: 'Log bytes waiting for stdout to drain', registers: [reg],
      collect() { this.set(log().pendingBytes); } });
  }
  if (src.alerts) {
    const alerts = src.alerts;
    snapshotCounter(reg, 'wazuh_nats_tap_alerts_total', 'alerts.json: alerts published, lines skipped by reason, rotations and truncations followed, files refused as not Wazuh\'s (untrusted_file)',
      ['outcome'], (c) => { for (const [k, v] of Object.entries(alerts())) c.inc({ outcome: k }, v); });
  }
  return reg;
}

/**
 * The tap's own CPU and memory under the names Prometheus' client libraries use
 * (process_cpu_seconds_total, process_resident_memory_bytes, …), so the usual dashboards and
 * alerts work. Read at scrape time only: prom-client's collectDefaultMetrics would also run an
 * event-loop delay timer and a GC observer for as long as the tap runs, a cost on the hot path.
 */
function processMetrics(reg: Registry): void {
  const started = Math.round(Date.now() / 1000 - process.uptime());
  const cpu = (which: 'user' | 'system' | 'all') => () => {
    const u = process.cpuUsage();
    return (which === 'user' ? u.user : which === 'system' ? u.system : u.user + u.system) / 1e6;
  };
  const counter = (name: string, help: string, read: () => number) => new Counter({
    name, help, registers: [reg], collect() { this.reset(); this.inc(read()); },
  });
  const gauge = (name: string, help: string, read: () => number) => new Gauge({
    name, help, registers: [reg], collect() { this.set(read()); },
  });
  counter('process_cpu_user_seconds_total', 'User CPU time of the tap (all threads), seconds', cpu('user'));
  counter('process_cpu_system_seconds_total', 'System CPU time of the tap (all threads), seconds', cpu('system'));
  counter('process_cpu_seconds_total', 'User and system CPU time of the tap (all threads), seconds', cpu('all'));
  gauge('process_resident_memory_bytes', 'Resident memory of the tap, bytes', () => process.memoryUsage.rss());
  gauge('process_start_time_seconds', 'Start of the tap, unix seconds', () => started);
  gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, bytes', () => process.memoryUsage().heapUsed);
  gauge('nodejs_heap_size_total_bytes', 'V8 heap allocated, bytes', () => process.memoryUsage().heapTotal);
  gauge('nodejs_external_memory_bytes', 'Memory of buffers and native objects held by JavaScript, bytes', () => process.memoryUsage().external);
}

/** Parse `host:port` (SPEC §6 `metrics`); null for `no`. */
export function parseMetricsAddress(s: string): { host: string; port: number } | null {
  if (s === 'no') return null;
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`metrics: '${s}' is not host:port or no`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/**
 * Bounds of the endpoint, which any local user can reach: a few connections at a time (Prometheus
 * needs one), each closed when idle or slow within seconds. Without them, idle connections by the
 * thousand took every descriptor of the tap (whose next open then failed with EMFILE). At the cap the
 * oldest connection with no request in progress is closed for the new one (refusing the new one let
 * a local user holding 32 connections keep Prometheus out); a request's headers must come within a
 * second. One rendered body serves every scrape for `cacheMs`, and scrapes that come while it is
 * rendered wait for that one: a scrape costs the tap the same whoever scrapes, however often.
 */
export const METRICS_LIMITS = {
  maxConnections: 32, idleMs: 5000, headersMs: 1000, requestMs: 10_000, keepAliveMs: 2000, cacheMs: 1000, busyMs: 2000,
} as const;

export interface MetricsLog {
  warn(o: object, msg: string): void;
}

/** The body of /metrics, rendered at most once per `cacheMs`, one rendering shared by every scrape that waits for it. */
export function cachedRender(reg: Registry, cacheMs: number): () => Promise<string> {
  let body: { text: string; at: number } | null = null;
  let rendering: Promise<string> | null = null;
  return () => {
    if (body && performance.now() - body.at < cacheMs) return Promise.resolve(body.text);
    rendering ??= reg.metrics().then((text) => {
      body = { text, at: performance.now() };
      return text;
    }).finally(() => { rendering = null; });
    return rendering;
  };
}

export async function serveMetrics(reg: Registry, addr: { host: string; port: number }, log?: MetricsLog,
  o: { cacheMs?: number } = {}): Promise<Server> {
  const L = METRICS_LIMITS;
  const render = cachedRender(reg, o.cacheMs ?? L.cacheMs);
  /**
   * Connections with requests in progress (headers read, answer not finished), and since when:
   * not closed to make room — for busyMs at most, since a client that pipelines requests and never
   * reads the answers keeps them "in progress" for ever (32 such held every slot).
   */
  const serving = new WeakMap<Socket, { n: number; since: number }>();
  const server = createServer({
    headersTimeout: L.headersMs, requestTimeout: L.requestMs, keepAliveTimeout: L.keepAliveMs,
    connectionsCheckingInterval: 250, // how often headersTimeout/requestTimeout are checked (default 30 s)
  }, (req, res) => {
    const sock = req.socket;
    const busy = serving.get(sock);
    if (busy) busy.n++;
    else serving.set(sock, { n: 1, since: performance.now() });
    res.once('close', () => {
      const b = serving.get(sock);
      if (b && --b.n <= 0) serving.delete(sock);
    });
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404).end('not found\n');
      return;
    }
    render().then(
      (body) => res.writeHead(200, { 'Content-Type': reg.contentType }).end(body),
      (e) => res.writeHead(500).end(`${(e as Error).message}\n`),
    );
  });
  server.setTimeout(L.idleMs); // a socket idle that long is destroyed (no 'timeout' listener)
  await listenGuarded(server, (done) => server.listen(addr.port, addr.host, done), {
    max: L.maxConnections, what: 'metrics', warn: log ? (o, msg) => log.warn(o, msg) : undefined,
    dropHint: '(a scraper that does not close them, or a local user)',
    busy: (s) => { const b = serving.get(s); return !!b && performance.now() - b.since < L.busyMs; },
  });
  return server;
}
