/** An error from the system (it has an errno code), as opposed to a bug. */
export function isErrno(e: unknown): e is NodeJS.ErrnoException {
  return typeof (e as NodeJS.ErrnoException | null)?.code === 'string';
}

/** Out of file descriptors, the process's (EMFILE) or the system's (ENFILE): a fault to survive and retry, never a reason to stop. */
export function isFdExhaustion(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/**
 * A failure of the moment, not of the file: out of descriptors or memory, interrupted, busy. The
 * same call may succeed later, so it is retried rather than taken for an answer about the file.
 */
export function isTransient(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return isFdExhaustion(e) || code === 'ENOMEM' || code === 'EAGAIN' || code === 'EINTR' || code === 'EBUSY';
}
