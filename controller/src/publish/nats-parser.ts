// A bound on what nats.js's parser gathers of one control line.
//
// The parser (a port of nats.go's) collects a control line — INFO's JSON, an -ERR text, a MSG's
// arguments — byte by byte in `argBuf`, without a limit: a server that sends `INFO {` and then
// bytes without end (a hostile one, or garbage behind a proxy) had the tap's event loop parse at
// ~3 MB/s on a full core and the heap grow with it (measured: 100 % of a core and 107 → 330 MB
// in 24 s, capture and publishing starved) until the pings ran out. Past MAX_CONTROL_LINE the
// parse fails like any refused input: nats.js's reader stops, the transport closes itself
// (nats-connect.ts) and nats.js reconnects. A real server's lines are far below it (an INFO
// naming a hundred cluster peers is a few KB; nats-server's own limit for its clients is 4 KB).
import { Kind, Parser, ProtocolHandler } from '@nats-io/transport-node';

export const MAX_CONTROL_LINE = 1024 * 1024;

interface ParserFields { argBuf?: { length: number } }

let installed = false;

export function boundControlLines(): void {
  if (installed) return;
  installed = true;
  const parse = Parser.prototype.parse;
  Parser.prototype.parse = function boundedParse(this: Parser, buf: Uint8Array): void {
    parse.call(this, buf);
    const gathered = (this as unknown as ParserFields).argBuf?.length ?? 0;
    if (gathered > MAX_CONTROL_LINE) {
      throw new Error(`NATS protocol error: a control line of more than ${MAX_CONTROL_LINE} bytes without its end`);
    }
  };
}

// A bound on the work the server's lines make (review rt-life F2).
//
// Every PING costs a PONG written to the socket, every -ERR a status event (and, for a permissions
// violation, the tap's own accounting): a peer that sent them without pause — a hostile or broken
// server — had the tap's event loop answer millions a second, on 82-93 % of a core, `status` taking
// seconds and SIGTERM missing its deadline. A real server sends neither in numbers:
//  - PING: one every ping_interval (2 minutes by default), one more to time the round trip at the
//    start. More than MAX_PINGS_PER_SECOND (and INFO lines alike) in a second: the connection is
//    taken as broken.
//  - -ERR: nats-server closes the connection after every error but those that answer a command of
//    the client (a permissions violation, an invalid subject, too many subscriptions): such an other
//    error ends the connection here too, at once, whatever follows it. An answer to a command is
//    processed as before (the tap counts and reports permission refusals), one for each command
//    (PUB, HPUB, SUB, UNSUB) the connection sent plus ERR_SLACK: more refusals than commands cannot
//    be answers.
// A connection taken as broken is closed on the next turn, like a parse error (nats-connect.ts), and
// nats.js reconnects after reconnect_delay; what the server sends meanwhile is dropped unread.

export const MAX_PINGS_PER_SECOND = 1000;
export const ERR_SLACK = 100;

/** Why a connection was taken as broken: said by the publisher (rate-limited). */
export interface PeerFault {
  kind: 'pings' | 'refusals' | 'server-error' | 'unread';
  /** The error the transport is closed with (nats.js's closeError). */
  error: Error;
  /** For the log: figures and the server's text (clipped). */
  detail: Record<string, unknown>;
  /**
   * False for an authorization error before the handshake completed: nats.js fails the attempt with it,
   * and the publisher says that failure itself (no second line).
   */
  established: boolean;
}

/** The server's lines of one connection (its transport owns it), and what they may still cost. */
export class ServerLines {
  /** Set once the connection is taken as broken: its lines are dropped from then on. */
  ended: PeerFault | null = null;
  /** -ERR answers the server may still send: one per command sent, ERR_SLACK to begin with. */
  credit = ERR_SLACK;
  refusals = 0;
  private windowStart = 0;
  private lines = 0;

  constructor(private readonly end: (fault: PeerFault) => void) {}

  /** A PING or INFO line: false (and the connection ends) past MAX_PINGS_PER_SECOND in a second. */
  unsolicited(established: boolean): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000 || now < this.windowStart) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (++this.lines <= MAX_PINGS_PER_SECOND) return true;
    this.fail({
      kind: 'pings', established,
      error: new Error(`NATS protocol error: the server sent more than ${MAX_PINGS_PER_SECOND} PING/INFO lines in a second`),
      detail: { limit_per_second: MAX_PINGS_PER_SECOND },
    });
    return false;
  }

  fail(fault: PeerFault): void {
    if (this.ended) return;
    this.ended = fault;
    this.end(fault);
  }
}

const AUTHORIZATION = /^(authorization violation|(user|account) authentication (expired|revoked))/i;
const REFUSAL = /^(permissions violation|invalid (publish )?subject|maximum (number of )?subscriptions exceeded)/i;

/** The -ERR text as nats.js reads it (ProtocolHandler.processError). */
function errText(data: Uint8Array | undefined): string {
  let s = data ? Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, 300)).toString('utf8') : '';
  if (s.startsWith('\'')) s = s.slice(1);
  if (s.endsWith('\'')) s = s.slice(0, -1);
  return s;
}

interface Guarded { lines?: ServerLines }

let guarded = false;

export function boundServerLines(): void {
  if (guarded) return;
  guarded = true;
  const proto = ProtocolHandler.prototype;
  const push = proto.push;
  proto.push = function boundedPush(this: ProtocolHandler, e: Parameters<ProtocolHandler['push']>[0]): void {
    const g = (this.transport as unknown as Guarded | undefined)?.lines;
    if (!g) return push.call(this, e);
    if (g.ended) return; // closing: nothing more of this connection is processed
    if (e.kind === Kind.PING || e.kind === Kind.INFO) {
      if (!g.unsolicited(this.connected)) return;
    } else if (e.kind === Kind.ERR) {
      const text = errText(e.data);
      if (REFUSAL.test(text)) {
        g.refusals++;
        if (--g.credit < 0) {
          g.fail({
            kind: 'refusals', established: this.connected,
            error: new Error(`NATS protocol error: the server sent more refusals (-ERR) than the client sent commands (${g.refusals})`),
            detail: { refusals: g.refusals, err: text.slice(0, 200) },
          });
          return;
        }
      } else {
        // nats.js first (an authorization error at CONNECT fails the attempt with its reason), then the end.
        push.call(this, e);
        g.fail({
          kind: 'server-error', established: this.connected || !AUTHORIZATION.test(text),
          error: new Error(`NATS server error: ${text.slice(0, 200)}`),
          detail: { err: text.slice(0, 200) },
        });
        return;
      }
    }
    push.call(this, e);
  };
  // The commands a server may answer with an -ERR: each one is a refusal the connection may receive.
  const sendCommand = proto.sendCommand;
  proto.sendCommand = function countedSendCommand(this: ProtocolHandler, ...args: Parameters<ProtocolHandler['sendCommand']>): void {
    const g = (this.transport as unknown as Guarded | undefined)?.lines;
    if (g) g.credit++;
    sendCommand.apply(this, args);
  };
  const sendSubscriptions = proto.sendSubscriptions;
  proto.sendSubscriptions = function countedSendSubscriptions(this: ProtocolHandler): void {
    const g = (this.transport as unknown as Guarded | undefined)?.lines;
    if (g) g.credit += this.subscriptions.size();
    sendSubscriptions.call(this);
  };
}
