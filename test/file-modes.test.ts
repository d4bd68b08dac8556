// Every file the tap writes is 0600 and its directories 0700 (SPEC §8; issue 14, item 6: the
// spool's ack file was 0644, its segments 0640): the spool's segments, compaction copies and ack
// cursor, the status journal, the alerts position — whatever the umask.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spool, type MessageKind } from '../controller/src/publish/spool.js';
import { StatusJournal } from '../controller/src/state/sources/status-journal.js';
import { writePosition } from '../controller/src/alerts/position.js';

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const msg = (i: number, kind: MessageKind) => ({
  subject: `wazuh.agent.${String(i % 5).padStart(3, '0')}.${kind}`, headers: {}, body: JSON.stringify({ i, pad: 'p'.repeat(200) }), kind, eventId: `ev-${i}`,
});

for (const umask of [0o022, 0o000]) {
  t.test(`umask ${umask.toString(8).padStart(3, '0')}: the spool directory 0700, every file in it 0600`, async (t) => {
    const old = process.umask(umask);
    t.teardown(() => { process.umask(old); });
    const dir = join(mkdtempSync(join(tmpdir(), 'wnt-modes-')), 'var/nats-tap');
    const s = Spool.open({ dir, maxBytes: 64 * 1024, segmentBytes: 8 * 1024, ackPersistMs: 10 });
    // Enough to rotate segments and to compact keepalives out (a copy written, renamed).
    for (let i = 0; i < 400; i++) s.append([msg(i, i % 4 ? 'keepalive' : 'status')]);
    t.ok(s.stats().compactions > 0, 'segments were compacted');
    for (const e of s.read(20)) s.ack(e.seq);
    await new Promise((r) => setTimeout(r, 50)); // the cursor saved (tmp + rename)
    const journal = new StatusJournal(join(dir, 'agents.status'));
    journal.open();
    journal.recordMany([{ agentId: '001', status: 'active', statusCode: 0 }]);
    journal.close(new Map([[1, { status: 'active', status_code: 0 }]]));
    writePosition(join(dir, 'alerts.position'), { dev: 1, ino: 2, offset: 3, headLen: 0, head: '' });
    s.close();
    t.equal(mode(dir), '700', 'the directory');
    const files = readdirSync(dir);
    t.ok(files.includes('ack') && files.some((f) => f.startsWith('seg-')), `files: ${files.join(' ')}`);
    t.same(files.filter((f) => mode(join(dir, f)) !== '600').map((f) => `${f} ${mode(join(dir, f))}`), [], 'every file 0600');
  });
}

t.test('a spool left by an earlier version (0750, segments 0640, ack 0644, a stale ack.tmp) is made 0700/0600 when opened', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'wnt-modes-')), 'spool');
  const s = Spool.open({ dir, maxBytes: 1 << 20, ackPersistMs: 10 });
  s.append([msg(1, 'status'), msg(2, 'status')]);
  for (const e of s.read(1)) s.ack(e.seq);
  s.close();
  chmodSync(dir, 0o750);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), f === 'ack' ? 0o644 : 0o640);
  writeFileSync(join(dir, 'ack.tmp'), '99\n', { mode: 0o644 });
  const s2 = Spool.open({ dir, maxBytes: 1 << 20 });
  t.equal(s2.stats().records, 1, 'the records are all there');
  t.equal(mode(dir), '700');
  t.same(readdirSync(dir).map((f) => `${f} ${mode(join(dir, f))}`).filter((x) => !x.endsWith(' 600')), [], 'every file 0600');
  t.notOk(readdirSync(dir).includes('ack.tmp'), 'the half-written copy removed');
  s2.close();
});

t.test('a spool_dir that holds other files is not the tap\'s to change: its mode stays', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-modes-shared-'));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'something-else'));
  const s = Spool.open({ dir, maxBytes: 1 << 20 });
  s.append([msg(1, 'status')]);
  s.close();
  t.equal(mode(dir), '755');
});
