// Types for build-sim.mjs.
export declare const SIM_NAMES: string[];
/** Compiles the simulator if stale; returns the absolute bin directory holding one copy per daemon name. */
export declare function buildSim(outDir?: string): Promise<string>;
