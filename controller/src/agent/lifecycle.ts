// One lifecycle for the host agent (SPEC §8): parts started in order and
// stopped in reverse by one shutdown path, whatever asked for the stop — a
// signal, a fatal error, `<enabled>no</enabled>` on reload, a lost lock. The
// shutdown has a deadline: whatever NATS or wazuh-db do, the process exits in
// time (the kernel removes the BPF programs with it).
//
// The process-level handlers (signals, uncaught errors) are installed by
// `watchProcess` before anything is opened, so a signal at any instant of
// start-up or shutdown takes this path too.
import type { Logger } from 'pino';
import { exitNow, kernelDeadline } from './process-exit.js';

export interface Part {
  name: string;
  /** May be slow (a first sync, a connection); a stop request does not wait for it to finish. */
  start(): Promise<void> | void;
  /** Called for every part whose start began, even if it did not finish: undo what was done. Idempotent. */
  stop(): Promise<void> | void;
}

export interface StopRequest {
  /** Why, for the log: `SIGTERM`, `fatal`, `disabled`, `lost lock`, … */
  why: string;
  /** Exit code: 0 for a signal or `enabled no`, non-zero for a failure. */
  code: number;
  err?: Error;
}

export const SHUTDOWN_DEADLINE_MS = 10_000;
/** After the deadline, what the kernel's own deadline waits more: for the timer's exit, should the event loop still run. */
const KERNEL_GRACE_MS = 2000;

/** How the shutdown's deadline is kept (tests replace it). */
export interface HardStop {
  /** The deadline passed: end the process now, with `code`. */
  exit(code: number): void;
  /** A deadline the kernel keeps even when the event loop is held in a system call; returns its disarm. */
  arm(ms: number): () => void;
}

const HARD_STOP: HardStop = { exit: exitNow, arm: kernelDeadline };

/** Told when every part has started, and when the shutdown begins (systemd's READY=1 and STOPPING=1). */
export interface LifecycleWatcher {
  ready?(): void;
  stopping?(req: StopRequest): void;
}

export class Lifecycle {
  private readonly parts: Part[] = [];
  private started: Part[] = [];
  private request: StopRequest | null = null;
  private wake: () => void = () => {};
  private readonly stopRequested = new Promise<void>((r) => { this.wake = r; });
  private running = false;
  private hupPending = false;
  private onHup: (() => void) | null = null;
  /** Set once start() finished every part. */
  ready = false;
  private readonly watchers: LifecycleWatcher[] = [];

  constructor(
    private readonly log: Logger,
    private readonly deadlineMs = SHUTDOWN_DEADLINE_MS,
    /** How the deadline is kept: at once, even with a thread held by the disk, and by the kernel when our timer cannot fire. */
    private readonly hard: HardStop = HARD_STOP,
    /** What an error's text may carry of secrets (server_url credentials) is masked before it is logged. */
    private readonly shown: (text: string) => string = (text) => text,
  ) {}

  add(part: Part): void {
    this.parts.push(part);
  }

  watch(w: LifecycleWatcher): void {
    this.watchers.push(w);
  }

  private tell(fn: (w: LifecycleWatcher) => void): void {
    for (const w of this.watchers) this.safely('a lifecycle watcher', () => fn(w));
  }

  get stopping(): StopRequest | null {
    return this.request;
  }

  /** Ask for the shutdown; the first request decides the exit code. Safe from any context, any number of times. */
  requestStop(req: StopRequest): void {
    if (this.request) {
      if (req.err) this.log.error({ err: loggedError(req.err, this.shown), why: req.why }, 'during the shutdown');
      else this.log.info({ why: req.why }, 'already stopping');
      return;
    }
    this.request = req;
    if (req.err) this.log.fatal({ err: loggedError(req.err, this.shown), why: req.why }, this.shown(req.err.message));
    this.wake();
  }

  /** SIGHUP: handled once started (a reload during start-up waits for it), never fatal. */
  hup(): void {
    if (this.request) return;
    if (!this.ready || !this.onHup) {
      this.hupPending = true;
      return;
    }
    this.safely('reload', this.onHup);
  }

  setReload(fn: () => void): void {
    this.onHup = fn;
  }

  /**
   * Start every part in order, wait for a stop request, stop them in reverse.
   * Returns the exit code. A part that throws while starting is a fatal error.
   */
  async run(): Promise<number> {
    if (this.running) throw new Error('the lifecycle runs once');
    this.running = true;
    for (const part of this.parts) {
      if (this.request) break;
      this.started.push(part);
      try {
        // A stop request does not wait for a slow start (an initial sync, a first connection).
        await Promise.race([part.start(), this.stopRequested]);
      } catch (e) {
        this.requestStop({ why: `fatal error while starting ${part.name}`, code: exitCodeOf(e), err: e as Error });
      }
    }
    if (!this.request) {
      this.ready = true;
      this.tell((w) => w.ready?.());
      if (this.hupPending && this.onHup) {
        this.hupPending = false;
        this.safely('reload', this.onHup);
      }
    }
    await this.stopRequested;
    return this.shutdown();
  }

  private async shutdown(): Promise<number> {
    const req = this.request!;
    this.log.info({ why: req.why }, 'stopping');
    this.tell((w) => w.stopping?.(req));
    const deadline = performance.now() + this.deadlineMs;
    // The deadline holds whatever a part does: the process ends, and the kernel detaches with it.
    const timer = setTimeout(() => {
      this.log.error({ why: req.why, deadline_ms: this.deadlineMs }, 'shutdown deadline passed: exiting now');
      this.hard.exit(req.code || 1);
    }, this.deadlineMs);
    // And when a part holds the event loop itself in a system call (a hung disk), where that timer cannot fire.
    const disarm = this.hard.arm(this.deadlineMs + KERNEL_GRACE_MS);
    for (const part of this.started.reverse()) {
      await loopTurn();
      const left = deadline - performance.now();
      try {
        // What is left of the deadline, and a millisecond: the deadline's own timer comes first and ends the process.
        await withTimeout(Promise.resolve().then(() => part.stop()), Math.max(1, Math.ceil(left) + 1), part.name);
      } catch (e) {
        this.log.error({ err: (e as Error).message, part: part.name }, 'a part failed to stop');
      }
    }
    this.started = [];
    clearTimeout(timer);
    disarm();
    await loopTurn();
    return req.code;
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: (e as Error).message }, `${what} failed`);
    }
  }
}

/**
 * A full turn of the event loop (its poll phase reads the signals that came). Parts that stop without
 * waiting on I/O (NATS away, nothing to flush) would otherwise run the shutdown to process.exit in
 * microtasks, and a second SIGTERM during it would never be taken, nor said.
 */
function loopTurn(): Promise<void> {
  return new Promise((r) => setImmediate(() => setImmediate(r)));
}

/** A throw's exit code (SPEC §7: ConfigError 2, KernelSupportError 3), else 1. */
export function exitCodeOf(e: unknown): number {
  const code = (e as { exitCode?: number })?.exitCode;
  return typeof code === 'number' && code > 0 ? code : 1;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not stop within ${ms} ms`)), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, SIGINT, SIGHUP once the lifecycle is over: nothing left to stop or reload. */
const ignoreSignal = () => {};

/**
 * Route the process's own events to the lifecycle, from the first instant:
 * SIGTERM/SIGINT stop it (exit 0), SIGHUP reloads (never kills), an uncaught
 * exception or rejection is a fatal error that still takes the shutdown path.
 * Returns a function that takes them from the lifecycle once it is over. The
 * signals stay handled, and are ignored, to the process's last instant: `run`
 * ends it right after (bin: exitWhenIdle, up to a second while a disk holds
 * libuv's pool), and a signal with no listener takes its default action — a
 * `systemctl reload` then ended the tap by SIGHUP, its exit code lost (a fatal
 * error's 1 too, which Restart=on-failure would have restarted).
 */
export function watchProcess(life: Lifecycle): () => void {
  const onTerm = (sig: NodeJS.Signals) => life.requestStop({ why: sig, code: 0 });
  const onHup = () => life.hup();
  const onFatal = (e: unknown) => life.requestStop({
    why: 'uncaught error', code: 1, err: e instanceof Error ? e : new Error(String(e)),
  });
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  process.on('SIGHUP', onHup);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  return () => {
    // Before the lifecycle's go: a signal never finds the process without a listener (Node restores the default with the last).
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, ignoreSignal);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
    process.off('SIGHUP', onHup);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  };
}

/** An error as the log carries it: its type, and its message and stack with secrets masked by `shown`. */
export function loggedError(e: Error, shown: (text: string) => string): { type: string; message: string; stack: string } {
  return { type: e.name, message: shown(e.message), stack: shown(e.stack ?? '') };
}
