// Follows wazuh-analysisd's logs/alerts/alerts.json the way Filebeat does: a sensor at the I/O
// edge that hands complete lines to a sink and remembers, durably, how far the sink took them.
//
// How Wazuh writes the file: analysisd appends one JSON object per line through buffered stdio
// (a write ends anywhere in a line) to the day's file `logs/alerts/<year>/<Mon>/ossec-alerts-<dd>.json`,
// and `alerts.json` is a hard link to it. At the next day analysisd closes that file, opens the new
// day's and links `alerts.json` to it; monitord compresses old days later. So the rotated file keeps
// its inode, and everything in it was written before the new `alerts.json` appeared.
//
// What is done about it:
//   - inotify (fs.watch) on the file (its inode: analysisd writes through the day's path, which a
//     directory watch on logs/alerts would not see) and on logs/alerts (alerts.json replaced or
//     created); a 1 s poll as a safety net for missed events;
//   - reads are synchronous and bounded per turn (chunks of 256 KiB, 4 MiB a turn, then the event
//     loop gets a turn), lines are bounded (`maxLineBytes`; longer ones are counted and dropped);
//   - the position (device, inode, a hash of the first KiB, offset) is written after the sink
//     accepted the lines up to that offset, i.e. after their events are in the spool: a restart
//     resumes there (at-least-once; the events' ids are stable, so JetStream drops a re-read);
//   - rotation: the old file is read to its end through the open descriptor, then the new one from
//     its first byte; a rotation while the tap was stopped is finished by finding the old inode
//     under logs/alerts/<year>/<Mon>/, or, once monitord compressed it, the `.json.gz` whose first
//     KiB hashes like the saved head (read as a stream); a file that shrank was truncated: read
//     again from 0;
//   - no saved position (first start): start at the end (only new alerts), or at the beginning
//     with `fromBeginning`.
import { closeSync, createReadStream, fstatSync, openSync, readdirSync, readSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { constants as zc, createGunzip, gunzipSync } from 'node:zlib';
import { LineSplitter, type FileLine } from './line-splitter.js';
import { HEAD_BYTES, hashOf, headHash, readPosition, writePosition, type AlertsPosition } from './position.js';

export interface FollowerLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface FollowerOptions {
  /** `<home>/logs/alerts/alerts.json`. */
  file: string;
  /** Where the position is kept (beside the spool). */
  positionFile: string;
  /** With no saved position: read the existing file from its first line (else from its end). */
  fromBeginning: boolean;
  /**
   * Lines handed over in file order; returns how many of them (a prefix) are safely accepted.
   * The rest are read again after `retryMs` (the spool was full: the file is their buffer).
   */
  sink(lines: FileLine[]): number;
  log?: FollowerLog;
  /** Longer lines are dropped and counted (default 512 KiB: the event must fit NATS's default 1 MB max_payload). */
  maxLineBytes?: number;
  /** Safety poll (default 1000 ms). */
  pollMs?: number;
  retryMs?: number;
  chunkBytes?: number;
  maxBytesPerTurn?: number;
}

export interface FollowerStats {
  /** Lines the sink accepted. */
  lines: number;
  bytes: number;
  too_long: number;
  truncations: number;
  rotations: number;
  /** Rotated while the tap was stopped, and the old file was gone (removed, or compressed and not found). */
  rotated_unread: number;
  /** Rotated while the tap was stopped and compressed since: finished from the `.json.gz`. */
  rotated_compressed: number;
  /** Turns that stopped because the sink refused lines (spool full). */
  refused: number;
  position_errors: number;
  /** The file exists and is being followed. */
  following: boolean;
  offset: number;
}

interface Current {
  fd: number;
  dev: number;
  ino: number;
  /** Next byte to read. */
  offset: number;
  /** End of the last line the sink accepted: what the position records. */
  committed: number;
  /** A rotated file: read to its end, then the live file from its first byte. */
  retired: boolean;
  headLen: number;
  head: string;
}

export const DEFAULT_MAX_LINE_BYTES = 512 * 1024;

export class AlertsFollower {
  private readonly o: Required<Omit<FollowerOptions, 'log'>> & { log?: FollowerLog };
  private readonly splitter: LineSplitter;
  private readonly buf: Buffer;
  private cur: Current | null = null;
  private pos: AlertsPosition | null = null;
  /** The next file opened came after a rotation: read it from its first byte. */
  private nextFromStart = false;
  /** With no saved position, the file was missing at some point since start: once it appears, all of it is new. */
  private missingSinceStart = false;
  private lastSaved = '';
  private dirWatch: FSWatcher | null = null;
  private fileWatch: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private closed = false;
  private waitingLogged = false;
  /** Finishing a compressed rotated file (asynchronous): nothing else is read meanwhile. */
  private recovering: Promise<void> | null = null;
  readonly counters: Omit<FollowerStats, 'following' | 'offset'> = {
    lines: 0, bytes: 0, too_long: 0, truncations: 0, rotations: 0, rotated_unread: 0, rotated_compressed: 0, refused: 0,
    position_errors: 0,
  };

  constructor(opts: FollowerOptions) {
    this.o = {
      maxLineBytes: DEFAULT_MAX_LINE_BYTES, pollMs: 1000, retryMs: 1000, chunkBytes: 256 * 1024,
      maxBytesPerTurn: 4 * 1024 * 1024, ...opts,
    };
    this.splitter = new LineSplitter(this.o.maxLineBytes);
    this.buf = Buffer.allocUnsafe(this.o.chunkBytes);
  }

  start(): void {
    this.pos = readPosition(this.o.positionFile, (why) => {
      this.o.log?.warn({ file: this.o.positionFile, why }, 'alerts position unreadable: starting as without one');
    });
    this.poll = setInterval(() => this.kick(), this.o.pollMs);
    this.poll.unref();
    this.kick();
  }

  stats(): FollowerStats {
    return { ...this.counters, too_long: this.counters.too_long + this.splitter.tooLong, following: this.cur !== null, offset: this.cur?.committed ?? 0 };
  }

  /** Read what is new. Re-entrant calls (an inotify event during a turn) run one more turn. */
  kick(): void {
    // While a refusal's pause runs, appends wait too: the spool has no room for them either.
    if (this.closed || this.recovering || this.retry) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      let turns = 0;
      do {
        this.again = false;
        this.turn();
      } while (this.again && !this.closed && ++turns < 100);
    } catch (e) {
      this.o.log?.warn({ err: (e as Error).message, file: this.o.file }, 'reading alerts failed: retrying');
      this.closeCurrent();
    } finally {
      this.running = false;
    }
    this.watchDir();
  }

  close(): void {
    if (this.closed) return;
    this.save();
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    if (this.retry) clearTimeout(this.retry);
    this.dirWatch?.close();
    this.closeCurrent();
  }

  private turn(): void {
    if (!this.cur && !this.open()) return;
    let budget = this.o.maxBytesPerTurn;
    for (let steps = 0; steps < 10_000; steps++) {
      const cur = this.cur!;
      if (budget <= 0) {
        setImmediate(() => this.kick()); // a big backlog: let the event loop breathe, then go on
        break;
      }
      const n = readSync(cur.fd, this.buf, 0, this.buf.length, cur.offset);
      if (n > 0) {
        const lines = this.splitter.push(this.buf.subarray(0, n), cur.offset);
        cur.offset += n;
        budget -= n;
        this.counters.bytes += n;
        if (!this.deliver(lines)) break;
        continue;
      }
      // At the end of what is written.
      if (fstatSync(cur.fd).size < cur.offset) {
        this.counters.truncations++;
        this.o.log?.warn({ file: this.o.file, offset: cur.offset }, 'alerts file truncated: reading it again from its start');
        cur.offset = 0;
        cur.committed = 0;
        cur.headLen = 0;
        cur.head = '';
        this.splitter.reset();
        continue;
      }
      if (cur.retired) {
        const last = this.splitter.finish(cur.offset);
        if (last && !this.deliver([last])) break;
        this.closeCurrent();
        if (!this.open()) break;
        continue;
      }
      const live = statOrNull(this.o.file);
      if (live && (live.ino !== cur.ino || live.dev !== cur.dev)) {
        // Rotated. analysisd closed (flushed) the old file before linking the new one, so one more
        // read to its end sees all of it; then the new file from its first byte.
        this.counters.rotations++;
        this.o.log?.info({ file: this.o.file }, 'alerts file rotated: finishing the old one, then the new one from its start');
        cur.retired = true;
        this.nextFromStart = true;
        this.fileWatch?.close();
        this.fileWatch = null;
        continue;
      }
      break;
    }
    this.save();
  }

  /** Hand lines to the sink; false when it refused some (they are read again later). */
  private deliver(lines: FileLine[]): boolean {
    if (!lines.length) return true;
    const cur = this.cur!;
    const k = Math.max(0, Math.min(lines.length, this.o.sink(lines)));
    this.counters.lines += k;
    if (k > 0) cur.committed = lines[k - 1].end;
    if (k === lines.length) return true;
    // The spool refused: read again from the first line it did not take, after a pause.
    this.counters.refused++;
    cur.offset = cur.committed;
    this.splitter.reset();
    if (!this.retry) {
      this.retry = setTimeout(() => { this.retry = null; this.kick(); }, this.o.retryMs);
      this.retry.unref();
    }
    return false;
  }

  /** Open the file to follow; false when there is none yet. */
  private open(): boolean {
    let fd: number;
    try {
      fd = openSync(this.o.file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !this.pos) this.missingSinceStart = true;
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.o.log?.info({ file: this.o.file, code }, code === 'ENOENT'
          ? 'alerts file does not exist yet: waiting for wazuh-analysisd to create it'
          : 'alerts file cannot be opened: retrying');
      }
      return false;
    }
    this.waitingLogged = false;
    let st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      return false;
    }
    const pos = this.pos;
    let offset: number;
    let retired = false;
    let gz: string | null = null;
    if (this.nextFromStart) {
      offset = 0;
      this.nextFromStart = false;
    } else if (pos && pos.dev === st.dev && pos.ino === st.ino && headHash(fd, pos.headLen) === pos.head) {
      offset = pos.offset;
      if (st.size < offset) {
        this.counters.truncations++;
        this.o.log?.warn({ file: this.o.file, saved: offset, size: st.size }, 'alerts file shorter than the saved position: truncated, reading it from its start');
        offset = 0;
      }
    } else if (pos) {
      const old = this.findRotated(pos);
      if (old) {
        // Rotated while the tap was stopped: finish the old file first, then the live one from 0.
        closeSync(fd);
        fd = old.fd;
        st = old.st;
        offset = Math.min(pos.offset, st.size);
        retired = true;
        this.nextFromStart = true;
        this.o.log?.info({ file: old.path, offset }, 'alerts file was rotated while the tap was stopped: finishing the old one first');
      } else if ((pos.dev !== st.dev || pos.ino !== st.ino) && (gz = this.findCompressed(pos)) !== null) {
        // Compressed by monitord since: finish it from the .gz (a stream), then this file from 0.
        const file = gz;
        closeSync(fd);
        this.o.log?.info({ file, offset: pos.offset }, 'alerts file was rotated and compressed while the tap was stopped: finishing it from the .gz first');
        this.recovering = this.finishCompressed(file, pos)
          .catch((e: Error) => {
            this.counters.rotated_unread++;
            this.o.log?.warn({ file, err: e.message }, 'cannot read the compressed alerts file: the rest of it was not published');
          })
          .finally(() => {
            this.recovering = null;
            this.nextFromStart = true;
            this.kick();
          });
        return false;
      } else {
        if (pos.dev !== st.dev || pos.ino !== st.ino) {
          this.counters.rotated_unread++;
          this.o.log?.warn({ file: this.o.file },
            'alerts file was replaced while the tap was stopped and the old one is no longer under logs/alerts/<year>/<Mon>/ '
            + '(compressed or removed): alerts written to it after the saved position were not read; reading the new one from its start');
        }
        offset = 0;
      }
    } else {
      const whole = this.o.fromBeginning || this.missingSinceStart;
      offset = whole ? 0 : lineStartBefore(fd, st.size, this.o.maxLineBytes);
      this.o.log?.info({ file: this.o.file, offset, size: st.size }, whole
        ? 'no saved alerts position: reading alerts.json from its start (asked for, or created since the tap started)'
        : 'no saved alerts position: following alerts.json from its end (new alerts only)');
    }
    const headLen = Math.min(HEAD_BYTES, offset);
    this.cur = { fd, dev: st.dev, ino: st.ino, offset, committed: offset, retired, headLen, head: headHash(fd, headLen) ?? '' };
    this.splitter.reset();
    if (offset > 0 && !pos && offset === st.size && st.size > 0 && lastByte(fd, st.size) !== 0x0a) {
      this.splitter.skipToNextLine(); // no line start found within maxLineBytes: skip that line
    }
    if (!retired) this.watchFile();
    this.save();
    return true;
  }

  /** The old inode under logs/alerts/<year>/<Mon>/, if still there (not yet compressed). */
  private findRotated(pos: AlertsPosition): { fd: number; st: Stats; path: string } | null {
    let budget = 5000;
    for (const path of rotatedFiles(dirname(this.o.file))) {
      if (--budget < 0) return null;
      if (path.endsWith('.gz')) continue;
      const st = statOrNull(path);
      if (!st || st.ino !== pos.ino || st.dev !== pos.dev || !st.isFile()) continue;
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch {
        return null;
      }
      if (headHash(fd, pos.headLen) === pos.head) return { fd, st: fstatSync(fd), path };
      closeSync(fd);
      return null;
    }
    return null;
  }

  /** The `.json.gz` under logs/alerts/<year>/<Mon>/ whose content starts with the saved head, newest first. */
  private findCompressed(pos: AlertsPosition): string | null {
    if (pos.headLen === 0) return null; // nothing to recognise it by
    const found: { path: string; mtime: number }[] = [];
    for (const path of rotatedFiles(dirname(this.o.file))) {
      if (found.length >= 5000) break;
      if (!path.endsWith('.json.gz')) continue;
      const st = statOrNull(path);
      if (st?.isFile()) found.push({ path, mtime: st.mtimeMs });
    }
    found.sort((a, b) => b.mtime - a.mtime);
    for (const { path } of found.slice(0, 64)) {
      try {
        // The first 64 KiB of the stream decompress to well over a KiB of JSON lines; SYNC_FLUSH
        // lets a truncated stream decompress as far as it goes.
        const fd = openSync(path, 'r');
        const b = Buffer.alloc(64 * 1024);
        const n = readSync(fd, b, 0, b.length, 0);
        closeSync(fd);
        const head = gunzipSync(b.subarray(0, n), { finishFlush: zc.Z_SYNC_FLUSH });
        if (head.length >= pos.headLen && hashOf(head.subarray(0, pos.headLen)) === pos.head) return path;
      } catch {
        // not gzip, unreadable: not this one
      }
    }
    return null;
  }

  /** Read a compressed rotated file from the saved offset to its end, saving the position as lines are taken. */
  private async finishCompressed(path: string, pos: AlertsPosition): Promise<void> {
    const splitter = new LineSplitter(this.o.maxLineBytes);
    const input = createReadStream(path).pipe(createGunzip());
    let at = 0;
    const take = async (lines: FileLine[]): Promise<boolean> => {
      for (let attempts = 0; lines.length; attempts++) {
        if (this.closed) return false;
        const k = Math.max(0, Math.min(lines.length, this.o.sink(lines)));
        this.counters.lines += k;
        if (k > 0) this.savePosition({ ...pos, offset: lines[k - 1].end });
        lines = lines.slice(k);
        if (lines.length) {
          this.counters.refused++;
          await new Promise((r) => setTimeout(r, this.o.retryMs));
        }
      }
      return true;
    };
    try {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        const from = at;
        at += chunk.length;
        if (at <= pos.offset) continue;
        const skip = Math.max(0, pos.offset - from);
        if (!(await take(splitter.push(chunk.subarray(skip), from + skip)))) return;
      }
      const last = splitter.finish(at);
      if (last && !(await take([last]))) return;
      this.counters.too_long += splitter.tooLong;
      this.counters.rotated_compressed++;
    } finally {
      input.destroy();
    }
  }

  private save(): void {
    const cur = this.cur;
    if (!cur || this.closed) return;
    if (cur.headLen < HEAD_BYTES && cur.committed > cur.headLen) {
      const len = Math.min(HEAD_BYTES, cur.committed);
      const h = headHash(cur.fd, len);
      if (h !== null) {
        cur.headLen = len;
        cur.head = h;
      }
    }
    this.savePosition({ dev: cur.dev, ino: cur.ino, offset: cur.committed, headLen: cur.headLen, head: cur.head });
  }

  private savePosition(p: AlertsPosition): void {
    if (this.closed) return;
    const key = JSON.stringify(p);
    if (key === this.lastSaved) return;
    try {
      writePosition(this.o.positionFile, p);
      this.lastSaved = key;
      this.pos = p;
    } catch (e) {
      if (this.counters.position_errors++ % 100 === 0) {
        this.o.log?.warn({ err: (e as Error).message, file: this.o.positionFile }, 'cannot save the alerts position: a restart would read some alerts again');
      }
    }
  }

  private closeCurrent(): void {
    this.fileWatch?.close();
    this.fileWatch = null;
    if (this.cur) {
      try {
        closeSync(this.cur.fd);
      } catch {
        // already closed
      }
    }
    this.cur = null;
    this.splitter.reset();
  }

  private watchFile(): void {
    this.fileWatch?.close();
    this.fileWatch = null;
    try {
      const w = watch(this.o.file, { persistent: false }, () => this.kick());
      w.on('error', () => { w.close(); if (this.fileWatch === w) this.fileWatch = null; });
      this.fileWatch = w;
    } catch {
      // gone again already: the directory watch and the poll see what comes next
    }
  }

  /** Watch logs/alerts for alerts.json being created or replaced (retried by the poll until it exists). */
  private watchDir(): void {
    if (this.dirWatch || this.closed) return;
    const name = basename(this.o.file);
    try {
      const w = watch(dirname(this.o.file), { persistent: false }, (_ev, f) => {
        if (f === null || f === name) this.kick();
      });
      w.on('error', () => { w.close(); if (this.dirWatch === w) this.dirWatch = null; });
      this.dirWatch = w;
    } catch {
      // logs/alerts does not exist yet
    }
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** The files of logs/alerts/<year>/<Mon>/ (the two newest years), where rotated days go. */
function* rotatedFiles(root: string): Generator<string> {
  for (const y of safeList(root).filter((d) => /^\d{4}$/.test(d)).sort().reverse().slice(0, 2)) {
    for (const m of safeList(join(root, y))) {
      for (const f of safeList(join(root, y, m))) yield join(root, y, m, f);
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function lastByte(fd: number, size: number): number {
  const b = Buffer.alloc(1);
  return readSync(fd, b, 0, 1, size - 1) === 1 ? b[0] : -1;
}

/**
 * Where the line that contains the end of the file starts (just after the last newline), looking
 * back at most `max` bytes; `size` when none is found (the caller skips that line).
 */
function lineStartBefore(fd: number, size: number, max: number): number {
  const window = Math.min(size, max + 1);
  if (window === 0) return 0;
  const b = Buffer.alloc(window);
  const n = readSync(fd, b, 0, window, size - window);
  const nl = b.subarray(0, n).lastIndexOf(0x0a);
  if (nl !== -1) return size - window + nl + 1;
  return window === size ? 0 : size;
}
