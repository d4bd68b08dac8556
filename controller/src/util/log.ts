import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { LogOutput } from './log-output.js';
import { LONE_SURROGATE } from './printable.js';

export { LogOutput, LOG_BUFFER_BYTES, LOG_STALL_MS, type LogOutputStats } from './log-output.js';

/** The log output of this process's logger (the last one made): its drops and stalls, for status and metrics. */
let current: LogOutput | null = null;
export function logOutput(): LogOutput | null {
  return current;
}

/**
 * Structured JSON lines on stdout (SPEC §8), what journald and log shippers
 * read; with --log-level debug (or trace) on a terminal, readable lines
 * instead. Secrets never reach a log call.
 *
 * The JSON lines go through a bounded buffer (LogOutput): a stdout that stops
 * draining (journald stalled, `run | less` left alone) costs the lines past
 * LOG_BUFFER_BYTES, counted and said once it drains again, never the tap's
 * memory; and an exit does not wait on it.
 */
export function createLogger(level = 'info', tty = Boolean(process.stdout.isTTY), fd = 1): Logger {
  const opts = { level, base: { name: 'wazuh-nats-tap' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (tty && (level === 'debug' || level === 'trace')) {
    const readable = pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' });
    return pino(opts, { write: (line: string) => readable.write(visibleControls(line)) });
  }
  const output = new LogOutput(fd);
  const log = pino({ ...opts, hooks: { streamWrite: (s: string) => output.handed(s) } }, output.stream);
  output.onDrained((lines, bytes, ms) => log.warn({ dropped_lines: lines, dropped_bytes: bytes, stalled_ms: ms },
    `log: ${lines} lines dropped over ${(ms / 1000).toFixed(1)} s: stdout did not drain (journald or the pipe's reader stalled)`));
  current = output;
  return log;
}

// pino-pretty prints a line's strings as they are: a control character in a value — a path, a NATS
// error's text, a name a process chose — reached the operator's terminal raw (ESC, OSC 52, CSI as
// U+009B, a CR that rewrites the line, a bidi override; review helper-91). The JSON line is changed
// before pino-pretty reads it so that each such character is a visible `\uXXXX` in the string it parses
// (util/printable.ts's set; a surrogate JSON escaped, always a lone one, too), its own colours left
// alone. A line break in a value (a stack) shows as `\n`.
const JSON_CONTROL = /(?<!\\)((?:\\\\)*)\\(u00[01][0-9a-fA-F]|u007[fF]|u[dD][89a-fA-F][0-9a-fA-F]{2}|[nrtbf])/g;
const RAW_UNSAFE = new RegExp(`[\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]|${LONE_SURROGATE}`, 'g');

/** A pino JSON line whose control characters parse to their visible escapes (the same line otherwise). */
export function visibleControls(line: string): string {
  return line
    .replace(JSON_CONTROL, '$1\\\\$2')
    .replace(RAW_UNSAFE, (c) => `\\\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
