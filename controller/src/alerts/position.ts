// Where the alerts follower stopped: the file's identity (device, inode, a hash of its first
// bytes) and the offset after the last line whose events are safely in the spool. Written with
// tmp + rename, so a crash leaves the old position or the new one, never half of one; the copy
// made new and the file read only when it is a regular file of the tap's (util/checked-open.ts):
// it lives beside the spool, whose parent may be another user's to write.
import { createHash } from 'node:crypto';
import { readOwn, replaceOwn } from '../util/checked-open.js';
import { readWhole } from '../util/read-file.js';
import { isTransient } from '../util/errno.js';

/** Bytes of the file's head whose hash tells a re-created file that reuses an inode apart. */
export const HEAD_BYTES = 1024;

export interface AlertsPosition {
  dev: number;
  ino: number;
  offset: number;
  /** Length of the head hashed (min(HEAD_BYTES, what was in the file when hashed)). */
  headLen: number;
  /** sha256 hex of those bytes ('' when headLen is 0). */
  head: string;
  /**
   * Its name under logs/alerts (`<year>/<Mon>/ossec-alerts-<dd>[-<nnn>].json`), when known: where
   * it is once rotated or compressed, and what tells it from a later file given its inode when
   * its head cannot (a file still empty when saved).
   */
  path?: string;
}

/** A rotated file's name under logs/alerts, as analysisd makes it (nothing else is looked up: `..`, links elsewhere). */
const ROTATED_NAME = /^\d{4}\/[A-Z][a-z]{2}\/ossec-alerts-\d{2}(?:-\d{3})?\.json$/;

export function isRotatedName(path: string): boolean {
  return ROTATED_NAME.test(path);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The saved position; null when there is none. A damaged file is reported through `onBad` and
 * ignored. A failure of the moment (out of descriptors: util/errno isTransient) is thrown: the
 * position is still there, and taking it for none would start at the end of alerts.json.
 */
export function readPosition(path: string, onBad: (why: string) => void): AlertsPosition | null {
  let text: string;
  try {
    text = readOwn(path, 64 * 1024).toString('utf8');
  } catch (e) {
    if (isTransient(e)) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onBad(`cannot read: ${(e as Error).message}`);
    return null;
  }
  try {
    const p = JSON.parse(text) as Record<string, unknown>;
    if (isCount(p.dev) && isCount(p.ino) && isCount(p.offset) && isCount(p.headLen) && p.headLen <= HEAD_BYTES
      && typeof p.head === 'string' && /^([0-9a-f]{64})?$/.test(p.head)) {
      const pos: AlertsPosition = { dev: p.dev, ino: p.ino, offset: p.offset, headLen: p.headLen, head: p.head };
      // A name that is not a rotated file's is left out: the position holds without it.
      if (typeof p.path === 'string' && isRotatedName(p.path)) pos.path = p.path;
      return pos;
    }
    onBad('not a position');
  } catch {
    onBad('not JSON');
  }
  return null;
}

export function writePosition(path: string, p: AlertsPosition): void {
  replaceOwn(path, `${JSON.stringify(p)}\n`);
}

/** Hash of the first `len` bytes of an open file; null when it holds fewer. */
export function headHash(fd: number, len: number): string | null {
  if (len === 0) return '';
  const b = readWhole(fd, len);
  return b.length === len ? hashOf(b) : null;
}

/** The head's hash as the position keeps it (sha256, hex). */
export function hashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
