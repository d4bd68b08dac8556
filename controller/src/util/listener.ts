// The two servers any local user can reach (the metrics port, the control socket) are bounded the
// same way: at most `max` connections — past that, the new one is closed at once ('drop'), or, with
// `busy`, the oldest one that is not busy is closed to make room for it — and after listen
// an error is an accept that failed (EMFILE, ENFILE) — said, never fatal: the listener stays and
// accepts again when descriptors are back. Each message is said the first time, then at most once
// a minute per cause (LogLimiter), so a flood of connections cannot flood the log.
import type { Server, Socket } from 'node:net';
import { LogLimiter } from './log-limiter.js';

export interface GuardOptions {
  max: number;
  /** `metrics`, `control socket`: the start of each message. */
  what: string;
  /** Said after "connections refused, as many are open already". */
  dropHint?: string;
  warn?: (o: object, msg: string) => void;
  /**
   * At the cap, close the oldest connection for which this is false (no request in progress) to make
   * room for the new one; the new one is closed only when every other one is busy. Without it, the
   * new one is closed: whoever holds `max` connections open keeps everyone else out.
   */
  busy?: (s: Socket) => boolean;
}

/** Listen; rejects with the listen's own error (EADDRINUSE, EACCES…), then guards the server. */
export async function listenGuarded(server: Server, listen: (done: () => void) => void, o: GuardOptions): Promise<void> {
  const said = new LogLimiter();
  let dropped = 0;
  const drop = () => {
    dropped++;
    const say = said.allow('drop');
    if (say) o.warn?.({ max_connections: o.max, dropped, held: say.held }, `${o.what}: connections refused, as many are open already${o.dropHint ? ` ${o.dropHint}` : ''}`);
  };
  const busy = o.busy;
  if (busy) {
    const open = new Set<Socket>(); // in the order they came: the oldest first
    let evicted = 0;
    server.on('connection', (s: Socket) => {
      open.add(s);
      s.once('close', () => open.delete(s));
      if (open.size <= o.max) return;
      let victim: Socket | null = null;
      for (const c of open) {
        if (c !== s && !busy(c)) {
          victim = c;
          break;
        }
      }
      if (!victim) {
        open.delete(s);
        s.destroy();
        drop();
        return;
      }
      open.delete(victim);
      victim.destroy();
      evicted++;
      const say = said.allow('evict');
      if (say) {
        o.warn?.({ max_connections: o.max, evicted, held: say.held },
          `${o.what}: ${o.max} connections open already: the oldest idle one closed for a new one${o.dropHint ? ` ${o.dropHint}` : ''}`);
      }
    });
  } else {
    server.maxConnections = o.max;
    server.on('drop', drop);
  }
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
