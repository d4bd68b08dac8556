// The two servers any local user can reach (the metrics port, the control socket) are bounded the
// same way: at most `max` connections (the next ones are closed at once: 'drop'), and after listen
// an error is an accept that failed (EMFILE, ENFILE) — said, never fatal: the listener stays and
// accepts again when descriptors are back. Each message is said the first time, then at most once
// a minute per cause (LogLimiter), so a flood of connections cannot flood the log.
import type { Server } from 'node:net';
import { LogLimiter } from './log-limiter.js';

export interface GuardOptions {
  max: number;
  /** `metrics`, `control socket`: the start of each message. */
  what: string;
  /** Said after "connections refused, as many are open already". */
  dropHint?: string;
  warn?: (o: object, msg: string) => void;
}

/** Listen; rejects with the listen's own error (EADDRINUSE, EACCES…), then guards the server. */
export async function listenGuarded(server: Server, listen: (done: () => void) => void, o: GuardOptions): Promise<void> {
  server.maxConnections = o.max;
  const said = new LogLimiter();
  let dropped = 0;
  server.on('drop', () => {
    dropped++;
    const say = said.allow('drop');
    if (say) o.warn?.({ max_connections: o.max, dropped, held: say.held }, `${o.what}: connections refused, as many are open already${o.dropHint ? ` ${o.dropHint}` : ''}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    listen(() => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e: NodeJS.ErrnoException) => {
    const say = said.allow(`error:${e.code ?? e.message}`);
    if (say) o.warn?.({ err: e.message, code: e.code, held: say.held }, `${o.what}: accepting a connection failed: going on`);
  });
}
