// The control socket's protocol: one JSON object per line each way.
// Request: {"cmd":"status"|"attach"|"detach"}. Reply: {"ok":true,...} or {"ok":false,"error":"..."}.

export const COMMANDS = ['status', 'attach', 'detach'] as const;
export type ControlCommand = (typeof COMMANDS)[number];
export const MAX_REQUEST_BYTES = 4096;

export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

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
