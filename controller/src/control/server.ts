// The control socket of the running agent (SPEC §7): `attach`, `detach` and
// `status` from the CLI. Only root is served, checked with the peer's
// credentials; the socket file is 0600 as well. A malformed or oversized
// request gets an error reply and is never a danger to the agent. Connections are capped and
// time out, and a failed accept (out of descriptors) is logged, never fatal.
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { peerCred } from './peercred.js';
import { MAX_REQUEST_BYTES, parseRequest, type ControlCommand, type ControlReply } from './protocol.js';
import { listenGuarded } from '../util/listener.js';

/** Clients served at once: `status` is one short exchange; more than this is a runaway script. */
export const MAX_CONTROL_CONNECTIONS = 16;

export type ControlHandlers = Record<ControlCommand, () => Promise<Record<string, unknown>> | Record<string, unknown>>;

export interface ControlServerOptions {
  path: string;
  handlers: ControlHandlers;
  log: Logger;
  /** uid allowed besides root (tests); production serves root only. */
  allowUid?: number;
}

export class ControlServer {
  private server: Server | null = null;
  private readonly clients = new Set<Socket>();

  constructor(private readonly opts: ControlServerOptions) {}

  /** Clients connected now. */
  get connections(): number {
    return this.clients.size;
  }

  async listen(): Promise<void> {
    const { path } = this.opts;
    // A stale socket of a previous run is replaced; anything else at that path is not ours to remove.
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
      unlinkSync(path);
    }
    const server = createServer((s) => this.serve(s));
    this.server = server;
    const { log } = this.opts;
    await listenGuarded(server, (done) => server.listen(path, done), {
      max: MAX_CONTROL_CONNECTIONS, what: 'control socket', warn: (o, msg) => log.warn(o, msg),
    });
    chmodSync(path, 0o600);
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.once('close', () => this.clients.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(10_000, () => sock.destroy());
    const cred = peerCred(sock);
    if (!cred || (cred.uid !== 0 && cred.uid !== this.opts.allowUid)) {
      this.opts.log.warn({ peer: cred }, 'control socket: refused a client that is not root');
      this.reply(sock, { ok: false, error: 'permission denied: the control socket serves root only' }, true);
      return;
    }
    let buf = '';
    let busy = false;
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REQUEST_BYTES) {
        this.reply(sock, { ok: false, error: `request larger than ${MAX_REQUEST_BYTES} bytes` }, true);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0 || busy) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      busy = true;
      void this.handle(line).then((r) => this.reply(sock, r, true));
    });
  }

  private async handle(line: string): Promise<ControlReply> {
    const req = parseRequest(line);
    if ('error' in req) return { ok: false, error: req.error };
    try {
      return { ok: true, ...(await this.opts.handlers[req.cmd]()) };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }

  private reply(sock: Socket, r: ControlReply, end: boolean): void {
    if (sock.destroyed) return;
    sock.write(`${JSON.stringify(r)}\n`);
    if (end) sock.end();
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    if (!this.server) return;
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = null;
    try {
      unlinkSync(this.opts.path);
    } catch { /* already gone */ }
  }
}
