// A mount namespace of a test's own with a tmpfs only it has: what a container's root is to the host,
// reached as /proc/<pid>/root/… (or through a host link to it). Nothing of it reaches the host's mounts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

export interface MountNs {
  /** The host directory the tmpfs is mounted on inside the namespace (empty on the host). */
  dir: string;
  /** The tmpfs, as the host reaches it: /proc/<pid>/root<dir>. */
  view: string;
}

export async function privateTmpfs(t: Tap.Test): Promise<MountNs> {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-mntns-'));
  const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    `mount -t tmpfs -o size=8m,mode=755 none '${dir}' && touch '${dir}/.ready' && exec sleep 120`], { stdio: 'ignore' });
  t.teardown(() => { p.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });
  const view = `/proc/${p.pid}/root${dir}`;
  await waitFor(() => existsSync(join(view, '.ready')), 5000, 'the namespace\'s tmpfs');
  return { dir, view };
}
