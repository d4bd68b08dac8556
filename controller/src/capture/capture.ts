// The capture stage: owns the BPF programs through the shim and turns perf
// records into CaptureRecord batches. Polling runs on a libuv worker thread
// (koffi async calls), so Node's event loop never waits on the kernel.
import { existsSync } from 'node:fs';
import { loadShim, type ShimLib } from './shim.js';
import { COUNTER_NAMES, RECORD_SIZE, parseRecords, type CaptureCounters } from './record-layout.js';
import type { CaptureRecord } from '../types.js';
import { KernelSupportError } from '../errors.js';
import {
  DEFAULT_TARGET_NAMES, formatFsId, resolveHome, sameFsId, scanProcesses, trustedExecutables, wdbSocketId, type HomeIdentity,
} from './targets.js';

export { KernelSupportError };

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
  /** How often running processes are re-scanned while attached (the kernel follows exec/fork). */
  rescanMs?: number;
  /** Pages per CPU of the perf buffer (a power of two). */
  perfPages?: number;
  /** Longest wait of one poll, which is also how fast stop() returns. */
  pollTimeoutMs?: number;
  /** A rescan failed (EMFILE, …): it is retried at the next one. Default: ignored. */
  onRescanError?: (e: Error) => void;
}

/** What `status` and `capture` show of the home followed. */
export interface IdentityView {
  home: string;
  /** `<home>/queue/db`, whose entry `wdb` the kernel matches; null: missing (nothing is captured). */
  wdb_dir: string | null;
  /** The socket `<home>/queue/db/wdb` as it is now. */
  wdb_socket: string | null;
  exe_dirs: { path: string; id: string | null }[];
}

const ERR_LEN = 512;

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

export class Capture {
  private readonly lib: ShimLib;
  private handle: unknown = null;
  private readonly hooks: Hook[];
  private polling: Promise<void> | null = null;
  private running = false;
  private readonly buf = Buffer.alloc(4 << 20);
  private readonly pollTimeoutMs: number;
  /** Daemon names; a daemon's id in the kernel is its index + 1. */
  private readonly names: string[];
  private home: HomeIdentity;
  private rescanTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly opts: CaptureOptions) {
    for (const p of [opts.objPath, opts.libPath]) {
      if (!existsSync(p)) throw new Error(`${p} is missing: build it with 'make'`);
    }
    this.lib = loadShim(opts.libPath);
    this.hooks = opts.hooks ?? ['sendto'];
    this.pollTimeoutMs = opts.pollTimeoutMs ?? 100;
    this.names = [...new Set(opts.targetNames ?? DEFAULT_TARGET_NAMES)];
    this.home = { home: opts.home, wdbDir: null, socket: null, exeDirs: [] };
  }

  /** Check the kernel, load the programs and set the filters; nothing is attached yet. */
  static open(opts: CaptureOptions): Capture {
    const c = new Capture(opts);
    const err = Buffer.alloc(ERR_LEN);
    if (c.lib.record_size() !== RECORD_SIZE) {
      throw new Error(`record layout mismatch: shim ${c.lib.record_size()} bytes, controller ${RECORD_SIZE}`);
    }
    if (c.lib.check_kernel(err, ERR_LEN) < 0) throw new KernelSupportError(cstr(err));
    const h = c.lib.open(opts.objPath, opts.perfPages ?? 256, err, ERR_LEN);
    if (!h) throw new KernelSupportError(cstr(err));
    c.handle = h;
    try {
      c.names.forEach((name, i) => c.check(c.lib.target_name(h, name, i + 1, 1), `target ${name}`));
      c.refreshIdentity(true);
    } catch (e) {
      c.lib.close(h);
      c.handle = null;
      throw e;
    }
    return c;
  }

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
   * attachment are dropped (nothing followed their exits while detached).
   */
  attach(): void {
    const bits = this.hooks.reduce((m, k) => m | HOOK_BITS[k], 0);
    if (this.lib.attach(this.h, PROCS_BIT) < 0) throw new KernelSupportError(this.lib.last_error(this.handle));
    if (!this.rescanTimer) for (const pid of this.targets()) this.targetTgid(pid, 0);
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

  detach(): void {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = null;
    if (this.handle) this.lib.detach(this.handle);
  }

  get attached(): boolean {
    return this.handle ? (this.lib.is_attached(this.handle) & ~PROCS_BIT) !== 0 : false;
  }

  /** The hooks attached now, by name. */
  attachedHooks(): Hook[] {
    const mask = this.handle ? this.lib.is_attached(this.handle) : 0;
    return HOOKS.filter((k) => (mask & HOOK_BITS[k]) !== 0);
  }

  /**
   * Give the kernel this home's identities again (a home installed or re-created
   * after the tap started; the socket wazuh-db re-creates needs nothing: the
   * kernel matches the directory's entry).
   */
  refreshIdentity(force = false): HomeIdentity {
    const old = this.home;
    const now = resolveHome(this.opts.home, this.names);
    // A home that became unreachable (a container's /proc/<pid>/root whose process ended) keeps the
    // identity last seen: what it named is gone, and nothing else can take its place.
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
    return now;
  }

  /** What the tap follows, for people (status, capture). */
  identity(): IdentityView {
    const h = this.home;
    return {
      home: h.home,
      wdb_dir: h.wdbDir ? `${h.home.replace(/\/+$/, '')}/queue/db (${formatFsId(h.wdbDir)})` : null,
      wdb_socket: formatFsId(wdbSocketId(h.home)),
      exe_dirs: h.exeDirs.map((d) => ({ path: d.path, id: formatFsId(d.id) })),
    };
  }

  /**
   * Mark every running daemon of this home in the kernel (those started before
   * the tap; the kernel follows later ones from their exec). A failure (EMFILE,
   * ENFILE) is reported and retried at the next rescan: never fatal.
   */
  rescan(): Map<number, number> {
    try {
      const home = this.refreshIdentity();
      const found = scanProcesses(trustedExecutables(home, this.names));
      for (const [pid, daemon] of found) this.targetTgid(pid, daemon);
      return found;
    } catch (e) {
      this.opts.onRescanError?.(e as Error);
      return new Map();
    }
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

  lostPerCpu(): number[] {
    const out = new BigUint64Array(1024);
    const n = this.check(this.lib.lost_per_cpu(this.h, out, out.length), 'lost per cpu');
    return Array.from(out.subarray(0, n), Number);
  }

  private pollOnce(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.lib.poll.async(this.handle, this.buf, this.buf.length, this.pollTimeoutMs,
        (err: unknown, n: number) => (err ? reject(err) : resolve(n)));
    });
  }

  /**
   * Deliver record batches to onBatch until stop(). The next poll starts only
   * when onBatch's promise settles: a slow consumer slows the drain, and the
   * kernel's lost counter shows when that costs records.
   */
  start(onBatch: (records: CaptureRecord[]) => void | Promise<void>, onError: (e: Error) => void): void {
    if (this.polling) return;
    this.running = true;
    this.polling = (async () => {
      while (this.running) {
        let n: number;
        try {
          n = await this.pollOnce();
        } catch (e) {
          onError(e as Error);
          break;
        }
        if (n < 0) {
          onError(new Error(this.lib.last_error(this.handle)));
          break;
        }
        // In the order the writes began, across CPUs and batches: the shim merges the per-CPU rings.
        if (n > 0) await onBatch(parseRecords(this.buf, n, this.names));
      }
    })();
  }

  /** Stop polling; waits for the poll in flight (at most pollTimeoutMs). */
  async stop(): Promise<void> {
    this.running = false;
    await this.polling;
    this.polling = null;
  }

  /** Detach and free everything in the kernel: no program, link or map stays behind. */
  async close(): Promise<void> {
    this.detach();
    await this.stop();
    if (this.handle) {
      this.lib.close(this.handle);
      this.handle = null;
    }
  }
}
