// The control socket's protocol: one JSON object per line each way.
// Request: {"cmd":"status"|"attach"|"detach"}. Reply: {"ok":true,...} or {"ok":false,"error":"...","code":"..."}
// (`code`, when the failure has one the CLI maps to an exit code of its own: ERROR_EXIT).

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
