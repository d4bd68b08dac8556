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
//   - reads are synchronous and bounded per turn (chunks of 256 KiB; 4 MiB, 5000 lines, 64 files
//     or ~50 ms a turn, then the event loop gets a turn), lines are bounded (`maxLineBytes`; longer
//     ones are counted and dropped); the start of a .json.gz is inflated only as far as its head;
//   - the position (device, inode, a hash of the first KiB, the day's name under <year>/<Mon>/,
//     offset) is written after the sink
//     accepted the lines up to that offset, i.e. after their events are in the spool: a restart
//     resumes there (at-least-once; the events' ids are stable, so JetStream drops a re-read).
//     It is written off the event loop and synced, once the spool synced those events
//     (position.ts PositionWriter): after a power loss it is never empty, nor ahead of the spool;
//   - rotation: the old file is read to its end through the open descriptor, then the files rotated
//     after it (found from its name, looked up when it was opened: it may be compressed before its
//     end is reached), then the new one from its first byte; a rotation while the tap was stopped is
//     finished by finding the old file under logs/alerts/<year>/<Mon>/ (its saved name, or its
//     inode), or, once monitord compressed it, its `.json.gz` (by name, or the one whose first KiB
//     hashes like the saved head; read as a stream); a file that shrank was truncated: read again
//     from 0;
//   - no saved position (first start): start at the end (only new alerts), or at the beginning
//     with `fromBeginning`;
//   - every file is opened through trusted-open.ts (no symbolic link, no FIFO, a regular file of
//     root or the Wazuh user): the Wazuh user owns logs/alerts and could otherwise make the tap,
//     root, publish any file. A refused file is counted and logged once, and the follower waits
//     for a proper one, as for a missing file;
//   - running out of file descriptors (EMFILE, ENFILE) is a pause, never a conclusion: nothing is
//     counted as unread because a directory could not be listed, and the next poll tries again.
import { closeSync, createReadStream, fstatSync, readSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream';
import { constants as zc, createGunzip, gunzipSync } from 'node:zlib';
import { LineSplitter, type FileLine } from './line-splitter.js';
import { HEAD_BYTES, hashOf, headHash, isRotatedName, PositionWriter, readPosition, type AlertsPosition } from './position.js';
import { openTrusted } from './trusted-open.js';
import { lstatOrNull } from '../util/read-file.js';
import { readdirInView, statInView, withPathInView } from '../util/in-view.js';
import { isFdExhaustion, isTransient } from '../util/errno.js';
import { LogLimiter } from '../util/log-limiter.js';

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
  /**
   * The Wazuh user's uid (trusted-open.ts wazuhUid), asked at each open; files owned by it or by
   * root are followed. Default: none (root's files only).
   */
  wazuhUid?: () => number | null;
  /**
   * The home's path leads to another Wazuh home now (capture/home-pin.ts: a container's pid reused):
   * its alerts are not this manager's. Nothing new is opened and a rotation is not followed while it
   * says so; the file open goes on to its end. Default: never.
   */
  elsewhere?: () => boolean;
  /** Longer lines are dropped and counted (default 512 KiB: the event must fit NATS's default 1 MB max_payload). */
  maxLineBytes?: number;
  /**
   * Resolves once the events the sink accepted so far are as durable as the spool makes them
   * (Spool.afterSync): the position is written only then. Default: none (the sink's acceptance is enough).
   */
  afterSync?: (now: boolean) => Promise<boolean>;
  /** fdatasync the position before its rename (default true; false where the spool syncs nothing: fsync 'never'). */
  syncPosition?: boolean;
  /** How long close() waits for the last position to be written (default 1000 ms): a dead disk must not hold the stop. */
  stopWaitMs?: number;
  /**
   * Where a follower of this process stopped (its lastPosition(), alerts turned off and on by
   * reloads): taken instead of the file, whose last write may not have landed yet (a spool sync
   * that waits, a slow disk) — read from there, the file's older position had the alerts in
   * between read and published again. Null or absent: the file's.
   */
  resumeFrom?: AlertsPosition | null;
  /** Safety poll (default 1000 ms). */
  pollMs?: number;
  retryMs?: number;
  chunkBytes?: number;
  maxBytesPerTurn?: number;
  /**
   * Lines handed to the sink in one turn (default 5000): the sink's cost is per line, and 4 MiB of
   * 3-byte lines is over a million events — the event loop gets a turn in between, as for bytes.
   */
  maxLinesPerTurn?: number;
  /**
   * Files finished in one turn (default 64): each rotated file walked (empty ones read nothing) costs
   * a few system calls; thousands of them planted in logs/alerts/<year>/<Mon>/ must not hold the loop.
   */
  maxFilesPerTurn?: number;
  /** A turn gives the event loop its turn after this long (default 50 ms), whatever it read. */
  maxTurnMs?: number;
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
  /**
   * Files rotated in and out between two looks (more than one rotation while the tap was stopped or
   * busy: a `rotate_interval`, days away), read whole in the order analysisd wrote them.
   */
  rotated_between: number;
  /** Turns that stopped because the sink refused lines (spool full). */
  refused: number;
  position_errors: number;
  /** Files of logs/alerts refused as not Wazuh's (a symbolic link, a FIFO, another user's file), each counted once. */
  untrusted_file: number;
  /** The file exists and is being followed. */
  following: boolean;
  /** Why alerts.json is not followed now, when it is there but refused (null otherwise). */
  refusing: string | null;
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
  /** Its path under logs/alerts/<year>/<Mon>/, when known: where the files rotated after it are looked for. */
  path?: string;
  headLen: number;
  head: string;
}

export const DEFAULT_MAX_LINE_BYTES = 512 * 1024;

export class AlertsFollower {
  private readonly o: Required<Omit<FollowerOptions, 'log' | 'afterSync' | 'resumeFrom'>> & Pick<FollowerOptions, 'log' | 'afterSync' | 'resumeFrom'>;
  private readonly splitter: LineSplitter;
  private readonly buf: Buffer;
  private cur: Current | null = null;
  private pos: AlertsPosition | null = null;
  /** alerts.position was read (or is known to be absent or damaged): until then nothing is opened. */
  private posRead = false;
  /** The next file opened came after a rotation: read it from its first byte. */
  private nextFromStart = false;
  /** With no saved position, the file was missing at some point since start: once it appears, all of it is new. */
  private missingSinceStart = false;
  private lastSaved = '';
  private readonly writer: PositionWriter;
  private dirWatch: FSWatcher | null = null;
  private fileWatch: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  /** A turn is due at the next pass of the event loop (goOnSoon). */
  private goingOn = false;
  private closed = false;
  private waitingLogged = false;
  /** Finishing a compressed rotated file (asynchronous): nothing else is read meanwhile. */
  private recovering: Promise<void> | null = null;
  /** The rotated file just finished: a file rotated after it, if any, is read before the live one. */
  private finishedRotated: string | null = null;
  /**
   * A search for the saved file's .json.gz that was cut short (findCompressed): for which position,
   * and where it goes on (the files are looked at newest first: those whose rotationKey is below).
   */
  private gzSearch: { key: string; below: number } | null = null;
  /**
   * The last file finished as rotated, and where: read as a file "rotated in and out" while
   * analysisd was between making a day's file and linking alerts.json to it, it is then the live file
   * — taken up where that read ended, not read again from its start. Recognised by its inode and
   * its head (ext4 gives a freed inode to the next file made: once the finished file is compressed,
   * a later alerts.json can have its inode), and forgotten once another file was read after it.
   */
  private lastFinished: { dev: number; ino: number; offset: number; headLen: number; head: string } | null = null;
  /**
   * The walk through the files rotated after a finished one (nextRotated): its month listings, taken
   * once and sorted once, and the last file it gave. Listing the month again for every file walked
   * made a walk O(N²), and the Wazuh user can make N large (empty files named like rotated days).
   */
  private walk: { after: string; key: number; live: string; files: Generator<string> } | null = null;
  /** Refused files already counted and logged (path, reason, identity): a poll does not count them again. */
  private readonly refusedFiles = new Set<string>();
  private refusing: string | null = null;
  private readonly limiter = new LogLimiter();
  readonly counters: Omit<FollowerStats, 'following' | 'offset' | 'refusing'> = {
    lines: 0, bytes: 0, too_long: 0, truncations: 0, rotations: 0, rotated_unread: 0, rotated_compressed: 0, rotated_between: 0, refused: 0,
    position_errors: 0, untrusted_file: 0,
  };

  constructor(opts: FollowerOptions) {
    this.o = {
      maxLineBytes: DEFAULT_MAX_LINE_BYTES, pollMs: 1000, retryMs: 1000, chunkBytes: 256 * 1024,
      maxBytesPerTurn: 4 * 1024 * 1024, maxLinesPerTurn: 5000, maxFilesPerTurn: 64, maxTurnMs: 50, wazuhUid: () => null, elsewhere: () => false, syncPosition: true, stopWaitMs: 1000, ...opts,
    };
    this.writer = new PositionWriter({
      file: this.o.positionFile, sync: this.o.syncPosition, afterSync: this.o.afterSync,
      onError: (e, p) => this.positionFailed(e, p),
    });
    this.splitter = new LineSplitter(this.o.maxLineBytes);
    this.buf = Buffer.allocUnsafe(this.o.chunkBytes);
  }

  start(): void {
    this.poll = setInterval(() => this.kick(), this.o.pollMs);
    this.poll.unref();
    this.kick();
  }

  /** The newest position handed to the writer (where a follower started after this one resumes). */
  lastPosition(): AlertsPosition | null {
    return this.pos;
  }

  stats(): FollowerStats {
    return {
      ...this.counters, too_long: this.counters.too_long + this.splitter.tooLong, following: this.cur !== null,
      refusing: this.cur ? null : this.refusing, offset: this.cur?.committed ?? 0,
    };
  }

  /** Read what is new. Re-entrant calls (an inotify event during a turn) run one more turn. */
  kick(): void {
    // While a refusal's pause runs, appends wait too: the spool has no room for them either.
    // A turn is due already (a backlog being read in bounded turns): it reads what this one would.
    if (this.closed || this.recovering || this.retry || this.goingOn) return;
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
      const err = e as NodeJS.ErrnoException;
      const say = this.limiter.allow(`failed:${err.code ?? err.message}`);
      if (say) {
        this.o.log?.warn({ err: err.message, file: this.o.file, held: say.held }, isFdExhaustion(e)
          ? 'out of file descriptors reading alerts: retrying at the next poll' : 'reading alerts failed: retrying');
      }
      this.closeCurrent();
    } finally {
      this.running = false;
    }
    this.watchDir();
  }

  /**
   * Stop reading; the last position is written once more. Resolves once it is on disk, or after
   * `stopWaitMs` (a disk that hangs: the write goes on on libuv's thread, the stop does not wait).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.save();
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    if (this.retry) clearTimeout(this.retry);
    this.dirWatch?.close();
    this.closeCurrent();
    if (await this.writer.stop(this.o.stopWaitMs) === 'timeout') {
      this.o.log?.warn({ file: this.o.positionFile, waited_ms: this.o.stopWaitMs },
        'the last alerts position is not written yet (a slow disk): a restart may read some alerts again');
    }
  }

  private turn(): void {
    if (!this.cur && !this.open()) return;
    // Bounded in bytes, lines, files and time: a big backlog, a flood of tiny lines or a walk
    // through many rotated files lets the event loop breathe (BPF records, keepalives, the control
    // socket, the watchdog), then goes on.
    const started = performance.now();
    let budget = this.o.maxBytesPerTurn;
    let linesLeft = Math.max(1, this.o.maxLinesPerTurn);
    let files = 0;
    for (let steps = 0; steps < 10_000; steps++) {
      const cur = this.cur!;
      if (budget <= 0 || linesLeft <= 0 || files >= this.o.maxFilesPerTurn || performance.now() - started > this.o.maxTurnMs) {
        this.goOnSoon();
        break;
      }
      const n = readSync(cur.fd, this.buf, 0, this.buf.length, cur.offset);
      if (n > 0) {
        let lines = this.splitter.push(this.buf.subarray(0, n), cur.offset);
        cur.offset += n;
        budget -= n;
        this.counters.bytes += n;
        const cut = lines.length > linesLeft;
        if (cut) lines = lines.slice(0, linesLeft);
        if (!this.deliver(lines)) break;
        linesLeft -= lines.length;
        if (cut) {
          // The rest of the chunk is read again at the next turn, from the end of the last line taken
          // (a line start: the splitter starts afresh there).
          this.counters.bytes -= cur.offset - cur.committed;
          cur.offset = cur.committed;
          this.splitter.reset();
        }
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
        this.finishedRotated = cur.path ?? null;
        // Its head as it is now (all of it written: analysisd closed it): a file that reuses its
        // inode later has another head.
        const headLen = Math.min(HEAD_BYTES, fstatSync(cur.fd).size);
        const head = headHash(cur.fd, headLen);
        this.lastFinished = head === null ? null : { dev: cur.dev, ino: cur.ino, offset: cur.committed, headLen, head };
        this.closeCurrent();
        files++;
        if (!this.open()) break;
        continue;
      }
      if (this.o.elsewhere()) break; // another home's alerts.json is no rotation of this one's
      // lstat: a symbolic link put in its place is another file too (then refused by open()).
      const live = lstatOrNull(this.o.file);
      if (live && (live.ino !== cur.ino || live.dev !== cur.dev)) {
        // Rotated. analysisd closed (flushed) the old file before linking the new one, so one more
        // read to its end sees all of it; then any file rotated in and out since, then the new file
        // from its first byte. Its path is where those are looked for.
        const path = cur.path ?? this.pathOf(cur);
        if (path === 'retry') break; // out of descriptors: the next poll sees the rotation again
        if (path) cur.path = path;
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

  /**
   * The next turn, once the event loop had its turn. One at a time: a kick from the poll or inotify
   * meanwhile runs a turn of its own, and each would otherwise start another chain of turns.
   */
  private goOnSoon(): void {
    if (this.goingOn) return;
    this.goingOn = true;
    setImmediate(() => {
      this.goingOn = false;
      this.kick();
    });
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

  /** Open the file to follow; false when there is none yet (or none that is Wazuh's, or no descriptor left). */
  private open(): boolean {
    if (this.o.elsewhere()) return false;
    if (!this.loadPosition()) return false;
    const between = this.openRotatedBetween();
    if (between !== null) return between;
    let fd: number;
    let st: Stats;
    try {
      const r = openTrusted(this.o.file, this.owners());
      if ('refused' in r) {
        this.refuse(this.o.file, r);
        this.refusing = r.refused;
        if (!this.pos) this.missingSinceStart = true; // a proper file that comes later is new: read it whole
        return false;
      }
      ({ fd, st } = r);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !this.pos) this.missingSinceStart = true;
      this.refusing = null;
      if (!this.waitingLogged) {
        this.waitingLogged = true;
        this.o.log?.info({ file: this.o.file, code }, code === 'ENOENT'
          ? 'alerts file does not exist yet: waiting for wazuh-analysisd to create it'
          : isFdExhaustion(e) ? 'out of file descriptors: opening the alerts file again at the next poll'
            : 'alerts file cannot be opened: retrying');
      }
      return false;
    }
    this.waitingLogged = false;
    this.refusing = null;
    const owned = { fd };
    try {
      return this.adopt(owned, st);
    } catch (e) {
      // Until this.cur holds it, the descriptor adopt() holds is ours to close: a read error must not leak it.
      if (owned.fd >= 0 && this.cur?.fd !== owned.fd) closeQuietly(owned.fd);
      throw e;
    }
  }

  /**
   * Read the saved position, once; false while it cannot be read now (out of descriptors): the
   * next poll tries again. Followed without it, alerts.json would be read from its end and the
   * first save would overwrite the position: what was written while the tap was stopped, lost.
   */
  private loadPosition(): boolean {
    if (this.posRead) return true;
    if (this.o.resumeFrom) {
      this.pos = this.o.resumeFrom;
      this.posRead = true;
      return true;
    }
    try {
      this.pos = readPosition(this.o.positionFile, (why) => {
        this.o.log?.warn({ file: this.o.positionFile, why }, 'alerts position unreadable: starting as without one');
      });
    } catch (e) {
      const say = this.limiter.allow('retry:position');
      if (say) {
        this.o.log?.warn({ file: this.o.positionFile, err: (e as Error).message, held: say.held }, isFdExhaustion(e)
          ? 'out of file descriptors reading the alerts position: reading it again at the next poll'
          : 'cannot read the alerts position now: reading it again at the next poll');
      }
      return false;
    }
    this.posRead = true;
    return true;
  }

  /**
   * Start following the opened alerts.json: where to read from, or first finish the file it replaced.
   * `owned.fd` is the descriptor held at each moment (-1 once closed), for open() to close on a throw.
   */
  private adopt(owned: { fd: number }, st: Stats): boolean {
    let fd = owned.fd;
    const pos = this.pos;
    let offset: number;
    let retired = false;
    // alerts.json's other name, the day's file under <year>/<Mon>/ (analysisd links one to the
    // other), looked up now: once rotated, the file can be compressed or removed before the follower
    // reaches its end (the spool refusing for hours), and its name is where the files rotated after
    // it are looked for.
    let path: string | undefined;
    if (st.nlink > 1) {
      const p = this.pathOf(st);
      if (p === 'retry') return this.searchLater(owned);
      path = p ?? undefined;
    }
    if (this.nextFromStart) {
      const done = this.lastFinished;
      offset = done && done.dev === st.dev && done.ino === st.ino && headHash(fd, done.headLen) === done.head ? Math.min(done.offset, st.size) : 0;
      this.nextFromStart = false;
      this.lastFinished = null;
    } else if (pos && pos.dev === st.dev && pos.ino === st.ino && headHash(fd, pos.headLen) === pos.head && !this.savedElsewhere(pos, st)) {
      offset = pos.offset;
      if (st.size < offset) {
        this.counters.truncations++;
        this.o.log?.warn({ file: this.o.file, saved: offset, size: st.size }, 'alerts file shorter than the saved position: truncated, reading it from its start');
        offset = 0;
      }
    } else if (pos) {
      // Not the saved file, whatever its inode: ext4 gives the inode of a day monitord compressed
      // (its .json unlinked) to the next file made, so alerts.json can have the saved inode and
      // another head. The saved file is then looked for as for any other rotation.
      const old = this.findRotated(pos);
      const gz = old === null ? this.findCompressed(pos) : null;
      if (old === 'retry' || gz === 'retry') return this.searchLater(owned);
      if (gz === 'later') {
        // Looked long enough in this turn: the search goes on in the next one.
        closeSync(fd);
        owned.fd = -1;
        this.goOnSoon();
        return false;
      }
      if (old) {
        // Rotated while the tap was stopped: finish the old file first, then the live one from 0.
        closeSync(fd);
        fd = owned.fd = old.fd;
        st = old.st;
        offset = Math.min(pos.offset, st.size);
        retired = true;
        this.nextFromStart = true;
        path = old.path;
        this.o.log?.info({ file: old.path, offset }, 'alerts file was rotated while the tap was stopped: finishing the old one first');
      } else if (gz) {
        // Compressed by monitord since: finish it from the .gz (a stream), then this file from 0.
        const file = gz.path;
        closeSync(fd);
        owned.fd = -1;
        this.o.log?.info({ file, offset: pos.offset }, 'alerts file was rotated and compressed while the tap was stopped: finishing it from the .gz first');
        this.recovering = this.finishCompressed(file, gz.fd, pos)
          .catch((e: Error) => {
            this.counters.rotated_unread++;
            this.o.log?.warn({ file, err: e.message }, 'cannot read the compressed alerts file: the rest of it was not published');
          })
          .finally(() => {
            this.recovering = null;
            this.nextFromStart = true;
            this.finishedRotated = file;
            this.kick();
          });
        return false;
      } else {
        this.counters.rotated_unread++;
        this.o.log?.warn({ file: this.o.file },
          'alerts file was replaced while the tap was stopped and the old one is no longer under logs/alerts/<year>/<Mon>/ '
          + '(compressed or removed): alerts written to it after the saved position were not read; reading the new one from its start');
        if (pos.path !== undefined) {
          // Where it was is known: the files rotated after it come first, then this one from its start.
          closeSync(fd);
          owned.fd = -1;
          this.finishedRotated = join(dirname(this.o.file), pos.path);
          this.nextFromStart = true;
          return this.open();
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
    this.cur = { fd, dev: st.dev, ino: st.ino, offset, committed: offset, retired, path, headLen, head: headHash(fd, headLen) ?? '' };
    if (!retired) this.finishedRotated = null; // the live file is followed: no rotated one before it is left (openRotatedBetween)
    this.splitter.reset();
    if (offset > 0 && !pos && offset === st.size && st.size > 0 && lastByte(fd, st.size) !== 0x0a) {
      this.splitter.skipToNextLine(); // no line start found within maxLineBytes: skip that line
    }
    if (!retired) this.watchFile();
    this.save();
    return true;
  }

  /** Out of descriptors while searching logs/alerts/<year>/<Mon>/: not a reason to call a file gone. Next poll. */
  private searchLater(owned: { fd: number }): false {
    closeSync(owned.fd);
    owned.fd = -1;
    const say = this.limiter.allow('retry:rotated');
    if (say) {
      this.o.log?.warn({ file: this.o.file, held: say.held },
        'the rotated alerts file could not be looked for now (out of file descriptors, or its path\'s links raced by renames): looking again at the next poll');
    }
    return false;
  }

  /**
   * The saved file's name says it is not `st`: compressed since, or the name of another file. Its
   * inode can be another file's (ext4 reuses a freed one at once), and a head of 0 bytes (saved
   * while it was empty) matches any file.
   */
  private savedElsewhere(pos: AlertsPosition, st: Stats): boolean {
    if (pos.path === undefined) return false;
    const path = join(dirname(this.o.file), pos.path);
    const l = lstatOrNull(path);
    return l ? l.dev !== st.dev || l.ino !== st.ino : lstatOrNull(`${path}.gz`) !== null;
  }

  /** A file's name under logs/alerts as the position keeps it (the `.json`, also for its `.json.gz`); undefined for any other. */
  private nameOf(path: string | undefined): string | undefined {
    if (path === undefined) return undefined;
    const name = relative(dirname(this.o.file), path).replace(/\.gz$/, '');
    return isRotatedName(name) ? name : undefined;
  }

  /** Root and the Wazuh user: whose files are Wazuh's. */
  private owners(): number[] {
    const uid = this.o.wazuhUid();
    return uid === null || uid === 0 ? [0] : [0, uid];
  }

  /** A file that is not Wazuh's: counted and logged once, however many polls see it again. */
  private refuse(path: string, r: { refused: string; dev: number; ino: number }): void {
    const key = `${path}\0${r.refused}\0${r.dev}:${r.ino}`;
    if (this.refusedFiles.has(key)) return;
    if (this.refusedFiles.size >= 1000) this.refusedFiles.clear(); // bounded: names are chosen by others
    this.refusedFiles.add(key);
    this.counters.untrusted_file++;
    // Also bounded in time per path and reason: a file swapped in a loop is a new file each time.
    const say = this.limiter.allow(`refused:${path}\0${r.refused}`);
    if (say) {
      this.o.log?.warn({ file: path, why: r.refused, held: say.held },
        'alerts: refused a file that is not Wazuh\'s (only a regular file of root or the Wazuh user is read): not read, waiting for a proper one');
    }
  }

  /**
   * After a rotated file is finished: the next file analysisd rotated after it and before the live
   * alerts.json, if any, opened to be read whole — several rotations between two looks (the tap
   * stopped for more than a day, or a `rotate_interval`) left them all behind, and only the first
   * and the live one were read. A `.json.gz` (monitord compressed it) is read as a stream. null:
   * none, the live file comes next; false: not now (out of descriptors, or a compressed one is read).
   */
  private openRotatedBetween(): boolean | null {
    for (let tries = 0; this.finishedRotated !== null && tries < 100; tries++) {
      const after = this.finishedRotated;
      const next = this.nextRotated(after, lstatOrNull(this.o.file));
      if (next === 'retry') return false;
      // The live file comes next. Where the follower was is kept until that file is adopted (adopt):
      // a look that cannot open it now (out of descriptors), then another rotation before the next
      // look, and the live file is a later day — the days between are found from here.
      if (next === null) return null;
      this.finishedRotated = next; // unreadable, it is said and the one after it comes next
      let r: ReturnType<typeof openTrusted>;
      try {
        r = openTrusted(next, this.owners());
      } catch (e) {
        if (isTransient(e)) {
          this.finishedRotated = after;
          return false;
        }
        this.counters.rotated_unread++;
        this.o.log?.warn({ file: next, err: (e as Error).message }, 'cannot read an alerts file rotated since the last look: its alerts were not published');
        continue;
      }
      if ('refused' in r) {
        this.refuse(next, r);
        continue;
      }
      this.counters.rotated_between++;
      this.nextFromStart = true;
      this.lastFinished = null; // another file read after it: it is no longer the one before the live file
      this.o.log?.info({ file: next }, 'alerts: a file rotated in and out since the last look: reading it whole before the live one');
      if (next.endsWith('.gz')) {
        const fd = r.fd;
        let pos: AlertsPosition;
        try {
          const h = gunzipHead(fd);
          const headLen = Math.min(HEAD_BYTES, h.length);
          pos = { dev: r.st.dev, ino: r.st.ino, offset: 0, headLen, head: headLen ? hashOf(h.subarray(0, headLen)) : '', path: this.nameOf(next) };
        } catch (e) {
          closeQuietly(fd);
          this.counters.rotated_unread++;
          this.o.log?.warn({ file: next, err: (e as Error).message }, 'cannot read an alerts file rotated since the last look: its alerts were not published');
          continue;
        }
        this.recovering = this.finishCompressed(next, fd, pos)
          .catch((e: Error) => {
            this.counters.rotated_unread++;
            this.o.log?.warn({ file: next, err: e.message }, 'cannot read the compressed alerts file: the rest of it was not published');
          })
          .finally(() => {
            this.recovering = null;
            this.kick();
          });
        return false;
      }
      this.cur = { fd: r.fd, dev: r.st.dev, ino: r.st.ino, offset: 0, committed: 0, retired: true, path: next, headLen: 0, head: '' };
      this.splitter.reset();
      this.save();
      return true;
    }
    this.finishedRotated = null;
    return null;
  }

  /**
   * The first file under logs/alerts/<year>/<Mon>/ that analysisd rotated after `after` and before
   * `live` (alerts.json), in the order of their names (`rotationKey`); null when none (or `after` is
   * not one of them); 'retry' when a look failed for now (util/errno isTransient: out of descriptors,
   * a container's raced `..` walk…) — taken for "missing", a rotated file was skipped, its alerts lost.
   */
  private nextRotated(after: string, live: { dev: number; ino: number } | null): string | null | 'retry' {
    const from = rotationKey(after);
    if (from === null) {
      this.walk = null;
      return null;
    }
    const root = dirname(this.o.file);
    try {
      // Going on from the file the walk gave last, with the same live file: its listing is used
      // again. From anywhere else (a walk begins, a file could not be opened and is looked for
      // again), or once analysisd rotated since (a file made since would be missing from the
      // listing, and a later month's come before it), listed afresh.
      const liveId = live ? `${live.dev}:${live.ino}` : '';
      let fresh = false;
      if (this.walk?.after !== after || this.walk.live !== liveId) {
        this.walk = { after, key: from, live: liveId, files: rotatedFiles(root, { after: from }) };
        fresh = true;
      }
      const walk = this.walk!;
      for (;;) {
        const n = walk.files.next();
        if (n.done) {
          this.walk = null;
          if (fresh) return null;
          // Listed earlier in the walk: files made since (more rotations) are in a new listing.
          this.walk = { after, key: from, live: liveId, files: rotatedFiles(root, { after: from }) };
          fresh = true;
          continue;
        }
        // In rotation order, so the first that is there is the one; the same rotation as .json and
        // .json.gz (compressed as it was listed) comes as the .json first, the .gz if that is gone.
        let path = n.value;
        const key = rotationKey(path)!;
        if (key <= walk.key) continue; // the .gz of the rotation just given as .json
        let l = lstatOrRetry(path);
        if (!l && !path.endsWith('.gz')) {
          // Compressed since it was listed: its .gz, at the same place in the order.
          path = `${path}.gz`;
          l = lstatOrRetry(path);
        }
        if (!l) continue;
        if (live && l.dev === live.dev && l.ino === live.ino) {
          this.walk = null;
          return null; // the live file: none between
        }
        // Symbolic links are listed too, to be refused (and said so) by openTrusted.
        if (l.isFile() || l.isSymbolicLink()) {
          walk.after = path;
          walk.key = key;
          return path;
        }
      }
    } catch (e) {
      this.walk = null;
      if (isTransient(e)) return 'retry';
    }
    return null;
  }

  /** Where the followed file is under logs/alerts/<year>/<Mon>/ (alerts.json's other link); null when not there. */
  private pathOf(file: { dev: number; ino: number }): string | null | 'retry' {
    let budget = 5000; // files not yet compressed, newest first: the followed one comes within the first few
    try {
      for (const path of rotatedFiles(dirname(this.o.file), 'newest')) {
        if (path.endsWith('.gz')) continue;
        if (--budget < 0) return null;
        const l = lstatOrNull(path);
        if (l && l.ino === file.ino && l.dev === file.dev && l.isFile()) return path;
      }
    } catch (e) {
      if (isTransient(e)) return 'retry';
    }
    return null;
  }

  /**
   * The old inode under logs/alerts/<year>/<Mon>/, if still there (not yet compressed): under its
   * saved name, or (a position without one) wherever a file has its inode; 'retry' when out of descriptors.
   */
  private findRotated(pos: AlertsPosition): { fd: number; st: Stats; path: string } | null | 'retry' {
    const path = pos.path !== undefined ? join(dirname(this.o.file), pos.path) : this.pathOf(pos);
    if (path === null || path === 'retry') return path;
    try {
      const r = openTrusted(path, this.owners());
      if ('refused' in r) {
        this.refuse(path, r);
        return null;
      }
      // The descriptor's own identity: the path may have been swapped since the lstat.
      if (r.st.ino === pos.ino && r.st.dev === pos.dev && headHash(r.fd, pos.headLen) === pos.head) return { ...r, path };
      closeSync(r.fd);
      return null;
    } catch (e) {
      if (isTransient(e)) return 'retry';
      return null; // gone meanwhile, unreadable: not this one
    }
  }

  /**
   * The saved file's `.json.gz` under logs/alerts/<year>/<Mon>/, opened: by its saved name, else
   * the one whose content starts with the saved head, newest first.
   */
  private findCompressed(pos: AlertsPosition): { path: string; fd: number } | null | 'retry' | 'later' {
    const key = JSON.stringify(pos);
    const resume = this.gzSearch?.key === key ? this.gzSearch.below : null;
    this.gzSearch = null;
    if (pos.path !== undefined && resume === null) {
      const named = this.openCompressed(`${join(dirname(this.o.file), pos.path)}.gz`, pos);
      if (named !== null) return named;
    }
    if (pos.headLen === 0) return null; // nothing to recognise it by
    // Newest first: the saved file comes after the rotations since it, one for each hour of
    // `rotate_interval 1h` the tap was stopped. Each look decompresses the start of a .gz (a
    // fraction of a millisecond); 2000 of them reach 83 days back at one rotation an hour.
    // Bounded in time too (planted .gz files, each a look): past SEARCH_MS the search goes on at
    // the next turn from the file it stopped at, the event loop having had its turn meanwhile.
    let tries = 2000;
    const started = performance.now();
    try {
      for (const path of rotatedFiles(dirname(this.o.file), 'newest')) {
        if (!path.endsWith('.gz')) continue;
        const st = lstatOrNull(path);
        // Symbolic links are listed too, to be refused (and said so) by openTrusted.
        if (!st || (!st.isFile() && !st.isSymbolicLink())) continue;
        if (--tries < 0) break;
        const at = rotationKey(path)!;
        if (resume !== null && at >= resume) continue; // looked at in an earlier turn (newest first)
        if (performance.now() - started > SEARCH_MS) {
          this.gzSearch = { key, below: at + 1 };
          return 'later';
        }
        const r = this.openCompressed(path, pos);
        if (r !== null) return r;
      }
    } catch (e) {
      if (isTransient(e)) return 'retry';
    }
    return null;
  }

  /** `path` opened if it is a `.json.gz` of Wazuh's whose content starts with the saved head (any, for a head of 0 bytes). */
  private openCompressed(path: string, pos: AlertsPosition): { path: string; fd: number } | null | 'retry' {
    let fd = -1;
    try {
      const r = openTrusted(path, this.owners());
      if ('refused' in r) {
        this.refuse(path, r);
        return null;
      }
      fd = r.fd;
      const head = gunzipHead(fd);
      if (head.length >= pos.headLen && (pos.headLen === 0 || hashOf(head.subarray(0, pos.headLen)) === pos.head)) return { path, fd };
    } catch (e) {
      if (isTransient(e)) {
        if (fd >= 0) closeSync(fd);
        return 'retry';
      }
      // not there, not gzip, unreadable: not this one
    }
    if (fd >= 0) closeSync(fd);
    return null;
  }

  /** Read a compressed rotated file (opened: `fd`) from the saved offset to its end, saving the position as lines are taken. */
  private async finishCompressed(path: string, fd: number, pos: AlertsPosition): Promise<void> {
    const splitter = new LineSplitter(this.o.maxLineBytes);
    // pipeline, not pipe: a read error reaches the loop below, and destroying the gunzip stream when
    // it stops early (the follower closed while the spool refused) destroys the file's stream too,
    // which closes the descriptor; with pipe it was left paused, holding the descriptor for good.
    const file = createReadStream(path, { fd, start: 0 });
    const input = pipeline(file, createGunzip(), () => { /* errors come through the loop */ });
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
      file.destroy();
    }
  }

  private save(): void {
    const cur = this.cur;
    if (!cur || this.closed) return;
    // The head of what the file holds, not of what the sink took: appended bytes never change, and
    // a head of 0 bytes tells the file from none (a new day whose lines the spool refused, then
    // compressed while the tap was stopped, would be neither found nor told from a reused inode).
    const size = cur.headLen < HEAD_BYTES ? fstatSync(cur.fd).size : 0;
    if (size > cur.headLen) {
      const len = Math.min(HEAD_BYTES, size);
      const h = headHash(cur.fd, len);
      if (h !== null) {
        cur.headLen = len;
        cur.head = h;
      }
    }
    this.savePosition({ dev: cur.dev, ino: cur.ino, offset: cur.committed, headLen: cur.headLen, head: cur.head, path: this.nameOf(cur.path) });
  }

  /** Queued for the writer (the newest replaces one not written yet); what the follower keeps in memory is this one. */
  private savePosition(p: AlertsPosition): void {
    if (this.closed) return;
    const key = JSON.stringify(p);
    if (key === this.lastSaved) return;
    this.writer.save(p);
    this.lastSaved = key;
    this.pos = p;
  }

  /** A position not written: counted and said (at most once a minute), saved again at the next turn unless a newer one is queued. */
  private positionFailed(e: Error, p: AlertsPosition): void {
    this.counters.position_errors++;
    if (JSON.stringify(p) === this.lastSaved) this.lastSaved = '';
    const say = this.limiter.allow('position');
    if (say) {
      this.o.log?.warn({ err: e.message, file: this.o.positionFile, held: say.held }, 'cannot save the alerts position: a restart would read some alerts again');
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
      const w = withPathInView(this.o.file, (p) => watch(p, { persistent: false }, () => this.kick()));
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
      const w = withPathInView(dirname(this.o.file), (p) => watch(p, { persistent: false }, (_ev, f) => {
        if (f === null || f === name) this.kick();
      }));
      w.on('error', () => { w.close(); if (this.dirWatch === w) this.dirWatch = null; });
      this.dirWatch = w;
    } catch {
      // logs/alerts does not exist yet
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** How long one turn looks for the saved file's .json.gz among the compressed ones (findCompressed). */
const SEARCH_MS = 50;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Where a rotated file comes in the order analysisd wrote them, from its path:
 * `<year>/<Mon>/ossec-alerts-<dd>.json`, then `ossec-alerts-<dd>-001.json`, `-002`, … (more than one
 * rotation a day: `rotate_interval`, `max_output_size`); `.json.gz` once monitord compressed it.
 * null for any other name.
 */
export function rotationKey(path: string): number | null {
  const m = /(?:^|\/)(\d{4})\/([A-Z][a-z]{2})\/ossec-alerts-(\d{2})(?:-(\d{3}))?\.json(?:\.gz)?$/.exec(path);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]);
  if (month < 0) return null;
  return ((Number(m[1]) * 12 + month) * 100 + Number(m[3])) * 1000 + Number(m[4] ?? 0);
}

/**
 * The decompressed start of a `.json.gz` (open: `fd`): the first 16 KiB of the stream decompress to
 * well over a KiB of JSON lines (as much, stored; several times more, compressed); SYNC_FLUSH lets
 * a truncated stream decompress as far as it goes. Throws when it is not gzip.
 */
function gunzipHead(fd: number): Buffer {
  const b = Buffer.alloc(16 * 1024);
  const n = readSync(fd, b, 0, b.length, 0);
  // Inflated a step of input at a time, and only until the head is there: deflate expands up to
  // ~1032 times, and 16 KiB of a planted .gz (a "bomb") inflated whole made ~16 MiB, for each file
  // looked at, on the event loop. A step of 256 bytes inflates to at most ~260 KiB more than the
  // last (< HEAD_BYTES); maxOutputLength is the hard cap (over it: thrown, "not this one").
  for (let len = Math.min(n, 256); ; len = Math.min(n, len + 256)) {
    const out = gunzipSync(b.subarray(0, len), { finishFlush: zc.Z_SYNC_FLUSH, maxOutputLength: GUNZIP_HEAD_MAX });
    if (out.length >= HEAD_BYTES || len === n) return out;
  }
}

const GUNZIP_HEAD_MAX = 1024 * 1024;

/**
 * The rotated files of logs/alerts/<year>/<Mon>/ (the names analysisd gives: `rotationKey`; its
 * .log, .sum files are not), in the order analysisd wrote them: from the first after the rotation
 * `after` on, or newest first (the two newest years). Months in date order, each listed only when
 * the caller reads that far: a month of hourly rotations holds thousands of entries, and listing
 * months by name (Apr, Aug, Dec, Feb…) with a budget never reached the current one.
 */
function* rotatedFiles(root: string, from: { after: number } | 'newest'): Generator<string> {
  const up = from !== 'newest';
  const fromMonth = up ? Math.floor(from.after / 100_000) : 0; // year * 12 + month, as in rotationKey
  const years = safeList(root).filter((d) => /^\d{4}$/.test(d)).sort();
  for (const y of up ? years.filter((d) => Number(d) * 12 + 11 >= fromMonth) : years.slice(-2).reverse()) {
    const present = new Set(safeList(join(root, y)));
    const months = MONTHS.filter((m, i) => present.has(m) && (!up || Number(y) * 12 + i >= fromMonth));
    for (const m of up ? months : months.reverse()) {
      const files: { path: string; key: number }[] = [];
      for (const f of safeList(join(root, y, m))) {
        const path = join(root, y, m, f);
        const key = rotationKey(path);
        if (key !== null && (!up || key > from.after)) files.push({ path, key });
      }
      // The same rotation as .json and .json.gz: the .json first.
      const gz = (p: string) => (p.endsWith('.gz') ? 1 : 0);
      files.sort((a, b) => (up ? a.key - b.key : b.key - a.key) || gz(a.path) - gz(b.path));
      for (const f of files) yield f.path;
    }
  }
}

/** A directory's names; [] when it cannot be listed, except not now (thrown: the caller retries later). */
function safeList(dir: string): string[] {
  try {
    return readdirInView(dir);
  } catch (e) {
    if (isTransient(e)) throw e;
    return [];
  }
}

/** lstatOrNull, but a look that failed for now is thrown (isTransient): not taken for a file that is not there. */
function lstatOrRetry(path: string): Stats | null {
  try {
    return statInView(path, { follow: false });
  } catch (e) {
    if (isTransient(e)) throw e;
    return null;
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
