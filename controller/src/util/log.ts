import { pino, type Logger } from 'pino';

/** Structured JSON lines on stdout (SPEC §8); secrets never reach a log call. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { name: 'wazuh-nats-tap' }, timestamp: pino.stdTimeFunctions.isoTime });
}
