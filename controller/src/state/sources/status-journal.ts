// The last status the tap published for each agent, kept on disk beside the
// spool. After a crash (SIGKILL, power loss) the records the kernel still held
// are gone; at the next start the tap compares this journal with what wazuh-db
// says now, and publishes each difference as a status event — instead of
// silently adopting wazuh-db's view and losing the transition.
//
// One line per published status event (`<id> <status> <code>\n`), appended
// with one write: cheap, since status changes are rare next to keepalives.
// Compacted to the latest line per agent at start and at a clean stop. A compaction that fails
// (out of file descriptors, say) is reported and skipped: the appended file is as good, only longer.
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import type { ConnectionStatus } from '../../types.js';

const STATUSES: readonly ConnectionStatus[] = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'];
const MAX_BYTES = 256 * 1024 * 1024;

export interface PublishedStatus {
  status: ConnectionStatus;
  status_code: number;
}

/**
 * Parse journal text: the last valid line per agent wins; anything malformed (a torn last line) is skipped.
 * Ids and codes follow decode/values.ts: at most 9 digits (0 to 999,999,999) and 3 digits.
 */
export function parseJournal(text: string): Map<number, PublishedStatus> {
  const out = new Map<number, PublishedStatus>();
  for (const line of text.split('\n')) {
    const m = /^(\d{1,9}) ([a-z_]+) (\d{1,3})$/.exec(line);
    if (!m || !(STATUSES as readonly string[]).includes(m[2])) continue;
    out.set(Number(m[1]), { status: m[2] as ConnectionStatus, status_code: Number(m[3]) });
  }
  return out;
}

export class StatusJournal {
  private fd: number | null = null;

  /** @param onError a compaction failed (the journal stays as it was, appended to) */
  constructor(private readonly path: string, private readonly onError: (e: Error) => void = () => {}) {}

  /** Read the journal (empty on first run), rewrite it compacted, and open it for appends. */
  open(): Map<number, PublishedStatus> {
    let known = new Map<number, PublishedStatus>();
    if (existsSync(this.path)) {
      const text = readFileSync(this.path, 'utf8');
      if (text.length <= MAX_BYTES) known = parseJournal(text);
    }
    this.compactOrReport(known);
    this.fd = openSync(this.path, 'a', 0o600);
    return known;
  }

  /** The statuses just published, with one write. */
  recordMany(entries: { agentId: string; status: ConnectionStatus; statusCode: number }[]): void {
    if (this.fd === null) return;
    const text = entries.filter((e) => /^\d{1,9}$/.test(e.agentId)).map((e) => `${Number(e.agentId)} ${e.status} ${e.statusCode}\n`).join('');
    if (text) writeSync(this.fd, text);
  }

  /** Replace the file with one line per agent (write a copy, then rename: never a half file). */
  compact(latest: Map<number, PublishedStatus>): void {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, [...latest].map(([id, s]) => `${id} ${s.status} ${s.status_code}\n`).join(''), { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  close(latest?: Map<number, PublishedStatus>): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (latest) this.compactOrReport(latest);
  }

  private compactOrReport(latest: Map<number, PublishedStatus>): void {
    try {
      this.compact(latest);
    } catch (e) {
      this.onError(e as Error);
    }
  }
}
