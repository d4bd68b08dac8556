// Types for unit-environment.mjs (kept beside it so TypeScript tests need no allowJs).
/**
 * The environment systemd gives the service of these unit texts (the unit, then its drop-ins):
 * Environment= as systemd splits, unquotes and unescapes it (an empty one clears), then the
 * EnvironmentFile= files, read now, over it.
 */
export declare function unitEnvironment(...texts: string[]): Record<string, string>;
/** An environment file's NAME=value assignments, in order, as systemd reads the file. */
export declare function parseEnvironmentFile(text: string): [string, string][];
/** One non-empty Environment= value: its assignments, the words systemd ignores, and whether a syntax error cut it short. */
export declare function environmentValue(value: string): { set: [string, string][]; ignored: string[]; syntaxError: boolean };
