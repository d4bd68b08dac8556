import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { LogOutput } from './log-output.js';

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
    return pino(opts, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  const output = new LogOutput(fd);
  const log = pino({ ...opts, hooks: { streamWrite: (s: string) => output.handed(s) } }, output.stream);
  output.onDrained((lines, bytes, ms) => log.warn({ dropped_lines: lines, dropped_bytes: bytes, stalled_ms: ms },
    `log: ${lines} lines dropped over ${(ms / 1000).toFixed(1)} s: stdout did not drain (journald or the pipe's reader stalled)`));
  current = output;
  return log;
}
