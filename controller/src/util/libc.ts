// The C library, for the few calls Node has no API for (flock, SO_PEERCRED, _exit, alarm): loaded
// through koffi once, when the first of them is needed.
import koffi from 'koffi';

let lib: ReturnType<typeof koffi.load> | null = null;

/** glibc, loaded once (throws where it cannot be: callers that must not throw catch it). */
export function libc(): ReturnType<typeof koffi.load> {
  lib ??= koffi.load('libc.so.6');
  return lib;
}
