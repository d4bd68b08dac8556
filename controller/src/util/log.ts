import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * Structured JSON lines on stdout (SPEC §8), what journald and log shippers
 * read; with --log-level debug (or trace) on a terminal, readable lines
 * instead. Secrets never reach a log call.
 */
export function createLogger(level = 'info', tty = Boolean(process.stdout.isTTY)): Logger {
  const opts = { level, base: { name: 'wazuh-nats-tap' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (tty && (level === 'debug' || level === 'trace')) {
    return pino(opts, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  return pino(opts);
}
