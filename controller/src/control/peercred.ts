// The credentials of the process at the other end of a UNIX socket
// (SO_PEERCRED), read by the kernel at connect time: what the control socket
// trusts, rather than the socket file's mode alone. Node has no API for it,
// so libc's getsockopt is called through koffi on the socket's descriptor.
import { libc } from '../util/libc.js';
import type { Socket } from 'node:net';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

let getsockopt: ((fd: number, level: number, name: number, out: Int32Array, len: Uint32Array) => number) | null = null;

function libcGetsockopt() {
  getsockopt ??= libc().func('int getsockopt(int fd, int level, int name, _Inout_ int32_t *val, _Inout_ uint32_t *len)');
  return getsockopt!;
}

/** The peer of a connected UNIX socket, or null when it cannot be known (then refuse). */
export function peerCred(socket: Socket): PeerCred | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  const cred = new Int32Array(3); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  const len = new Uint32Array([12]);
  if (libcGetsockopt()(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0 || len[0] !== 12) return null;
  return { pid: cred[0], uid: cred[1] >>> 0, gid: cred[2] >>> 0 };
}
