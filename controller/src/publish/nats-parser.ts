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
import { Parser } from '@nats-io/transport-node';

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
