// What the kernel holds: the tap's programs are tp_enter_*, tp_exit_*, tp_exec and tp_fork.
import { execFileSync } from 'node:child_process';

export function tapProgramsInKernel(): string[] {
  const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json']).toString()) as { name?: string }[];
  return progs.map((p) => p.name ?? '').filter((n) => /^tp_(enter_|exit_|exec$|fork$)/.test(n));
}

export function tapLinksInKernel(): number {
  const links = JSON.parse(execFileSync('bpftool', ['link', 'show', '--json']).toString()) as { prog_id?: number }[];
  const ids = new Set((JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json']).toString()) as { id: number; name?: string }[])
    .filter((p) => /^tp_(enter_|exit_|exec$|fork$)/.test(p.name ?? '')).map((p) => p.id));
  return links.filter((l) => l.prog_id !== undefined && ids.has(l.prog_id)).length;
}
