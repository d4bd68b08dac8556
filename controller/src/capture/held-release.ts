// The decoder's waiting exchanges (decode/apply-order.ts) are let go by records; when none comes (an
// earlier request's reply never written), by this timer — HOLD_NS on, and only once a take that began
// after that time has handed over what the shim had ready (Capture.tookSince): the records' clock, not
// the wall's, so a reply written in time but not taken yet (the caller's thread busy for 50 ms: a GC, a
// big spool write) still comes first. One for the agent (agent/tap.ts) and the capture command.
import type { Capture } from './capture.js';
import { HOLD_NS } from '../decode/index.js';

export interface HeldReleaseOptions {
  /** The capture the records come from (null, or detached: nothing more will come). */
  capture(): Capture | null;
  /** Whether exchanges wait now (WdbDecoder.holding). */
  holding(): boolean;
  /** Let go what waits no longer at `nowNs` (WdbDecoder.release, applied or printed). */
  release(nowNs: bigint): void;
  /** The caller is stopping: no look is armed any more (its stop lets everything go). */
  stopping(): boolean;
}

export class HeldRelease {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: HeldReleaseOptions) {}

  /** A look HOLD_NS on, unless one is armed (or running). */
  arm(): void {
    if (this.timer || this.o.stopping()) return;
    this.timer = setTimeout(() => void this.look(), Number(HOLD_NS / 1_000_000n) + 1);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async look(): Promise<void> {
    const now = process.hrtime.bigint();
    const c = this.o.capture();
    const seen = !c?.attached || await c.tookSince(now, 200);
    this.timer = null;
    if (seen && !this.o.stopping()) this.o.release(now);
    if (this.o.holding()) this.arm();
  }
}
