// systemd's notification protocol (sd_notify(3)), for `Type=notify` and `WatchdogSec=`: one datagram
// of `KEY=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or `@name` in the
// abstract namespace). Node has no datagram UNIX sockets, so libc's socket/sendto are called through
// koffi. A send never blocks (MSG_DONTWAIT) and never throws: systemd away or its queue full costs
// that notification, nothing else.
import { Buffer } from 'node:buffer';
import { libc } from '../util/libc.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t, then sun_path[108]. */
const SUN_PATH = 108;

export interface Notifier {
  /** Send one notification (`READY=1`, `WATCHDOG=1\nSTATUS=…`); false when it could not be sent. */
  send(state: string): boolean;
  close(): void;
}

/** struct sockaddr_un for a $NOTIFY_SOCKET value, with its length; null for what is not one. */
export function notifyAddress(value: string): { addr: Buffer; len: number } | null {
  const abstract = value.startsWith('@');
  if (!abstract && !value.startsWith('/')) return null; // systemd gives an absolute path or @name
  const path = Buffer.from(abstract ? value.slice(1) : value);
  if (path.length === 0 || path.length >= SUN_PATH || (!abstract && path.includes(0))) return null;
  const addr = Buffer.alloc(2 + SUN_PATH);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, abstract ? 3 : 2); // abstract: a leading NUL, then the name, no terminator
  return { addr, len: 2 + path.length + 1 };
}

interface SocketCalls {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number): number;
  close(fd: number): number;
}
let calls: SocketCalls | null = null;

function socketCalls(): SocketCalls {
  if (!calls) {
    const lib = libc();
    calls = {
      socket: lib.func('int socket(int, int, int)'),
      sendto: lib.func('intptr_t sendto(int, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t alen)'),
      close: lib.func('int close(int)'),
    } as SocketCalls;
  }
  return calls;
}

/**
 * A notifier for $NOTIFY_SOCKET, or null when the tap was not started by systemd with `Type=notify`
 * (the variable unset, or not a socket address). The variable is removed from the environment, as
 * sd_notify's unset_environment does: a process the tap starts is not systemd's main process.
 */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier | null {
  const value = env.NOTIFY_SOCKET;
  if (!value) return null;
  delete env.NOTIFY_SOCKET;
  const target = notifyAddress(value);
  if (!target) return null;
  let c: SocketCalls;
  let fd: number;
  try {
    c = socketCalls();
    fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  } catch {
    return null; // no libc: no notifications (systemd's start timeout will say so)
  }
  if (fd < 0) return null;
  return {
    send(state) {
      if (fd < 0) return false;
      const msg = Buffer.from(state);
      return c.sendto(fd, msg, msg.length, MSG_DONTWAIT | MSG_NOSIGNAL, target.addr, target.len) === msg.length;
    },
    close() {
      if (fd >= 0) c.close(fd);
      fd = -1;
    },
  };
}

/** One notification and done (a start that has nothing to do: READY=1 then the exit, not a failed start). */
export function notifyOnce(state: string, env: NodeJS.ProcessEnv = process.env): void {
  const n = systemdNotifier(env);
  n?.send(state);
  n?.close();
}

/**
 * The watchdog's interval in ms when systemd asks for pings ($WATCHDOG_USEC, for this process when
 * $WATCHDOG_PID names one), else null. Both variables are removed from the environment.
 */
export function watchdogMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  const forPid = env.WATCHDOG_PID;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  if (forPid !== undefined && Number(forPid) !== pid) return null;
  return Math.max(1, Math.floor(usec / 1000));
}
