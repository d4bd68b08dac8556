// A child's output, line by line: chunks end anywhere, so the part after the last newline waits
// for the next chunk.
import type { Readable } from 'node:stream';

export function onLines(stream: Readable, each: (line: string) => void): void {
  let partial = '';
  stream.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) each(l);
  });
}
