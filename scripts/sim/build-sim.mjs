// Builds the Wazuh manager simulator and lays out one copy per daemon name.
// Copies, not symlinks: the tap resolves ambiguous 5.x comms through
// /proc/<pid>/exe, which would show the link target's name for a symlink.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.join(here, 'wazuh-sim.c');

/** Names the copies are installed under; the role comes from argv[0]. */
export const SIM_NAMES = [
  'wazuh-db',
  'wazuh-remoted',
  'wazuh-analysisd',
  'wazuh-monitord',
  'wazuh-authd',
  'wazuh-modulesd',
  'wazuh-manager-db',
  'wazuh-manager-remoted',
  'wazuh-manager-analysisd',
  'wazuh-manager-monitord',
  'wazuh-manager-authd',
  // Same 15-character comm as wazuh-manager-monitord (wazuh-manager-m): told apart by the executable.
  'wazuh-manager-modulesd',
  // wazuh-clusterd is Python: its comm is python3 (cluster synchronisation, sync-agent-info-set).
  'python3',
  'not-wazuh',
];

/**
 * Compiles wazuh-sim.c into `<outDir>/wazuh-sim` when the source is newer,
 * and refreshes the named copies in `<outDir>/bin`.
 * @param {string} [outDir] defaults to build/sim under the repository
 * @returns {Promise<string>} absolute path of the bin directory
 */
export async function buildSim(outDir = path.join(here, '..', '..', 'build', 'sim')) {
  outDir = path.resolve(outDir);
  const binDir = path.join(outDir, 'bin');
  const exe = path.join(outDir, 'wazuh-sim');
  fs.mkdirSync(binDir, { recursive: true });

  const srcTime = fs.statSync(SOURCE).mtimeMs;
  const exeTime = fs.existsSync(exe) ? fs.statSync(exe).mtimeMs : -1;
  if (exeTime < srcTime) {
    // Build to a temporary name and rename, so a concurrent test run never
    // executes a half-written binary.
    const tmp = `${exe}.${process.pid}.tmp`;
    await execFileP('gcc', ['-std=c11', '-O2', '-Wall', '-Wextra', '-pthread', '-o', tmp, SOURCE]);
    fs.renameSync(tmp, exe);
  }

  const exeStat = fs.statSync(exe);
  for (const name of SIM_NAMES) {
    const dst = path.join(binDir, name);
    let fresh = false;
    try {
      const st = fs.lstatSync(dst);
      fresh = st.isFile() && st.size === exeStat.size && st.mtimeMs >= exeStat.mtimeMs;
    } catch {
      fresh = false;
    }
    if (fresh) continue;
    // Copy then rename: overwriting a running executable in place fails with ETXTBSY.
    const tmp = `${dst}.${process.pid}.tmp`;
    fs.copyFileSync(exe, tmp);
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, dst);
  }
  return binDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ?? 'build/sim';
  buildSim(out).then(
    (dir) => console.log(dir),
    (err) => {
      console.error(err.stderr || err.message || err);
      process.exit(1);
    },
  );
}
