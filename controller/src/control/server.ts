// The control socket of the running agent (SPEC §7): `attach`, `detach` and
// `status` from the CLI. Only root is served, checked with the peer's
// credentials; the socket file is 0600 as well. A malformed or oversized
// request gets an error reply and is never a danger to the agent. Connections are capped and
// time out, and a failed accept (out of descriptors) is logged, never fatal.
//
// The socket file is known by its device and inode, not by its path: removed (a tmp cleaner, an
// administrator's `rm`), it is made again (`ensure`, called by the control part every few seconds) —
// before, every later `status`, `attach` and `detach` failed with `no agent runs` until a restart.
// Another file or socket put at the path is not ours: left alone, said, and not removed at close.
import { chmodSync, existsSync, linkSync, lstatSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { peerCred } from './peercred.js';
import { MAX_REQUEST_BYTES, parseRequest, type ControlCommand, type ControlReply } from './protocol.js';
import { listenGuarded } from '../util/listener.js';
import { LogLimiter } from '../util/log-limiter.js';
import { ConfigError, KernelSupportError } from '../errors.js';

/** Clients served at once: `status` is one short exchange; more than this is a runaway script. */
export const MAX_CONTROL_CONNECTIONS = 16;
/** A connection silent this long is closed. */
export const CONTROL_IDLE_MS = 10_000;
/**
 * And any connection, however active, once it is this old: a request is one line and its answer one
 * more. With the idle time-out alone, a client sending a byte every 9 s held its slot for hours.
 */
export const CONTROL_DEADLINE_MS = 20_000;

export type ControlHandlers = Record<ControlCommand, () => Promise<Record<string, unknown>> | Record<string, unknown>>;

export interface ControlServerOptions {
  path: string;
  handlers: ControlHandlers;
  log: Logger;
  /** uid allowed besides root (tests); production serves root only. */
  allowUid?: number;
  /** CONTROL_DEADLINE_MS (tests). */
  deadlineMs?: number;
}

/** Whether something accepts connections on the socket at `path` (within a second). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (yes: boolean) => { clearTimeout(timer); s.destroy(); resolve(yes); };
    const timer = setTimeout(() => done(false), 1000);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export class ControlServer {
  private server: Server | null = null;
  private readonly clients = new Set<Socket>();
  /** The socket file listen() made: its device and inode. */
  private made: { dev: number; ino: number } | null = null;
  /** Another file is at the path (said once, until ours is back). */
  private saidOther = false;
  /** close() was called: ensure() makes nothing any more. */
  private closed = false;
  /** Refusals (not root) are said once a minute at most, with how many were not: any local user can connect when the mode allows. */
  private readonly said = new LogLimiter();

  constructor(private readonly opts: ControlServerOptions) {}

  /** Clients connected now. */
  get connections(): number {
    return this.clients.size;
  }

  /**
   * Listen at the path. Throws, with nothing touched, when the path holds something else: a file, a
   * directory or a symbolic link (a dangling one included) — a ConfigError (exit 2: no restart can
   * fix it) — or a socket another process still serves (exit 1: it may go away). The server is this
   * one's only once it listens: a failed listen leaves the one before in place for ensure().
   */
  async listen(): Promise<void> {
    const { path } = this.opts;
    // A stale socket of a previous run is replaced; anything else at that path is not ours to remove —
    // a socket that still answers included (another agent's: taking it left that one unreachable).
    let st: Stats | null = null;
    try {
      st = lstatSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st) {
      if (!st.isSocket()) {
        const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'a file';
        throw new ConfigError(`${path} exists and is not a socket (${what})`);
      }
      if (await answers(path)) throw new Error(`${path} is served by another process (another agent?)`);
      unlinkSync(path);
    }
    const server = createServer((s) => this.serve(s));
    const { log } = this.opts;
    await listenGuarded(server, (done) => server.listen(path, done), {
      max: MAX_CONTROL_CONNECTIONS, what: 'control socket', warn: (o, msg) => log.warn(o, msg),
    });
    this.server = server;
    chmodSync(path, 0o600);
    const made = lstatSync(path);
    this.made = { dev: made.dev, ino: made.ino };
  }

  /** What is at the path: the socket listen() made, nothing, or another file; `unknown` when lstat fails otherwise. */
  private atPath(): 'ours' | 'gone' | 'other' | 'unknown' {
    try {
      const st = lstatSync(this.opts.path);
      return this.made && st.dev === this.made.dev && st.ino === this.made.ino ? 'ours' : 'other';
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unknown';
    }
  }

  /**
   * The socket file is still ours, or made again when it was removed (`remade`; clients connected
   * meanwhile are kept, and not waited for). Another file at the path is left alone (`other`, said
   * once). Never throws: a listen that fails now (out of descriptors, a file put at the path in
   * between) is said and tried again at the next call — the server before stays this one's until a
   * new one listens, so there always is a next call.
   */
  async ensure(): Promise<'ours' | 'remade' | 'gone' | 'other' | 'unknown'> {
    if (this.closed || !this.server) return 'unknown';
    const at = this.atPath();
    if (at === 'other' && !this.saidOther) {
      this.saidOther = true;
      this.opts.log.warn({ path: this.opts.path },
        'control socket: its path now holds another file or socket, not this agent\'s: left alone; attach/detach/status do not reach this agent');
    }
    if (at !== 'gone') return at;
    this.saidOther = false;
    // Stop accepting on the old one. libuv unlinks the path its socket was bound to as it closes it, at
    // once (the path is free: nothing of anyone's there); its clients are served to their end, not waited for.
    const old = this.server;
    if (old.listening) old.close();
    try {
      await this.listen();
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message, path: this.opts.path }, 'control socket: removed, and cannot be made again yet: retrying');
      return 'gone';
    }
    this.opts.log.warn({ path: this.opts.path }, 'control socket: it was removed: made again');
    return 'remade';
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    sock.once('close', () => this.clients.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(CONTROL_IDLE_MS, () => sock.destroy());
    const deadline = setTimeout(() => sock.destroy(), this.opts.deadlineMs ?? CONTROL_DEADLINE_MS);
    deadline.unref();
    sock.once('close', () => clearTimeout(deadline));
    const cred = peerCred(sock);
    if (!cred || (cred.uid !== 0 && cred.uid !== this.opts.allowUid)) {
      const say = this.said.allow('refused');
      if (say) this.opts.log.warn({ peer: cred, held: say.held }, 'control socket: refused a client that is not root');
      this.reply(sock, { ok: false, error: 'permission denied: the control socket serves root only', code: 'EPERM' }, true);
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
      // The kernel refused what attach asked (a hook, tracefs): exit 3 for the CLI, as at `run`.
      return { ok: false, error: (e as Error).message, ...(e instanceof KernelSupportError ? { code: 'KERNEL_SUPPORT' as const } : {}) };
    }
  }

  private reply(sock: Socket, r: ControlReply, end: boolean): void {
    if (sock.destroyed) return;
    sock.write(`${JSON.stringify(r)}\n`);
    if (end) sock.end();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.clients) c.destroy();
    if (!this.server) return;
    // libuv unlinks the path a listening socket was bound to when it closes, whatever is there now:
    // another file or socket that took the path is kept by a second link, and put back after.
    const { path } = this.opts;
    let aside: string | null = null;
    if (this.atPath() === 'other') {
      aside = `${path}.${process.pid}.keep`;
      try { linkSync(path, aside); } catch { aside = null; }
    }
    const server = this.server;
    await new Promise<void>((r) => server.close(() => r())); // not listening (a failed re-make): at once
    this.server = null;
    if (aside) {
      try { if (!existsSync(path)) renameSync(aside, path); } catch { /* the path was taken again meanwhile */ }
      try { unlinkSync(aside); } catch { /* renamed */ }
      return;
    }
    try {
      unlinkSync(path); // ours (libuv removed it already, most likely)
    } catch { /* already gone */ }
  }
}
