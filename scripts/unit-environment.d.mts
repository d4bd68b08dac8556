// Types for unit-environment.mjs (kept beside it so TypeScript tests need no allowJs).
/** The `Environment=NAME=value` lines of a unit and then its drop-ins: the later of one name wins. */
export declare function unitEnvironment(...texts: string[]): Record<string, string>;
