// Cuts the bytes of a file into lines, remembering where each ends in the file. Pure and bounded:
// analysisd writes through buffered stdio, so a read can end anywhere in a line (the rest comes
// later), and a line longer than `maxLineBytes` is dropped and counted, never buffered whole.

export interface FileLine {
  /** The line without its newline (and without a trailing CR). */
  text: string;
  /** File offset just after its newline: where reading resumes once this line is safe. */
  end: number;
}

export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Inside a line that is too long: drop bytes up to the next newline. */
  private skipping = false;
  /** Lines dropped for their length. */
  tooLong = 0;

  constructor(private readonly maxLineBytes: number) {
    if (!(maxLineBytes >= 1)) throw new RangeError('maxLineBytes must be at least 1');
  }

  /** Bytes of an unfinished line held so far. */
  get pending(): number {
    return this.partBytes;
  }

  /**
   * Start in the middle of a line (the tap starts at the end of a file whose last line is not
   * finished yet): its rest is dropped without being counted as too long.
   */
  skipToNextLine(): void {
    this.reset();
    this.skipping = true;
  }

  reset(): void {
    this.parts = [];
    this.partBytes = 0;
    this.skipping = false;
  }

  /** `chunk` was read at file offset `at`; returns the lines it completes, in order. */
  push(chunk: Buffer, at: number): FileLine[] {
    const out: FileLine[] = [];
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl === -1) {
        this.hold(chunk.subarray(from));
        break;
      }
      if (this.skipping) {
        this.skipping = false;
      } else {
        const piece = chunk.subarray(from, nl);
        if (this.partBytes + piece.length > this.maxLineBytes) {
          this.tooLong++;
        } else {
          const bytes = this.partBytes ? Buffer.concat([...this.parts, piece]) : piece;
          const end = bytes.length && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
          if (end > 0) out.push({ text: bytes.toString('utf8', 0, end), end: at + nl + 1 });
        }
      }
      this.parts = [];
      this.partBytes = 0;
      from = nl + 1;
    }
    return out;
  }

  /**
   * The unfinished line, as a last line: for a file that will not grow any more (rotated away).
   * Null when there is none (or it was too long).
   */
  finish(at: number): FileLine | null {
    const bytes = this.skipping ? null : Buffer.concat(this.parts);
    this.reset();
    if (!bytes || bytes.length === 0) return null;
    return { text: bytes.toString('utf8'), end: at };
  }

  private hold(piece: Buffer): void {
    if (this.skipping) return;
    if (this.partBytes + piece.length > this.maxLineBytes) {
      // Too long already: count it once, and drop the rest of it as it comes.
      this.tooLong++;
      this.parts = [];
      this.partBytes = 0;
      this.skipping = true;
      return;
    }
    // A copy: the caller reuses its read buffer.
    this.parts.push(Buffer.from(piece));
    this.partBytes += piece.length;
  }
}
