// A library's console output in processes whose stdout is their product: JSON log lines (`run`) or
// events (`tail`). nats.js, for one, says `reader closed <stack>` with console.log.
import { format } from 'node:util';
import type { Logger } from 'pino';
import { clip } from './clip.js';
import { RateLimitedLog } from './rate-limit.js';

/** What a library's console line may carry into the log. */
const CONSOLE_TEXT = 2000;

type Method = 'log' | 'info' | 'warn' | 'error' | 'debug' | 'trace';

/** Replace `methods` of the console with `write(method, text)`, the text formatted as the console would; returns what puts them back. */
function swapConsole(methods: readonly Method[], write: (m: Method, text: string) => void): () => void {
  const saved = methods.map((m) => console[m]);
  for (const m of methods) console[m] = (...args: unknown[]) => write(m, format(...args));
  return () => { methods.forEach((m, i) => { console[m] = saved[i]; }); };
}

/**
 * The console of a process whose stdout is JSON lines: a library that writes to it (nats.js says
 * `reader closed <stack>` with console.log when a server sends what it cannot parse) would put
 * free text in the middle of what journald and log shippers parse. Its lines become warnings
 * instead — `a library wrote to the console`, the text clipped — at most 10 a minute. Returns what
 * puts the console back.
 */
export function routeConsole(log: Logger): () => void {
  const limited = new RateLimitedLog((fields, msg) => log.warn(fields, msg), { max: 10, intervalMs: 60_000 });
  const restore = swapConsole(['log', 'info', 'warn', 'error', 'debug', 'trace'],
    (m, text) => limited.log({ console: m, text: clip(text, CONSOLE_TEXT) }, 'a library wrote to the console'));
  return () => {
    limited.summary();
    restore();
  };
}

/**
 * For commands whose stdout is their output (`tail`, maybe piped into jq): what a library says on the
 * console goes to stderr, with the console's own warnings and errors. Returns what puts it back.
 */
export function consoleToStderr(): () => void {
  return swapConsole(['log', 'info', 'debug', 'trace'], (_m, text) => { process.stderr.write(`${text}\n`); });
}
