// What the parts of the running agent share: the pure pipeline (decoder, state
// table), the components each part opens (publisher, capture, journal, alerts
// follower), and the three operations more than one part needs — publish a
// batch of events, resynchronise the state from wazuh-db, and describe
// everything for `status`. The parts themselves are in ./parts/.
import type { SpoolReplaced } from './spool-note.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Capture } from '../capture/capture.js';
import { WdbDecoder } from '../decode/index.js';
import { HeldRelease } from '../capture/held-release.js';
import { AgentStateTable } from '../state/agents.js';
import { describeAgents, initialSync } from '../state/sources/initial-sync.js';
import type { StatusJournal } from '../state/sources/status-journal.js';
import { publishedStatus, PublishedStatuses, type PublishedStatus } from '../state/published-statuses.js';
import { errorFields, Pipeline } from '../pipeline.js';
import { RateLimitedLog } from '../util/rate-limit.js';
import type { AgentEvent, AgentSyncRow, StatusChangeEvent } from '../types.js';
import type { ReliablePublisher } from '../publish/reliable.js';
import { validatePrefix } from '../publish/subjects.js';
import { monotonicToWallClock } from '../util/clock.js';
import { logOutput } from '../util/log.js';
import { describeTargets } from '../capture/targets.js';
import { HomePin } from '../capture/home-pin.js';
import type { AlertsFollower } from '../alerts/follower.js';
import type { AlertSink } from '../alerts/alert-sink.js';
import { DEFAULT_THRESHOLDS } from '../alerts/alert-event.js';
import type { AgentOptions, AlertOptions } from '../agent.js';
import type { Lifecycle } from './lifecycle.js';
import { maskUrl } from '../util/mask-url.js';
import { OwedStatuses } from '../publish/owed-statuses.js';
import type { MetricsState } from './parts/metrics.js';

/** How long a resynchronisation's rows wait for the captured writes they may already show. */
const SETTLE_MS = 1000;
/** Requests older than this before a resynchronisation are not waited for (wazuh-db answers in ms). */
const REPLY_WAIT_NS = 1_000_000_000n;
/**
 * A resynchronisation for lost records asks wazuh-db for every agent: at 100,000 agents ~100,000
 * requests, seconds of the daemon's CPU. Loss that goes on (the tap starved of CPU, a burst beyond
 * it) made them back to back — wazuh-db answering the whole fleet again and again when it is busiest.
 * The next one waits this long at least, and four times what the last took (≤ 20 % of the time).
 */
export const LOSS_RESYNC_GAP_MS = 10_000;
/** The `why` of a resynchronisation for lost records. */
export const LOSS_RESYNC = 'records lost';
/** The `why` of the resynchronisation after an attach. */
export const ATTACHED_RESYNC = 'attached';
/**
 * An attach this soon after a complete look at wazuh-db ended looks again lightly (state/sources/
 * listed-statuses.ts): the ids by status (and by status on each node), and rows only for the agents
 * whose status or node moved meanwhile. What else changed uncaptured in so short a gap waits: an
 * address or a version for a connected agent's next keepalive, a group for a row read later
 * (docs/architecture.md). At start, the look before attach had just asked wazuh-db about every agent:
 * the full look after it asked about all of them again.
 */
export const LIGHT_LOOK_WITHIN_MS = 60_000;
/**
 * A resynchronisation for lost records this soon after a complete look's end is a light one too. Under
 * a loss that goes on (a starved tap: a busy host) each full look was every agent's row again — ~100,000
 * requests of wazuh-db's every ~30 s at 100,000 agents, when it is busiest; now at most one full look
 * in this time. Statuses, registrations and removals the lost records held are corrected either way;
 * an address or a version they changed comes back with the agent's next keepalive.
 */
export const LIGHT_LOSS_LOOK_WITHIN_MS = 10 * 60_000;

/** How soon after a complete look's end a look asked for `why` may be a light one (0: never). */
function lightWindowMs(why: string, firstLook: boolean): number {
  if (firstLook) return 0; // wazuh-db (re)appeared: it may hold anything now
  return why === ATTACHED_RESYNC ? LIGHT_LOOK_WITHIN_MS : why === LOSS_RESYNC ? LIGHT_LOSS_LOOK_WITHIN_MS : 0;
}

/** A look at wazuh-db asked for while another runs. */
interface LookAsked { why: string; untilListeningMs: number; firstLook: boolean; lightWithinMs: number }
/** What the alerts follower's stats say of its state, not counters: not added up across followers. */
const FOLLOWER_STATE = new Set(['following', 'refusing', 'offset']);
/** How often the status changes a full spool refused are offered again when no event comes to carry them. */
const OWED_RETRY_MS = 1000;

export class Tap {
  readonly log: Logger;
  readonly node: string;
  readonly prefix: string;
  readonly spoolDir: string;
  /**
   * Where the files of spool_dir are reached: `/proc/self/fd/<n>` of the directory the lock part
   * opened (publish/spool-dir.ts), so a rename of spool_dir by whoever may write its parent moves no
   * write of the tap's; spool_dir's path itself without /proc (and before the lock part started).
   */
  spoolAt: string;
  /** The settings of the configuration file, at the last reload, that differ from the running ones and wait for a restart (by element name). */
  restartNeeded: string[] = [];
  /** At this start spool_dir was another directory than the last run's (agent/spool-note.ts): what it was, where it is. */
  spoolReplaced: SpoolReplaced | null = null;
  /** spool_dir's path leads elsewhere now (renamed while the tap runs): the next start would not find this spool. */
  spoolDirMoved = false;
  /** `s` with spoolAt shown as spool_dir (the path people know), for what is logged. */
  shownPath(s: string): string {
    return this.spoolAt === this.spoolDir ? s : s.split(`${this.spoolAt}/`).join(`${this.spoolDir}/`);
  }

  readonly spoolMaxBytes: number;
  // A tick whose parse is gone (evicted): the shim sends that agent's next payload whole.
  readonly decoder = new WdbDecoder({ onTickMiss: (key) => this.capture?.forgetKey(key) });
  readonly state: AgentStateTable;
  readonly pipeline: Pipeline;
  /** performance.now() at start: the uptime is not moved by a step of the wall clock. */
  readonly startedAt = performance.now();
  readonly eventsByType: Record<string, number> = { status_change: 0, keepalive: 0, alert: 0 };
  keepaliveEvents: boolean;
  alertOpts: AlertOptions;
  /** Set by their parts as they start; null before (or after) that. */
  publisher: ReliablePublisher | null = null;
  capture: Capture | null = null;
  journal: StatusJournal | null = null;
  /** What this tap last published for each agent (agents.status). */
  readonly published = new PublishedStatuses();
  /**
   * Each agent's last status change an earlier run left in the spool (publisher part, as the spool
   * opens): newer than the journal's, taken over it by the state part, then emptied (spooled-status.ts).
   */
  readonly spooledStatuses = new Map<number, PublishedStatus>();
  /** Each agent's status changes the spool refused, folded into one event owed to the consumers. */
  readonly owed = new OwedStatuses();
  private owedTimer: NodeJS.Timeout | null = null;
  /** While the decoder holds exchanges for an earlier request's reply: lets them go once it is late. */
  private readonly heldRelease = new HeldRelease({
    capture: () => this.capture,
    holding: () => this.decoder.holding > 0,
    release: (nowNs) => this.pipeline.release(nowNs),
    stopping: () => this.life.stopping !== null, // the capture part's stop lets all go (release(null))
  });
  follower: AlertsFollower | null = null;
  /**
   * The counters of the alerts followers closed so far (alerts turned off by a reload): added to the
   * running one's, so the counters `status` and /metrics show never go down in one process.
   */
  readonly alertCountsBefore: Record<string, number> = {};
  alertSink: AlertSink | null = null;
  /** The metrics endpoint (metrics part): where, and whether it listens; null without one. */
  metricsState: MetricsState | null = null;
  /** The capture path's last guards (a record, an event, that made something throw) log through these. */
  readonly recordErrors: RateLimitedLog;
  readonly eventErrors: RateLimitedLog;
  /**
   * Which home opts.home names, pinned at start (capture/home-pin.ts): once its path leads to another
   * home (a container's pid reused), nothing of that one is captured, asked or read, and it is said.
   */
  readonly homePin: HomePin;
  /** That said at most once a minute (it is found again at every look: every second or two). */
  private readonly homeMoved: RateLimitedLog;
  private fromRecords: AgentEvent[] = [];
  private resyncing = false;
  /** performance.now() before which no resynchronisation for lost records starts (LOSS_RESYNC_GAP_MS). */
  private lossResyncAt = Number.NEGATIVE_INFINITY;
  private resyncAgain: LookAsked | null = null;
  private describing = false;
  /** performance.now() when the last complete look that described every agent ended; null: none yet. */
  private fullLookEndMs: number | null = null;

  constructor(readonly opts: AgentOptions, readonly life: Lifecycle) {
    this.log = opts.log;
    this.prefix = validatePrefix(opts.prefix);
    this.node = opts.node ?? hostname();
    const d = opts.delivery ?? {};
    this.spoolDir = d.spoolDir ?? join(opts.home, 'var/nats-tap');
    this.spoolAt = this.spoolDir;
    this.spoolMaxBytes = d.spoolMaxBytes ?? 512 * 1024 * 1024;
    this.keepaliveEvents = opts.keepaliveEvents ?? true;
    this.alertOpts = opts.alerts ?? { enabled: true, minLevel: 0, thresholds: DEFAULT_THRESHOLDS, fromBeginning: false };
    this.state = new AgentStateTable({ managerNode: this.node, wallClockMs: monotonicToWallClock() });
    this.recordErrors = new RateLimitedLog((f, m) => this.log.warn(f, m));
    this.eventErrors = new RateLimitedLog((f, m) => this.log.warn(f, m));
    this.homeMoved = new RateLimitedLog((f, m) => this.log.error(f, m), { max: 1 });
    this.homePin = new HomePin(opts.home, {
      onMoved: (m) => this.homeMoved.log({ home: opts.home, ...m, since: new Date(m.since).toISOString() },
        'the Wazuh home\'s path leads to another home now (the container\'s process ended and its pid was reused?): '
        + 'nothing of that one is captured, asked or published; restart the tap with the new container\'s pid'),
    });
    // capture → decode → state: the events of one batch of records are spooled together.
    this.pipeline = new Pipeline(this.decoder, this.state, {
      event: (ev) => { this.fromRecords.push(ev); },
      flush: (capturedMs) => {
        const evs = this.fromRecords;
        this.fromRecords = [];
        this.publishEvents(evs, capturedMs);
        if (this.state.hasUnheld) void this.describeUnheld();
        if (this.decoder.holding) this.heldRelease.arm();
      },
      error: (e, rec) => this.recordErrors.log(errorFields(e, rec), 'a record could not be processed: dropped'),
    });
  }

  /**
   * Spool a batch of agent events with one write, journal the status changes accepted, and owe the
   * consumers those refused (OwedStatuses: offered again first, here and every OWED_RETRY_MS). An
   * event refused because it cannot become a message at all (publishAgentEvents: a bug, counted as
   * unpublishable) is offered again too — once a second per agent at most, each time counted.
   * `capturedMs`: the capture time of the earliest record behind them (Pipeline's flush), if any.
   */
  publishEvents(all: AgentEvent[], capturedMs?: number): void {
    const publisher = this.publisher;
    if (!publisher) return;
    const fresh = this.keepaliveEvents ? all : all.filter((ev) => ev.event_type !== 'keepalive');
    const debug = this.log.isLevelEnabled('debug');
    for (const ev of fresh) {
      this.eventsByType[ev.event_type] = (this.eventsByType[ev.event_type] ?? 0) + 1;
      if (debug) this.log.debug({ event: ev }, 'event');
    }
    // What a full spool refused goes first: each agent's events stay in order.
    const evs = this.owed.size ? [...this.owed.take(), ...fresh] : fresh;
    if (!evs.length) return;
    const accepted = publisher.publishAgentEvents(evs, capturedMs);
    const statuses: { agentId: string; status: StatusChangeEvent['current_status']; statusCode: number }[] = [];
    evs.forEach((ev, i) => {
      if (ev.event_type !== 'status_change') return;
      const id = Number(ev.agent_id);
      if (!accepted[i]) {
        this.owed.refused(ev, this.published.get(id));
        return;
      }
      this.owed.accepted(id);
      this.published.set(id, publishedStatus(ev.current_status, ev.status_code));
      statuses.push({ agentId: ev.agent_id, status: ev.current_status, statusCode: ev.status_code });
    });
    if (statuses.length) this.journal?.recordMany(statuses);
    this.offerOwedLater();
  }

  /** While status changes are owed, offer them again every OWED_RETRY_MS, events or not. */
  private offerOwedLater(): void {
    if (!this.owed.size) {
      if (this.owedTimer) clearTimeout(this.owedTimer);
      this.owedTimer = null;
    } else if (!this.owedTimer) {
      this.owedTimer = setTimeout(() => {
        this.owedTimer = null;
        this.publishEvents([]);
      }, OWED_RETRY_MS);
      this.owedTimer.unref();
    }
  }

  /** A look at wazuh-db described every agent it listed (the start's, or a resynchronisation's). */
  fullLookEnded(): void {
    this.fullLookEndMs = performance.now();
  }

  /** Whether a resynchronisation for lost records may start now (none running, its gap passed). */
  mayResyncForLoss(): boolean {
    return !this.resyncing && performance.now() >= this.lossResyncAt;
  }

  /**
   * Ask wazuh-db again and correct what drifted while nothing was captured
   * (between the first sync and attach, after lost records, after a re-attach):
   * each corrected agent is one status event; changes captured since the
   * query began are not overridden. A light look (`lightWithinMs` of a complete look's end; by default
   * LIGHT_LOOK_WITHIN_MS after an attach, LIGHT_LOSS_LOOK_WITHIN_MS for lost records, never otherwise)
   * reads rows only for the agents whose status or node moved (state/sources/listed-statuses.ts).
   *
   * `firstLook`: wazuh-db (re)appeared — an agent the consumers were never told of by this tap is
   * adopted silently, as at start; one they were told of (its removal included: the table forgot
   * it, the consumers did not) and that differs is corrected with an event. Adopted silently, an
   * agent removed and registered again while wazuh-db was away came back without a word, and its
   * next event said a `previous_status` the consumers never received (test/chaos-e2e.test.ts, with
   * wazuh-db restarts).
   */
  async resync(why: string, untilListeningMs = 0, firstLook = false, lightWithinMs = lightWindowMs(why, firstLook)): Promise<void> {
    if (this.life.stopping) return;
    // wazuh-db is reached through the home's path: another home's is never asked (its listing would
    // remove this home's agents). The pin has said so.
    if (!this.homePin.holds()) return;
    // One look at wazuh-db at a time: rows of an older look must not override a newer one's.
    if (this.resyncing || this.describing) {
      // The one in flight may predate what asks now. Asked for twice meanwhile, one look answers both: the
      // stricter of their kinds (a queued look for lost records, replaced by a re-attach's, was never made).
      const q = this.resyncAgain;
      this.resyncAgain = q === null ? { why, untilListeningMs, firstLook, lightWithinMs } : {
        why: q.why === LOSS_RESYNC && why !== LOSS_RESYNC ? q.why : why, // a loss's look keeps its spacing
        untilListeningMs: Math.max(q.untilListeningMs, untilListeningMs),
        firstLook: q.firstLook || firstLook,
        lightWithinMs: Math.min(q.lightWithinMs, lightWithinMs),
      };
      return;
    }
    this.resyncing = true;
    const startedAt = performance.now();
    try {
      // A socket just created may not be listening yet (bind comes before listen): ask again, briefly.
      const end = performance.now() + untilListeningMs;
      let settled = true;
      let corrected = 0;
      // The waits for a capture that does not catch up share one SETTLE_MS, its chunks together: such a
      // capture (records lost) made each of a fleet's chunks wait a whole second. A wait that ends with
      // the capture caught up spends nothing: a busy capture that keeps up is waited for at every chunk.
      let settleMs = SETTLE_MS;
      const waitForCapture = async (startedNs: bigint): Promise<void> => {
        const t = performance.now();
        const ok = settleMs > 0 && (await this.settle(startedNs, process.hrtime.bigint(), settleMs));
        if (!ok) settleMs -= performance.now() - t;
        settled = ok && settled;
      };
      const told = (row: { id: number }) => this.published.has(row.id) || this.owed.has(row.id);
      // A chunk of rows at a time as wazuh-db answers (a fleet's rows are never all held), each once
      // the captured writes up to then are applied: a row that already shows one must not undo it.
      const apply = async (rows: AgentSyncRow[], startedNs: bigint): Promise<void> => {
        if (this.life.stopping) return;
        await waitForCapture(startedNs);
        if (this.life.stopping) return;
        const events = firstLook
          ? [...this.state.resync(rows.filter((row) => !told(row)), startedNs, 'wazuh-db', true),
            ...this.state.resync(rows.filter(told), startedNs, 'wazuh-db')]
          : this.state.resync(rows, startedNs, 'wazuh-db');
        corrected += events.length;
        this.publishEvents(events);
      };
      const light = !firstLook && this.fullLookEndMs !== null && startedAt - this.fullLookEndMs <= lightWithinMs;
      const look = { home: this.opts.home, onRows: apply, ...(light && { held: this.state }) };
      let r = await initialSync(look);
      while (!r.complete && /not listening|not found/.test(r.reason ?? '') && performance.now() < end && !this.life.stopping) {
        await new Promise((res) => setTimeout(res, 20));
        r = await initialSync(look);
      }
      if (this.life.stopping) return;
      const lightly = light && r.statusesRefused === null;
      if (r.complete && !lightly) this.fullLookEnded();
      if (r.complete) {
        // Removed meanwhile: once the captured writes up to the listing's end are applied too.
        await waitForCapture(r.startedNs);
        if (this.life.stopping) return;
        const removed = this.state.removeUnlisted(r.ids, r.startedNs);
        corrected += removed.length;
        this.publishEvents(removed);
      }
      const fields = {
        why, corrected, complete: r.complete, agents: r.described, listed: r.ids.length, settled,
        look: lightly ? 'by status' : 'every agent', ...(lightly && { unchanged: r.skipped }), ...(firstLook && { first_look: true }),
        ...(r.statusesRefused !== null && { statuses_refused: r.statusesRefused }),
      };
      // Incomplete (wazuh-db away, slow, or gone mid-way): a warning with why.
      if (r.complete) this.log.info(fields, 'state resynchronised from wazuh-db');
      else this.log.warn({ ...fields, reason: r.reason }, 'state resynchronised from wazuh-db');
    } catch (e) {
      this.log.warn({ err: (e as Error).message, why }, 'resynchronisation failed');
    } finally {
      this.resyncing = false;
      if (why === LOSS_RESYNC) {
        const now = performance.now();
        this.lossResyncAt = now + Math.max(LOSS_RESYNC_GAP_MS, 4 * (now - startedAt));
      }
      this.lookAgain();
    }
  }

  /**
   * Asks wazuh-db about the agents UPDATEs named that the table does not hold while it holds every agent
   * wazuh-db listed (AgentStateTable.takeUnheld), and those a listing lacked that changed while it was
   * read: one registered unseen joins the table, its UPDATEs applied as they came; one wazuh-db has no
   * row for (a removed agent's late keepalive, after a restart of the tap) stays out. One look at
   * wazuh-db at a time, resynchronisations first (lookAgain).
   */
  private async describeUnheld(): Promise<void> {
    if (this.describing || this.resyncing) return; // after the resync in flight (lookAgain)
    this.describing = true;
    try {
      while (this.state.hasUnheld && !this.life.stopping && !this.resyncAgain) {
        const ids = this.state.takeUnheld();
        // Another home's wazuh-db (the pin says the path leads there now) is never asked: unanswered.
        const r = this.homePin.holds() ? await describeAgents({ home: this.opts.home, ids }) : null;
        if (this.life.stopping) return;
        if (r?.rows.length) await this.settle(r.startedNs, process.hrtime.bigint());
        if (this.life.stopping) return;
        const events = this.state.describedAgents(r, r?.startedNs ?? 0n);
        this.publishEvents(events);
        this.log.info({ asked: ids.length, described: r?.rows.length ?? 0, absent: r?.absent.length ?? 0, events: events.length,
          ...(r?.reason !== null && { unanswered: r?.reason ?? 'the home moved' }) },
        'agents updated but not listed: asked wazuh-db');
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'asking wazuh-db about agents failed');
    } finally {
      this.describing = false;
      this.lookAgain();
    }
  }

  /** After a look at wazuh-db: the resynchronisation asked for meanwhile, else the agents to ask about. */
  private lookAgain(): void {
    const again = this.resyncAgain;
    this.resyncAgain = null;
    if (again) void this.resync(again.why, again.untilListeningMs, again.firstLook, again.lightWithinMs);
    else if (this.state.hasUnheld) void this.describeUnheld();
  }

  /**
   * Rows read from wazuh-db between `fromNs` and `toNs` may already show a write whose records are
   * still on their way (in the kernel's rings, the shim's queue, or a request whose reply is not
   * written yet). Applied before it, such a row would publish the change as a drift (initial_sync)
   * and the write's own event — its reason, its source — would find nothing left to change (seen
   * once in CI: an agent's start-up published as initial_sync). So the rows wait, at most
   * SETTLE_MS, until the capture has handled every write that began before they were read, and
   * every request of the last second before has its reply. False: applied without that.
   */
  private async settle(fromNs: bigint, toNs: bigint, maxMs = SETTLE_MS): Promise<boolean> {
    const c = this.capture;
    if (!c?.attached) return true;
    const end = performance.now() + maxMs;
    if (!(await c.settled(toNs, maxMs))) return false;
    const since = fromNs - REPLY_WAIT_NS;
    while (this.decoder.unansweredBetween(since, toNs)) {
      const left = end - performance.now();
      if (left <= 0 || this.life.stopping) return false;
      await new Promise((res) => setTimeout(res, 2)); // for the reply to be written
      if (!(await c.settled(process.hrtime.bigint(), left))) return false;
    }
    return true;
  }

  alertStatus(): Record<string, unknown> {
    const sink = this.alertSink;
    const counts: Record<string, unknown> = { ...this.alertCountsBefore };
    for (const [k, v] of Object.entries(this.follower?.stats() ?? {})) {
      counts[k] = typeof v === 'number' && !FOLLOWER_STATE.has(k) ? (this.alertCountsBefore[k] ?? 0) + v : v;
    }
    return { enabled: this.follower !== null, file: this.alertsFile, ...(sink?.counters ?? {}), ...counts };
  }

  /** A follower is closed: its counters are kept (alertCountsBefore). */
  keepAlertCounts(follower: AlertsFollower): void {
    for (const [k, v] of Object.entries(follower.stats())) {
      if (typeof v === 'number' && !FOLLOWER_STATE.has(k)) this.alertCountsBefore[k] = (this.alertCountsBefore[k] ?? 0) + v;
    }
  }

  get alertsFile(): string {
    return this.alertOpts.file ?? join(this.opts.home, 'logs/alerts/alerts.json');
  }

  /** Everything `status` shows (SPEC §7). */
  status(): Record<string, unknown> {
    const c = this.capture;
    const p = this.publisher;
    const delivery = p?.stats();
    const spool = p?.delivery.spool.stats();
    const decoded = this.decoder.stats();
    return {
      attached: c?.attached ?? false,
      // A detach under way: its links are being removed (the kernel's grace periods): not attached, not yet without a hook.
      detaching: c?.detachingNow ?? false,
      hooks: c?.attachedHooks() ?? [],
      capture_interval_ms: c?.roundMs ?? null,
      // Detached, no daemon is followed: null, not an empty list (which read as "none running").
      targets: c?.attached ? describeTargets(c.targetDaemons()) : null,
      identity: c?.identity() ?? null,
      // The home's path leads to another home (HomePin): restart the tap with the new container's pid.
      home_moved: this.homePin.moved,
      // Settings the last reload read but could not apply: the file says otherwise than what runs until a restart.
      restart_needed: this.restartNeeded,
      counters: c?.counters() ?? {},
      verifier: c?.verifier ?? null,
      decoder: this.decoder.summary(),
      // Unchanged keepalives the shim sent as ticks (bpf/shim/fastpath.h), and what the decoder made of them.
      fastpath: c ? { ...c.fastpath(), batches: c.batches, applied: decoded.ticks, misses: decoded.tickMisses } : null,
      errors: { records: this.pipeline.errors, unpublishable: p?.unpublishable ?? 0 },
      nats: {
        // servers: the configured ones; server: the one connected to now (null while away).
        connected: p?.connected ?? false, servers: this.opts.natsUrls.map(maskUrl), server: delivery?.server ?? null,
        mode: delivery?.mode ?? null,
        // As /metrics counts them: published, every publish (resends included); acknowledged, what NATS confirmed.
        published: delivery?.published ?? 0, acknowledged: delivery?.acknowledged ?? 0,
        // Events shed because the spool was full: `shed`; `failed` is the same count, kept for the readers of its old name.
        shed: p?.failed ?? 0, failed: p?.failed ?? 0, rejected: delivery?.rejected ?? 0,
        // Publishes that failed (no PubAck, no responders, a KV put, refused) and were retried, since the start;
        // the last one's reason and age; messages waiting for their PubAck; JetStream: the stream found (or made).
        failures: delivery?.failures ?? 0, resent: delivery?.resent ?? 0,
        last_failure: delivery?.lastFailure != null
          ? { reason: delivery.lastFailure, age_s: Math.round((delivery.lastFailureAgeMs ?? 0) / 100) / 10 } : null,
        in_flight: delivery?.inFlight ?? 0, stream_ready: delivery?.mode === 'jetstream' ? delivery.streamReady : null,
        // agents_kv: agents whose latest status the KV bucket lacks yet (its puts wait apart: delivery goes on),
        // of them those saved in kv.pending for a restart, the puts that failed, and the values dropped: refused
        // for their size, or read back from kv.pending and no value of the tap's; null without agents_kv.
        kv: delivery?.kv ? {
          pending: delivery.kv.pending, saved: delivery.kv.saved, failures: delivery.kv.failures,
          dropped: delivery.kv.dropped + delivery.kv.refusedValues,
        } : null,
        denied: delivery?.denied ?? 0, last_denied: delivery?.lastDenied ?? null,
        // Recent messages, ms: the tap's own share (the daemon's syscall → handed to NATS, agent events)
        // and NATS' (publish → acknowledgement: core, the confirming flush; JetStream, the PubAck).
        latency_ms: delivery ? { capture_to_publish: delivery.delayMs, publish_to_ack: delivery.latencyMs } : null,
      },
      spool: {
        // Messages NATS has not acknowledged, and how long the oldest waited; bytes: the segment files, delivered records included.
        records: delivery?.spoolRecords ?? 0, oldest_age_s: delivery?.spoolOldestMs != null ? Math.round(delivery.spoolOldestMs / 100) / 10 : null,
        bytes: delivery?.spoolBytes ?? 0,
        // The bound in force (spool_max_size, or less while the disk is full), and the disk's faults.
        bound_bytes: delivery?.spoolBoundBytes ?? this.spoolMaxBytes, disk_full: delivery?.diskFull ?? false,
        write_errors: delivery?.writeErrors ?? 0, read_errors: delivery?.readErrors ?? 0,
        // Files in spool_dir that are not the tap's (a link, a FIFO, another user's): left unread; events
        // lost with a segment file removed before they were read back.
        refused_files: spool?.refusedFiles ?? 0, lost: spool?.lost ?? 0,
        // Agents whose latest status change the spool refused: published once it has room.
        owed_statuses: this.owed.size,
        // spool_dir's path leads to another directory, or none, now: the tap writes the one it opened,
        // which the next start will not find there (the events it holds not replayed).
        dir_moved: this.spoolDirMoved,
        // At this start spool_dir was not the directory the last run used: its events and statuses are not here.
        replaced: this.spoolReplaced ? { was: this.spoolReplaced.was, noted: this.spoolReplaced.noted, found_at: this.spoolReplaced.foundAt } : null,
      },
      agents: this.state.countsByStatus(),
      // agents.status: compactions while running; bytes a start could not read (a file too large: statuses lost),
      // and lines it found damaged (statuses lost too).
      journal: this.journal ? { compactions: this.journal.compactions, unread_bytes: this.journal.unreadBytes, invalid_lines: this.journal.invalidLines } : null,
      alerts: this.alertStatus(),
      // The metrics endpoint: null without one; `listening` false (with `error`) while its port is taken.
      metrics: this.metricsState ? { ...this.metricsState } : null,
      log: logStatus(),
      node: this.node, home: this.opts.home, prefix: this.prefix,
      uptime_s: Math.round((performance.now() - this.startedAt) / 1000),
    };
  }
}

/** The log's way to stdout (util/log-output.ts): lines dropped while it did not drain, bytes waiting, for how long. */
function logStatus(): Record<string, number> | null {
  const s = logOutput()?.stats();
  return s ? { dropped_lines: s.droppedLines, dropped_bytes: s.droppedBytes, pending_bytes: s.pendingBytes, stalled_ms: s.stalledMs } : null;
}
