// Types for wall-clock.cjs (kept beside it so TypeScript tests need no allowJs).
export interface SteppedWallClock {
  /** Move Date by `ms` (negative: back), from now on. */
  step(ms: number): void;
  /** Date is `ms` away from the real wall clock. */
  set(ms: number): void;
  readonly offset: number;
  /** The real Date again. */
  restore(): void;
}
/** Replace globalThis.Date with one that can be stepped. */
export declare function installWallClock(): SteppedWallClock;
