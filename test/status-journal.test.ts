// The journal of published statuses: last line per agent wins, a torn line is skipped, compaction keeps the latest.
import t from 'tap';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJournal, StatusJournal } from '../controller/src/state/sources/status-journal.js';
import { startFdChild } from './helpers/fd-child-process.js';
import { spawnTsChild } from './helpers/ts-child.js';

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

t.test('compacted while running once it holds 4× what a compaction would (1 MiB at least), appends going on in the new file', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-')), 'agents.status');
  const errors: unknown[] = [];
  const j = new StatusJournal(path, { onError: (e, op) => errors.push([op, e.message]) });
  j.open();
  // 100 agents, then one of them flapping: ~100,000 lines a run of days makes (each restart of a fleet,
  // an agent that cycles), 1.5 MB only appended.
  j.recordMany(Array.from({ length: 100 }, (_, i) => ({ agentId: String(i + 1), status: 'active' as const, statusCode: 0 })));
  let most = 0;
  for (let i = 0; i < 100_000; i++) {
    j.recordMany([{ agentId: '7', status: i % 2 ? 'active' : 'disconnected', statusCode: i % 2 ? 0 : 4 }]);
    if (i % 1000 === 999) {
      await new Promise((r) => setTimeout(r, 1)); // the compaction runs after the batch, in a timer
      most = Math.max(most, statSync(path).size);
    }
  }
  await new Promise((r) => setTimeout(r, 5));
  t.ok(most <= 1024 * 1024 + 20_000, `bounded while running (at most ${most} bytes)`);
  t.ok(j.compactions >= 1, `compacted while running (${j.compactions} times)`);
  j.recordMany([{ agentId: '101', status: 'pending', statusCode: 0 }]);
  // As after SIGKILL: no compaction at close. What the file says is what was recorded.
  j.close();
  const text = readFileSync(path, 'utf8');
  const known = parseJournal(text);
  t.equal(known.size, 101, 'every agent in it');
  t.same(known.get(7), { status: 'active', status_code: 0 }, 'the flapping agent\'s latest');
  t.same(known.get(101), { status: 'pending', status_code: 0 }, 'appended after the compactions, in the new file');
  t.same(known.get(1), { status: 'active', status_code: 0 });
  t.same(errors, [], 'nothing failed');
});

t.test('a journal larger than open() reads: its end is read (whole lines), said and counted — never taken as empty', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-')), 'agents.status');
  // An older run's journal: agent 1's early lines, a long run of agent 2's flapping, then the latest of both.
  const flaps = Array.from({ length: 20_000 }, (_, i) => `2 ${i % 2 ? 'active 0' : 'disconnected 4'}\n`).join('');
  writeFileSync(path, `1 pending 0\n3 active 0\n${flaps}1 active 0\n2 disconnected 3\n`, { mode: 0o600 });
  const size = statSync(path).size;
  const errors: [string, string][] = [];
  const j = new StatusJournal(path, { maxBytes: 64 * 1024, onError: (e, op) => errors.push([op, e.message]) });
  const known = j.open();
  t.same([...known].sort(([a], [b]) => a - b), [[1, { status: 'active', status_code: 0 }], [2, { status: 'disconnected', status_code: 3 }]],
    'each agent\'s latest from the end; agent 3, only before it, is not known');
  t.match(errors, [['oversized', new RegExp(`holds ${size} bytes, more than the 65536 read`)]], 'said');
  t.ok(j.unreadBytes >= size - 64 * 1024 && j.unreadBytes < size - 64 * 1024 + 20, `counted (${j.unreadBytes} bytes not read: up to the first whole line)`);
  t.same([...parseJournal(readFileSync(path, 'utf8'))], [...known], 'compacted to what was read, not emptied');
  t.ok(statSync(path).size < 40, 'one line per agent');
  j.close();
});

t.test('out of descriptors at open: the journal is said unreadable and kept whole — not compacted from nothing, then or at close', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-')), 'agents.status');
  writeFileSync(path, '1 active 0\n2 disconnected 3\n', { mode: 0o600 });
  const child = startFdChild(t);
  await child.send('exhaust 0');
  await child.send(`journal ${path}`);
  await child.send('release');
  await child.send('journal-close'); // a status recorded once descriptors are back, then the tap's close
  t.same(child.events.find((e) => e.ev === 'journal')?.known, [], 'nothing known this run');
  t.match(child.events.find((e) => e.ev === 'journal-error'), { op: 'read', code: 'EMFILE' }, 'said');
  t.same([...new StatusJournal(path).open()].map(([id, p]) => `${id} ${p.status} ${p.status_code}`),
    ['1 active 0', '2 disconnected 3', '9 active 0'], 'the next start knows the statuses from before, and the one recorded since');
  await child.send('close');
});

t.test('lines that are no journal line (damage) are skipped, counted and said; a torn last line (a crash) is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-journal-bad-'));
  const path = join(dir, 'agents.status');
  const said: [string, string][] = [];
  const open = () => {
    const j = new StatusJournal(path, { onError: (e, op) => { said.push([op, e.message]); } });
    const known = j.open();
    j.close();
    return { j, known };
  };
  writeFileSync(path, '1 active 0\n2 disconnected 3\n3 acti');
  let r = open();
  t.same([r.j.invalidLines, said], [0, []], 'a torn last line: a crash, nothing said');
  t.same([...r.known.keys()], [1, 2]);

  writeFileSync(path, `1 active 0\n\u0000\u0001garbage\u00ff\n2 disconnected 3\nnot a line\n3 pend`);
  r = open();
  t.equal(r.j.invalidLines, 2, 'two damaged lines counted (the torn last one not)');
  t.match(said, [['invalid', /agents\.status: 2 lines are no journal line/]], 'said once');
  t.same([...r.known.keys()], [1, 2], 'the valid lines kept');
  said.length = 0;
  r = open();
  t.same([r.j.invalidLines, said], [0, []], 'compacted: clean at the next open');

  // Damage longer than what is parsed at a time (1 MiB), with and without a newline after it.
  for (const tail of ['\n4 active 0\n', '']) {
    writeFileSync(path, `1 active 0\n${'x'.repeat(1.5 * 1024 * 1024)}${tail}`);
    said.length = 0;
    r = open();
    t.equal(r.j.invalidLines, 1, `a 1.5 MiB line${tail ? '' : ' at the end, without its newline'}: counted`);
    t.match(said, [['invalid', /1 line is no journal line/]]);
    t.same([...r.known.keys()], tail ? [1, 4] : [1], 'the lines around it kept');
  }
});

/** `n` distinct ids from `from`, one line each, written a chunk at a time (never one string). */
function writeDistinct(path: string, from: number, n: number): void {
  const fd = openSync(path, 'w', 0o600);
  for (let done = 0; done < n; done += 100_000) {
    const lines: string[] = [];
    for (let k = done; k < Math.min(n, done + 100_000); k++) lines.push(`${from + k} active 0\n`);
    writeSync(fd, lines.join(''));
  }
  closeSync(fd);
}

interface ChildOpen { code: number | null; err: string; known: number; invalid: number; said: [string, string][]; ms: number }

/** open() of the journal at `path` in a child whose heap is `heapMiB` (helpers/journal-child.ts), bounded to a minute. */
async function openInChild(t: Tap.Test, path: string, maxAgents: string, heapMiB: number): Promise<ChildOpen> {
  const child = spawnTsChild(join(import.meta.dirname, 'helpers/journal-child.ts'), [path, maxAgents],
    { env: { NODE_OPTIONS: `--max-old-space-size=${heapMiB}` } });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, err: err.slice(-300), ...(JSON.parse(out || '{}') as Omit<ChildOpen, 'code' | 'err'>) };
}

t.test('a journal naming more agents than it takes: the rest are skipped, counted and said as invalid lines, in bounded memory', async (t) => {
  // Found by review: a hand-made agents.status of 14 million distinct ids ran the tap out of heap at every
  // start. 2 million ids (38 MB) opened with a bound of 10,000, under a heap of 64 MiB: the table of 2
  // million alone is more than that.
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-many-')), 'agents.status');
  writeDistinct(path, 100_000_000, 2_000_000);
  appendFileSync(path, '100000005 disconnected 4\n'); // a held agent's later line still counts
  const r = await openInChild(t, path, '10000', 64);
  t.equal(r.code, 0, `the child ended well (stderr: ${r.err})`);
  t.comment(`open(): ${r.known} agents, ${r.invalid} invalid lines, ${r.ms} ms`);
  t.equal(r.known, 10_000, 'the first 10,000 agents taken');
  t.equal(r.invalid, 1_990_000, 'every line of another agent counted as invalid');
  t.match(r.said, [['invalid', /agents\.status: 1990000 lines name agents past the 10000 it takes/]], 'and said once');
  t.ok(r.ms < 15_000, `bounded time (${r.ms} ms)`);
  const compacted = parseJournal(readFileSync(path, 'utf8'));
  t.equal(compacted.size, 10_000, 'compacted to the agents taken');
  t.same(compacted.get(100_000_005), { status: 'disconnected', status_code: 4 }, 'with their latest lines');
});

t.test('a journal of a million agents is compacted a piece at a time: within a heap the whole text did not fit in', async (t) => {
  // One array of a million lines and one string of them (19 MB) beside the table ran a 128 MiB heap out;
  // written 50,000 lines at a time, it takes what the table takes.
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-million-')), 'agents.status');
  writeDistinct(path, 100_000_000, 1_000_000);
  const before = readFileSync(path, 'utf8');
  const r = await openInChild(t, path, 'default', 128);
  t.equal(r.code, 0, `the child ended well (stderr: ${r.err})`);
  t.comment(`open(): ${r.known} agents, ${r.ms} ms`);
  t.same([r.known, r.invalid, r.said], [1_000_000, 0, []], 'every agent taken, nothing said');
  t.ok(readFileSync(path, 'utf8') === before, 'compacted to the same lines');
});

t.test('a compaction of many agents is written in pieces that make the whole file', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-pieces-')), 'agents.status');
  const latest = new Map(Array.from({ length: 120_001 }, (_, i) => [i + 1, { status: 'active' as const, status_code: i % 7 }]));
  const j = new StatusJournal(path);
  j.open();
  j.close(latest);
  const text = readFileSync(path, 'utf8');
  t.equal(text, [...latest].map(([id, s]) => `${id} ${s.status} ${s.status_code}\n`).join(''), 'every line once, in order');
});

t.test('at the bound, removed agents make room: the live agents after them keep their lines, a start after a start (review helper-93)', async (t) => {
  // A manager with more registrations over its life than the bound: its removed agents (unknown, kept for
  // good, written back sorted by id) filled the bound, and the newest — live — agents lost their lines.
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-journal-churn-')), 'agents.status');
  const lines = Array.from({ length: 1000 }, (_, i) => `${i + 1} unknown 0\n`);
  lines.push('1001 active 0\n', '1002 disconnected 4\n', '5 active 0\n'); // 5: re-registered after its removal
  writeFileSync(path, lines.join(''));
  for (const run of [1, 2]) {
    const said: string[] = [];
    const j = new StatusJournal(path, { maxAgents: 1000, onError: (e) => { said.push(e.message); } });
    const known = j.open();
    t.equal(known.size, 1000, `run ${run}: the bound held`);
    t.same([known.get(1001), known.get(1002), known.get(5)],
      [{ status: 'active', status_code: 0 }, { status: 'disconnected', status_code: 4 }, { status: 'active', status_code: 0 }],
      `run ${run}: the live agents kept, the one back after its removal too`);
    t.same(said, [], `run ${run}: nothing said: forgetting removed agents is no damage`);
    t.equal(j.invalidLines, 0);
    j.close(known);
  }
  // Live agents past the bound, with no removed one left to make room: skipped, counted, said.
  const more = parseJournal(Array.from({ length: 12 }, (_, i) => `${i + 1} active 0`).join('\n'), undefined,
    { lines: 0, beyond: 0 }, 10);
  t.equal(more.size, 10);
  const bad = { lines: 0, beyond: 0 };
  parseJournal(['1 active 0', '2 active 0', '3 active 0', '4 unknown 0'].join('\n'), undefined, bad, 2);
  t.equal(bad.beyond, 1, 'the live agent that found no room counted; the removed one past the bound left out unsaid');
});

t.test('the removed agents held for eviction are no more than the agents held, however many removals the file holds', async (t) => {
  const removed = new Set<number>();
  const lines: string[] = [];
  for (let k = 0; k < 20_000; k++) lines.push(`${1 + (k % 50)} unknown 0`, `${1 + (k % 50)} active 0`); // removed, back, again
  lines.push('7 unknown 0');
  const out = parseJournal(lines.join('\n'), undefined, { lines: 0, beyond: 0 }, 100, removed);
  t.equal(out.size, 50);
  t.same([...removed], [7], 'only the agent whose latest line is a removal');
});
