// Which processes are Wazuh daemons. The kernel follows them from exec and
// fork (tp_exec/tp_fork); this scan finds the ones already running when the
// tap starts, and re-checks periodically as a safety net.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * The daemons of SPEC §2 by executable name. 4.x: comm equals the name. 5.x:
 * `wazuh-manager-*` names are longer than a comm (15 characters, where
 * analysisd, authd and apid all read `wazuh-manager-a`), so they are matched by
 * the executable's basename, in the kernel at exec and here through /proc/<pid>/exe.
 */
export const DEFAULT_TARGET_NAMES = [
  'wazuh-remoted', 'wazuh-db', 'wazuh-monitord', 'wazuh-authd', 'wazuh-modulesd',
  'wazuh-manager-remoted', 'wazuh-manager-db', 'wazuh-manager-monitord', 'wazuh-manager-authd',
  'wazuh-manager-modulesd',
];

/** The daemon name of an executable path, as /proc/<pid>/exe shows it. */
export function exeName(exe: string): string {
  return basename(exe.replace(/ \(deleted\)$/, ''));
}

/** Processes whose executable is one of names: pid → name. */
export function scanProcesses(names: ReadonlySet<string>, procRoot = '/proc'): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync(procRoot)) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let exe: string;
    try {
      exe = readlinkSync(`${procRoot}/${entry}/exe`);
    } catch {
      continue; // kernel thread, gone, or not ours to read
    }
    const name = exeName(exe);
    if (names.has(name)) found.set(Number(entry), name);
  }
  return found;
}

/** The processes among pids (the kernel's set also holds thread ids), with their daemon names. */
export function describeTargets(pids: number[], procRoot = '/proc'): { pid: number; name: string }[] {
  const out: { pid: number; name: string }[] = [];
  for (const pid of pids) {
    try {
      const status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
      if (Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1]) !== pid) continue; // a thread
      out.push({ pid, name: exeName(readlinkSync(`${procRoot}/${pid}/exe`)) });
    } catch {
      // gone since: the kernel forgets it at its exit
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.pid - b.pid);
}
