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
// The transport factory of nats.js is global: connectNats() installs this one before every
// connection. The tap's own code connects only through here (the plain `connect()` of
// @nats-io/transport-node puts its own factory back for every connection made after it).
import { createConnection, type Socket } from 'node:net';
import { NatsConnectionImpl, setTransportFactory, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { NodeTransport, nodeResolveHost } from '@nats-io/transport-node/lib/node_transport.js';
import { maskUrl } from '../util/mask-url.js';
import { boundControlLines } from './nats-parser.js';
import { followClockSteps } from './nats-reconnect-clock.js';

/** The transports one connection made (its first attempt, then its reconnects), to abandon them. */
class Attempt {
  readonly transports = new Set<BoundedTransport>();
  abandoned = false;
}

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
export function connectNats(opts: ConnectionOptions, deadlineMs: number): PendingConnection {
  install();
  const attempt = new Attempt();
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

/** `p`, or undefined after `ms`: for steps (close, drain) that a silent server could hold forever. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
