// Types for manager.mjs (kept beside it so TypeScript tests need no allowJs).
import type { ChildProcess } from 'node:child_process';

export interface SimAgent {
  id: number;
  name: string;
  ip: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export declare class SimProcess {
  constructor(binDir: string, name: string, home: string, extraArgs?: string[]);
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  stderr: string;
  exitInfo: ExitInfo | null;
  readonly exited: Promise<ExitInfo>;
  ready(ms?: number): Promise<void>;
  command(line: string, ms?: number): Promise<string>;
  kill(signal?: NodeJS.Signals, ms?: number): Promise<ExitInfo>;
}

export declare class SimClient {
  constructor(proc: SimProcess);
  readonly proc: SimProcess;
  readonly name: string;
  readonly pid: number | undefined;
  startup(agent: SimAgent): Promise<void>;
  keepalive(agent: SimAgent): Promise<void>;
  shutdown(agent: SimAgent): Promise<void>;
  /** Sends text as one 4.x frame (header + text + NUL); resolves with wazuh-db's reply. */
  rawreq(text: string): Promise<string>;
  /** Writes the bytes (Buffer or hex string) as-is in one sendto; reads nothing. */
  raw(bytes: Buffer | Uint8Array | string): Promise<void>;
  /** Reads one reply frame left by raw writes. */
  recv(): Promise<string>;
  quit(): Promise<ExitInfo>;
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

export declare class SimManager {
  constructor(opts: { binDir: string; home: string; agents?: SimAgent[] });
  readonly binDir: string;
  readonly home: string;
  readonly wdbPath: string;
  analysisd: SimProcess | null;
  db: SimProcess | null;
  remoted: SimClient | null;
  clients: SimClient[];
  start(opts?: { reset?: boolean }): Promise<void>;
  startup(agent: SimAgent): Promise<void>;
  keepalive(agent: SimAgent): Promise<void>;
  shutdown(agent: SimAgent): Promise<void>;
  rawreq(text: string): Promise<string>;
  raw(bytes: Buffer | Uint8Array | string): Promise<void>;
  recv(): Promise<string>;
  restartRemoted(opts?: { reset?: boolean }): Promise<void>;
  spawnClient(name: string, opts?: { reset?: boolean }): Promise<SimClient>;
  pids(): Record<string, number>;
  stop(): Promise<void>;
}
