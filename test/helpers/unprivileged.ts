// Running the CLI as an unprivileged user (setpriv --reuid=65534) needs that
// user to reach the program: a checkout in a 0700 directory (mktemp -d, a
// home) is closed to it. Open the path for traversal (o+x) and the checkout
// itself for reading (o+rx), and drop the test runner's NODE_OPTIONS, whose
// --import hooks point into the runner's own node_modules (the runner re-injects them into
// node children it sees spawned, so the checkout must be readable too).
import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

export function openToOthers(root: string): string[] {
  const changed: string[] = [];
  const st = statSync(root);
  if ((st.mode & 0o005) !== 0o005) {
    chmodSync(root, st.mode | 0o005);
    changed.push(root);
  }
  for (let dir = dirname(root); ; dir = dirname(dir)) {
    const m = statSync(dir).mode;
    if ((m & 0o001) === 0) {
      chmodSync(dir, m | 0o001);
      changed.push(dir);
    }
    if (dir === dirname(dir)) break;
  }
  return changed;
}

export function unprivilegedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}
