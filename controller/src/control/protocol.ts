// The control socket's protocol: one JSON object per line each way.
// Request: {"cmd":"status"|"attach"|"detach"}. Reply: {"ok":true,...} or {"ok":false,"error":"...","code":"..."}
// (`code`, when the failure has one the CLI maps to an exit code of its own: ERROR_EXIT).
import { ConfigError } from '../errors.js';
import { clip } from '../util/clip.js';

export const COMMANDS = ['status', 'attach', 'detach'] as const;
export type ControlCommand = (typeof COMMANDS)[number];
export const MAX_REQUEST_BYTES = 4096;

/**
 * Machine-readable causes of a refusal: `EPERM`, the client is not root; `KERNEL_SUPPORT`, the kernel
 * refused what `attach` asked (a hook, tracefs). Both are exit 3 (SPEC §7: missing privileges or kernel
 * support), not 1: a script tells them from an agent that is down.
 */
export const ERROR_EXIT = { EPERM: 3, KERNEL_SUPPORT: 3 } as const;
export type ControlErrorCode = keyof typeof ERROR_EXIT;

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string; code?: ControlErrorCode };

/** The longest path a UNIX socket can have (sun_path holds 108 bytes, its NUL included). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A --control-socket that can name a socket at all; else a usage error (exit 2). */
export function checkControlSocketPath(path: string): void {
  if (path === '') throw new ConfigError('--control-socket: empty; give the path of the agent\'s control socket (default /run/wazuh-nats-tap.sock)');
  if (path.includes('\0')) throw new ConfigError(`--control-socket ${clip(path)}: a path holds no NUL character`);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ConfigError(`--control-socket ${clip(path)}: ${bytes} bytes, longer than a UNIX socket's path can be (${MAX_SOCKET_PATH_BYTES})`);
  }
}

/** Parse one request line; an error message for anything else. */
export function parseRequest(line: string): { cmd: ControlCommand } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: 'a request is one JSON object per line' };
  }
  const cmd = (v as { cmd?: unknown } | null)?.cmd;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof cmd !== 'string') {
    return { error: 'a request is {"cmd": "<command>"}' };
  }
  if (!(COMMANDS as readonly string[]).includes(cmd)) return { error: `unknown command '${cmd.slice(0, 40)}'; one of ${COMMANDS.join(', ')}` };
  return { cmd: cmd as ControlCommand };
}
