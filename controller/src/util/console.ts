// A library's console output in processes whose stdout is their product: JSON log lines (`run`) or
// events (`tail`). nats.js, for one, says `reader closed <stack>` with console.log.
import { format } from 'node:util';
import type { Logger } from 'pino';
import { RateLimitedLog } from './rate-limit.js';

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
