// Connecting to NATS with a deadline, without leaving a socket behind.
//
// nats.js 3 (NodeTransport) destroys the socket of a failed attempt only when the socket itself
// failed (refused, reset). When the attempt times out instead — a port that accepts TCP and never
// sends INFO, a peer that stopped answering — the protocol calls `transport.close()`, which returns
// early for a transport that never finished connecting: the socket stays open with its listeners.
// That is one descriptor per attempt, and an event loop that never empties (a `tail` that never
// exits, a tap that logs `stopped` and stays). nats.js also closes the transport of a reconnect
// attempt the same way when the connection is closed during it.
//
// The transport below releases its socket on every close, and an attempt in flight can be
// abandoned (a deadline, Delivery.close(), Ctrl-C): its sockets are destroyed at once, so the
// attempt fails promptly and nothing is left for the process to wait for.
//
// The transport also bounds what it owes the server (review rt-life F3): nats.js writes every
// frame — a PONG for each PING above all — without looking at back-pressure, so a peer that sent
// PINGs and never read had the tap's memory grow at the network's speed (112 MB → 1.78 GB of RSS in
// 11 s). Past MAX_UNSENT_BYTES unsent (or MAX_WRITES_PENDING writes, for frames as small as a
// PONG) the server is taken as not reading: the connection is closed and made again. The
// publisher writes ahead WRITE_AHEAD_BYTES at most (delivery.ts), so a server slow to read a
// replay holds the publisher back; it is never cut off.
//
// The transport factory of nats.js is global: connectNats() installs this one before every
// connection. The tap's own code connects only through here (the plain `connect()` of
// @nats-io/transport-node puts its own factory back for every connection made after it).
import { createConnection, type Socket } from 'node:net';
import { NatsConnectionImpl, setTransportFactory, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { NodeTransport, nodeResolveHost } from '@nats-io/transport-node/lib/node_transport.js';
import { maskUrl } from '../util/mask-url.js';
import { boundControlLines, boundServerLines, ServerLines, type PeerFault } from './nats-parser.js';
import { followClockSteps } from './nats-reconnect-clock.js';

export type { PeerFault };

/** The transports one connection made (its first attempt, then its reconnects), to abandon them. */
class Attempt {
  readonly transports = new Set<BoundedTransport>();
  abandoned = false;
  constructor(readonly onFault?: (fault: PeerFault) => void) {}
}

/** What the publisher writes ahead of the socket at most, bytes (delivery.ts): a slow server holds it back. */
export const WRITE_AHEAD_BYTES = 2 * 1024 * 1024;
/** Unsent bytes past which the server is taken as not reading (or more: see unsentBound). */
export const MAX_UNSENT_BYTES = 8 * 1024 * 1024;
/** Writes not yet handed to the kernel past which the server is taken as not reading (a PONG is a write of 6 bytes). */
export const MAX_WRITES_PENDING = 65_536;

/**
 * Which connection a transport belongs to. nats.js creates transports deep in its own promise
 * chains (each server of the list, each reconnect), but hands every one the connection's options:
 * the Attempt rides in them under this key (nats.js copies the options' own keys and sends only
 * the fields it knows). Not an AsyncLocalStorage: once used, one turns on promise hooks for the
 * whole process, and every promise of the tap paid for them (an `await` ~3× slower).
 */
const ATTEMPT = 'wazuhNatsTapAttempt';

class BoundedTransport extends NodeTransport {
  /** The socket while TCP connects (NodeTransport keeps it only once connected). */
  private dialing: Socket | undefined;

  /** The attempt that dials this transport: known from connect() on (before it, there is no socket to abandon). */
  private attempt: Attempt | undefined;

  /** The server's lines (nats-parser.ts): once the connection is taken as broken, it is closed on the next turn. */
  readonly lines = new ServerLines((fault) => {
    // On the next turn, as for a parse error (iterate() below): nats.js may not have taken a PONG read
    // in the same chunk as connected yet, and a close before that is lost in its dial.
    setImmediate(() => void this.close(fault.error));
    this.attempt?.onFault?.(fault);
  });

  /** The server's max_payload (its INFO): a message of that size may be unsent on top of the write-ahead. */
  private maxPayload = 1024 * 1024;
  private writesPending = 0;
  private readonly written = (): void => { this.writesPending--; };

  /** Bytes written to the socket and not yet handed to the kernel. */
  get unsent(): number {
    return (this.socket as Socket | undefined)?.writableLength ?? 0;
  }

  /** The most the tap can owe a server that reads: the write-ahead and a message of max_payload, twice over. */
  private get unsentBound(): number {
    return Math.max(MAX_UNSENT_BYTES, 2 * (WRITE_AHEAD_BYTES + this.maxPayload));
  }

  override async peekInfo(): ReturnType<NodeTransport['peekInfo']> {
    const info = await super.peekInfo();
    const mp = Number((info as { max_payload?: unknown } | undefined)?.max_payload);
    if (Number.isSafeInteger(mp) && mp > 0) this.maxPayload = mp;
    return info;
  }

  /**
   * NodeTransport.send without a promise for each frame (nats.js ignores write errors there: the reader or
   * the pings find a dead connection), and with a bound on what waits unsent (above).
   */
  override send(frame: Uint8Array): void {
    const s = this.socket as Socket | undefined;
    if (this.done || s === undefined || this.lines.ended) return;
    this.writesPending++;
    try {
      s.write(frame, this.written);
    } catch {
      this.writesPending--;
      return;
    }
    const unsent = s.writableLength;
    if (unsent > this.unsentBound || this.writesPending > MAX_WRITES_PENDING) {
      this.lines.fail({
        kind: 'unread', established: true,
        error: new Error(`NATS server does not read: ${(unsent / 1048576).toFixed(1)} MiB in ${this.writesPending} writes unsent to it`),
        detail: { unsent_bytes: unsent, writes_pending: this.writesPending, bound_bytes: this.unsentBound, bound_writes: MAX_WRITES_PENDING },
      });
    }
  }

  override async connect(hp: { hostname: string; port: number; tlsName: string }, options: Parameters<NodeTransport['connect']>[1]): Promise<void> {
    const attempt = (options as unknown as Record<string, unknown>)[ATTEMPT];
    this.attempt = attempt instanceof Attempt ? attempt : undefined;
    if (this.attempt?.abandoned) throw new Error('connection attempt abandoned');
    this.attempt?.transports.add(this);
    try {
      await super.connect(hp, options);
    } finally {
      this.dialing = undefined;
    }
  }

  /** NodeTransport.dial, with the socket kept while it connects, so that abandon() can destroy it. */
  override dial(hp: { hostname: string; port: number }): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      let dialError: Error | undefined;
      const socket = createConnection(hp.port, hp.hostname, () => {
        socket.removeAllListeners();
        resolve(socket);
      });
      this.dialing = socket;
      socket.on('error', (err) => { dialError = err; });
      socket.on('close', () => {
        socket.removeAllListeners();
        reject(dialError);
      });
      socket.setNoDelay(true);
    });
  }

  /**
   * nats.js's reader stops at the first bytes its parser refuses — a hostile or broken server's
   * `MSG a 1 999999999999` — says `reader closed` on the console, and leaves the socket open: what
   * the server sends next piled up in this transport's queue, never read, at the network's speed
   * (+5 GB of RSS in 20 s on loopback). A reader that stops before the transport is done closes it
   * with the error instead: nats.js then disconnects and reconnects as for any failed connection.
   */
  override async *iterate(): AsyncIterableIterator<Uint8Array> {
    let ended = false;
    try {
      yield* super.iterate();
      ended = true;
    } finally {
      // On the next turn: the bytes refused may have come with the handshake's PONG, and a close
      // before nats.js has taken it as connected is lost in its dial (no reconnect ever follows).
      if (!ended && !this.done) setImmediate(() => void this.close(new Error('NATS protocol error: the server sent what the client cannot parse')));
    }
  }

  /** A transport that never finished connecting is destroyed too (nats.js leaves its socket open). */
  override close(err?: Error): Promise<void> {
    this.attempt?.transports.delete(this);
    if (!this.connected) {
      this.discard();
      this.dialing?.destroy();
      this.dialing = undefined;
      return Promise.resolve();
    }
    return super.close(err);
  }

  /**
   * Stop an attempt in flight: the socket is destroyed with its listeners in place, so the pending
   * dial, INFO or TLS step fails now (no error argument: an 'error' event could find no listener).
   */
  abandon(): void {
    if (this.connected) return; // an established connection is closed by its owner (nc.close())
    const s = this.dialing ?? this.socket;
    s?.destroy();
  }
}

function install(): void {
  boundControlLines();
  boundServerLines();
  followClockSteps();
  setTransportFactory({ factory: () => new BoundedTransport(), dnsResolveFn: nodeResolveHost });
}

export class NatsConnectTimeout extends Error {
  readonly exitCode = 1;
}

export interface PendingConnection {
  /** The connection; rejects when the attempt failed, timed out or was abandoned. */
  readonly connection: Promise<NatsConnection>;
  /** Give the attempt up: its sockets are destroyed; a connection that completes anyway is closed. */
  abandon(): void;
}

/**
 * Connect with a deadline: nats.js's `timeout` bounds each dial (TCP, INFO, TLS, CONNECT/PONG) and
 * `deadlineMs` the whole attempt (name resolution and every server of the list included). After the
 * deadline the attempt is abandoned and `connection` rejects with NatsConnectTimeout.
 */
export function connectNats(opts: ConnectionOptions, deadlineMs: number, hooks: { onFault?: (fault: PeerFault) => void } = {}): PendingConnection {
  install();
  const attempt = new Attempt(hooks.onFault);
  let stop: (e: Error) => void = () => {};
  const stopped = new Promise<never>((_, reject) => { stop = reject; });
  stopped.catch(() => {});
  const abandon = (why: Error) => {
    if (attempt.abandoned) return;
    attempt.abandoned = true;
    for (const t of [...attempt.transports]) t.abandon();
    stop(why);
  };
  const p = NatsConnectionImpl.connect({ ...opts, [ATTEMPT]: attempt } as ConnectionOptions);
  p.then((nc) => { if (attempt.abandoned) nc.close().catch(() => {}); }, () => {});
  const timer = setTimeout(() => {
    const servers = ([] as string[]).concat(opts.servers ?? []).map(maskUrl).join(', ');
    abandon(new NatsConnectTimeout(`no answer from NATS at ${servers} within ${deadlineMs / 1000} s (does something else listen there? is it a NATS port?)`));
  }, deadlineMs);
  timer.unref();
  const connection = Promise.race([p, stopped]).finally(() => clearTimeout(timer));
  return { connection, abandon: () => abandon(new Error('connection attempt abandoned')) };
}

/**
 * What a connection has not handed to the kernel yet: its socket's unsent bytes and what nats.js
 * holds for its next write. The publisher stops at WRITE_AHEAD_BYTES (delivery.ts).
 */
export function unsentBytes(nc: NatsConnection): number {
  const p = (nc as unknown as { protocol?: { transport?: unknown; outbound?: { size(): number } } }).protocol;
  const t = p?.transport;
  return (t instanceof BoundedTransport ? t.unsent : 0) + (p?.outbound?.size() ?? 0);
}

/** `p`, or undefined after `ms`: for steps (close, drain) that a silent server could hold forever. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
