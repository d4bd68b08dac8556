// Types for slow-sync.mjs (kept beside it so TypeScript tests need no allowJs).
/** The path of build/test/slow-sync.so, built first when missing or older than slow-sync.c. */
export declare function slowSyncLib(): string;
