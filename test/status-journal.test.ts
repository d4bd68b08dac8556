// The journal of published statuses: last line per agent wins, a torn line is skipped, compaction keeps the latest.
import t from 'tap';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJournal, StatusJournal } from '../controller/src/state/sources/status-journal.js';

t.test('parse: last valid line per agent; garbage and torn lines skipped', async (t) => {
  const j = parseJournal('1 pending 0\n1 active 0\n2 disconnected 3\nrm -rf 9\n3 flying 0\n1 disconnected 4\n2 acti');
  t.same([...j], [[1, { status: 'disconnected', status_code: 4 }], [2, { status: 'disconnected', status_code: 3 }]]);
});

t.test('open compacts, recordMany appends, close compacts again', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-')), 'agents.status');
  const a = new StatusJournal(path);
  t.same([...a.open()], [], 'first run: empty');
  a.recordMany([{ agentId: '001', status: 'pending', statusCode: 0 }]);
  a.recordMany([
    { agentId: '001', status: 'active', statusCode: 0 },
    { agentId: '002', status: 'pending', statusCode: 0 },
    { agentId: '../x', status: 'active', statusCode: 0 }, // not an agent id: ignored
  ]);
  a.close(); // as after SIGKILL: nothing compacted
  appendFileSync(path, '002 acti'); // a torn last write
  const b = new StatusJournal(path);
  t.same([...b.open()], [[1, { status: 'active', status_code: 0 }], [2, { status: 'pending', status_code: 0 }]]);
  t.equal(readFileSync(path, 'utf8'), '1 active 0\n2 pending 0\n', 'compacted at open');
  b.close(new Map([[1, { status: 'disconnected', status_code: 3 }]]));
  t.equal(readFileSync(path, 'utf8'), '1 disconnected 3\n');
});

t.test('a compaction that fails is reported, never thrown: the appended journal stays and says the same', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-')), 'agents.status');
  const errors: Error[] = [];
  const a = new StatusJournal(path, (e) => errors.push(e));
  a.open();
  a.recordMany([{ agentId: '001', status: 'pending', statusCode: 0 }, { agentId: '001', status: 'active', statusCode: 0 }]);
  mkdirSync(`${path}.tmp`); // the copy cannot be written (as out of descriptors, or of space)
  t.doesNotThrow(() => a.close(new Map([[1, { status: 'active', status_code: 0 }]])), 'a clean stop goes on');
  t.match(errors, [{ code: 'EISDIR' }], 'and says why');
  t.equal(readFileSync(path, 'utf8'), '1 pending 0\n1 active 0\n', 'not compacted');
  const b = new StatusJournal(path, (e) => errors.push(e));
  t.same([...b.open()], [[1, { status: 'active', status_code: 0 }]], 'read back as compacted');
  t.equal(errors.length, 2, 'the compaction at open failed too, and was said');
  b.close();
});
