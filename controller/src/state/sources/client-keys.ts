// Reads and watches `<home>/etc/client.keys` (names and registration addresses of agents). authd rewrites
// the file through a temporary file and a rename, so the directory is watched, not the file; changes are
// debounced, reads are bounded in size, and only one read is in flight at a time. A read that failed for
// want of file descriptors (EMFILE, ENFILE) is tried again a second later, not only at the next change.
//
// The tap is root and etc/ is the Wazuh user's (wazuh:wazuh 0770): that user can put anything where
// client.keys is — a symbolic link to a root-only file (another tenant's client.keys through
// /proc/<pid>/root, anything with lines of that form: their names and addresses became the agents'
// in the events), a FIFO, a hard link. So the file is opened as alerts.json is
// (alerts/trusted-open.ts): without following a link in its last component and without blocking,
// and kept only as a regular file of root or of the Wazuh user, with one name; anything else is
// closed unread, said (once, until a read works again) and taken as an unreadable file.

import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseClientKeys, type ClientKeys } from './client-keys-parse.js';
import { isFdExhaustion } from '../../util/errno.js';
import { openTrusted, wazuhUid } from '../../alerts/trusted-open.js';
import { withPathInView } from '../../util/in-view.js';

export { applyClientKeys, parseClientKeys } from './client-keys-parse.js';
export type { ClientKeyEntry, ClientKeys } from './client-keys-parse.js';

/** 100,000 agents take about 10 MB; a file much larger than that is not a client.keys. */
export const MAX_CLIENT_KEYS_BYTES = 64 * 1024 * 1024;

export function clientKeysPath(home: string): string {
  return path.join(home, 'etc', 'client.keys');
}

/** client.keys is not a file of Wazuh's (a link, a FIFO, another user's file, a second name): not read. */
export class UntrustedKeysFile extends Error {
  readonly code = 'EUNTRUSTED';
}

/**
 * Who may own client.keys: root and the Wazuh user, the owner of `<home>/queue/db` (trusted-open.ts
 * wazuhUid), home being the file's grandparent (`<home>/etc/client.keys`).
 */
function owners(file: string): number[] {
  const uid = wazuhUid(path.dirname(path.dirname(file)));
  return uid === null || uid === 0 ? [0] : [0, uid];
}

/** Open client.keys if it is Wazuh's (see the header); UntrustedKeysFile when it is not, the fs error (ENOENT, EMFILE…) else. */
function openKeys(file: string): { fd: number; size: number } {
  const allowed = owners(file);
  const r = openTrusted(file, allowed);
  if ('refused' in r) throw new UntrustedKeysFile(`${file} is ${r.refused}: not read`);
  // A second name of another file (a root-only one, where fs.protected_hardlinks is off): authd makes
  // client.keys anew and renames it over, never links it.
  if (r.st.nlink > 1) {
    fs.closeSync(r.fd);
    throw new UntrustedKeysFile(`${file} is a file with ${r.st.nlink} names (a hard link): not read`);
  }
  return { fd: r.fd, size: r.st.size };
}

const readAt = promisify(fs.read);
const closeFd = promisify(fs.close);

/**
 * Reads and parses the file; a missing file is an empty list. Throws on other errors (permissions, a
 * file that is not Wazuh's: UntrustedKeysFile…).
 */
export async function readClientKeys(file: string, maxBytes = MAX_CLIENT_KEYS_BYTES): Promise<ClientKeys> {
  let fd: number;
  let size: number;
  try {
    // Never a blocking open: a FIFO there would hold the start-up forever (refused, as a device is).
    ({ fd, size } = openKeys(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { agents: [], removed: [], malformed: 0 };
    throw e;
  }
  try {
    if (size > maxBytes) throw new Error(`${file} is ${size} bytes, more than the ${maxBytes} allowed`);
    const buf = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let len = 0;
    // Bounded: the file may grow while read; what is past the bound is not read.
    for (let i = 0; i < 1024 && len < buf.length; i++) {
      const { bytesRead } = await readAt(fd, buf, len, buf.length - len, len);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    if (len > maxBytes) throw new Error(`${file} grew past the ${maxBytes} bytes allowed`);
    const keys = parseClientKeys(buf.toString('utf8', 0, len));
    buf.fill(0); // the keys were in there
    return keys;
  } finally {
    await closeFd(fd);
  }
}

export interface ClientKeysWatchOptions {
  /** Quiet time after the last change before the file is read again. Default 200 ms. */
  debounceMs?: number;
  maxBytes?: number;
  /** Out of descriptors: read again this much later. Default 1000 ms. */
  retryMs?: number;
  /** A read failed (the watcher keeps going); the same failure again, before a read succeeds, is not reported twice. */
  onError?: (err: Error) => void;
}

export interface ClientKeysWatcher {
  /** Resolves after the first read (made at start) was delivered. */
  readonly ready: Promise<void>;
  close(): void;
}

/**
 * Calls `onChange` with the parsed file at start and after every change (debounced). The directory
 * must exist; a missing file is an empty list until it appears.
 */
export function watchClientKeys(
  file: string,
  onChange: (keys: ClientKeys) => void,
  opts: ClientKeysWatchOptions = {},
): ClientKeysWatcher {
  const debounceMs = Math.max(0, Math.min(opts.debounceMs ?? 200, 60_000));
  const maxBytes = opts.maxBytes ?? MAX_CLIENT_KEYS_BYTES;
  const dir = path.dirname(file);
  const base = path.basename(file);
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let reading = false;
  let again = false;
  let firstDone: () => void = () => {};
  const ready = new Promise<void>((r) => (firstDone = r));

  const retryMs = Math.max(10, Math.min(opts.retryMs ?? 1000, 60_000));
  let lastError = '';
  const report = (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    // By message, not code alone: another file refused (a link, then another user's file) is said too.
    const key = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`;
    if (key === lastError) return;
    lastError = key;
    opts.onError?.(err);
  };

  const read = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      // Bounded: at most a few re-reads in a row even if the file keeps changing.
      for (let i = 0; i < 4; i++) {
        again = false;
        try {
          const keys = await readClientKeys(file, maxBytes);
          lastError = '';
          if (!closed) onChange(keys);
        } catch (e) {
          report(e);
          if (isFdExhaustion(e)) retry();
        }
        if (!again || closed) break;
      }
      if (again && !closed) schedule();
    } finally {
      reading = false;
      firstDone();
    }
  };

  /** Read again later, unless a change already asked for a read. */
  const retry = (): void => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void read();
    }, retryMs);
    timer.unref?.();
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void read();
    }, debounceMs);
    timer.unref?.();
  };

  // Below a container's root: the directory the container's path leads to (util/in-view.ts).
  const watcher = withPathInView(dir, (p) => fs.watch(p, { persistent: false }, (_event, name) => {
    // Some platforms give no name: then any change in the directory may be ours.
    if (name === null || name === base || String(name) === base) schedule();
  }));
  watcher.on('error', (e) => report(e));
  void read();

  return {
    ready,
    close() {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
      firstDone();
    },
  };
}
