// Opening the files of logs/alerts (SPEC §8): the tap is root, and logs/ and logs/alerts/ belong to
// the Wazuh user, who can put anything there — a symbolic link to a root-only file, a FIFO that
// would block a reader forever, a file of another user. So a file is opened without following a
// symbolic link in its last component (O_NOFOLLOW) and without blocking (O_NONBLOCK: a FIFO opens
// at once and is then refused), and what was opened is checked through the descriptor (fstat, no
// race with a swap): a regular file owned by root or by the Wazuh user, else it is closed unread.
import { constants as fc } from 'node:fs';
import { join } from 'node:path';
import { openChecked, type CheckedOpen } from '../util/checked-open.js';
import { fileKind } from '../util/read-file.js';
import { statInView } from '../util/in-view.js';

/** Opened (`fd`, `st`), or not opened or closed unread: `refused` says what it is; dev/ino tell this file from the next one. */
export type TrustedOpen = CheckedOpen;

/**
 * The Wazuh user's uid: the owner of `<home>/queue/db`, wazuh-db's directory; null when it cannot
 * be read (then only root's files are Wazuh's).
 *
 * Why that directory and not a name: the `wazuh` account is a name, in a database that is not the
 * manager's in a container (`--home /proc/<pid>/root/var/ossec`: another /etc/passwd, another uid)
 * and whose name differs in 5.x; the owner of logs/alerts is no better, since the Wazuh user owns
 * logs/ (0770) and can replace logs/alerts with a link to a directory of root's. `queue/` is
 * root:wazuh 0750 in every Wazuh install, so `queue/db` (wazuh:wazuh) cannot be replaced or handed
 * to another uid by anyone but root: its owner is the uid Wazuh's daemons were installed to run as.
 */
export function wazuhUid(home: string): number | null {
  try {
    return statInView(join(home, 'queue', 'db')).uid; // below a container's root: as it resolves the path
  } catch {
    return null;
  }
}

/** Open `path` for reading if it is a regular file owned by one of `owners`; other errors (ENOENT, EMFILE…) are thrown. */
export function openTrusted(path: string, owners: readonly number[]): TrustedOpen {
  return openChecked(path, fc.O_RDONLY, (st) => (!st.isFile() ? `not a regular file (${fileKind(st)})`
    : !owners.includes(st.uid) ? `owned by uid ${st.uid}, neither root nor the Wazuh user (${owners.filter((u) => u !== 0).join(', ') || 'unknown'})`
      : null));
}
