// A value quoted in a message (an error, a log line) is clipped: a 10 MB value from a file or the
// command line must not come back whole on the terminal or in the journal.

export const CLIP = 80;

/** `v` as text, at most `max` characters, then '…'. */
export function clip(v: unknown, max = CLIP): string {
  const s = String(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** A message built by someone else (yargs, a parser): every run of non-blank characters longer than `max` clipped. */
export function clipRuns(msg: string, max = CLIP): string {
  return msg.replace(new RegExp(`\\S{${max + 1},}`, 'g'), (run) => `${run.slice(0, max)}…`);
}
