// A ReliablePublisher with a real spool in a temp dir and no NATS (never connected: every event waits
// in the spool), and what that spool holds once it is closed.
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ReliablePublisher, type ReliablePublisherOptions } from '../../controller/src/publish/reliable.js';
import { Spool, type SpoolEntry } from '../../controller/src/publish/spool.js';

export function offlinePublisher(t: Test, o: Partial<ReliablePublisherOptions> = {}): { pub: ReliablePublisher; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-offline-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pub = new ReliablePublisher({
    servers: ['nats://127.0.0.1:1'], prefix: 'wazuh', node: 'node-1', log: pino({ level: 'silent' }),
    spoolDir: dir, spoolMaxBytes: 256 << 20, ...o,
  });
  return { pub, dir };
}

/** Everything in the spool, oldest first (the publisher must be closed). */
export function spooled(dir: string): SpoolEntry[] {
  const s = Spool.open({ dir, maxBytes: 256 << 20 });
  try {
    const out: SpoolEntry[] = [];
    for (;;) {
      const got = s.read(10_000);
      if (got.length === 0) return out;
      out.push(...got);
    }
  } finally {
    s.close();
  }
}
