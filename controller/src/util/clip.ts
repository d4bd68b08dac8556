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
  // A scan, not a regular expression: a 10 MB run overflows the regex engine's stack.
  let out = '';
  let run = 0;
  for (let i = 0; i < msg.length; i++) {
    const c = msg[i];
    const blank = c === ' ' || c === '\n' || c === '\t' || c === '\r';
    run = blank ? 0 : run + 1;
    if (run <= max) out += c;
    else if (run === max + 1) out += '…';
  }
  return out;
}

/** A path quoted in a message: whole up to 256 characters (a hint like `chmod 600 '<path>'` stays usable). */
export function clipPath(p: string): string {
  return clip(p, 256);
}
