import { format } from 'node:util';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { LogOutput } from './log-output.js';
import { RateLimitedLog } from './rate-limit.js';

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

/** What a library's console line may carry into the log. */
const CONSOLE_TEXT = 2000;

/**
 * The console of a process whose stdout is JSON lines: a library that writes to it (nats.js says
 * `reader closed <stack>` with console.log when a server sends what it cannot parse) would put
 * free text in the middle of what journald and log shippers parse. Its lines become warnings
 * instead — `a library wrote to the console`, the text clipped — at most 10 a minute. Returns what
 * puts the console back.
 */
export function routeConsole(log: Logger): () => void {
  const limited = new RateLimitedLog((fields, msg) => log.warn(fields, msg), { max: 10, intervalMs: 60_000 });
  const methods = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) {
    console[m] = (...args: unknown[]) => {
      const text = format(...args);
      limited.log({ console: m, text: text.length > CONSOLE_TEXT ? `${text.slice(0, CONSOLE_TEXT)}…` : text }, 'a library wrote to the console');
    };
  }
  return () => {
    limited.summary();
    methods.forEach((m, i) => { console[m] = saved[i]; });
  };
}

/**
 * For commands whose stdout is their output (`tail`, maybe piped into jq): what a library says on the
 * console goes to stderr, with the console's own warnings and errors. Returns what puts it back.
 */
export function consoleToStderr(): () => void {
  const methods = ['log', 'info', 'debug', 'trace'] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args: unknown[]) => { process.stderr.write(`${format(...args)}\n`); };
  return () => { methods.forEach((m, i) => { console[m] = saved[i]; }); };
}
