// The perf buffer's memory is locked: past kernel.perf_event_mlock_kb per CPU (shared by every process
// of the user), the kernel charges it to RLIMIT_MEMLOCK and refuses it with EPERM unless the process has
// CAP_IPC_LOCK. A root shell has CAP_IPC_LOCK, a systemd service without it has an 8 MiB limit: ~520 KiB
// a CPU over the allowance, so a host of 16 CPUs or more could not start the tap. The shim's message
// ("cannot create the perf buffer: Operation not permitted") is turned here into one that says so.
import { readFileSync } from 'node:fs';

const CAP_IPC_LOCK = 14n;
const PAGE_KIB = 4;

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Whether this process's effective set has CAP_IPC_LOCK (null: /proc unreadable). */
function hasIpcLock(status = readOr('/proc/self/status')): boolean | null {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? ((BigInt(`0x${m[1]}`) >> CAP_IPC_LOCK) & 1n) === 1n : null;
}

/** RLIMIT_MEMLOCK's soft limit as `ulimit -l` would say it: "64 KiB", "unlimited" (null: unknown). */
function memlockLimit(limits = readOr('/proc/self/limits')): string | null {
  const m = /^Max locked memory\s+(\S+)/m.exec(limits);
  if (!m) return null;
  return m[1] === 'unlimited' ? 'unlimited' : `${Math.floor(Number(m[1]) / 1024)} KiB`;
}

/** The CPUs the kernel makes a ring for: /sys/devices/system/cpu/online ("0-15", "0,2-3"). */
function onlineCpus(online = readOr('/sys/devices/system/cpu/online')): number | null {
  let n = 0;
  for (const part of online.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    n += (m[2] === undefined ? 0 : Number(m[2]) - Number(m[1])) + 1;
  }
  return n || null;
}

/**
 * The shim's message when it could not make the perf buffer (or the reader's bell), with the likely
 * cause named when it was refused (EPERM) and the process lacks CAP_IPC_LOCK: locked memory.
 * `pages`: the data pages per CPU asked for. Any other message comes back as it is.
 */
export function explainPerfBufferError(message: string, pages: number, proc: { status?: string; limits?: string; online?: string } = {}): string {
  if (!/^cannot create the (perf buffer|reader's bell): Operation not permitted$/.test(message)) return message;
  if (hasIpcLock(proc.status) !== false) return message;
  const cpus = onlineCpus(proc.online);
  const limit = memlockLimit(proc.limits);
  const need = cpus ? `${cpus} CPUs × ${(pages + 1) * PAGE_KIB} KiB` : `${(pages + 1) * PAGE_KIB} KiB a CPU`;
  return `${message}: the kernel would not lock the buffer's memory (${need}, beyond `
    + `kernel.perf_event_mlock_kb a CPU shared by the user's processes): the locked-memory limit `
    + `(RLIMIT_MEMLOCK${limit ? `, ${limit}` : ''}) is too low and the process lacks CAP_IPC_LOCK; `
    + 'under systemd set LimitMEMLOCK=infinity (the packaged unit does; a drop-in may have lowered it), '
    + 'otherwise raise `ulimit -l` or grant CAP_IPC_LOCK';
}
