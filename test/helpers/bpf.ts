// What the kernel holds of a test's own taps, never of the whole machine's: a
// host may run another tap (an installed one, another test run), and its
// programs are none of a test's business. A process's BPF objects are the
// descriptors it holds (/proc/<pid>/fdinfo names their ids); what a test's tap
// could leave behind is a program that no process holds any more.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const TAP_PROG = /^tp_(enter_|exit_|exec$|fork$)/;

interface ProgInfo { id: number; name?: string }

function kernelProgs(): ProgInfo[] {
  return JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json']).toString()) as ProgInfo[];
}

/** The BPF programs and links a process holds descriptors of (its own, by id). */
export function heldBy(pid: number): { progs: number[]; links: number[] } {
  const progs = new Set<number>();
  const links = new Set<number>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { progs: [], links: [] }; // gone
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:bpf-prog' && target !== 'anon_inode:bpf_link') continue;
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const prog = /^prog_id:\s*(\d+)/m.exec(info);
    const link = /^link_id:\s*(\d+)/m.exec(info);
    if (link) links.add(Number(link[1]));
    else if (prog) progs.add(Number(prog[1]));
  }
  return { progs: [...progs], links: [...links] };
}

/** The tap's programs among those a process holds (by name: tp_enter_*, tp_exit_*, tp_exec, tp_fork). */
export function tapProgramsOf(pid: number): string[] {
  const mine = new Set(heldBy(pid).progs);
  return kernelProgs().filter((p) => mine.has(p.id) && TAP_PROG.test(p.name ?? '')).map((p) => p.name!);
}

/** The tap's attachments (links) a process holds. */
export function tapLinksOf(pid: number): number {
  return heldBy(pid).links.length;
}

/** The highest program id now: programs loaded later have larger ids. */
export function bpfMark(): number {
  return kernelProgs().reduce((m, p) => Math.max(m, p.id), 0);
}

/**
 * Tap programs loaded since `mark` that no process holds any more: what a tap of
 * the test left in the kernel (pinned, or a leak). A concurrent tap's programs
 * are held by that tap, so they never count.
 */
export function orphanTapPrograms(mark: number): string[] {
  // Every descriptor naming a program: the program's own, or a link to it.
  const held = new Set<number>();
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let fds: string[] = [];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) held.add(Number(m[1]));
      } catch { /* gone */ }
    }
  }
  return kernelProgs().filter((p) => p.id > mark && TAP_PROG.test(p.name ?? '') && !held.has(p.id)).map((p) => `${p.name}#${p.id}`);
}

/**
 * orphanTapPrograms, once the kernel is done: a program is freed a moment after its last
 * descriptor closes (RCU), so one seen just after an exit is asked about again, up to `ms`.
 */
export async function leftBehind(mark: number, ms = 3000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const left = orphanTapPrograms(mark);
    if (left.length === 0 || Date.now() > end) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether any of these program ids still exists in the kernel. */
export function stillLoaded(ids: number[]): number[] {
  const want = new Set(ids);
  return kernelProgs().filter((p) => want.has(p.id)).map((p) => p.id);
}
