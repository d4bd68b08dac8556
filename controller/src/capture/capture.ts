// The capture stage: owns the BPF programs through the shim and turns perf
// records into CaptureRecord batches. The event loop calls the shim itself,
// synchronously (no libuv worker, no koffi async call: a hand-over between
// threads per batch cost more than the batch), and no call waits: take, rest
// and delivered only try the lock the shim's reader thread holds while it empties
// the rings, and come back at once when it is busy (see wdbtap_shim.h).
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { loadShim, type ShimLib } from './shim.js';
import { COUNTER_NAMES, RECORD_SIZE, parseRecords, type CaptureCounters } from './record-layout.js';
import type { CaptureRecord } from '../types.js';
import { KernelSupportError } from '../errors.js';
import { DEFAULT_ROUND_MS, MAX_ROUND_MS, isRoundMs } from './round.js';
import {
  DEFAULT_TARGET_NAMES, formatFsId, resolveHome, sameFsId, markRunning, trustedExecutables, kernelFollows, wdbDirOf, wdbSocketId, type HomeIdentity,
} from './targets.js';
import { HomePin, type HomeMove } from './home-pin.js';
import { HeldDirs } from './held-dirs.js';
import { explainPerfBufferError } from './memlock.js';

export { KernelSupportError, DEFAULT_ROUND_MS, MAX_ROUND_MS };

export type Hook = 'sendto' | 'write' | 'sendmsg' | 'writev';
export const HOOKS: readonly Hook[] = ['sendto', 'write', 'sendmsg', 'writev'];
const HOOK_BITS: Record<Hook, number> = { sendto: 1, write: 2, sendmsg: 4, writev: 8 };
/** exec/fork/exit tracepoints: always attached with the write hooks, to follow daemons as they start. */
const PROCS_BIT = 16;

export { DEFAULT_TARGET_NAMES };

export interface CaptureOptions {
  objPath: string;
  libPath: string;
  /** The Wazuh home whose wazuh-db socket and daemons are followed (by identity: targets.ts). */
  home: string;
  hooks?: Hook[];
  /** Executable basenames of the target daemons (in `<home>/bin`). */
  targetNames?: string[];
  /**
   * The `global` commands whose requests and replies leave the kernel (the agent gives the ones its
   * state uses); `all`, the default, for every `global` request (the `capture` command).
   */
  commands?: readonly string[] | 'all';
  /**
   * Unchanged keepalives as ticks (bpf/shim/fastpath.h): the consumer must decode with a WdbDecoder
   * that tells forgetKey() its misses. Off by default: a record for every write.
   */
  fastpath?: boolean;
  /**
   * How often the home's identity is looked at again while attached (default 2 s); running processes are
   * walked again then only when the daemons' executables changed, or the last walk is WALK_EVERY_MS old
   * (the kernel follows exec/fork meanwhile).
   */
  rescanMs?: number;
  /** Pages per CPU of the perf buffer (a power of two). */
  perfPages?: number;
  /** capture_interval: milliseconds between rounds while records flow (DEFAULT_ROUND_MS; setRoundMs). */
  roundMs?: number;

  /** A rescan failed (EMFILE, …): it is retried at the next one. Default: ignored. */
  onRescanError?: (e: Error) => void;
  /** Which home `home` names, for the whole run (home-pin.ts); the agent shares its own. Default: one of its own. */
  pin?: HomePin;
}

/** What `status` and `capture` show of the home followed. */
export interface IdentityView {
  home: string;
  /** `<home>/queue/db`, whose entry `wdb` the kernel matches; null: missing (nothing is captured). */
  wdb_dir: string | null;
  /** The socket `<home>/queue/db/wdb` as it is now. */
  wdb_socket: string | null;
  exe_dirs: { path: string; id: string | null }[];
  /** The home's path leads to another home now (home-pin.ts): none of it is followed; null while it does not. */
  moved: HomeMove | null;
}

const ERR_LEN = 512;
/**
 * Rounds without a record before the loop rests on the pipe (a rest and its wake-up cost a round's).
 * A rest at least this many rounds long says records are sparse (fewer than one every few rounds: a
 * manager of a few thousand agents, one keepalive each 10 s). The round it ends with then rests again
 * as soon as it leaves nothing behind: the REST_ROUNDS rounds it would wait would find nothing, each a
 * wake-up of the event loop (~60 µs of CPU here) — at 200 keepalives/s, two of a keepalive's ~4.
 */
const REST_ROUNDS = 2;
/**
 * What one take copies at most: whole records, so at least one of the largest (4 + 88 + a 32 KiB
 * chunk); a batch the pipeline handles in a millisecond or two (~64 whole keepalives, ~680 ticks).
 */
const TAKE_BYTES = 64 << 10;
/**
 * A backlog is taken in slices of about this long, and the event loop's other work — NATS's socket,
 * its acknowledgements, timers, signals, the control socket — runs between two slices. Taken to the
 * end in one go, a backlog that grows as fast as it is taken (a burst of new agents) held the loop for
 * seconds: nothing was sent or confirmed meanwhile, and every event waited in memory.
 */
const SLICE_MS = 2;

/** Where the records go: start()'s two callbacks. */
interface Consumer {
  onBatch: (records: CaptureRecord[]) => void | Promise<void>;
  onError: (e: Error) => void;
}

function cstr(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString('utf8', 0, nul >= 0 ? nul : buf.length);
}

/**
 * Kernel readiness alone (privileges, BTF, tracefs, bpf() and perf events),
 * before anything else is read or connected: a clear exit 3 first.
 */
export function checkKernel(libPath: string): void {
  if (!existsSync(libPath)) throw new Error(`${libPath} is missing: build it with 'make'`);
  const err = Buffer.alloc(ERR_LEN);
  if (loadShim(libPath).check_kernel(err, ERR_LEN) < 0) throw new KernelSupportError(cstr(err));
}

/** The instructions the kernel's verifier processes for one program before it gives up (BPF_COMPLEXITY_LIMIT_INSNS). */
export const VERIFIER_LIMIT = 1_000_000;

/** The longest the processes go without a walk of /proc while attached, executables unchanged (Capture.rescan). */
export const WALK_EVERY_MS = 30_000;

export class Capture {
  private readonly lib: ShimLib;
  private handle: unknown = null;
  /** The hooked syscalls as the shim's bits: what open() loads is what attach() attaches. */
  private readonly hookBits: number;
  private running = false;
  private bell: Socket | null = null;
  private draining = false;
  private readonly buf = Buffer.alloc(TAKE_BYTES);

  /** Daemon names; a daemon's id in the kernel is its index + 1. */
  private readonly names: string[];
  private home: HomeIdentity;
  private readonly pin: HomePin;
  /** The pin was made here (no caller shares it): let go at close(). */
  private readonly ownPin: boolean;
  /** The directories of the identities the kernel has, held open (held-dirs.ts). */
  private readonly held = new HeldDirs();
  private rescanTimer: NodeJS.Timeout | null = null;
  /** The trusted executables (trustedExecutables) the last walk of /proc marked by, and when (ms); null: walk next time. */
  private walked: { trusted: string; atMs: number } | null = null;
  private walkCount = 0;

  private constructor(private readonly opts: CaptureOptions) {
    for (const p of [opts.objPath, opts.libPath]) {
      if (!existsSync(p)) throw new Error(`${p} is missing: build it with 'make'`);
    }
    this.lib = loadShim(opts.libPath);
    this.hookBits = (opts.hooks ?? ['sendto']).reduce((m, k) => m | HOOK_BITS[k], 0);

    this.names = [...new Set(opts.targetNames ?? DEFAULT_TARGET_NAMES)];
    this.home = { home: opts.home, wdbDir: null, socket: null, exeDirs: [] };
    this.pin = opts.pin ?? new HomePin(opts.home);
    this.ownPin = opts.pin === undefined;
    this.setRoundMs(opts.roundMs ?? DEFAULT_ROUND_MS);
  }

  /** Milliseconds between rounds while records flow (capture_interval). */
  roundMs = DEFAULT_ROUND_MS;

  /** capture_interval, at once: the next round waits this long (a reload changes it without a restart). */
  setRoundMs(ms: number): void {
    if (!isRoundMs(ms)) throw new RangeError(`capture interval must be a whole number of milliseconds from 1 to ${MAX_ROUND_MS}: ${ms}`);
    this.roundMs = ms;
  }

  /** Check the kernel, load the programs and set the filters; nothing is attached yet. */
  static open(opts: CaptureOptions): Capture {
    const c = new Capture(opts);
    const err = Buffer.alloc(ERR_LEN);
    // A pin of its own holds directories open (home-pin.ts): let go when the open fails.
    const fail = (e: Error): never => {
      if (c.ownPin) c.pin.release();
      throw e;
    };
    if (c.lib.record_size() !== RECORD_SIZE) {
      fail(new Error(`record layout mismatch: shim ${c.lib.record_size()} bytes, controller ${RECORD_SIZE}`));
    }
    if (c.lib.check_kernel(err, ERR_LEN) < 0) fail(new KernelSupportError(cstr(err)));
    c.kernelChecked = true;
    const pages = opts.perfPages ?? 256;
    const h = c.lib.open(opts.objPath, pages, c.hookBits, err, ERR_LEN);
    if (!h) fail(new KernelSupportError(explainPerfBufferError(cstr(err), pages)));
    c.handle = h;
    const prog = Buffer.alloc(32);
    const insns = c.lib.verified_insns(h, prog, prog.length);
    c.verifier = insns ? { program: cstr(prog), instructions: insns, limit: VERIFIER_LIMIT } : null;
    try {
      c.names.forEach((name, i) => c.check(c.lib.target_name(h, name, i + 1, 1), `target ${name}`));
      const cmds = opts.commands ?? 'all';
      c.check(c.lib.set_commands(h, cmds === 'all' ? '' : cmds.join('\n'), cmds === 'all' ? 1 : 0), 'commands');
      c.lib.set_fastpath(h, opts.fastpath ? 1 : 0);
      c.refreshIdentity(true);
    } catch (e) {
      c.lib.close(h);
      c.handle = null;
      c.held.keepOnly([]);
      return fail(e as Error);
    }
    return c;
  }

  /**
   * The kernel verifier's work on the longest program at load (null: the kernel did not say): a
   * kernel whose verifier checks them much harder shows here before it refuses them.
   */
  verifier: { program: string; instructions: number; limit: number } | null = null;

  /** open() has just checked the kernel: the first attach() need not again. */
  private kernelChecked = false;

  private check(rc: number, what: string): number {
    if (rc < 0) throw new Error(`${what}: ${this.lib.last_error(this.handle)}`);
    return rc;
  }

  private get h(): unknown {
    if (!this.handle) throw new Error('capture is closed');
    return this.handle;
  }

  /**
   * Attach the hooks. The process tracepoints go first so that a daemon
   * starting during the /proc scan is not missed; pids left from an earlier
   * attachment are dropped (nothing followed their exits while detached). Not while detachAsync() runs:
   * await whenDetached() first.
   */
  attach(): void {
    if (this.detaching) throw new Error('detaching: attach once it is done (whenDetached)');
    const bits = this.hookBits;
    // libbpf reads each tracepoint's id in tracefs as it attaches: unmounted since open() (by hand, by a
    // tool that cleans up after itself), an `attach` failed with a bare ENOENT. Checked again (~35 ms),
    // and mounted again when missing, as at start — or the missing piece named.
    if (this.kernelChecked) this.kernelChecked = false;
    else {
      const err = Buffer.alloc(ERR_LEN);
      if (this.lib.check_kernel(err, ERR_LEN) < 0) throw new KernelSupportError(cstr(err));
    }
    if (this.lib.attach(this.h, PROCS_BIT) < 0) throw new KernelSupportError(this.lib.last_error(this.handle));
    if (!this.rescanTimer) for (const pid of this.targets()) this.targetTgid(pid, 0);
    this.walked = null; // the marks were cleared (or the hooks were away): walk /proc whatever
    this.rescan();
    if (this.lib.attach(this.h, bits) < 0) {
      const err = this.lib.last_error(this.handle);
      this.detach();
      throw new KernelSupportError(err);
    }
    if (!this.rescanTimer) {
      this.rescanTimer = setInterval(() => this.rescan(), this.opts.rescanMs ?? 2000);
      this.rescanTimer.unref();
    }
  }

  /**
   * Detach at once, on this thread (a failed attach, a tool's exit, the agent's stop): also while a
   * detachAsync() waits for a libuv thread that may never come (a hung disk holds them all) — the shim
   * destroys each link once, under its lock, whichever call gets there first.
   */
  detach(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
    if (this.handle) this.lib.detach(this.handle);
  }

  /** A detachAsync() under way: its end. */
  private detaching: Promise<void> | null = null;

  /**
   * Detach without holding the event loop: removing a tracepoint's link waits for the kernel's RCU grace
   * periods — 170–250 ms for all of them here, during which no record was taken and no status answered.
   * The shim's detach runs on a libuv thread; meanwhile the capture reads as detached (nothing asks the
   * shim for its links), attach() waits for it (whenDetached), and a second call joins the first.
   */
  detachAsync(): Promise<void> {
    if (this.detaching) return this.detaching;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
    const h = this.handle;
    if (!h) return Promise.resolve();
    this.detaching = new Promise<void>((resolve) => { this.lib.detach.async(h, () => resolve()); }) // it cannot fail (returns 0)
      .finally(() => { this.detaching = null; });
    return this.detaching;
  }

  /** Resolves once no detachAsync() is under way (at once when none is). */
  whenDetached(): Promise<void> {
    return this.detaching ?? Promise.resolve();
  }

  /** A detachAsync() under way: the hooks are being removed (status says so). */
  get detachingNow(): boolean {
    return this.detaching !== null;
  }

  get attached(): boolean {
    return this.handle && !this.detaching ? (this.lib.is_attached(this.handle) & ~PROCS_BIT) !== 0 : false;
  }

  /** The hooks attached now, by name. */
  attachedHooks(): Hook[] {
    const mask = this.handle && !this.detaching ? this.lib.is_attached(this.handle) : 0;
    return HOOKS.filter((k) => (mask & HOOK_BITS[k]) !== 0);
  }

  /**
   * Give the kernel this home's identities again (a home installed after the tap
   * started, the framework's Python replaced; the socket wazuh-db re-creates
   * needs nothing: the kernel matches the directory's entry).
   */
  refreshIdentity(force = false): HomeIdentity {
    const old = this.home;
    let now = resolveHome(this.opts.home, this.names);
    // The path leads to another home (a container's pid reused by another's process): none of it is
    // followed, what was is kept (home-pin.ts; the pin says so). Not adopted: pinned, never replaced.
    if (!this.pin.holds({ 'queue/db': now.wdbDir, bin: now.exeDirs.find((d) => d.any === 0)?.id ?? null })) now = old;
    // Each identity the kernel gets is held open first (held-dirs.ts: its numbers cannot go to another
    // directory meanwhile); one that cannot be (replaced since, EMFILE) is not given: the next rescan.
    if (now !== old) {
      if (now.wdbDir && !this.held.hold(wdbDirOf(now.home), now.wdbDir)) now.wdbDir = null;
      now.exeDirs = now.exeDirs.filter((d) => this.held.hold(d.path, d.id));
    }
    // A home that became unreachable (a container's /proc/<pid>/root whose process ended) keeps the
    // identity last seen: what it named is gone, and its directories held open keep anything else
    // from having its numbers (held-dirs.ts), as the pin keeps another home from taking its path.
    if (!now.wdbDir && old.wdbDir) now.wdbDir = old.wdbDir;
    if (!now.exeDirs.length && old.exeDirs.length) now.exeDirs = old.exeDirs;
    if (force || !sameFsId(now.wdbDir, old.wdbDir)) {
      this.check(this.lib.set_wdb_dir(this.h, now.wdbDir?.dev ?? 0n, now.wdbDir?.ino ?? 0n), 'wdb directory');
    }
    const dirsKey = (h: HomeIdentity) => h.exeDirs.map((d) => `${d.id.dev}:${d.id.ino}:${d.any}`).join(',');
    if (force || dirsKey(now) !== dirsKey(old)) {
      const n = now.exeDirs.length;
      this.check(this.lib.set_exe_dirs(this.h, BigUint64Array.from(now.exeDirs, (d) => d.id.dev),
        BigUint64Array.from(now.exeDirs, (d) => d.id.ino), Uint32Array.from(now.exeDirs, (d) => d.any), n), 'executable directories');
    }
    this.home = now;
    this.held.keepOnly([...(now.wdbDir ? [now.wdbDir] : []), ...now.exeDirs.map((d) => d.id)]);
    return now;
  }

  /** What the tap follows, for people (status, capture). */
  identity(): IdentityView {
    const h = this.home;
    const moved = this.pin.moved;
    return {
      home: h.home,
      wdb_dir: h.wdbDir ? `${h.home.replace(/\/+$/, '')}/queue/db (${formatFsId(h.wdbDir)})` : null,
      // The path's socket is another home's while it leads there: not this one's.
      wdb_socket: moved ? null : formatFsId(wdbSocketId(h.home)),
      exe_dirs: h.exeDirs.map((d) => ({ path: d.path, id: formatFsId(d.id) })),
      moved,
    };
  }

  /**
   * Mark every running daemon of this home in the kernel (those started before
   * the tap; the kernel follows later ones from their exec). A failure (EMFILE,
   * ENFILE) is reported and retried at the next rescan: never fatal.
   *
   * The walk of /proc (a stat of every process's executable: ~14 µs a process here, 40 ms for 20,000,
   * on the loop's thread) is made again only when it can find something the kernel did not mark:
   * the daemons' executables or their directories changed (a new bin/, an upgrade, a home that
   * appeared — processes started from them before the kernel had the new directories), the last walk
   * failed or marked a process the kernel had not (a daemon forking meanwhile: its child is found by the
   * next walk), the kernel cannot tell a daemon by itself (kernelFollows: a daemon's file is a link out
   * of its directory, a hard link, another filesystem's), or the last walk is WALK_EVERY_MS old (a
   * safety net). Otherwise the exec hook, attached before the first walk, has marked every daemon
   * started since. Returns the processes a walk marked (empty when none was made).
   */
  rescan(): Map<number, number> {
    try {
      const home = this.refreshIdentity();
      const trusted = trustedExecutables(home, this.names);
      const sig = [...home.exeDirs.map((d) => `${formatFsId(d.id)}:${d.any}`), ...[...trusted].map(([k, d]) => `${k}=${d}`)].sort().join(' ');
      const now = Date.now();
      const w = this.walked;
      if (w && w.trusted === sig && now - w.atMs >= 0 && now - w.atMs < WALK_EVERY_MS && kernelFollows(home, this.names)) return new Map();
      this.walked = null;
      this.walkCount++;
      // The kernel's marks once the walk has listed /proc, before it marks: a child a marked daemon forks
      // meanwhile is the kernel's (taken before the listing, it counted as the walk's find: walked again).
      let before = new Set<number>();
      const found = markRunning(trusted, (pid, daemon) => this.targetTgid(pid, daemon), '/proc', () => { before = new Set(this.targets()); });
      // One the kernel had not marked: its children forked while this walk ran may be unmarked too.
      if (![...found.keys()].some((pid) => !before.has(pid))) this.walked = { trusted: sig, atMs: now };
      return found;
    } catch (e) {
      this.opts.onRescanError?.(e as Error);
      return new Map();
    }
  }

  /** Walks of /proc made since open() (rescan). */
  get walks(): number {
    return this.walkCount;
  }

  /** tgids (and thread ids) the kernel treats as targets now. */
  targets(): number[] {
    return this.targetDaemons().map((t) => t.pid);
  }

  /** The kernel's targets with their daemon names. */
  targetDaemons(): { pid: number; daemon: string }[] {
    const pids = new Uint32Array(16384);
    const ids = new Uint32Array(pids.length);
    const n = this.check(this.lib.targets(this.h, pids, ids, pids.length), 'targets');
    return Array.from(pids.subarray(0, n), (pid, i) => ({ pid, daemon: this.names[ids[i] - 1] ?? '?' }));
  }

  /** Mark a process as daemon `daemon` (an index + 1 of the names), or unmark it (0). */
  targetTgid(tgid: number, daemon: number): void {
    this.check(this.lib.target_tgid(this.h, tgid, daemon), `target pid ${tgid}`);
  }

  /** The daemon id of a name (0: not a target name). */
  daemonId(name: string): number {
    return this.names.indexOf(name) + 1;
  }

  counters(): CaptureCounters {
    const out = new BigUint64Array(COUNTER_NAMES.length);
    this.check(this.lib.counters(this.h, out, out.length), 'counters');
    const c = {} as CaptureCounters;
    COUNTER_NAMES.forEach((name, i) => { c[name] = Number(out[i]); });
    return c;
  }

  /** The controller lost an agent's kept payload: the shim sends its next one whole (bpf/shim/fastpath.h). */
  forgetKey(key: number): void {
    if (this.handle) this.lib.forget_key(this.handle, key);
  }

  /**
   * The shim's fast path: unchanged keepalives sent as ticks, payloads keyed, connections it does not
   * follow, the keepalives it holds now for their replies, and those it let go whole after a second
   * without one (wazuh-db killed mid-request).
   */
  fastpath(): { ticks: number; keyed: number; slow_connections: number; held: number; expired: number } {
    const out = new BigUint64Array(5);
    this.check(this.lib.fastpath_stats(this.h, out, out.length), 'fast path');
    return { ticks: Number(out[0]), keyed: Number(out[1]), slow_connections: Number(out[2]), held: Number(out[3]), expired: Number(out[4]) };
  }

  lostPerCpu(): number[] {
    const out = new BigUint64Array(1024);
    const n = this.check(this.lib.lost_per_cpu(this.h, out, out.length), 'lost per cpu');
    return Array.from(out.subarray(0, n), Number);
  }

  /**
   * Deliver record batches to onBatch until stop(). While records flow the event loop takes them
   * itself every roundMs (wdbtap_take runs the shim's round: rings → order → queue), one wake-up
   * per batch and no hand-over between threads; after REST_ROUNDS rounds that found nothing it rests
   * (wdbtap_rest) and the next record rings a pipe the loop watches (wdbtap_notify_fd). Each take
   * is bounded and never waits. The next round waits for onBatch's promise: a slow consumer slows
   * the rounds (the shim's reader thread moves records from full rings into its queue meanwhile;
   * the kernel's lost counter shows when that costs any).
   */
  start(onBatch: Consumer['onBatch'], onError: Consumer['onError']): void {
    if (this.running) return;
    this.running = true;
    const consumer: Consumer = { onBatch, onError };
    this.consumer = consumer;
    const fd = this.lib.notify_fd(this.h);
    if (fd < 0) {
      onError(new Error(this.lib.last_error(this.handle)));
      return;
    }
    const bell = new Socket({ fd, readable: true, writable: false });
    this.bell = bell;
    bell.on('data', () => { void this.rounds(consumer); });
    bell.on('error', (e) => { if (this.running) onError(e); });
    void this.rounds(consumer); // records that came first are taken now
  }

  /** Batches of records handed to the controller (its rounds that found records). */
  batches = 0;
  /** Rounds that found nothing (each a wake-up of the event loop for nothing). */
  emptyRounds = 0;
  /** Times the rounds went to rest (the next record rings the pipe). */
  rests = 0;
  /** What start() was given: the rounds deliver to it (settled() starts one too). */
  private consumer: Consumer | null = null;
  private readonly deliveredOut = new BigUint64Array(1);
  /** What the last take said of what is left (wdbtap_take's *more): 0, and the round is over. */
  private readonly more = new Uint32Array(1);

  /**
   * Resolves true once every record of a write that entered before `ns` (CLOCK_MONOTONIC, the
   * records' clock) has been handed to the consumer and handled (its promise settled) — false if
   * that took longer than `timeoutMs`, or the capture stopped. What a reader of wazuh-db outside
   * the capture (a resynchronisation) waits for, so that rows which already show a captured write
   * are not applied before that write is.
   */
  async settled(ns: bigint, timeoutMs: number): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      if (!this.running || !this.handle || !this.consumer) return false;
      this.lib.delivered(this.handle, this.deliveredOut);
      if (this.deliveredOut[0] >= BigInt.asUintN(64, ns)) return true;
      if (performance.now() >= end) return false;
      // Resting: nothing would take the rings until the next record rings the pipe; take now.
      if (!this.draining) void this.rounds(this.consumer);
      await new Promise((res) => setTimeout(res, 2));
    }
  }

  /**
   * Resolves true once a take that began after `ns` (CLOCK_MONOTONIC) has handed over everything the
   * shim had ready — every write done before `ns` but those still ordered behind a write in flight or
   * held by the fast path for their reply —, false after `timeoutMs` or once the capture stopped.
   * Unlike settled(), it does not wait for what the shim holds: what the decoder's timer needs to let an
   * exchange go by the records' clock (a late reply written before `ns` is in hand), not the wall's.
   */
  async tookSince(ns: bigint, timeoutMs: number): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      if (!this.running || !this.handle || !this.consumer) return false;
      if (this.takenNs >= ns) return true;
      if (performance.now() >= end) return false;
      if (!this.draining) void this.rounds(this.consumer); // resting: take now
      await new Promise((res) => setTimeout(res, 2));
    }
  }

  /** The time a take began after which everything the shim had ready was handed over (tookSince). */
  private takenNs = 0n;

  /** Take every roundMs while records come; rest (and wait for the pipe) once they stop. One loop at a time. */
  private async rounds(c: Consumer): Promise<void> {
    if (this.draining) return; // the loop running takes these too
    this.draining = true;
    try {
      let empty = 0;
      // Woken from a long rest: records are sparse, and this loop rests again as soon as it can.
      const sparse = performance.now() - this.restedAt >= this.roundMs * REST_ROUNDS;
      while (this.running && this.handle) {
        const took = await this.drain(c);
        if (took < 0) return;
        if (this.sliceEnded) {
          // Records may be left: the rest at once, after the loop's other work (not after a round's wait).
          await new Promise((res) => setImmediate(res));
          empty = 0;
          continue;
        }
        empty = took ? 0 : empty + 1;
        if (!took) this.emptyRounds++;
        if (empty >= REST_ROUNDS || sparse) {
          // rest() arms the bell only when nothing is queued or held back (a write in flight): else
          // the rounds go on, and take it when it is out.
          const r = this.lib.rest(this.handle);
          if (r < 0) {
            this.running = false;
            c.onError(new Error(this.lib.last_error(this.handle)));
            return;
          }
          if (r === 1) {
            this.rests++;
            this.restedAt = performance.now();
            return; // resting: the pipe wakes the next loop
          }
          empty = 0;
          if (!sparse) continue;
        }
        await new Promise((res) => setTimeout(res, this.roundMs));
      }
    } finally {
      this.draining = false;
    }
  }

  /** When the loop last went to rest (performance.now()); -Infinity before the first. */
  private restedAt = -Infinity;

  /** The last drain stopped at SLICE_MS, not because the queue was empty. */
  private sliceEnded = false;

  /**
   * Take and deliver until the queue is empty or SLICE_MS have passed: the records taken (-1: the
   * capture failed). The round takes again after a batch only when its take left records queued or
   * held back (a write in flight, a keepalive waiting for its reply: usually out by then); a take
   * that would find nothing was a syscall and a pass over the rings every round for nothing.
   */
  private async drain(c: Consumer): Promise<number> {
    let records = 0;
    const end = performance.now() + SLICE_MS;
    this.sliceEnded = false;
    for (;;) {
      if (!this.running || !this.handle) return records;
      const at = process.hrtime.bigint();
      const n = this.lib.take(this.handle, this.buf, this.buf.length, this.more);
      if (n < 0) {
        this.running = false;
        c.onError(new Error(this.lib.last_error(this.handle)));
        return -1;
      }
      if (n === 0) {
        this.takenNs = at;
        return records;
      }
      this.batches++;
      // In the order the writes began, across CPUs and batches: the shim merges the per-CPU rings.
      const batch = parseRecords(this.buf, n, this.names);
      records += batch.length;
      const r = c.onBatch(batch);
      if (r) await r;
      if (this.more[0] === 0) {
        this.takenNs = at;
        return records;
      }
      if (performance.now() >= end) {
        this.sliceEnded = true;
        return records;
      }
    }
  }

  /** Stop delivering (a drain in progress ends after its batch). */
  async stop(): Promise<void> {
    this.running = false;
    this.bell?.destroy();
    this.bell = null;
    while (this.draining) await new Promise((r) => setTimeout(r, 1));
  }

  /** Detach and free everything in the kernel: no program, link or map stays behind. */
  async close(): Promise<void> {
    this.detach();
    await this.stop();
    // A detachAsync() still queued for a libuv thread would use the handle once it runs: it is not
    // freed under it. Given a second; past that (the threads held by a hung disk) it is left to the
    // process's exit, which frees everything in the kernel anyway.
    if (this.detaching) await Promise.race([this.detaching, new Promise((r) => { setTimeout(r, 1000).unref(); })]);
    const free = () => {
      if (!this.handle) return;
      this.lib.close(this.handle);
      this.handle = null;
    };
    if (this.detaching) void this.detaching.then(free); // freed once the queued detach has run, if the process lives on
    else free();
    this.held.keepOnly([]); // the kernel has no identity left
    if (this.ownPin) this.pin.release();
  }
}
