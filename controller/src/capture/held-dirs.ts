// The directories whose identities the kernel matches (`<home>/queue/db`, `bin/`, the framework's
// Python), held open for as long as the kernel has their numbers.
//
// Why: an identity is a device and an inode number, and numbers are reused. A directory removed (an
// uninstall, a home re-created) frees its inode for the next one made on that filesystem — by any user,
// in /tmp; a container's overlay (or a tmpfs, NFS, a btrfs subvolume) unmounted frees its anonymous
// device number for the next filesystem mounted — by an unprivileged user in a user namespace, whose
// tmpfs hands out inode numbers it can count up to. A home that went away keeps its identity in the
// kernel (capture.ts refreshIdentity: what it named is gone), so whoever got its numbers next would be
// "this home": its socket wazuh-db's, its programs the daemons, its bytes published as this manager's.
// An open descriptor keeps the directory's inode (and its filesystem's superblock, and so the device
// number) allocated: nothing else can have those numbers while the kernel matches them.

import { closeSync, constants as fc, fstatSync } from 'node:fs';
import { openInView } from '../util/in-view.js';
import type { FsId } from './targets.js';

const key = (id: FsId) => `${id.dev}:${id.ino}`;

export class HeldDirs {
  private readonly fds = new Map<string, number>();

  /**
   * Hold `path` open when it is still the directory `id` (false: it is not — replaced since it was
   * looked at — or it could not be opened: EMFILE; not to be handed to the kernel now).
   */
  hold(path: string, id: FsId): boolean {
    if (this.fds.has(key(id))) return true;
    let fd: number;
    try {
      fd = openInView(path, fc.O_RDONLY | fc.O_DIRECTORY | fc.O_NONBLOCK);
    } catch {
      return false;
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.dev === id.dev && st.ino === id.ino) {
        this.fds.set(key(id), fd);
        return true;
      }
    } catch {
      // not this one
    }
    closeSync(fd);
    return false;
  }

  /** Let go of every directory but `keep`'s: the kernel no longer has their numbers. */
  keepOnly(keep: readonly FsId[]): void {
    const wanted = new Set(keep.map(key));
    for (const [k, fd] of this.fds) {
      if (wanted.has(k)) continue;
      this.fds.delete(k);
      closeSync(fd);
    }
  }

  get size(): number {
    return this.fds.size;
  }
}
