// The KV bucket of agents_kv as what it is: each agent's latest status, written apart from the
// stream's order.
//
// Why apart: a status change's KV put used to hold its slot in the JetStream window — and its agent's
// later records, and what followed them — until the bucket took it, so a 1-replica bucket whose one
// server was down stopped all delivery. The bucket only ever shows an agent's latest status: its puts
// need not keep the stream's pace. The stream stores a status change and delivery goes on; the body
// waits here, one per agent (a newer one replaces it), and is put when the bucket takes puts.
//
// Its spool record may go (`done`) once its value — or a newer one of its agent — is in the bucket, or
// in the file `kv.pending` beside the spool's segments: a restart puts what the file holds. The file is
// written only when a value waited `saveAfterMs` for its put (an outage, a slow bucket), never on the
// path of a put that works. It is a journal: each save appends the values that changed since the last
// (one checksummed line each, fdatasynced; a later line of an agent supersedes an earlier one), and it
// is rewritten whole only when it holds twice what is live (or after a failed append, or a start) and
// removed once the bucket has everything — an outage of minutes at thousands of agents writes what
// changed, not the whole table four times a second.
//
// Never backwards, whatever instant the tap is killed at:
//   - the file must never hold an agent's value older than the bucket's (a restart would put it back):
//     a newer value of an agent the file may name is written there before it is put — or, while writing
//     fails, the file's own value is put first and the file removed once the bucket has all it names;
//   - a record of an earlier run replayed after a restart is not put when the file gave its agent a
//     newer value (its floor); the spool hands out no seq the file has used (Spool.reserveSeqs);
//   - one put at a time per agent, each settled (stored, failed or timed out) before the next;
//   - a line a start cannot read (another encryption key) is not put; an agent's newest line decides:
//     readable, its value is put as usual while an older unreadable line stays until the rewrite (a
//     start with the other key would not put that line, older than one it cannot read); unreadable, the
//     older readable value is not put, and the agent's records are put as the spool replays them (load()).
//
// The file is the tap's own, but what it holds is put into the bucket with the tap's credentials, so a
// start takes from it only what the tap writes there (found by review: a 2 MiB value was put again for
// ever, a forged one went into the bucket as it was, and 5.9 million values took 3.3 GB of heap): a
// status change of the line's agent (Delivery checks it as spooledStatus() does), MAX_VALUE_BYTES at
// most, of MAX_AGENTS agents at most. And a put refused for the value's size (over max_payload, or the
// bucket's max_msg_size) can never be stored: that value is dropped, counted, not tried again.
import { crc32 } from 'node:zlib';
import { isAgentIdToken } from './subjects.js';
import { MAX_AGENTS } from '../decode/values.js';
// A seq in the file past the spool's bound for a run's start is not the spool's: the line is refused.
import { MAX_SEQ } from './spool.js';

export interface KvLatestOptions {
  /** The KV put (`$KV.<bucket>.<agent>`): resolves once stored; rejects on a failure or a timeout. */
  put(agent: string, body: Uint8Array): Promise<void>;
  /**
   * `kv.pending`: `append` lines to the file that exists (fdatasynced), or `replace` it whole (made beside
   * it, fsynced, renamed; '' removes it, the directory synced). Rejects when it could not.
   */
  write(how: 'append' | 'replace', data: string): Promise<void>;
  /** A put failed (said by the caller, rate-limited). */
  onPutFailed?(err: unknown, agent: string): void;
  /** A put was refused for good (KvValueRefused): the value is dropped (said by the caller, rate-limited). */
  onDropped?(err: unknown, agent: string): void;
  /** The file could not be written (said by the caller, rate-limited). */
  onSaveFailed?(err: unknown): void;
  /** How long a value waits for its put before it is saved in the file instead (ms, 250). */
  saveAfterMs?: number;
  /** Puts in flight at most (256). */
  window?: number;
  /** A file that names only values the bucket has is removed this long after (ms, 1000). */
  cleanupMs?: number;
  /** New values go into the file while it holds less than twice this, bytes (MAX_PENDING_BYTES); beyond, their records wait in the spool for their puts. */
  maxBytes?: number;
}

/** What a record of the spool waits for: its value, or a newer one of its agent, in the bucket or the file. */
interface Waiter {
  seq: number;
  /** When it came (performance.now()): saved in the file once it waited saveAfterMs. */
  at: number;
  done: () => void;
}

interface Entry {
  agent: string;
  /** The latest value known: its spool seq and body, and its line in the file once made (encoded once) and its bytes. */
  seq: number;
  body: Uint8Array;
  line: string | null;
  lineBytes: number;
  /** The value of the put in flight (0: none). */
  putSeq: number;
  /** The newest value the bucket is known to hold, or that it refused for good (dropped; 0: none known). */
  kvSeq: number;
  /**
   * What the file may name for the agent (0: nothing, in any state it may be in): the lowest value and
   * its body — what a restart could put back, so no put may go past it — and the highest.
   */
  fileLow: number;
  lowBody: Uint8Array | null;
  fileHigh: number;
  /** The newest value surely in the file, synced: what releases records. */
  sureSeq: number;
  /** The value a write in flight holds (0: none). */
  savingSeq: number;
  waiters: Waiter[];
}

/** A value loaded from `kv.pending` (parsePending). */
export interface PendingValue {
  agent: string;
  seq: number;
  body: Uint8Array;
}

/** Counters and gauges for status and metrics. */
export interface KvLatestStats {
  /** Agents whose latest value the bucket does not hold yet. */
  pending: number;
  /** Agents the file names. */
  saved: number;
  puts: number;
  failures: number;
  saves: number;
  saveFailures: number;
  /** Lines of a file found at start that were not a value (torn, damaged: counted, skipped). */
  badLines: number;
  /** Values of a file found at start that were not the tap's, or not readable today (parsePending's `refused`, `unreadable`, `beyond`): counted, skipped. */
  refusedValues: number;
  /** Values a put was refused for good (KvValueRefused): dropped, the bucket keeps the agent's older value. */
  dropped: number;
}

/**
 * A put that can never store its value (over the server's max_payload, or the bucket's max_msg_size):
 * trying again held the file, the stop's KV wait and every other agent's puts behind it for ever.
 */
export class KvValueRefused extends Error {
  override name = 'KvValueRefused';
}

/**
 * New values are written to `kv.pending` while it holds less than twice this (bytes, with superseded
 * lines): beyond, their records wait in the spool. What it surely holds is never dropped by a rewrite.
 */
export const MAX_PENDING_BYTES = 64 << 20;
/**
 * A value's body read back at most (bytes). The tap's status changes are a few KB: a dozen fields of at
 * most MAX_TEXT (1,024) characters each (decode/values.ts), 4/3 of that encrypted — tens of KB at the
 * very worst. A larger body is no value of the tap's.
 */
export const MAX_VALUE_BYTES = 64 * 1024;
/** While puts fail, one goes ahead this often (ms); its success sends the others. */
const CANARY_MS = 500;
/** After a failed write, the next try (ms). */
const SAVE_RETRY_MS = 1000;

const bytesOf = (s: string) => Buffer.byteLength(s);

/** One line of the file: `<crc32 of the JSON, 8 hex> {"a":agent,"s":seq,"b":body}`. */
export function encodeLine(agent: string, seq: number, body: Uint8Array): string {
  const json = JSON.stringify({ a: agent, s: seq, b: Buffer.from(body).toString('utf8') });
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** What parsePending takes of a file (the tap's own values, its bounds). */
export interface PendingRules {
  /**
   * Whether `body` is a value the tap writes for `agent` (a status change of it, `take`); others are
   * `refused`, or `unreadable` when today's encryption setting cannot read them (spooled-status.ts).
   */
  accept?: (agent: string, body: Uint8Array) => 'take' | 'refuse' | 'unreadable';
  /** Agents taken at most (MAX_AGENTS): values of others are `beyond`. */
  maxAgents?: number;
}

/**
 * parsePending's result: `refused`, values no value of the tap's (or over MAX_VALUE_BYTES);
 * `unreadable`, values today's encryption setting cannot read — `unread`, the seqs of their lines by
 * agent (the lowest and the highest); `beyond`, values of agents past maxAgents. `maxSeq`: the highest
 * seq of a value taken or unreadable (the tap's own, most likely: none of this run may reuse it).
 */
export interface PendingFound {
  values: PendingValue[];
  bad: number;
  refused: number;
  unreadable: number;
  unread: UnreadLines[];
  beyond: number;
  maxSeq: number;
}

/** An agent's lines of kv.pending that today's encryption setting cannot read: their lowest and highest seqs. */
export interface UnreadLines {
  agent: string;
  low: number;
  high: number;
}

/** The values of a `kv.pending` file; lines that are not one (torn, damaged, planted) are counted, never thrown on. */
export function parsePending(text: string, rules: PendingRules = {}): PendingFound {
  // An agent's latest value only (load() keeps no other): a file of many lines of few agents held each
  // line's body until the end (review helper-93: ~1 GB of heap at the read limit).
  const agents = new Map<string, PendingValue>();
  const unread = new Map<string, UnreadLines>();
  const maxAgents = rules.maxAgents ?? MAX_AGENTS;
  let bad = 0;
  let refused = 0;
  let unreadable = 0;
  let beyond = 0;
  let maxSeq = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const json = line.slice(9);
    if (line[8] !== ' ' || !/^[0-9a-f]{8}$/.test(line.slice(0, 8)) || Number.parseInt(line.slice(0, 8), 16) !== crc32(json)) {
      bad++;
      continue;
    }
    try {
      const v = JSON.parse(json) as { a?: unknown; s?: unknown; b?: unknown };
      if (typeof v.a !== 'string' || !isAgentIdToken(v.a) || typeof v.s !== 'number' || !Number.isSafeInteger(v.s) || v.s <= 0
        || v.s > MAX_SEQ || typeof v.b !== 'string') {
        bad++;
        continue;
      }
      const body = Buffer.from(v.b, 'utf8');
      const verdict = body.length > MAX_VALUE_BYTES ? 'refuse' : rules.accept?.(v.a, body) ?? 'take';
      if (verdict === 'refuse') {
        refused++;
        continue;
      }
      if (verdict === 'unreadable') {
        const u = unread.get(v.a);
        if (u === undefined && unread.size >= maxAgents) {
          beyond++;
          continue;
        }
        unreadable++;
        if (u === undefined) unread.set(v.a, { agent: v.a, low: v.s, high: v.s });
        else Object.assign(u, { low: Math.min(u.low, v.s), high: Math.max(u.high, v.s) });
        if (v.s > maxSeq) maxSeq = v.s;
        continue;
      }
      const held = agents.get(v.a);
      if (held === undefined && agents.size >= maxAgents) {
        beyond++;
        continue;
      }
      if (held === undefined || v.s > held.seq) agents.set(v.a, { agent: v.a, seq: v.s, body });
      if (v.s > maxSeq) maxSeq = v.s;
    } catch {
      bad++;
    }
  }
  return { values: [...agents.values()], bad, refused, unreadable, unread: [...unread.values()], beyond, maxSeq };
}

/** A timer that runs `fn` at the earliest moment it was asked for (performance.now() ms); one at a time. */
class EarliestTimer {
  private timer: NodeJS.Timeout | null = null;
  private at = Infinity;

  constructor(private readonly fn: () => void) {}

  /** Run at `at` at the latest (sooner if already asked sooner). */
  arm(at: number): void {
    if (at === Infinity || at >= this.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.at = Infinity;
      this.fn();
    }, Math.max(0, at - performance.now()));
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.at = Infinity;
  }
}

export class KvLatest {
  private readonly o: KvLatestOptions;
  private readonly entries = new Map<string, Entry>();
  /** Entries whose latest value is not in the bucket and no put of which is in flight. */
  private readonly todo = new Set<Entry>();
  /** Per agent, the value the file gave it at start: an earlier run's record older than it is not put. */
  private readonly floors = new Map<string, number>();
  private ready = false;
  private closed = false;
  private inflight = 0;
  /** A put failed and none worked since: one goes every CANARY_MS, the others wait for it. */
  private backedOff = false;
  private canaryAt = -Infinity;
  /** The next walk of the waiting puts, and the next write of the file. */
  private readonly putTimer = new EarliestTimer(() => this.pump());
  private readonly saveTimer = new EarliestTimer(() => this.save());
  private saving: Promise<void> | null = null;
  /** A save wanted while one was being written: when (Infinity: none). */
  private saveAgainAt = Infinity;
  private saveFailedAt = -Infinity;
  /** The file may exist; the bytes it may hold; whether the next write must rewrite it whole. */
  private fileExists = false;
  /** The file found at start names lines this run cannot read (another encryption key or setting): to be rewritten without them. */
  private dropsUnread = false;
  private fileBytes = 0;
  private rewriteNext = false;
  private readonly c = { puts: 0, failures: 0, saves: 0, saveFailures: 0, badLines: 0, refusedValues: 0, dropped: 0 };

  constructor(o: KvLatestOptions) {
    this.o = o;
  }

  /** What an earlier run saved (`kv.pending`, parsed, `bytes` long): put once the bucket takes puts; the file keeps them meanwhile. */
  load(found: { values: PendingValue[]; bad: number; refused?: number; unreadable?: number; unread?: UnreadLines[]; beyond?: number }, bytes: number): void {
    this.c.badLines += found.bad;
    this.c.refusedValues += (found.refused ?? 0) + (found.unreadable ?? 0) + (found.beyond ?? 0);
    // Lines today's encryption setting cannot read (another key, encryption switched; said by the
    // caller) are dropped: this run cannot put them, and a file that kept them while this run put newer
    // values straight into the bucket would put them back over those at a start with the old key
    // (review helper-96: it did). The file is rewritten without them at once. An agent's value is put
    // as usual when it is newer than its unreadable lines; when one of those is newer, the older value
    // is not put (over the bucket's newer one: review helper-97 P2) and the agent's values wait for the
    // rewrite, as for any value the file names (fileLow, with no body to put).
    const unread = new Map((found.unread ?? []).map((u) => [u.agent, u]));
    for (const v of found.values) {
      const en = this.entry(v.agent);
      if (v.seq <= en.seq || (unread.get(v.agent)?.high ?? 0) > v.seq) continue;
      en.seq = en.fileLow = en.fileHigh = en.sureSeq = v.seq;
      en.body = en.lowBody = v.body;
      en.line = null;
      this.floors.set(v.agent, v.seq);
      this.todo.add(en);
    }
    for (const u of unread.values()) {
      const en = this.entry(u.agent);
      this.dropsUnread = true;
      if (en.fileHigh >= u.high) continue; // its value, newer, is put; the lines go with the rewrite
      en.fileLow = en.fileLow === 0 ? u.low : Math.min(en.fileLow, u.low);
      en.lowBody = null;
      en.fileHigh = Math.max(en.fileHigh, u.high);
      // No floor: the records of the agent the spool replays are put, the line's own among them when it
      // was not released. Older ones may step the bucket back for a moment (review helper-98 F1); with a
      // floor they were released unput, and a bucket a silently landed put had taken ahead stayed behind
      // (helper-96's key-switch fuzz: 5 of 200 seeds against 1).
    }
    this.fileExists = true;
    this.fileBytes = bytes;
    this.rewriteNext = true; // its last line may be torn: nothing is appended after it
    this.pump();
    // Rewritten (or removed) at once when it names lines this run drops, or holds no value it took (each
    // line torn or refused): it stayed until some status waited for the bucket, said at every start.
    if (this.dropsUnread || found.values.length === 0) this.wantSave(performance.now());
  }

  /** Whether the bucket can be written to (connected; not found gone). */
  setReady(ready: boolean): void {
    this.ready = ready;
    if (ready) {
      // A new connection, or the bucket made again: what backed off goes now.
      this.backedOff = false;
      this.pump();
    }
  }

  /**
   * The stream stored status change `seq` of `agent`: its body is the agent's latest value (or older,
   * for a replay). `done` is called once it, or a newer value of the agent, is in the bucket or the file.
   * `recovered`: a record an earlier run wrote (its agent's floor applies).
   */
  offer(agent: string, seq: number, body: Uint8Array, recovered: boolean, done: () => void): void {
    if (this.closed) return;
    if (recovered) {
      const floor = this.floors.get(agent);
      if (floor !== undefined && floor >= seq) {
        done();
        return;
      }
    }
    const en = this.entry(agent);
    if (seq <= en.kvSeq || seq <= en.sureSeq) {
      done();
      return;
    }
    if (seq > en.seq) {
      en.seq = seq;
      en.body = body;
      en.line = null;
    }
    const now = performance.now();
    en.waiters.push({ seq, at: now, done });
    this.wantSave(now + (this.o.saveAfterMs ?? 250));
    if (en.putSeq !== 0) return; // its put in flight: this value goes when it settles
    this.todo.add(en);
    // This agent alone, not a walk of every waiting one (thousands in an outage): the timer does that.
    // While puts fail, only the canary goes (pump).
    if (this.ready && !this.backedOff && this.inflight < (this.o.window ?? 256) && !this.send(en)) this.wantSave(now);
  }

  /** Everything known is in the bucket. */
  get settled(): boolean {
    return this.todo.size === 0 && this.inflight === 0;
  }

  stats(): KvLatestStats {
    let pending = 0;
    let saved = 0;
    for (const en of this.entries.values()) {
      if (en.seq > en.kvSeq) pending++;
      if (en.sureSeq > 0) saved++;
    }
    return { pending, saved, ...this.c };
  }

  /** Stop: no put or write starts after it; the one being written is waited for (the spool's directory is closed after). */
  async close(): Promise<void> {
    this.closed = true;
    this.putTimer.cancel();
    this.saveTimer.cancel();
    await this.saving?.catch(() => {});
  }

  private entry(agent: string): Entry {
    let en = this.entries.get(agent);
    if (!en) {
      en = {
        agent, seq: 0, body: new Uint8Array(0), line: null, lineBytes: 0, putSeq: 0, kvSeq: 0, fileLow: 0, lowBody: null, fileHigh: 0, sureSeq: 0, savingSeq: 0,
        waiters: [],
      };
      this.entries.set(agent, en);
    }
    return en;
  }

  private lineOf(en: Entry): string {
    if (en.line === null) {
      en.line = encodeLine(en.agent, en.seq, en.body);
      en.lineBytes = bytesOf(en.line);
    }
    return en.line;
  }

  /**
   * The value of `en` that may be put now without the file ever holding an older one than the bucket:
   * its latest, when neither the file nor the write in flight names the agent or both hold it (or
   * newer); else the file's own value while the bucket lacks it (a write that fails must not keep the
   * bucket stale for good); else none: a write first.
   */
  private putNow(en: Entry): { seq: number; body: Uint8Array } | null {
    const ok = (f: number) => f === 0 || f >= en.seq;
    if (ok(en.fileLow) && ok(en.savingSeq)) return { seq: en.seq, body: en.body };
    if (en.lowBody !== null && en.fileLow > en.kvSeq && (en.savingSeq === 0 || en.savingSeq >= en.fileLow)) {
      return { seq: en.fileLow, body: en.lowBody };
    }
    return null;
  }

  private pump(): void {
    if (!this.ready || this.closed) return;
    const now = performance.now();
    const window = this.o.window ?? 256;
    let blocked = false;
    if (this.backedOff) {
      // Puts fail (the bucket away, an election, refused): one goes every CANARY_MS — with thousands of
      // agents waiting, each on its own backoff, they were thousands of failed puts a second.
      const due = now - this.canaryAt >= CANARY_MS;
      if (due && this.inflight < window) {
        for (const en of this.todo) {
          if (this.send(en)) {
            this.canaryAt = now;
            break;
          }
          blocked = true;
        }
      }
      // The next look CANARY_MS on — also when none could go (each waiting for a write: the write's end
      // looks again): armed at the last canary's time, it was a walk of every agent each millisecond.
      if (this.todo.size) this.pumpAt((due ? now : this.canaryAt) + CANARY_MS);
    } else {
      // No put failed since the last that worked: every waiting agent may go (a failure backs all off).
      for (const en of this.todo) {
        if (this.inflight >= window) break;
        if (!this.send(en)) blocked = true;
      }
    }
    if (blocked) this.wantSave(now);
  }

  /** The next walk of the waiting puts, at `at` at the latest. */
  private pumpAt(at: number): void {
    if (!this.closed) this.putTimer.arm(Math.max(at, performance.now() + 1));
  }

  /** Put `en`'s value (false: it must wait for a write of the file). */
  private send(en: Entry): boolean {
    const v = this.putNow(en);
    if (v === null) return false;
    this.todo.delete(en);
    en.putSeq = v.seq;
    this.inflight++;
    this.c.puts++;
    this.o.put(en.agent, v.body).then(() => this.stored(en), (err) => (err instanceof KvValueRefused ? this.dropped(en, err) : this.failed(en, err)));
    return true;
  }

  private stored(en: Entry): void {
    this.putDone(en, true);
  }

  /**
   * The put's value can never be stored: settled as if it were (its records may go, the file need not
   * keep it), counted and said; the bucket keeps the agent's older value until a newer one is put. No
   * back-off: the value was refused, not the bucket.
   */
  private dropped(en: Entry, err: KvValueRefused): void {
    this.c.dropped++;
    this.o.onDropped?.(err, en.agent);
    this.putDone(en, false);
  }

  /** The put in flight done with: the bucket holds its value (`stored`) or never will; what waited on it goes. */
  private putDone(en: Entry, stored: boolean): void {
    this.inflight--;
    en.kvSeq = Math.max(en.kvSeq, en.putSeq);
    en.putSeq = 0;
    this.release(en, en.kvSeq);
    if (stored) this.backedOff = false; // the bucket takes puts again: everyone goes
    if (en.seq > en.kvSeq) this.todo.add(en);
    else if (en.fileHigh > 0) this.wantSave(performance.now() + (this.o.cleanupMs ?? 1000)); // the file names a value the bucket has
    this.forget(en);
    this.pump();
  }

  private failed(en: Entry, err: unknown): void {
    this.inflight--;
    en.putSeq = 0;
    this.c.failures++;
    this.backedOff = true;
    this.todo.add(en);
    this.o.onPutFailed?.(err, en.agent);
    // Not a walk now: in an outage every put fails, and each walk passes every waiting agent.
    this.pumpAt(performance.now() + 50);
  }

  /** The waiters of values up to `seq` are done. */
  private release(en: Entry, seq: number): void {
    if (en.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of en.waiters) {
      if (w.seq <= seq) w.done();
      else keep.push(w);
    }
    en.waiters = keep;
  }

  /** An entry the bucket holds, the file does not name, nothing waits on: let go. */
  private forget(en: Entry): void {
    if (en.seq <= en.kvSeq && en.putSeq === 0 && en.fileHigh === 0 && en.savingSeq === 0 && en.waiters.length === 0) {
      this.entries.delete(en.agent);
      this.todo.delete(en);
    }
  }

  private wantSave(at: number): void {
    if (this.closed) return;
    if (this.saving) {
      this.saveAgainAt = Math.min(this.saveAgainAt, at);
      return;
    }
    this.saveTimer.arm(Math.max(at, this.saveFailedAt + SAVE_RETRY_MS));
  }

  /**
   * Whether a write is due now: a record waited saveAfterMs, a put waits for the file, or the file
   * names values the bucket has (removed when that is all, rewritten when it holds twice what is live).
   * Else, when one will be: the next look is armed then.
   */
  private saveDue(now: number): boolean {
    const after = this.o.saveAfterMs ?? 250;
    let next = Infinity;
    let stale = false;
    let live = false;
    let named = false;
    for (const en of this.entries.values()) {
      if (en.seq > en.kvSeq) live = true;
      if (en.fileHigh > 0) named = true;
      if (en.fileHigh > 0 && en.fileHigh <= en.kvSeq) stale = true;
      if (en.putSeq === 0 && en.seq > en.kvSeq && this.putNow(en) === null) return true;
      if (en.waiters.length > 0 && en.seq > en.sureSeq) {
        const due = en.waiters[0].at + after;
        if (due <= now) return true;
        if (due < next) next = due;
      }
    }
    if (stale && !live) return true; // removed
    if (this.fileExists && !named && !live) return true; // a file found at start with no value taken: removed
    if (this.dropsUnread) return true; // rewritten without the lines this run cannot read
    if (stale && this.overgrown()) return true; // rewritten smaller
    if (next < Infinity) this.wantSave(next);
    return false;
  }

  /** The file holds more than twice (and a MiB) what the values the bucket lacks would take: a rewrite shrinks it. */
  private overgrown(): boolean {
    let live = 0;
    for (const en of this.entries.values()) {
      if (en.seq > en.kvSeq) {
        this.lineOf(en);
        live += en.lineBytes;
      }
    }
    return this.fileExists && this.fileBytes > 2 * live + (1 << 20);
  }

  /**
   * Write the file: append the values the bucket lacks that it does not hold, or — after a start, a
   * failed append, or once it holds twice what is live — rewrite it whole with them; remove it once
   * the bucket has all. Done, the records it covers may go, the puts that waited for it go, and what it
   * no longer names is let go. Failed: tried again; meanwhile a failed append counts as maybe written.
   */
  private save(): void {
    if (this.closed || this.saving || !this.saveDue(performance.now())) return;
    const max = this.o.maxBytes ?? MAX_PENDING_BYTES;
    const live = [...this.entries.values()].filter((en) => en.seq > en.kvSeq);
    let how: 'append' | 'replace';
    let chosen: Entry[];
    if (live.length === 0) {
      how = 'replace';
      chosen = [];
    } else if (!this.fileExists || this.rewriteNext || this.overgrown()) {
      how = 'replace';
      chosen = live;
    } else {
      how = 'append';
      chosen = live.filter((en) => en.seq > en.fileHigh);
      if (chosen.length === 0) return;
    }
    // Within the bound (the oldest first: the map keeps agents in the order they first waited); the
    // others wait in the spool for their puts. But a rewrite keeps whatever the file surely holds that
    // the bucket lacks, past the bound too: their records went (or came from an earlier run's file) —
    // dropped, a stop lost them (found by review: 10,849 of 100,000 agents).
    const lines: string[] = [];
    const written: Entry[] = [];
    let bytes = how === 'append' ? this.fileBytes : 0;
    for (const en of chosen) {
      const line = this.lineOf(en);
      const kept = how === 'replace' && en.sureSeq > en.kvSeq;
      if (!kept && bytes + en.lineBytes > 2 * max) continue;
      bytes += en.lineBytes;
      lines.push(line);
      written.push(en);
    }
    if (how === 'append' && written.length === 0) {
      // At the bound. A rewrite makes room when the file names an agent it need not (its value the bucket
      // has: dropped, that agent's newer value may be put — it waited for the file for good otherwise),
      // or holds many superseded lines; else the new values wait in the spool until the bucket takes puts.
      let needed = 0;
      let droppable = false;
      for (const en of this.entries.values()) {
        if (en.sureSeq > en.kvSeq) {
          this.lineOf(en);
          needed += en.lineBytes;
        } else if (en.fileHigh > 0) droppable = true;
      }
      if (droppable || this.fileBytes > needed + Math.min(1 << 20, max)) {
        this.rewriteNext = true;
        this.wantSave(performance.now() + SAVE_RETRY_MS);
      }
      return;
    }
    const seqs = new Map<Entry, { seq: number; body: Uint8Array }>();
    for (const en of written) {
      en.savingSeq = en.seq;
      seqs.set(en, { seq: en.seq, body: en.body });
    }
    const data = lines.join('');
    this.c.saves++;
    this.saving = this.o.write(how, data).then(() => this.wrote(how, data, seqs), async (err) => {
      for (const [en, w] of seqs) {
        en.savingSeq = 0;
        // An append that failed may have written some of its lines: the file may name the value now
        // (its highest), and an agent it did not name may be named by it (its lowest, too); no record
        // goes for it (not surely there). The next write rewrites the file whole.
        if (how === 'append') {
          if (en.fileLow === 0) {
            en.fileLow = w.seq;
            en.lowBody = w.body;
          }
          en.fileHigh = Math.max(en.fileHigh, w.seq);
        }
      }
      if (how === 'append') {
        this.rewriteNext = true;
        this.fileBytes += bytesOf(data);
      }
      this.saveFailed(err);
      // The file as it was stands. When the bucket holds every value it surely names (those whose
      // records went), it is removed (an unlink needs no room on a full disk): the file's own values are
      // put first (putNow), then the newer ones.
      if (!this.closed && [...this.entries.values()].every((en) => en.sureSeq <= en.kvSeq)) {
        await this.o.write('replace', '');
        this.wrote('replace', '', new Map());
      }
    }).catch(() => { /* the removal failed: the file as it was stands, tried again */ }).finally(() => {
      this.saving = null;
      if (this.closed) return;
      const again = this.saveAgainAt;
      this.saveAgainAt = Infinity;
      if (again < Infinity) this.wantSave(again);
      this.pump();
    });
  }

  /**
   * A write done: the file holds `written` — appended to what it held, or alone (replace; '' removed it).
   * The records it covers may go; what it no longer names (and the bucket has) is let go.
   */
  private wrote(how: 'append' | 'replace', data: string, written: Map<Entry, { seq: number; body: Uint8Array }>): void {
    this.fileExists = how === 'append' || data !== '';
    this.fileBytes = how === 'append' ? this.fileBytes + bytesOf(data) : bytesOf(data);
    if (how === 'replace') this.rewriteNext = this.dropsUnread = false;
    for (const en of how === 'replace' ? this.entries.values() : written.keys()) {
      const w = written.get(en);
      en.fileLow = en.fileHigh = en.sureSeq = w?.seq ?? 0;
      en.lowBody = w?.body ?? null;
      en.savingSeq = 0;
      if (w) this.release(en, w.seq);
    }
    // A file left naming values the bucket has is looked at again.
    let stale = false;
    for (const en of [...this.entries.values()]) {
      if (en.fileHigh > 0 && en.fileHigh <= en.kvSeq) stale = true;
      this.forget(en);
    }
    if (stale) this.wantSave(performance.now() + (this.o.cleanupMs ?? 1000));
  }

  private saveFailed(err: unknown): void {
    this.c.saveFailures++;
    this.saveFailedAt = performance.now();
    this.o.onSaveFailed?.(err);
    this.saveAgainAt = Math.min(this.saveAgainAt, this.saveFailedAt + SAVE_RETRY_MS);
  }
}
