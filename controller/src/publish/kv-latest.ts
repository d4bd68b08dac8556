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
// in the file `kv.pending` beside the spool's segments (replaced whole, fsynced): a restart puts what
// the file holds. The file is written only when a value waited `saveAfterMs` for its put (an outage, a
// slow bucket), never on the path of a put that works.
//
// Never backwards, whatever instant the tap is killed at:
//   - the file must never hold an agent's value older than the bucket's (a restart would put it back):
//     a newer value of an agent the file names is saved there before it is put — or, while saving
//     fails, the file's own value is put first and the file removed once the bucket has all it holds;
//   - a record of an earlier run replayed after a restart is not put when the file gave its agent a
//     newer value (its floor);
//   - one put at a time per agent, each settled (stored, failed or timed out) before the next.
import { isAgentIdToken } from './subjects.js';

export interface KvLatestOptions {
  /** The KV put (`$KV.<bucket>.<agent>`): resolves once stored; rejects on a failure or a timeout. */
  put(agent: string, body: Uint8Array): Promise<void>;
  /** Replace `kv.pending` with `data` (fsynced); '' removes it. Rejects when it could not. */
  save(data: string): Promise<void>;
  /** A put failed (said by the caller, rate-limited). */
  onPutFailed?(err: unknown, agent: string): void;
  /** The file could not be written (said by the caller, rate-limited). */
  onSaveFailed?(err: unknown): void;
  /** How long a value waits for its put before it is saved in the file instead (ms, 250). */
  saveAfterMs?: number;
  /** Puts in flight at most (256). */
  window?: number;
  /** A cleanup of the file (values the bucket now holds) waits this long, to gather them (ms, 1000). */
  cleanupMs?: number;
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
  /** The latest value known: its spool seq and body. */
  seq: number;
  body: Uint8Array;
  /** The value of the put in flight (0: none). */
  putSeq: number;
  /** The newest value the bucket is known to hold (0: none known). */
  kvSeq: number;
  /** The value the file on disk holds (0: the file does not name the agent), and its body. */
  fileSeq: number;
  fileBody: Uint8Array | null;
  /** The value the file being written holds (0: it does not name the agent, or none is being written). */
  savingSeq: number;
  waiters: Waiter[];
  attempts: number;
  notBefore: number;
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
  /** Lines of a file found at start that were not a value (counted, skipped). */
  badLines: number;
}

/** At most this much is written to `kv.pending` (a value a line): beyond it, records wait in the spool for their puts. */
export const MAX_PENDING_BYTES = 64 << 20;
/** While every put backs off, the first goes ahead this often (ms). */
const CANARY_MS = 500;
/** After a failed save, the next try (ms). */
const SAVE_RETRY_MS = 1000;

function backoffMs(n: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(n, 6));
}

/** The values of a `kv.pending` file; lines that are not one are counted, never thrown on. */
export function parsePending(text: string): { values: PendingValue[]; bad: number } {
  const values: PendingValue[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const v = JSON.parse(line) as { a?: unknown; s?: unknown; b?: unknown };
      if (typeof v.a !== 'string' || !isAgentIdToken(v.a) || typeof v.s !== 'number' || !Number.isSafeInteger(v.s) || v.s <= 0
        || typeof v.b !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.b)) {
        bad++;
        continue;
      }
      values.push({ agent: v.a, seq: v.s, body: Buffer.from(v.b, 'base64') });
    } catch {
      bad++;
    }
  }
  return { values, bad };
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
  private backedOff = false;
  private canaryAt = -Infinity;
  private putTimer: NodeJS.Timeout | null = null;
  private putAt = Infinity;
  private saveTimer: NodeJS.Timeout | null = null;
  private saveAt = Infinity;
  private saving: Promise<void> | null = null;
  /** A save wanted while one was being written: when (Infinity: none). */
  private saveAgainAt = Infinity;
  private saveFailedAt = -Infinity;
  private readonly c = { puts: 0, failures: 0, saves: 0, saveFailures: 0, badLines: 0 };

  constructor(o: KvLatestOptions) {
    this.o = o;
  }

  /** What an earlier run saved (`kv.pending`, parsed): put once the bucket takes puts; the file keeps them meanwhile. */
  load(found: { values: PendingValue[]; bad: number }): void {
    this.c.badLines += found.bad;
    for (const v of found.values) {
      const en = this.entry(v.agent);
      if (v.seq <= en.seq) continue;
      en.seq = v.seq;
      en.body = v.body;
      en.fileSeq = v.seq;
      en.fileBody = v.body;
      this.floors.set(v.agent, v.seq);
      this.todo.add(en);
    }
    this.pump();
  }

  /** Whether the bucket can be written to (connected, the bucket found or made). */
  setReady(ready: boolean): void {
    this.ready = ready;
    if (ready) {
      // A new connection, or the bucket made again: what backed off goes now.
      for (const en of this.todo) en.notBefore = 0;
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
    if (seq <= en.kvSeq || seq <= en.fileSeq) {
      done();
      return;
    }
    if (seq > en.seq) {
      en.seq = seq;
      en.body = body;
    }
    const now = performance.now();
    en.waiters.push({ seq, at: now, done });
    this.wantSave(now + (this.o.saveAfterMs ?? 250));
    if (en.putSeq !== 0) return; // its put in flight: this value goes when it settles
    this.todo.add(en);
    // This agent alone, not a walk of every waiting one (thousands in an outage): the timer does that.
    if (this.ready && en.notBefore <= now && this.inflight < (this.o.window ?? 256) && !this.send(en)) this.wantSave(now);
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
      if (en.fileSeq > 0) saved++;
    }
    return { pending, saved, ...this.c };
  }

  /** Stop: no put or save starts after it; the one being written is waited for (the spool's directory is closed after). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.putTimer) clearTimeout(this.putTimer);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.putTimer = this.saveTimer = null;
    this.putAt = this.saveAt = Infinity;
    await this.saving?.catch(() => {});
  }

  private entry(agent: string): Entry {
    let en = this.entries.get(agent);
    if (!en) {
      en = { agent, seq: 0, body: new Uint8Array(0), putSeq: 0, kvSeq: 0, fileSeq: 0, fileBody: null, savingSeq: 0, waiters: [], attempts: 0, notBefore: 0 };
      this.entries.set(agent, en);
    }
    return en;
  }

  /**
   * The value of `en` that may be put now without the file ever holding an older one than the bucket:
   * its latest, when neither the file nor the one being written names the agent or both hold it (or
   * newer); else the file's own value while the bucket lacks it (a save that fails must not keep the
   * bucket stale for good); else none: a save first.
   */
  private putNow(en: Entry): { seq: number; body: Uint8Array } | null {
    const ok = (f: number) => f === 0 || f >= en.seq;
    if (ok(en.fileSeq) && ok(en.savingSeq)) return { seq: en.seq, body: en.body };
    if (en.fileBody !== null && en.fileSeq > en.kvSeq && (en.savingSeq === 0 || en.savingSeq >= en.fileSeq)) {
      return { seq: en.fileSeq, body: en.fileBody };
    }
    return null;
  }

  private pump(): void {
    if (!this.ready || this.closed) return;
    const now = performance.now();
    const window = this.o.window ?? 256;
    let next = Infinity;
    let first: Entry | null = null;
    let blocked = false;
    for (const en of this.todo) {
      if (this.inflight >= window) break;
      if (en.notBefore > now) {
        if (en.notBefore < next) next = en.notBefore;
        if (first === null || en.notBefore < first.notBefore) first = en;
        continue;
      }
      if (!this.send(en)) blocked = true;
    }
    // Every put backing off (the bucket away, an election): the first goes ahead every CANARY_MS; its
    // success sends the others at once.
    if (first !== null && first.notBefore - now > CANARY_MS && this.inflight < window && now - this.canaryAt >= CANARY_MS) {
      this.canaryAt = now;
      if (!this.send(first)) blocked = true;
    }
    if (first !== null) next = Math.min(next, Math.max(this.canaryAt + CANARY_MS, now + 1));
    this.pumpAt(next);
    if (blocked) this.wantSave(now);
  }

  /** The next walk of the waiting puts, at `at` at the latest. */
  private pumpAt(at: number): void {
    if (at === Infinity || at >= this.putAt || this.closed) return;
    if (this.putTimer) clearTimeout(this.putTimer);
    this.putAt = at;
    this.putTimer = setTimeout(() => {
      this.putTimer = null;
      this.putAt = Infinity;
      this.pump();
    }, Math.max(1, at - performance.now()));
  }

  /** Put `en`'s value (false: it must wait for a save). */
  private send(en: Entry): boolean {
    const v = this.putNow(en);
    if (v === null) return false;
    this.todo.delete(en);
    en.putSeq = v.seq;
    this.inflight++;
    this.c.puts++;
    this.o.put(en.agent, v.body).then(() => this.stored(en), (err) => this.failed(en, err));
    return true;
  }

  private stored(en: Entry): void {
    this.inflight--;
    en.kvSeq = Math.max(en.kvSeq, en.putSeq);
    en.putSeq = 0;
    en.attempts = 0;
    en.notBefore = 0;
    this.release(en, en.kvSeq);
    if (this.backedOff) {
      this.backedOff = false;
      for (const o of this.todo) o.notBefore = 0;
    }
    if (en.seq > en.kvSeq) this.todo.add(en);
    else if (en.fileSeq > 0) this.wantSave(performance.now() + (this.o.cleanupMs ?? 1000)); // the file names a value the bucket has
    this.forget(en);
    this.pump();
  }

  private failed(en: Entry, err: unknown): void {
    this.inflight--;
    en.putSeq = 0;
    en.notBefore = performance.now() + backoffMs(en.attempts++);
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
    if (en.seq <= en.kvSeq && en.putSeq === 0 && en.fileSeq === 0 && en.savingSeq === 0 && en.waiters.length === 0) {
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
    at = Math.max(at, this.saveFailedAt + SAVE_RETRY_MS);
    if (at >= this.saveAt) return;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveAt = at;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.saveAt = Infinity;
      this.save();
    }, Math.max(0, at - performance.now()));
  }

  /**
   * Whether a save is due now: a record waited saveAfterMs, a put waits for the file, or the file names
   * a value the bucket has (a cleanup). Else, when one will be: the next look is armed then.
   */
  private saveDue(now: number): boolean {
    const after = this.o.saveAfterMs ?? 250;
    let next = Infinity;
    for (const en of this.entries.values()) {
      if (en.fileSeq > 0 && en.fileSeq <= en.kvSeq) return true;
      if (en.putSeq === 0 && en.seq > en.kvSeq && this.putNow(en) === null) return true;
      if (en.waiters.length > 0) {
        const due = en.waiters[0].at + after;
        if (due <= now) return true;
        if (due < next) next = due;
      }
    }
    if (next < Infinity) this.wantSave(next);
    return false;
  }

  /**
   * Write the file: every value the bucket lacks. Done, the records it covers may go, the puts that
   * waited for it go, and what it no longer names is let go. Failed: the old file stands; tried again.
   */
  private save(): void {
    if (this.closed || this.saving || !this.saveDue(performance.now())) return;
    const lines: string[] = [];
    const covered: Entry[] = [];
    let bytes = 0;
    for (const en of this.entries.values()) {
      if (en.seq <= en.kvSeq) continue;
      const line = `${JSON.stringify({ a: en.agent, s: en.seq, b: Buffer.from(en.body).toString('base64') })}\n`;
      bytes += line.length;
      lines.push(line);
      covered.push(en);
    }
    const written = new Map<Entry, { seq: number; body: Uint8Array }>();
    let wrote: Promise<void>;
    if (bytes > MAX_PENDING_BYTES) {
      // Too much to write at every change: the records wait in the spool for their puts, as before this file.
      wrote = Promise.reject(new Error(`more than ${MAX_PENDING_BYTES >> 20} MiB of values wait for the KV bucket: not saved`));
    } else {
      for (const en of covered) {
        en.savingSeq = en.seq;
        written.set(en, { seq: en.seq, body: en.body });
      }
      this.c.saves++;
      wrote = this.o.save(lines.join(''));
    }
    this.saving = wrote.then(() => this.saved(written), async (err) => {
      for (const en of covered) en.savingSeq = 0;
      this.saveFailed(err);
      // The file as it was stands. When the bucket holds all it names, it goes (an unlink needs no room
      // on a full disk): the puts of newer values of its agents may go on meanwhile.
      if (!this.closed && [...this.entries.values()].every((en) => en.fileSeq === 0 || en.fileSeq <= en.kvSeq)) {
        await this.o.save('');
        this.saved(new Map());
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

  /** The file now holds `written` (and nothing else): the records it covers may go; what it no longer names is let go. */
  private saved(written: Map<Entry, { seq: number; body: Uint8Array }>): void {
    for (const en of this.entries.values()) {
      const w = written.get(en);
      en.fileSeq = w?.seq ?? 0;
      en.fileBody = w?.body ?? null;
      en.savingSeq = 0;
      if (w) this.release(en, w.seq);
    }
    let cleanup = false;
    for (const en of [...this.entries.values()]) {
      // A put that landed while this file was written: the file names a value the bucket has.
      if (en.fileSeq > 0 && en.fileSeq <= en.kvSeq) cleanup = true;
      this.forget(en);
    }
    if (cleanup) this.wantSave(performance.now() + (this.o.cleanupMs ?? 1000));
  }

  private saveFailed(err: unknown): void {
    this.c.saveFailures++;
    this.saveFailedAt = performance.now();
    this.o.onSaveFailed?.(err);
    this.saveAgainAt = Math.min(this.saveAgainAt, this.saveFailedAt + SAVE_RETRY_MS);
  }
}
