// The delivery engine (SPEC §5): every message is written to the disk spool
// first, then drained from it to NATS, oldest first; a record leaves the spool
// only when NATS acknowledged it.
//
//  - core NATS: publish, and a periodic flush() (a PING/PONG round trip: the server has
//    processed everything sent before it) acknowledges what was published before it;
//  - JetStream: js.publish() with msgID = event_id (the server de-duplicates resends within
//    the stream's duplicate window), up to `window` publishes in flight, each retried on
//    failure or timeout until acknowledged.
//
// Order: the spool is FIFO. In core mode one connection keeps the order; after a
// disconnect, everything not confirmed is resent from the oldest (a subscriber can see a
// message twice, never out of order once de-duplicated by event_id). In JetStream mode
// at most one message per agent (per subject when there is no agent) is in flight, so a
// retried message can never be overtaken by a later one of the same agent; the window is
// shared by different agents. Keepalive batches are not held to one at a time: they all share
// one subject, and waiting for each one's PubAck before the next made them a queue (33 ms p50,
// 390 ms p99 at 10,000 frames/s); a retried batch may be stored after a later batch (each
// keepalive carries its own time, and no status change ever travels in a batch). But an agent's
// message and a batch holding one of its keepalives never overtake each other: one waits while
// the other, sent before it, is not stored (a status change retried after a lost PubAck was
// stored after the next batch, whose keepalive said `active` again).
// Nothing is published while the connection is down (nats.js
// drops what it buffered when it reconnects); after a reconnect or a restart the spool is
// replayed from the oldest unacknowledged record.
//
// The connection never gives up: nats.js makes `maxReconnects` attempts `reconnectDelayMs`
// apart (one cycle); when a cycle is exhausted the engine waits `reconnectDelayMs` and starts
// a new one, forever. Enqueueing never waits for NATS.
//
// Nothing here waits on NATS without a bound: every connection attempt has a deadline and
// releases its socket (nats-connect.ts); a silent server is given up after `connectTimeoutMs`;
// close() abandons an attempt in flight, cuts the wait between attempts short and gives
// nats.js a bounded time to close, so it returns within about `timeoutMs` + 2 s whatever NATS does.
import {
  createInbox, InvalidArgumentError, InvalidSubjectError, nanos,
  type ConnectionOptions, type MsgHdrs, type NatsConnection,
} from '@nats-io/transport-node';
import {
  DiscardPolicy, JetStreamApiError, jetstream, jetstreamManager, StorageType,
  type JetStreamClient, type StreamConfig,
} from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { connectNats, unsentBytes, within, WRITE_AHEAD_BYTES, type PeerFault, type PendingConnection } from './nats-connect.js';
import { KINDS, Spool, type MessageKind, type SpoolEntry, type SpoolMessage, type SpoolOptions } from './spool.js';
import { KvLatest, KvValueRefused, MAX_PENDING_BYTES, MAX_VALUE_BYTES, parsePending, type KvLatestStats } from './kv-latest.js';
import { isAgentIdToken } from './subjects.js';
import { statusVerdict } from './spooled-status.js';
import type { EncryptionKey } from './encryption.js';
import { MAX_AGENTS } from '../decode/values.js';
import { maskSecrets, maskUrl, urlSecrets } from '../util/mask-url.js';
import { isErrno } from '../util/errno.js';
import { clip } from '../util/clip.js';
import { encodedHeaders, headersOf, SharedHeaders } from './shared-headers.js';
import { LogLimiter } from '../util/log-limiter.js';
import { CaptureTimes, RecentTimes, SpoolAges, type TimesSummary } from './timing.js';
import { monotonicMs } from '../util/clock.js';

/**
 * A message to deliver. `capturedMs`: when the earliest syscall behind it was captured (CLOCK_MONOTONIC,
 * ms): its delay until it is handed to NATS is timed (`delayMs`). Not spooled: a replay is not timed.
 */
export type DeliveryMessage = SpoolMessage & { capturedMs?: number };
export type { MessageKind } from './spool.js';

export interface StreamOptions {
  /** Stream name (default WAZUH). */
  name: string;
  /** Subjects of the stream when it is created, e.g. [`wazuh.>`]. */
  subjects: string[];
  /** Create the stream when it does not exist. */
  create: boolean;
  /** Duplicate window: at least the longest time a record can wait in the spool (default 2 h). */
  duplicateWindowMs?: number;
  /**
   * Replicas of the stream and of the KV bucket the tap creates (`stream_replicas`): a number, or
   * `auto` (the default): 3 when the server is in a cluster of 3 or more, else 1.
   */
  replicas?: number | 'auto';
}

export interface DeliveryOptions {
  servers: string[];
  mode: 'core' | 'jetstream';
  /** An open spool, or the options to open one. */
  spool: Spool | SpoolOptions;
  log?: Logger;
  name?: string;
  /** Reconnect attempts per cycle (nats.js maxReconnectAttempts; -1: one endless cycle). Default 10. */
  maxReconnects?: number;
  /** Milliseconds between attempts, and between cycles. Default 2000. */
  reconnectDelayMs?: number;
  /**
   * Deadline of one connection attempt to one server (TCP, INFO, TLS, CONNECT): a port that accepts
   * and never speaks is given up after it. Default 5000.
   */
  connectTimeoutMs?: number;
  /** Extra nats.js connection options (TLS, authentication, …). */
  connectOptions?: Partial<ConnectionOptions>;
  /** JetStream: publishes in flight at most (default 256). */
  window?: number;
  /** JetStream: milliseconds to wait for a PubAck before retrying (default 5000). */
  ackTimeoutMs?: number;
  /** Core: messages published and not yet confirmed by a flush, at most (default 20000). */
  coreWindow?: number;
  /** Core: flush after this many messages (default 2000) … */
  flushEvery?: number;
  /**
   * … or with the first messages published this many milliseconds (default 20) or more after the
   * oldest one not yet flushed, and at twice that when none come.
   */
  flushIntervalMs?: number;
  /** JetStream stream (needed to create it; publishing works without). */
  stream?: StreamOptions;
  /** JetStream: also keep each agent's latest status event in this KV bucket (key = agent id). */
  kvBucket?: string;
  /** The subject prefix (`subject_prefix`): named in the hint of a refused publish (default `wazuh`). */
  prefix?: string;
  /** The key of encrypt_messages: the KV values read back from kv.pending are status changes sealed with it. */
  encryption?: EncryptionKey;
  /** Called at most every `shedReportMs` (default 5000) when messages were shed since the last call. */
  onShed?: (delta: Record<MessageKind, number>, total: Record<MessageKind, number>) => void;
  shedReportMs?: number;
  /** Called when a connection fails: a likely cause the error does not tell (logged as `hint`). */
  diagnose?: () => string | null;
}

export interface DeliveryStats {
  mode: 'core' | 'jetstream';
  connected: boolean;
  /** Messages written to the spool. */
  spooled: number;
  /** Publish attempts (resends included). */
  published: number;
  /** Messages acknowledged (JetStream PubAck or core flush) and removed from the spool. */
  acknowledged: number;
  /** Acknowledged messages that had waited: written while NATS was away, or by an earlier process. */
  replayed: number;
  /** Publish attempts that repeated an earlier one (after a failure, timeout or disconnect). */
  resent: number;
  /** JetStream: acknowledged as duplicates (already stored). */
  duplicates: number;
  failures: number;
  /** Messages larger than the server's max_payload: dropped, since no retry can deliver them. */
  rejected: number;
  /** Refusals by the server for want of permission (publishes, the ack inbox's subscription): a misconfigured NATS user. */
  denied: number;
  /** The last refusal, `publish <subject>` or `subscription <subject>`; null if none. */
  lastDenied: string | null;
  shed: Record<MessageKind, number>;
  /** Refused for want of room and kept by the caller to offer again (alerts): not lost. */
  deferred: number;
  spoolBytes: number;
  /** Messages in the spool NATS has not acknowledged. */
  spoolRecords: number;
  /** How long the oldest of them has waited, ms (one an earlier run left: since this start); null when none. */
  spoolOldestMs: number | null;
  spoolTorn: number;
  /** Spool writes that failed (disk full, I/O error): the events they held were refused and counted. */
  writeErrors: number;
  /** Spool reads that failed (out of descriptors, I/O error): the drain waited and tried again; nothing lost. */
  readErrors: number;
  /** The disk cannot hold the configured bound now: the spool is bounded by `spoolBoundBytes`. */
  diskFull: boolean;
  spoolBoundBytes: number;
  inFlight: number;
  /**
   * Recent messages, ms: from publishing to NATS' acknowledgement (core: the flush that confirmed it, up
   * to flushIntervalMs later; JetStream: the PubAck) …
   */
  latencyMs: TimesSummary;
  /** … and from the capture of the syscall behind an agent event to its publishing: the tap's own share. */
  delayMs: TimesSummary;
  reconnectCycles: number;
  streamReady: boolean;
  /** The last publish failure's reason (JetStream: no PubAck, no responders, a KV put; core: a publish refused), and how long ago, ms; null when none. */
  lastFailure: string | null;
  lastFailureAgeMs: number | null;
  /** The server connected to now (masked), null while away. */
  server: string | null;
  /** agents_kv: the KV bucket's writer (kv-latest.ts); null without one. */
  kv: KvLatestStats | null;
}

interface Slot {
  e: SpoolEntry;
  key: string;
  state: 'inflight' | 'retry';
  gen: number;
  attempts: number;
  /** performance.now(): the retry's earliest moment, or the PubAck's deadline in flight (never the wall clock, which steps). */
  notBefore: number;
  sentAt: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A core message published and not yet confirmed by a flush. */
interface Unconfirmed {
  e: SpoolEntry;
  idx: number;
  sentAt: number;
}
/** Records not yet handed to NATS under which the publisher counts as keeping up. */
const KEEP_UP_RECORDS = 20_000;
/**
 * How long one turn of the core pump publishes before it yields (the time is read every 64 messages).
 * It was 5,000 messages a turn: 30–100 ms of a held event loop, turn after turn, all through a replay.
 */
const PUMP_SLICE_MS = 4;
/** How often a pump held back by a slow server (WRITE_AHEAD_BYTES unsent) looks again. */
const WRITE_AHEAD_POLL_MS = 10;
/** What is said when a connection is closed as broken (onPeerFault). */
const PEER_FAULT_MSG: Record<PeerFault['kind'], string> = {
  unread: 'NATS server does not read what the tap sends: connection dropped, connecting again (events wait in the spool)',
  pings: 'NATS server sends PINGs without pause: connection dropped, connecting again (events wait in the spool)',
  refusals: 'NATS server sends more refusals (-ERR) than the tap sent commands: connection dropped, connecting again (events wait in the spool)',
  'server-error': 'NATS server error: connection ended, connecting again (events wait in the spool)',
};
const STREAM_NOT_FOUND = 10059;
/** JetStream refusing a number of replicas: no suitable peers (10005), insufficient resources (10023), not clustered (10074). */
const REPLICAS_REFUSED = new Set([10005, 10023, 10074]);
/** JetStream's "message size exceeds maximum allowed": the stream's max_msg_size is below the message. */
const MESSAGE_TOO_LARGE = 10054;

/**
 * What to allow, for a publish the server refused to the tap's user: the KV bucket's subjects
 * (`$KV.<bucket>.>`, agents_kv) for a KV put, else the event subjects (`<prefix>.>`).
 */
export function publishPermissionHint(subject: string, prefix: string): string {
  const kv = /^\$KV\.([^.]+)\./.exec(subject);
  return kv
    ? `allow the user to publish to $KV.${kv[1]}.> (the KV bucket of agents_kv)`
    : `allow the user to publish to ${prefix}.> (the subject prefix)`;
}

export function kvStreamConfig(bucket: string, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: `KV_${bucket}`, subjects: [`$KV.${bucket}.>`], max_msgs_per_subject: 1, discard: DiscardPolicy.New,
    allow_rollup_hdrs: true, deny_delete: true, allow_direct: true, storage: StorageType.File,
    num_replicas: replicas, duplicate_window: nanos(120_000),
  };
}

/** A size limit from a server's JSON (any shape): a positive whole number, else null (none, -1: unlimited). */
function positiveInt(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null;
}

/** Servers as a log line shows them: masked, each clipped, at most eight (a hostile server may announce thousands). */
function listed(urls: string[]): string[] {
  const shown = urls.slice(0, 8).map((u) => clip(maskUrl(u), 100));
  return urls.length > 8 ? [...shown, `… ${urls.length - 8} more`] : shown;
}

export class Delivery {
  readonly spool: Spool;
  private readonly o: DeliveryOptions;
  private readonly log?: Logger;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private up = false;
  private gen = 0;
  private closing = false;
  private loop: Promise<void> | null = null;
  /** The connection attempt in flight, if any (abandoned by close()). */
  private attempt: PendingConnection | null = null;
  /** Ends the wait between attempts. */
  private wake: (() => void) | null = null;
  /** Read from the spool, not sent yet (or to resend first, in core mode), in seq order. */
  private pending: SpoolEntry[] = [];
  // JetStream state
  private readonly slots = new Map<number, Slot>();
  private readonly busy = new Set<string>();
  /** Slots not yet released: keepalive batches, and agents' messages (see crosses()). */
  private batchesOut = 0;
  private agentsOut = 0;
  /** Slots waiting to be resent. */
  private readonly retries = new Set<Slot>();
  private inflight = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private streamReady = false;
  private kvReady = false;
  /** The JetStream API said the KV bucket is not found: no put until it is made again (ensureStreams). */
  private kvGone = false;
  /** agents_kv: each agent's latest status, put apart from the stream's order (kv-latest.ts). */
  private readonly kv: KvLatest | null = null;
  // core state
  private unconfirmed: Unconfirmed[] = [];
  private uHead = 0;
  private pubIdx = 0;
  /** Messages published since the last flush: the last `sinceFlush` of `unconfirmed`. */
  private sinceFlush = 0;
  /** The flush's backstop, armed while messages wait for one (none while nothing does: an idle tap sleeps). */
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly sharedHeaders = new SharedHeaders();
  // pump scheduling
  private pumpScheduled = false;
  /** Seq ranges written while NATS was away (for `replayed`). */
  private downRanges: [number, number][] = [];
  /** Publish → acknowledgement, and capture → publish (timing.ts). */
  private readonly ackTimes = new RecentTimes();
  private readonly delayTimes = new RecentTimes();
  private readonly captured = new CaptureTimes();
  /** When messages were spooled: the age of the oldest unacknowledged one. */
  private readonly spooledAt = new SpoolAges(performance.now());
  private shedReported: Record<MessageKind, number> = { status: 0, keepalive: 0, alert: 0, tap: 0 };
  private shedTimer: NodeJS.Timeout | null = null;
  /** The spool's faults are said the first time, then at most once a minute each (the counters keep the count). */
  private readonly said = new LogLimiter(60_000);
  private saidDiskFull = false;
  /** Reading the spool failed: consecutive failures, and the timer of the next try (no read while it is set). */
  private readFailures = 0;
  private readTimer: NodeJS.Timeout | null = null;
  private readonly c = { published: 0, acknowledged: 0, replayed: 0, resent: 0, duplicates: 0, failures: 0, cycles: 0, rejected: 0, denied: 0 };
  /** Passwords and tokens of `servers`: never in a log line, whatever an error text carries. */
  private readonly secrets: string[];

  constructor(opts: DeliveryOptions) {
    this.o = opts;
    this.log = opts.log;
    this.secrets = urlSecrets(opts.servers);
    this.spool = opts.spool instanceof Spool
      ? opts.spool
      // The prefix's records only (a record under another is never published: spool.ts's subjectPrefix).
      : Spool.open({ subjectPrefix: opts.prefix, ...opts.spool, onIoError: (e, op) => this.spoolIoError(e, op), onDisk: (full, st) => this.spoolDisk(full, st) });
    if (opts.spool instanceof Spool) {
      this.spool.onIoError ??= (e, op) => this.spoolIoError(e, op);
      this.spool.onDisk ??= (full, st) => this.spoolDisk(full, st);
    }
    const st = this.spool.stats();
    this.shedReported = { ...st.shed };
    if (st.torn || st.corrupt) this.log?.warn({ torn: st.torn, corrupt: st.corrupt }, 'spool: damaged records dropped at open');
    if (st.foreign) {
      this.log?.warn({ records: st.foreign, was: st.foreignPrefix, prefix: opts.spool instanceof Spool ? undefined : opts.spool.subjectPrefix ?? opts.prefix },
        'spool: records spooled under another subject prefix (subject_prefix changed since): dropped, not published outside the prefix');
    }
    if (st.records) this.log?.info({ records: st.records, bytes: st.bytes }, 'spool: replaying what an earlier run left');
    if (opts.mode === 'jetstream' && opts.kvBucket) this.kv = this.openKv(opts.kvBucket);
    else if (this.spool.hasSide(KV_PENDING)) {
      // agents_kv turned off since: put once it is on again, these would be older than the statuses since.
      this.log?.info({ file: KV_PENDING }, 'agents_kv is off: the KV bucket values an earlier run saved are dropped');
      this.spool.replaceSide(KV_PENDING, '').catch(() => { /* tried again at the next start */ });
    }
  }

  /** The KV bucket's writer, with what an earlier run left in `kv.pending`. */
  private openKv(bucket: string): KvLatest {
    const kv = new KvLatest({
      put: (agent, body) => this.kvPut(bucket, agent, body),
      write: (how, data) => (how === 'append' ? this.spool.appendSide(KV_PENDING, data) : this.spool.replaceSide(KV_PENDING, data)),
      onPutFailed: (err) => {
        // Not in `failures` (the stream's publishes): kv.failures counts them; the reason is the last one's all the same.
        const why = this.shown((err as Error)?.message ?? String(err));
        this.failedWhy(why);
        this.sayLimited(`kv-failed ${clip(why, 200)}`, 'warn', { err: why, bucket },
          'KV put failed: retrying (the agent\'s latest status waits for the bucket; delivery goes on)');
      },
      onDropped: (err, agent) => {
        const why = this.shown((err as Error).message);
        this.sayLimited('kv-dropped', 'error', { err: why, bucket, agent },
          'KV put refused for the value\'s size: dropped (the bucket keeps the agent\'s older status until a newer one)');
      },
      onSaveFailed: (err) => {
        const e = err as NodeJS.ErrnoException;
        this.sayLimited('kv-save', 'error', { err: e?.code ?? this.shown(e?.message ?? String(err)) },
          `spool: cannot save ${KV_PENDING} (the statuses waiting for the KV bucket): their records stay in the spool until their puts; retrying`);
      },
    });
    // Synced before it is trusted: a run killed in an append leaves lines the disk may not have yet, and
    // records released by them would be lost to a power loss that took the lines (found by review).
    const found = this.spool.readSide(KV_PENDING, KV_PENDING_MAX_FILE, { sync: true });
    if (found !== null) {
      // Only what the tap writes there is put with its credentials: each agent's status change (kv-latest.ts).
      const prefix = this.o.prefix ?? 'wazuh';
      const parsed = parsePending(found.toString('utf8'), {
        accept: (agent, body) => statusVerdict(agent, body, prefix, this.o.encryption), maxAgents: MAX_AGENTS,
      });
      // A torn last line (a crash in an append) is one; more is damage.
      if (parsed.bad) this.log?.warn({ file: KV_PENDING, bad_lines: parsed.bad }, 'spool: lines of the KV values an earlier run saved are torn or damaged: skipped');
      if (parsed.refused || parsed.beyond) {
        this.log?.warn({ file: KV_PENDING, refused: parsed.refused, beyond: parsed.beyond, max_value_bytes: MAX_VALUE_BYTES, max_agents: MAX_AGENTS },
          'spool: KV values an earlier run saved that are no status change of their agent, or larger than the tap writes (refused), or of more agents than it keeps (beyond): skipped');
      }
      // Its own values, most likely, but no longer readable as they are: put, they would go in clear, or
      // sealed under a key the consumers may no longer have. The bucket keeps older statuses meanwhile.
      if (parsed.unreadable) {
        this.log?.warn({ file: KV_PENDING, unreadable: parsed.unreadable, encrypt_messages: this.o.encryption ? 'on' : 'off' },
          'spool: KV values an earlier run saved under another encrypt_messages setting or key (or damaged): not put; the bucket keeps their agents\' older statuses until their next change');
      }
      if (parsed.values.length) this.log?.info({ agents: parsed.values.length }, 'KV bucket: putting the latest statuses an earlier run could not');
      // After a power loss the segments (synced every second) and the cursor may end before seqs the file
      // names: a new record reusing one would be taken for older than the file's value of its agent.
      this.spool.reserveSeqs(parsed.maxSeq);
      kv.load(parsed, found.length);
    }
    return kv;
  }

  /** One KV put: stored, or a rejection saying why (no responders: the bucket has no leader, or is gone). */
  private kvPut(bucket: string, agent: string, body: Uint8Array): Promise<void> {
    const js = this.js;
    if (!js || !this.up) return Promise.reject(new Error('not connected'));
    return js.publish(`$KV.${bucket}.${agent}`, body, { timeout: this.o.ackTimeoutMs ?? 5000 }).then(() => {}, (err) => {
      // Refused for its size: no retry can store it (kv-latest.ts drops it).
      if (tooLargeForKv(err)) throw new KvValueRefused(`KV put: ${(err as Error).message}`);
      // nats.js calls "no responders" JetStreamNotEnabled: the bucket has no leader (its server down, an election), or is gone.
      if ((err as Error)?.name === 'JetStreamNotEnabled') {
        this.checkGone(true);
        throw new Error(`KV put: no responders: the KV bucket KV_${bucket} has no leader (an election, a server down) or is gone`);
      }
      throw new Error(`KV put: ${(err as Error)?.message ?? String(err)}`);
    });
  }

  /** A spool write failed: said the first time, then at most once a minute (the counters keep the count). */
  private spoolIoError(e: NodeJS.ErrnoException, op: string): void {
    if (!this.said.allow('spool-write')) return;
    const st = this.spool?.stats();
    const why = ioCause(e.code);
    this.log?.error({ err: e.code ?? e.message, op, write_errors: st?.writeErrors, spool_bytes: st?.bytes },
      op === 'ack'
        ? `spool: cannot save the ack cursor (${why}): retrying; draining goes on`
        : `spool: cannot write (${why}): new events are refused (counted) until it can; draining goes on`);
  }

  /** The disk limits the spool (or no longer does): said when it changes, at most once a minute when it flaps. */
  private spoolDisk(full: boolean, st: { boundBytes: number; freeBytes: number }): void {
    if (full && !this.saidDiskFull && this.said.allow('spool-disk')) {
      this.saidDiskFull = true;
      this.log?.error({ bound_bytes: st.boundBytes, free_bytes: st.freeBytes },
        'spool: the disk is full: new events are refused (keepalives first, counted) until there is room; draining goes on');
    } else if (!full && this.saidDiskFull) {
      this.saidDiskFull = false;
      this.log?.info({ free_bytes: st.freeBytes }, 'spool: the disk has room again');
    }
  }

  /** Start connecting and draining (returns at once; NATS may be away). */
  start(): void {
    if (this.loop) return;
    this.loop = this.connectLoop();
    if (this.o.onShed) {
      this.shedTimer = setInterval(() => this.reportShed(), this.o.shedReportMs ?? 5000);
      this.shedTimer.unref();
    }
  }

  get connected(): boolean {
    return this.up;
  }

  /** Spool one message; false when it was shed (the spool is full). Never waits for NATS. */
  enqueue(m: DeliveryMessage): boolean {
    return this.enqueueMany([m])[0];
  }

  /** `callerKeeps`: what does not fit is kept by the caller to offer again (not shed; see Spool.append). */
  enqueueMany(ms: DeliveryMessage[], callerKeeps = false): boolean[] {
    // Connected and keeping up: keepalives wait in memory only (Spool.append); away or behind: on disk.
    const inMemory = this.up && this.spool.unsent < KEEP_UP_RECORDS;
    const seqs = this.spool.append(ms, callerKeeps, inMemory);
    const first = seqs.find((s) => s > 0);
    if (first !== undefined) this.spooledAt.note(first, performance.now());
    for (let i = 0; i < ms.length; i++) {
      const at = ms[i].capturedMs;
      if (at !== undefined && seqs[i] > 0) this.captured.note(seqs[i], at);
    }
    if (!this.up) {
      for (const s of seqs) if (s) this.markDown(s);
    }
    this.schedulePump(true);
    return seqs.map((s) => s > 0);
  }

  private markDown(seq: number): void {
    const last = this.downRanges[this.downRanges.length - 1];
    if (last && last[1] === seq - 1) last[1] = seq;
    else this.downRanges.push([seq, seq]);
  }

  private wasDelayed(e: SpoolEntry): boolean {
    if (e.recovered) return true;
    while (this.downRanges.length && this.downRanges[0][1] < this.spool.ackedThrough) this.downRanges.shift();
    if (!this.downRanges.length) return false;
    return this.downRanges.some(([a, b]) => e.seq >= a && e.seq <= b);
  }

  // ---------------------------------------------------------------- connection

  /** An error text as it may be logged: URLs masked, the servers' passwords and tokens replaced. */
  private shown(text: string): string {
    return maskSecrets(text, this.secrets);
  }

  private async connectLoop(): Promise<void> {
    const delay = this.o.reconnectDelayMs ?? 2000;
    const timeout = this.o.connectTimeoutMs ?? 5000;
    let lastError = '';
    let failures = 0;
    while (!this.closing) {
      let nc: NatsConnection;
      // No waitOnFirstConnect: a refused first connection (TLS, authorization, nobody
      // listening) comes back at once with its reason, which is logged; this loop retries.
      // nats.js tries each server (each of its addresses) once, `timeout` each at most.
      // The configured servers, and those a cluster announced (discover_servers): a new cycle that knew
      // only server_url stayed away while the others of the cluster were up.
      const servers = this.discovered.size ? [...this.o.servers, ...this.discovered] : this.o.servers;
      const attempt = connectNats({
        name: this.o.name ?? 'wazuh-nats-tap',
        // A half-open connection (the server stopped answering) is found within 3 pings, not nats.js's 4 minutes.
        pingInterval: 20_000, maxPingOut: 3,
        ...this.o.connectOptions,
        servers,
        timeout,
        maxReconnectAttempts: this.o.maxReconnects ?? 10,
        reconnectTimeWait: delay,
        reconnectJitter: Math.min(100, delay / 4),
      }, timeout * (2 * servers.length + 1), { onFault: (f) => this.onPeerFault(f) });
      this.attempt = attempt;
      try {
        nc = await attempt.connection;
      } catch (e) {
        if (this.closing) break;
        this.c.cycles++;
        failures++;
        const why = errorText(e);
        // The same reason is logged once, then every 30th attempt: no flood while NATS is away.
        if (why !== lastError || failures % 30 === 0) {
          const hint = this.o.diagnose?.() ?? undefined;
          this.log?.warn({ err: this.shown(why), hint, servers: this.o.servers.map(maskUrl), attempts: failures },
            'cannot connect to NATS: retrying (events wait in the spool)');
          lastError = why;
        }
        await this.pause(delay);
        continue;
      } finally {
        this.attempt = null;
      }
      lastError = '';
      failures = 0;
      if (this.closing) {
        await within(nc.close().catch(() => {}), 1000);
        break;
      }
      this.nc = nc;
      this.js = this.o.mode === 'jetstream' ? jetstream(nc, { timeout: this.o.ackTimeoutMs ?? 5000 }) : null;
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') this.onDown('disconnect');
          else if (s.type === 'reconnect') this.onUp();
          else if (s.type === 'update') {
            this.onServersAnnounced(s.added ?? [], s.deleted ?? []);
            this.remember(s.added ?? []);
          }
          else if (s.type === 'error') this.onServerError(s.error);
        }
      })().catch(() => {});
      this.onUp();
      await nc.closed();
      this.onDown('closed');
      this.nc = null;
      this.js = null;
      if (this.closing) break;
      this.c.cycles++;
      this.log?.warn('NATS reconnect cycle exhausted: a new one follows');
      await this.pause(delay);
    }
  }

  /**
   * The cluster announced servers (INFO `connect_urls`, `discover_servers` yes): said, so that an
   * administrator sees where the tap may connect next — at most once a minute, the lists clipped
   * (a hostile server can announce thousands, again and again).
   */
  private onServersAnnounced(added: string[], deleted: string[]): void {
    if (!added.length && !deleted.length) return; // nats.js reports every INFO, changed or not
    this.sayLimited('servers-announced', 'info', { added: listed(added), deleted: listed(deleted) },
      'NATS servers announced by the cluster (discover_servers)');
  }

  /**
   * The servers a cluster announced (`connect_urls`, discover_servers yes), beyond the configured ones:
   * the next reconnect cycle tries them too. Kept when a server no longer announces them (it announced
   * their loss as they died, and they come back), the most recent last, at most MAX_DISCOVERED (a
   * hostile server may announce thousands).
   */
  private readonly discovered = new Set<string>();

  private remember(urls: readonly unknown[]): void {
    if (this.o.connectOptions?.ignoreClusterUpdates) return;
    for (const u of urls) {
      if (typeof u !== 'string' || !u || u.length > 300 || this.configuredHosts.has(hostPort(u))) continue;
      this.discovered.delete(u);
      this.discovered.add(u);
      if (this.discovered.size > MAX_DISCOVERED) this.discovered.delete(this.discovered.values().next().value as string);
    }
  }

  /** host:port of each configured server (what a cluster announces is in that form). */
  private get configuredHosts(): Set<string> {
    return (this.configuredHostsCache ??= new Set(this.o.servers.map(hostPort)));
  }
  private configuredHostsCache: Set<string> | null = null;

  /** Log `msg` at most once a minute per `key`, with how many lines were held back since (`held`). */
  private sayLimited(key: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
    const said = this.said.allow(key);
    if (said) this.log?.[level]({ ...fields, held: said.held || undefined }, msg);
  }

  /**
   * The server refused something the tap did for want of permission (-ERR 'Permissions Violation
   * for Publish to "…"'). Core NATS says nothing else: the flush that follows is answered, and the
   * messages refused would count as delivered — lost without a word. So it is counted (`denied`)
   * and said, once a minute at most (the subjects come from the server: clipped).
   */
  private onServerError(err: unknown): void {
    const e = err as { name?: unknown; operation?: unknown; subject?: unknown } | null;
    if (!e || e.name !== 'PermissionViolationError') return;
    const operation = e.operation === 'subscription' ? 'subscription' : 'publish';
    // JetStream's API: the best-effort look at the stream's limits, or a stream the tap creates (which
    // says its own failure); a user allowed to publish events and nothing else is a setup that works.
    if (operation === 'publish' && String(e.subject ?? '').startsWith('$JS.API.')) return;
    this.c.denied++;
    this.lastDenied = `${operation} ${clip(String(e.subject ?? ''), 120)}`;
    const fields = { operation, subject: clip(String(e.subject ?? ''), 120), denied: this.c.denied };
    // A refused KV put and a refused event are two fixes: each is said, once a minute at most.
    const kv = operation === 'publish' && String(e.subject ?? '').startsWith('$KV.');
    this.sayLimited(`denied-${operation}${kv ? '-kv' : ''}`, 'error', fields, operation === 'subscription'
      ? 'NATS refused the tap a subscription (permissions violation): JetStream acknowledgements cannot arrive, so every message is retried; allow the user to subscribe to _INBOX.>'
      : `NATS refused a publish of the tap (permissions violation): ${this.o.mode === 'core'
        ? 'with core NATS those messages are lost'
        : 'the message waits and is retried until allowed'}; ${publishPermissionHint(String(e.subject ?? ''), this.o.prefix ?? 'wazuh')}`);
  }

  /**
   * A connection the transport closed as broken (nats-connect.ts, nats-parser.ts): the server does not
   * read, floods PINGs, sends more refusals than the tap sent commands, or sent an error after which
   * nats-server closes the connection. nats.js connects again after reconnect_delay; said once a minute
   * at most for each reason (a hostile server does it at every connection).
   */
  private onPeerFault(f: PeerFault): void {
    // An error at CONNECT (authorization) fails the attempt: the connect loop says it, with its reason.
    if (f.kind === 'server-error' && !f.established) return;
    const server = this.nc ? maskUrl(this.nc.getServer()) : undefined;
    const fields = { server, ...f.detail, err: f.detail.err === undefined ? undefined : this.shown(String(f.detail.err)) };
    this.sayLimited(`peer-${f.kind}`, f.kind === 'server-error' ? 'warn' : 'error', fields, PEER_FAULT_MSG[f.kind]);
  }

  /** The last refusal: operation and subject (status). */
  private lastDenied: string | null = null;

  /** Wait between attempts; close() cuts it short (a `reconnect_delay` of minutes must not hold a stop). */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /**
   * The largest message (headers and payload) NATS takes: the `max_payload` of the server last
   * connected to (its INFO) and, with JetStream, the stream's `max_msg_size` when known — or null
   * before any connection. Kept while NATS is away: what is made meanwhile is made for the server
   * that comes back, most likely the same.
   */
  get maxPayload(): number | null {
    const s = this.serverMaxPayload;
    const m = this.streamMaxMsg;
    return s === null ? m : m === null ? s : Math.min(s, m);
  }

  private serverMaxPayload: number | null = null;
  /** The stream's own bound (`max_msg_size`), when it has one and the tap may read the stream's info. */
  private streamMaxMsg: number | null = null;

  /**
   * Best effort: a publish-only user may not read the stream's info; a message over its bound is
   * then refused by the stream and dropped (rejectedByStream) rather than fitted beforehand.
   */
  private async learnStreamLimit(gen: number): Promise<void> {
    const name = this.o.stream?.name;
    if (!name) return;
    try {
      const jsm = await jetstreamManager(this.nc!, { timeout: 5000 });
      const m = (await jsm.streams.info(name)).config.max_msg_size;
      if (this.gen !== gen) return;
      this.streamMaxMsg = positiveInt(m);
    } catch {
      // not allowed, not there yet (created later), or NATS went away: the PubAck says it if it matters
    }
  }

  private onUp(): void {
    if (this.up || !this.nc || this.nc.isClosed()) return;
    this.up = true;
    this.gen++;
    this.serverMaxPayload = positiveInt(this.nc.info?.max_payload) ?? this.serverMaxPayload;
    // What the server announced at connect (its cluster's other servers), where the tap may go next.
    const urls: unknown = this.o.connectOptions?.ignoreClusterUpdates ? [] : this.nc.info?.connect_urls; // the server's JSON: any shape
    const announced = Array.isArray(urls) ? urls.filter((u): u is string => typeof u === 'string') : [];
    this.remember(announced);
    this.log?.info({ server: maskUrl(this.nc.getServer()), announced: announced.length ? listed(announced) : undefined, spooled: this.spool.stats().records },
      'NATS connected: draining the spool');
    if (this.o.mode === 'jetstream') void this.learnStreamLimit(this.gen);
    if (this.o.mode === 'jetstream' && ((!this.streamReady && this.o.stream?.create) || (this.o.kvBucket && !this.kvReady))) void this.ensureStreams(this.gen);
    else this.streamReady = true;
    // Puts go from the connection on, as a KV put always did: the bucket looked up through the JetStream
    // API first held them for good for a user allowed $KV.<bucket>.> but not $JS.API.> (found by review).
    this.kv?.setReady(!this.kvGone);
    this.schedulePump();
  }

  private onDown(why: string): void {
    if (!this.up) return;
    this.up = false;
    this.gen++;
    this.kv?.setReady(false);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.o.mode === 'core') {
      // Everything not confirmed by a flush is resent, oldest first.
      const back = this.unconfirmed.slice(this.uHead).map((u) => u.e);
      this.unconfirmed = [];
      this.uHead = 0;
      this.sinceFlush = 0;
      this.pending = back.concat(this.pending);
      this.c.resent += back.length;
    } else {
      for (const s of this.slots.values()) {
        if (s.state === 'inflight') {
          s.state = 'retry';
          s.notBefore = 0;
          this.inflight--;
          this.retries.add(s);
        }
      }
    }
    this.log?.warn({ why, spooled: this.spool.stats().records }, 'NATS away: spooling');
  }

  /** A look at whether the stream (or the KV bucket) is gone is under way, and when the last one began. */
  private checking = { stream: false, kv: false };
  private checkedAt = { stream: -Infinity, kv: -Infinity };

  /**
   * A publish found nobody to answer (503, no responders) for the stream or the KV bucket, where the tap
   * is the one that makes them (`create_stream`, `agents_kv`). Most often a leader election or a server
   * down — the message is retried, and nothing else waits for it. Whether it is gone (deleted while the
   * tap ran: an administrator's reset, a JetStream store lost) is asked of the JetStream API, off the
   * publishing path, one request at a time and at most every second; only its answer "not found"
   * (10059) makes it again (streamGone). Before, any no-responders stopped every message until the API
   * answered — for as long as a server holding a 1-replica KV bucket stayed down.
   */
  private checkGone(kv: boolean): void {
    const which = kv ? 'kv' : 'stream';
    if (!this.up || this.checking[which] || (kv ? !this.o.kvBucket || !this.kvReady : !this.o.stream?.create || !this.streamReady)) return;
    const now = performance.now();
    if (now - this.checkedAt[which] < 1000) return;
    this.checking[which] = true;
    this.checkedAt[which] = now;
    const gen = this.gen;
    const name = kv ? `KV_${this.o.kvBucket}` : this.o.stream!.name;
    void (async () => {
      try {
        const jsm = await jetstreamManager(this.nc!, { timeout: 5000 });
        await jsm.streams.info(name);
      } catch (e) {
        if (gen === this.gen && e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND) this.streamGone(kv);
        // else: no answer, no leader (an election): the retries go on, nothing is made
      } finally {
        this.checking[which] = false;
      }
    })();
  }

  /**
   * The JetStream API said the stream (or the KV bucket) the tap makes is not found: made again as at
   * connect, once. A stream gone stops the pump until it is made (every message would only fail); a KV
   * bucket gone holds only the status changes' slots. Before, they were retried for ever against a
   * stream nobody would make again, until the tap reconnected.
   */
  private streamGone(kv: boolean): void {
    if (!this.up || (kv ? !this.o.kvBucket || !this.kvReady : !this.o.stream?.create || !this.streamReady)) return;
    if (kv) {
      this.kvReady = false;
      this.kvGone = true;
      this.kv?.setReady(false);
    } else this.streamReady = false;
    // Once a minute at most: a stream that exists but no longer takes the tap's subjects (its subjects
    // edited) answers 503 too, and is found there again at every retry.
    this.sayLimited(`stream-gone-${kv}`, 'warn', { stream: kv ? `KV_${this.o.kvBucket}` : this.o.stream!.name },
      'the JetStream stream is gone (not found): making it again');
    void this.ensureStreams(this.gen);
  }

  /**
   * The replicas of what the tap creates: `stream_replicas`, or for `auto` 3 when the server says it
   * is in a cluster (INFO `cluster`) of 3 servers or more (the distinct servers of its `connect_urls`,
   * itself included), else 1.
   */
  private replicasWanted(): { n: number; auto: boolean } {
    const r = this.o.stream?.replicas ?? 'auto';
    if (r !== 'auto') return { n: r, auto: false };
    const info = this.nc?.info as { cluster?: unknown; connect_urls?: unknown } | undefined;
    const urls = Array.isArray(info?.connect_urls) ? new Set(info.connect_urls.filter((u) => typeof u === 'string')) : new Set();
    return { n: typeof info?.cluster === 'string' && info.cluster && urls.size >= 3 ? 3 : 1, auto: true };
  }

  /**
   * Create with the replicas wanted; `auto` falls back to 1 when the cluster cannot hold 3 (no suitable
   * peers, insufficient resources, a server not clustered), said. Returns the replicas made.
   */
  private async addWithReplicas(add: (n: number) => Promise<unknown>): Promise<number> {
    const { n, auto } = this.replicasWanted();
    try {
      await add(n);
      return n;
    } catch (e) {
      if (!(auto && n > 1 && e instanceof JetStreamApiError && REPLICAS_REFUSED.has(e.code))) throw e;
      this.log?.warn({ replicas: n, err: this.shown(e.message) },
        'stream_replicas auto: the cluster cannot hold 3 replicas: made with 1 — a single point of failure (set stream_replicas)');
      await add(1);
      return 1;
    }
  }

  /** Streams already said to have fewer replicas than stream_replicas (said once each). */
  private readonly saidReplicas = new Set<string>();

  /** A stream or KV bucket that exists with fewer replicas than wanted: not changed, said once. */
  private fewerReplicas(name: string, has: number | undefined): void {
    const { n } = this.replicasWanted();
    if (has === undefined || has >= n || this.saidReplicas.has(name)) return;
    this.saidReplicas.add(name);
    this.log?.warn({ stream: name, replicas: has, stream_replicas: n },
      'the stream has fewer replicas than stream_replicas: it is used as it is (not changed); with 1 replica on a cluster, its one server down stops what goes into it');
  }

  /** The connection (gen) whose ensureStreams() runs: one at a time per connection. */
  private ensuringGen = -1;

  /**
   * Make what the tap makes (`create_stream`, `agents_kv`) when it is not found. The pump waits for the
   * stream only (every message would fail without it); the KV bucket is looked at and made without
   * stopping anything — a status change's KV put waits in its own slot meanwhile.
   */
  private async ensureStreams(gen: number): Promise<void> {
    if (this.ensuringGen === gen) return;
    this.ensuringGen = gen;
    try {
      await this.ensureStreamsLoop(gen);
    } finally {
      if (this.ensuringGen === gen) this.ensuringGen = -1;
    }
  }

  private async ensureStreamsLoop(gen: number): Promise<void> {
    const st = this.o.stream;
    if (!st?.create && !this.streamReady) {
      this.streamReady = true;
      this.schedulePump();
    }
    while (this.up && this.gen === gen && !this.closing) {
      try {
        const jsm = await jetstreamManager(this.nc!, { timeout: 5000 });
        if (st?.create && !this.streamReady) {
          const want = nanos(st.duplicateWindowMs ?? 2 * 3600_000);
          try {
            const si = await jsm.streams.info(st.name);
            if (si.config.duplicate_window < want) {
              this.log?.warn({ stream: st.name, duplicate_window_ms: si.config.duplicate_window / 1e6 },
                'the stream\'s duplicate window is shorter than the spool horizon: resends after a long outage may be stored twice');
            }
            this.fewerReplicas(st.name, si.config.num_replicas);
          } catch (e) {
            if (!(e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND)) throw e;
            const replicas = await this.addWithReplicas((n) => jsm.streams.add({
              name: st.name, subjects: st.subjects, storage: StorageType.File, duplicate_window: want, num_replicas: n,
            }));
            this.log?.info({ stream: st.name, subjects: st.subjects, replicas }, 'JetStream stream created');
          }
          this.streamReady = true;
          this.schedulePump();
        }
        if (this.o.kvBucket && !this.kvReady) {
          const name = `KV_${this.o.kvBucket}`;
          try {
            this.fewerReplicas(name, (await jsm.streams.info(name)).config.num_replicas);
          } catch (e) {
            if (!(e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND)) throw e;
            const bucket = this.o.kvBucket;
            const replicas = await this.addWithReplicas((n) => jsm.streams.add(kvStreamConfig(bucket, n)));
            this.log?.info({ bucket, replicas }, 'KV bucket created');
          }
          this.kvReady = true;
          this.kvGone = false;
          this.kv?.setReady(this.up);
        }
        // Found gone meanwhile (streamGone while this loop was at the bucket): another pass.
        if ((!st?.create || this.streamReady) && (!this.o.kvBucket || this.kvReady)) return;
        continue;
      } catch (e) {
        // Tried again every second, said once a minute per reason: a server without JetStream, or a user
        // without the JetStream API, is a setup that stays wrong for hours (it was a line every second).
        const err = this.shown((e as Error).message);
        this.sayLimited(`ensure-stream ${clip(err, 200)}`, 'warn', { err }, 'cannot create the JetStream stream yet: retrying');
        await sleep(1000);
      }
    }
  }

  // ---------------------------------------------------------------- draining

  /**
   * `now`: what was just enqueued goes out at the end of this turn's JavaScript (a microtask), in the
   * same turn of the event loop as the capture's round that made it; from setImmediate, each round
   * cost a second pass of the loop (an epoll_pwait) before its message left. Everything else — a pump
   * that yields after its slice, a retry, a read again — waits for the loop's next check phase, so a
   * replay never holds the loop from I/O.
   */
  private schedulePump(now = false): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    const pump = () => {
      this.pumpScheduled = false;
      if (this.o.mode === 'core') this.pumpCore();
      else this.pumpJs();
    };
    if (now) queueMicrotask(pump);
    else setImmediate(pump);
  }

  private refill(): boolean {
    if (this.pending.length > 0) return true;
    if (this.readTimer) return false; // the read failed: its timer pumps again
    try {
      this.pending = this.spool.read(512);
    } catch (e) {
      if (!isErrno(e)) throw e; // a bug, not the system
      this.readFailed(e);
      return false;
    }
    if (this.readFailures > 0) {
      this.log?.info({ failures: this.readFailures, read_errors: this.spool.stats().readErrors }, 'spool: reading again: draining goes on');
      this.readFailures = 0;
    }
    return this.pending.length > 0;
  }

  /**
   * The spool could not be read (out of descriptors: EMFILE, ENFILE; an I/O error): nothing is lost
   * (the records stay in the spool), the drain tries again after 100 ms, doubling up to 5 s. Said the
   * first time, then at most once a minute (the spool counts every failure: `readErrors`).
   */
  private readFailed(e: NodeJS.ErrnoException): void {
    this.readFailures++;
    const wait = backoffMs(this.readFailures - 1);
    if (!this.closing) { // refill() reads nothing while this timer is set
      this.readTimer = setTimeout(() => { this.readTimer = null; this.schedulePump(); }, wait);
      this.readTimer.unref();
    }
    if (!this.said.allow('spool-read')) return;
    this.log?.error({ err: e.code ?? e.message, read_errors: this.spool.stats().readErrors, retry_ms: wait },
      `spool: cannot read (${ioCause(e.code)}): retrying; events wait in the spool`);
  }

  private pumpCore(): void {
    const nc = this.nc;
    if (!this.up || !nc) return;
    const window = this.o.coreWindow ?? 20_000;
    const every = this.o.flushEvery ?? 2000;
    let n = 0;
    // A turn of the event loop publishes for about PUMP_SLICE_MS, then lets the rest of the tap run (the
    // capture's rounds, timers, the control socket): a replay of a large spool is many turns, not one hold.
    const end = performance.now() + PUMP_SLICE_MS;
    let more = false;
    while (this.unconfirmed.length - this.uHead < window && this.refill()) {
      if ((n & 63) === 63 && performance.now() >= end) {
        more = true;
        break;
      }
      if (this.writeAheadFull(nc)) break;
      const e = this.pending.shift()!;
      try {
        nc.publish(e.subject, e.body, { headers: this.sharedHdrs(e) });
      } catch (err) {
        if (this.rejectIfTooLarge(e, err) || this.rejectIfRefused(e, err)) continue;
        this.pending.unshift(e);
        this.c.failures++;
        this.failedWhy(this.shown((err as Error).message));
        this.log?.warn({ err: this.shown((err as Error).message) }, 'publish failed');
        this.flushSoon(n > 0); // those published before it are confirmed all the same
        return;
      }
      this.c.published++;
      this.published(e);
      this.unconfirmed.push({ e, idx: ++this.pubIdx, sentAt: performance.now() });
      n++;
      if (++this.sinceFlush >= every) this.coreFlush();
    }
    this.flushSoon(n > 0);
    if (more) this.schedulePump();
  }

  /**
   * After a turn of the core pump: the flush's PING rides in the same socket write as the turn's
   * messages (`published`) once the oldest unflushed one has waited an interval — at any rate above a
   * message an interval, no wake-up of its own; the timer, at twice the interval, is for when no
   * message comes to carry it. A timer every interval woke an idle tap 50 times a second, and a tap
   * at 200 keepalives/s for a quarter of its wake-ups.
   */
  private flushSoon(published: boolean): void {
    if (this.sinceFlush === 0) return;
    const interval = this.o.flushIntervalMs ?? 20;
    const oldest = this.unconfirmed[this.unconfirmed.length - this.sinceFlush];
    if (published && performance.now() - oldest.sentAt >= interval) this.coreFlush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        if (this.sinceFlush > 0) this.coreFlush();
      }, 2 * interval);
    }
  }

  private coreFlush(): void {
    const nc = this.nc;
    if (!nc || !this.up) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.sinceFlush = 0;
    const mark = this.pubIdx;
    const gen = this.gen;
    nc.flush().then(() => {
      if (gen !== this.gen) return;
      const now = performance.now();
      while (this.uHead < this.unconfirmed.length && this.unconfirmed[this.uHead].idx <= mark) {
        const u = this.unconfirmed[this.uHead];
        // Let go of the entry (and its body) now, not when the array is compacted 4,096 later: kept
        // seconds, every published keepalive batch outlived the young generation and waited there.
        this.unconfirmed[this.uHead++] = undefined as unknown as Unconfirmed; // as the spool's mem: never read below uHead
        this.acked(u.e, now - u.sentAt);
      }
      if (this.uHead > 4096 && this.uHead * 2 > this.unconfirmed.length) {
        this.unconfirmed = this.unconfirmed.slice(this.uHead);
        this.uHead = 0;
      }
      this.schedulePump();
    }, () => { /* disconnected: onDown resends */ });
  }

  private pumpJs(): void {
    const js = this.js;
    if (!this.up || !js || !this.streamReady) return;
    const window = this.o.window ?? 256;
    const now = performance.now();
    // Retries first (each holds its agent's place).
    let nextRetry = Infinity;
    let first: Slot | null = null;
    for (const s of this.retries) {
      if (this.inflight >= window || this.writeAheadFull(this.nc!)) break;
      if (s.notBefore > now) {
        if (s.notBefore < nextRetry) nextRetry = s.notBefore;
        if (first === null || s.notBefore < first.notBefore) first = s;
        continue;
      }
      this.retries.delete(s);
      this.sendJs(s);
    }
    // Every retry backing off (JetStream away, an election of the stream): the first one goes ahead
    // every CANARY_MS: once it is stored, the others go at once (resumeRetries) — they waited up to
    // 5 s more after JetStream was back, and the head of the line with them.
    if (first !== null && first.notBefore - now > CANARY_MS && this.inflight < window) {
      if (now - this.canaryAt >= CANARY_MS) {
        this.canaryAt = now;
        this.retries.delete(first);
        this.sendJs(first);
        nextRetry = Infinity;
        for (const s of this.retries) if (s.notBefore < nextRetry) nextRetry = s.notBefore;
      }
      nextRetry = Math.min(nextRetry, this.canaryAt + CANARY_MS);
    }
    if (nextRetry < Infinity && !this.retryTimer) {
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.schedulePump(); }, Math.max(1, nextRetry - now));
    }
    // New records, oldest first; one in flight per agent (head of line waits). Setting a busy agent's
    // records aside so the others go on was tried and taken back: batches chained through their agents
    // until little went, and acknowledgements ran past the spool's cursor (a restart past the duplicate
    // window stores them twice). What keeps one server's loss from stopping delivery is the replicas
    // (stream_replicas auto: 3 on a cluster); the KV bucket's puts hold nothing here (kv-latest.ts).
    while (this.inflight < window && this.refill()) {
      if (this.writeAheadFull(this.nc!)) break;
      const e = this.pending[0];
      const key = orderKey(e);
      if (this.busy.has(key) || this.crosses(e, key)) break;
      this.pending.shift();
      this.newSlot(e, key);
    }
  }


  /**
   * The socket holds WRITE_AHEAD_BYTES or more not yet sent: the server reads slower than the spool is
   * replayed. The pump waits (looking again every WRITE_AHEAD_POLL_MS) rather than pile the spool up in
   * memory; what is unsent is bounded (nats-connect.ts), and a server that reads is never cut off for it.
   */
  private writeAheadFull(nc: NatsConnection): boolean {
    if (unsentBytes(nc) < WRITE_AHEAD_BYTES) return false;
    if (!this.writeAheadTimer) {
      this.writeAheadTimer = setTimeout(() => { this.writeAheadTimer = null; this.schedulePump(); }, WRITE_AHEAD_POLL_MS);
      this.writeAheadTimer.unref();
    }
    return true;
  }

  private writeAheadTimer: NodeJS.Timeout | null = null;

  private newSlot(e: SpoolEntry, key: string): void {
    this.busy.add(key);
    this.counted(key, 1);
    const s: Slot = { e, key, state: 'retry', gen: 0, attempts: 0, notBefore: 0, sentAt: 0 };
    this.slots.set(e.seq, s);
    this.sendJs(s);
  }

  /**
   * JetStream publish without a request per message: the message carries a reply subject
   * on one inbox subscription (`<inbox>.<seq>`), the PubAck comes back there, and one sweep
   * times out what waited too long. Same wire protocol as js.publish().
   */
  private sendJs(s: Slot): void {
    const nc = this.nc!;
    if (!this.ackInbox) this.openAckInbox(nc);
    s.state = 'inflight';
    s.gen = this.gen;
    s.sentAt = performance.now();
    s.notBefore = s.sentAt + (this.o.ackTimeoutMs ?? 5000); // the deadline while in flight
    this.inflight++;
    if (s.attempts++ > 0) this.c.resent++;
    else this.published(s.e);
    this.c.published++;
    try {
      const h = headersOf(s.e.headers);
      h.set('Nats-Msg-Id', s.e.eventId);
      nc.publish(s.e.subject, s.e.body, { headers: h, reply: `${this.ackInbox}.${s.e.seq}` });
    } catch (err) {
      if (this.rejectIfTooLarge(s.e, err) || this.rejectIfRefused(s.e, err)) {
        this.c.published--;
        this.release(s);
        this.schedulePump();
        return;
      }
      this.jsFailed(s, s.gen, err as Error);
    }
  }

  private ackInbox: string | null = null;
  private ackTimer: NodeJS.Timeout | null = null;

  private openAckInbox(nc: NatsConnection): void {
    const inbox = createInbox();
    this.ackInbox = inbox;
    nc.subscribe(`${inbox}.*`, {
      callback: (err, m) => {
        // A refused subscription (no permission on _INBOX.>) calls this with an error and no message:
        // reading it would throw inside nats.js's parser, which then closes the connection as a
        // protocol error, over and over, and the refusal would never reach onServerError to be said.
        if (err || typeof m?.subject !== 'string') return;
        const seq = Number(m.subject.slice(inbox.length + 1));
        const slot = this.slots.get(seq);
        if (!slot) return; // already acknowledged (an earlier attempt's ack)
        let ack: { stream?: string; duplicate?: boolean; error?: { description?: string; err_code?: number } } = {};
        try { if (m.data.length) ack = m.json(); } catch { /* not JSON */ }
        if (ack.error?.err_code === MESSAGE_TOO_LARGE && slot.state === 'inflight') {
          this.rejectedByStream(slot, ack.error.description ?? 'message size exceeds maximum allowed');
          return;
        }
        if (!ack.stream || ack.error || m.headers?.hasError) {
          const noResponders = m.headers?.code === 503;
          if (slot.state === 'inflight') {
            this.jsFailed(slot, slot.gen, new Error(ack.error?.description ?? (noResponders
              ? `no responders: the stream${this.o.stream ? ` ${this.o.stream.name}` : ''} has no leader (an election, a server down) or is gone`
              : 'invalid PubAck')));
          }
          // Most often a leader election: a per-message retry. Only a stream confirmed gone is made again.
          if (noResponders) this.checkGone(false);
          return;
        }
        if (ack.duplicate) this.c.duplicates++;
        this.jsStored(slot);
      },
    });
    this.ackTimer = setInterval(() => {
      const now = performance.now();
      for (const sl of this.slots.values()) {
        if (sl.state === 'inflight' && sl.notBefore < now) this.jsFailed(sl, sl.gen, new Error('PubAck timeout'));
      }
    }, 100);
    this.ackTimer.unref();
    nc.closed().then(() => {
      if (this.ackInbox === inbox) this.ackInbox = null;
      if (this.ackTimer) clearInterval(this.ackTimer);
    }, () => {});
  }

  /**
   * The stream stored the message: its slot is free, its agent's next record may go. A status change
   * with agents_kv is handed to the KV bucket's writer, which lets its spool record go once the bucket
   * (or kv.pending) has it or a newer one — a bucket away holds nothing else.
   */
  private jsStored(s: Slot): void {
    const cur = this.slots.get(s.e.seq);
    if (!cur) return;
    this.release(cur);
    const ms = performance.now() - s.sentAt;
    const agent = this.kv && s.e.kind === 'status' ? s.e.headers['Wazuh-Agent-Id'] : undefined;
    if (agent !== undefined && isAgentIdToken(agent)) this.kv!.offer(agent, s.e.seq, s.e.body, s.e.recovered, () => this.acked(s.e, ms));
    else this.acked(s.e, ms);
    if (this.backedOff) this.resumeRetries();
    this.schedulePump();
  }

  /** The last publish failure (status): only on failures, nothing on the publishing path. */
  private lastFailure: string | null = null;
  private lastFailureAt = 0;
  private failedWhy(why: string): void {
    this.lastFailure = clip(why, 200);
    this.lastFailureAt = performance.now();
  }

  /** When the last canary retry went (pumpJs). */
  private canaryAt = -Infinity;
  /** Retries wait: the first success resumes them. */
  private backedOff = false;

  /**
   * A message was stored: JetStream is back — the retries can go now, not after their backoff. Once
   * per outage: called only while a retry backs off.
   */
  private resumeRetries(): void {
    this.backedOff = false;
    for (const r of this.retries) r.notBefore = 0;
    this.schedulePump();
  }

  private jsFailed(cur: Slot, gen: number, err: Error): void {
    if (this.slots.get(cur.e.seq) !== cur || cur.state !== 'inflight' || cur.gen !== gen) return; // already requeued
    this.inflight--;
    this.c.failures++;
    this.backedOff = true;
    cur.state = 'retry';
    cur.notBefore = performance.now() + backoffMs(cur.attempts);
    this.retries.add(cur);
    // Once a minute per reason, with how many failures it stands for: every agent's next message fails
    // alike (a stream gone, JetStream down), and a line per message was thousands a minute.
    const why = this.shown(err.message);
    this.failedWhy(why);
    this.sayLimited(`js-failed ${clip(why, 200)}`, 'warn', { err: why, subject: cur.e.subject, attempts: cur.attempts }, 'JetStream publish failed: retrying');
    this.schedulePump();
  }

  /**
   * A message larger than the server's max_payload can never be published: retrying it would
   * stop the spool behind it for good. It is dropped from the spool, counted (`rejected`) and
   * logged. The tap's own messages stay below NATS' default 1 MiB; a server configured lower
   * than a message is the cause.
   */
  private rejectIfTooLarge(e: SpoolEntry, err: unknown): boolean {
    if (!/max_payload/.test((err as Error)?.message ?? '')) return false;
    this.reject(e, { max_payload: this.nc?.info?.max_payload },
      'message larger than the server\'s max_payload: dropped (raise max_payload on the server)');
    return true;
  }

  /**
   * nats.js refused the message itself — its subject, a header (publishable.ts): no retry can send it,
   * and retrying held every later message behind it (core) or threw out of the pump (JetStream). None
   * the tap makes is; the spool counts a record read back with one as damaged, so this is the last
   * guard. Dropped from the spool, counted (`rejected`) and logged.
   */
  private rejectIfRefused(e: SpoolEntry, err: unknown): boolean {
    if (!(err instanceof InvalidSubjectError || err instanceof InvalidArgumentError)) return false;
    this.reject(e, { err: this.shown(err.message) }, 'message NATS refuses (its subject or a header): dropped');
    return true;
  }

  /**
   * The stream refused a message for its size (its `max_msg_size`): as with max_payload, no retry
   * can store it, and retrying for ever held it — and, for a status change, its agent's later
   * events — in the spool. Dropped from the spool, counted (`rejected`) and logged.
   */
  private rejectedByStream(s: Slot, why: string): void {
    this.release(s);
    this.reject(s.e, { stream: this.o.stream?.name, err: clip(why, 200) },
      'message larger than the stream\'s max_msg_size: dropped (raise max_msg_size on the stream)');
    this.schedulePump();
  }

  /** A message NATS can never take: counted (`rejected`), logged, and let go from the spool. */
  private reject(e: SpoolEntry, fields: object, msg: string): void {
    this.c.rejected++;
    this.log?.error({ subject: e.subject, event_id: e.eventId, bytes: e.body.length, ...fields }, msg);
    this.spool.ack(e.seq);
  }

  /**
   * `e` would overtake a message not yet stored that it must not: for an agent's message, a batch
   * holding a keepalive of that agent; for a batch, a message of an agent it holds a keepalive of.
   * The batch's agents are read from its body only then (a status change is rare beside keepalives).
   */
  private crosses(e: SpoolEntry, key: string): boolean {
    if (key.startsWith('a:')) {
      if (this.batchesOut === 0) return false;
      const agent = key.slice(2);
      for (const s of this.slots.values()) {
        if (!s.key.startsWith('k:')) continue;
        const agents = batchAgents(s.e);
        if (agents === null || agents.has(agent)) return true;
      }
      return false;
    }
    if (!key.startsWith('k:') || this.agentsOut === 0) return false;
    const agents = batchAgents(e);
    if (agents === null) return true;
    for (const a of agents) if (this.busy.has(`a:${a}`)) return true;
    return false;
  }

  private counted(key: string, n: 1 | -1): void {
    if (key.startsWith('a:')) this.agentsOut += n;
    else if (key.startsWith('k:')) this.batchesOut += n;
  }

  /** A JetStream slot is done (stored, or given up): out of the in-flight count, the retries and its agent's turn. */
  private release(s: Slot): void {
    if (s.state === 'inflight') this.inflight--;
    this.retries.delete(s);
    if (this.slots.get(s.e.seq) === s) this.counted(s.key, -1); // once, whoever releases it
    this.slots.delete(s.e.seq);
    this.busy.delete(s.key);
  }

  /** Core NATS: one agent's message (a status change, an unbatched keepalive, an alert) has its own set — looking it up
   * first only cost time (core publish 37–41k → 33–34k events/s when it did); the rest share one (shared-headers.ts). */
  private sharedHdrs(e: SpoolEntry): MsgHdrs {
    return e.headers['Wazuh-Agent-Id'] !== undefined ? encodedHeaders(e.headers) : this.sharedHeaders.of(e.headers);
  }

  /** Handed to NATS (nats.js writes it to the socket in this turn of the event loop): its delay since the capture. */
  private published(e: SpoolEntry): void {
    if (this.captured.waiting === 0) return;
    const at = this.captured.take(e.seq);
    if (at === at) this.delayTimes.add(monotonicMs() - at); // not NaN: a message with a capture time
  }

  private acked(e: SpoolEntry, ms: number): void {
    this.c.acknowledged++;
    if (this.wasDelayed(e)) this.c.replayed++;
    this.ackTimes.add(ms);
    this.spool.ack(e.seq);
  }

  private reportShed(): void {
    const total = this.spool.stats().shed;
    const delta = {} as Record<MessageKind, number>;
    let any = false;
    for (const k of KINDS) {
      delta[k] = total[k] - this.shedReported[k];
      if (delta[k]) any = true;
    }
    if (!any) return;
    this.shedReported = total;
    this.o.onShed?.(delta, total);
  }

  stats(): DeliveryStats {
    const sp = this.spool.stats();
    return {
      mode: this.o.mode, connected: this.up, spooled: sp.appended, published: this.c.published,
      acknowledged: this.c.acknowledged, replayed: this.c.replayed, resent: this.c.resent,
      duplicates: this.c.duplicates, failures: this.c.failures, rejected: this.c.rejected, denied: this.c.denied, lastDenied: this.lastDenied, shed: sp.shed, deferred: sp.deferred, spoolBytes: sp.bytes,
      spoolRecords: sp.records, spoolOldestMs: sp.records > 0 ? this.spooledAt.ageMs(this.spool.ackedThrough + 1, performance.now()) : null,
      spoolTorn: sp.torn,
      writeErrors: sp.writeErrors, readErrors: sp.readErrors, diskFull: sp.diskFull, spoolBoundBytes: sp.boundBytes,
      inFlight: this.o.mode === 'core' ? this.unconfirmed.length - this.uHead : this.inflight,
      latencyMs: this.ackTimes.summary(), delayMs: this.delayTimes.summary(),
      reconnectCycles: this.c.cycles, streamReady: this.streamReady,
      lastFailure: this.lastFailure, lastFailureAgeMs: this.lastFailure === null ? null : performance.now() - this.lastFailureAt,
      server: this.up && this.nc ? maskUrl(this.nc.getServer()) : null,
      kv: this.kv?.stats() ?? null,
    };
  }

  /**
   * Wait until the spool is empty (`kv`: and every agent's latest status in the KV bucket), at most
   * `timeoutMs`. The spool empty, nothing is lost: a status the bucket lacks is in kv.pending for the
   * next start — the stop does not wait for a bucket that is away. False on timeout.
   */
  async flush(timeoutMs = 10_000, o: { kv?: boolean } = {}): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    while (this.spool.stats().records > 0 || (o.kv && this.kv && !this.kv.settled)) {
      if (performance.now() > end) return false;
      if (this.o.mode === 'core' && this.sinceFlush > 0) this.coreFlush();
      await sleep(10);
    }
    return true;
  }

  /**
   * Deliver what can be within `timeoutMs`, then close; what is left stays in the spool for the next
   * start. Bounded whatever NATS does: an attempt in flight is abandoned (its socket destroyed), the
   * wait between attempts is cut short, and nats.js gets at most a second to close the connection.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.up) await this.flush(timeoutMs);
    this.reportShed();
    this.closing = true;
    if (this.shedTimer) clearInterval(this.shedTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.readTimer) clearTimeout(this.readTimer);
    if (this.writeAheadTimer) clearTimeout(this.writeAheadTimer);
    this.readTimer = null;
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.attempt?.abandon();
    this.wake?.();
    const nc = this.nc;
    // kv.pending being written: waited for (bounded; the spool's directory stays open for it regardless).
    if (this.kv) await within(this.kv.close(), 1000);
    if (nc) await within(nc.close().catch(() => {}), 1000);
    await within(this.loop?.catch(() => {}) ?? Promise.resolve(), 1000);
    this.spool.close();
    const synced = await this.spool.synced(LAST_SYNC_MS);
    if (synced === 'timeout') {
      this.log?.warn({ waited_ms: LAST_SYNC_MS }, 'spool: the last sync did not finish (a slow disk): its records are written and stay for the next start; the kernel writes them to the disk');
    } else if (synced !== 'synced') {
      this.log?.error({ err: synced.code ?? synced.message }, 'spool: the last sync failed: the disk may have lost the last second of events');
    }
  }
}

/**
 * What close() waits for the spool's last fdatasync: on a disk that hangs, the shutdown goes on without
 * it (a process exit does not lose what was written; only a power loss before the kernel's writeback can).
 */
const LAST_SYNC_MS = 1000;

/** An error's message with its causes (nats.js wraps TLS and socket errors). */
function errorText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const m = (cur as Error).message ?? String(cur);
    if (m && !parts.includes(m)) parts.push(m);
    cur = (cur as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}

/**
 * What a JetStream publish must not overtake (one in flight per key): an agent's messages, or a
 * subject's when there is no agent. A keepalive batch has a key of its own (see the header).
 */
export function orderKey(e: Pick<SpoolEntry, 'seq' | 'kind' | 'subject' | 'headers'>): string {
  const agent = e.headers['Wazuh-Agent-Id'];
  if (agent) return `a:${agent}`;
  if (e.kind === 'keepalive') return `k:${e.seq}`;
  return `s:${e.subject}`;
}

const batchAgentsOf = new WeakMap<SpoolEntry, ReadonlySet<string> | null>();
const AGENT_ID_RE = /"agent_id":"(\d+)"/g;

/**
 * The agents a keepalive batch holds a keepalive of, from its body (the tap's own JSON: event-json.ts
 * writes `"agent_id":"<digits>"`); null when that cannot be read — then it holds any. Kept per entry.
 */
function batchAgents(e: SpoolEntry): ReadonlySet<string> | null {
  let agents = batchAgentsOf.get(e);
  if (agents === undefined) {
    const text = typeof e.body === 'string' ? e.body : Buffer.from(e.body).toString('latin1');
    const found = new Set<string>();
    for (const m of text.matchAll(AGENT_ID_RE)) found.add(m[1]);
    agents = found.size > 0 ? found : null;
    batchAgentsOf.set(e, agents);
  }
  return agents;
}

/** What an errno from the spool's disk means, in the words an administrator acts on. */
export function ioCause(code: string | undefined): string {
  switch (code) {
    case 'ENOSPC': case 'EDQUOT': return 'disk full';
    case 'EMFILE': case 'ENFILE': return 'out of file descriptors';
    case 'EROFS': return 'read-only file system';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EIO': return 'I/O error';
    default: return code ? `error ${code}` : 'unknown error';
  }
}

/** Servers announced by a cluster kept for the next reconnect cycles, at most. */
const MAX_DISCOVERED = 32;

/** `host:port` of a server URL (`nats://u:p@h:4222` → `h:4222`; no port: 4222), or the text as it is. */
function hostPort(u: string): string {
  try {
    const url = new URL(/^[a-z]+:\/\//i.test(u) ? u : `nats://${u}`);
    return `${url.hostname}:${url.port || '4222'}`;
  } catch {
    return u;
  }
}

/** While every retry backs off, the first of them goes ahead this often (ms): JetStream back is found within it. */
const CANARY_MS = 500;

/**
 * A KV put refused for the value's size: nats.js's own check against the server's max_payload ("'payload'
 * max_payload size exceeded"), or the bucket's max_msg_size (JetStream error 10054, "message size exceeds
 * maximum allowed"). No retry can store it. (The server's own `Maximum Payload Violation` closes the
 * connection: the put fails as "connection closed" and is retried — nats.js checks first, so it is not
 * met: review helper-93 C1.)
 */
function tooLargeForKv(err: unknown): boolean {
  if (err instanceof JetStreamApiError && err.code === MESSAGE_TOO_LARGE) return true;
  return /max_payload|message size exceeds maximum/i.test((err as Error)?.message ?? '');
}

/** The statuses waiting for the KV bucket (agents_kv), beside the spool's segments (kv-latest.ts). */
const KV_PENDING = 'kv.pending';
/**
 * Its size read at most: new values go in below twice MAX_PENDING_BYTES; what it surely holds is kept by
 * a rewrite past that (their newer values may be longer), so twice again, and a margin.
 */
const KV_PENDING_MAX_FILE = 4 * MAX_PENDING_BYTES + (1 << 20);

/** The wait before retry `n` (from 0) of a failed read or publish: 100 ms, doubling, at most 5 s. */
function backoffMs(n: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(n, 6));
}
