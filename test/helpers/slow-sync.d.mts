// Types for slow-sync.mjs (kept beside it so TypeScript tests need no allowJs).
/** The path of build/test/slow-sync.so, built first when missing or older than slow-sync.c. */
export declare function slowSyncLib(): string;
/**
 * The environment that gives a child process that disk: every fdatasync waits while `hold` exists
 * (`match`: only those of a file whose path contains it); `log`: each fdatasync and rename traced there.
 */
export declare function slowSyncEnv(hold: string, o?: { match?: string; log?: string }): Record<string, string>;
