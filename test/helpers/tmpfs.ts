// A small tmpfs of our own, for disk-full tests against the real thing (root only).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mounted = new Set<string>();
process.once('exit', () => {
  for (const d of mounted) {
    try { execFileSync('umount', ['-l', d]); } catch { /* gone */ }
  }
});

/** Mount a tmpfs of `size` (mount(8) syntax: 1m) on a new directory; unmounted at the test's teardown. */
export function mountTmpfs(t: { teardown(fn: () => unknown): void }, size = '1m'): string {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  mounted.add(dir);
  t.teardown(() => {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]); // a file still open: detach now, freed when closed
    }
    mounted.delete(dir);
    rmdirSync(dir);
  });
  return dir;
}

/** Fill the file system of `dir` to the last byte with a file; returns a function that deletes it. */
export function fillDisk(dir: string, name = 'filler'): () => void {
  const path = join(dir, name);
  const fd = openSync(path, 'a');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        break;
      }
    }
    // Then the last partial page, byte by byte in small steps.
    for (const n of [4096, 512, 64, 1]) {
      for (;;) {
        try {
          writeSync(fd, chunk, 0, n);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return () => unlinkSync(path);
}
