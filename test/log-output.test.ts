// The log's way to stdout (util/log-output.ts): a bounded buffer, drops counted and said, and an exit
// that does not wait on an output that stopped draining. The logic with a fake stream and clock; then
// the real logger (pino, sonic-boom) on a FIFO nobody reads, in a child that ends as `run` does.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogOutput, LOG_BUFFER_BYTES, LOG_STALL_MS, type LogStream } from '../controller/src/util/log-output.js';
import { spawnTsChild } from './helpers/ts-child.js';
import { waitFor } from './helpers/wait.js';

class FakeStream extends EventEmitter {
  flushed = 0;
  write(): boolean { return true; }
  flushSync(): void { this.flushed++; }
  flush(cb?: () => void): void { this.flushed++; cb?.(); }
}

function fake() {
  let now = 1000;
  const s = new FakeStream();
  const out = new LogOutput(-1, 100, s as unknown as LogStream, () => now);
  return { s, out, tick: (ms: number) => { now += ms; } };
}

t.test('pending bytes and the stall: waiting since the first line handed or the last write done', async (t) => {
  const { s, out, tick } = fake();
  t.same(out.stats(), { droppedLines: 0, droppedBytes: 0, pendingBytes: 0, stalledMs: 0 }, 'nothing yet');
  out.handed('0123456789');
  tick(300);
  out.handed('01234');
  t.same(out.stats(), { droppedLines: 0, droppedBytes: 0, pendingBytes: 15, stalledMs: 300 }, 'two lines wait, since the first');
  s.emit('write', 10);
  tick(100);
  t.same(out.stats(), { droppedLines: 0, droppedBytes: 0, pendingBytes: 5, stalledMs: 100 }, 'a write done is progress');
  s.emit('write', 5);
  tick(5000);
  t.same(out.stats(), { droppedLines: 0, droppedBytes: 0, pendingBytes: 0, stalledMs: 0 }, 'nothing waits: no stall, however long since');
  t.equal(out.handed('é'), 'é', 'the line goes on unchanged');
  t.equal(out.stats().pendingBytes, 2, 'counted in bytes, not characters');
});

t.test('drops are counted, and said once the output has drained to half its bound', async (t) => {
  const { s, out, tick } = fake(); // bound: 100 bytes
  const said: [number, number, number][] = [];
  const turn = () => new Promise((r) => setImmediate(r));
  out.onDrained((l, b, ms) => said.push([l, b, ms]));
  out.handed('a'.repeat(60));
  out.handed('b'.repeat(50)); s.emit('drop', 'b'.repeat(50)); // past the bound: the stream drops it
  tick(200);
  out.handed('c'.repeat(40)); s.emit('drop', Buffer.alloc(40));
  out.handed('e'.repeat(30));
  t.same(out.stats(), { droppedLines: 2, droppedBytes: 90, pendingBytes: 90, stalledMs: 200 });
  s.emit('write', 20);
  await turn();
  t.same(said, [], 'not said while more than half the bound waits (the notice would find the buffer full)');
  tick(50);
  s.emit('write', 40);
  s.emit('write', 0);
  t.same(said, [], 'not within the write\'s own event (the stream frees the bytes after it)');
  await turn();
  t.same(said, [[2, 90, 250]], 'said once, after: lines, bytes, over how long');
  s.emit('write', 0);
  await turn();
  t.same(said.length, 1, 'once');
  out.handed('d'.repeat(70)); s.emit('drop', 'd'.repeat(70));
  s.emit('write', 0);
  await turn();
  t.same(said[1], [1, 70, 0], 'a later drop is said on its own');
  t.equal(out.stats().droppedLines, 3, 'the total stays');
});

t.test('at exit: a stalled output is not flushed (its bytes counted), a slow one is', async (t) => {
  const slow = fake();
  slow.out.handed('x'.repeat(30));
  slow.tick(LOG_STALL_MS - 1);
  slow.out.beforeExit();
  slow.s.flushSync();
  t.equal(slow.s.flushed, 1, 'waiting less than LOG_STALL_MS: pino\'s flush at exit runs');
  const stalled = fake();
  stalled.out.handed('x'.repeat(30));
  stalled.tick(LOG_STALL_MS);
  stalled.out.beforeExit();
  stalled.s.flushSync();
  let called = false;
  stalled.s.flush(() => { called = true; });
  t.equal(stalled.s.flushed, 0, 'stalled: the flush is a no-op (it would block in write(2) or retry EAGAIN forever)');
  t.ok(called, 'flush still calls back');
  t.same(stalled.out.stats(), { droppedLines: 0, droppedBytes: 30, pendingBytes: 0, stalledMs: 0 }, 'what waited is counted as dropped');
});

async function logChild(t: Tap.Test, mode: 'blocking' | 'nonblocking' | 'drain') {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const p = spawnTsChild(join(import.meta.dirname, 'helpers/log-child.ts'), [fifo, mode], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => p.kill('SIGKILL'));
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const t0 = Date.now();
  let exit: { code: number | null; signal: string | null } | null = null;
  p.once('exit', (code, signal) => { exit = { code, signal }; });
  await waitFor(() => exit !== null, 30_000, `the child to exit: ${err}`);
  const line = (what: string) => {
    const m = new RegExp(`^${what} (.*)$`, 'm').exec(err);
    return m ? JSON.parse(m[1]) : null;
  };
  return { exit: exit!, ms: Date.now() - t0, stats: line('stats'), drained: line('drained'), err };
}

for (const mode of ['blocking', 'nonblocking'] as const) {
  t.test(`a FIFO nobody reads (${mode}): the buffer stays bounded, and the exit is clean and on time`, async (t) => {
    const r = await logChild(t, mode);
    t.ok(r.stats, `stats reported: ${r.err}`);
    t.ok(r.stats.droppedLines >= 2000, `the lines past the bound dropped and counted (${r.stats.droppedLines})`);
    t.ok(r.stats.pendingBytes > 0 && r.stats.pendingBytes <= LOG_BUFFER_BYTES, `what waits is bounded (${r.stats.pendingBytes} bytes of ${r.stats.pendingBytes + r.stats.droppedBytes} handed)`);
    t.ok(r.stats.stalledMs >= LOG_STALL_MS, `stalled (${r.stats.stalledMs} ms)`);
    t.same(r.exit, { code: 0, signal: null }, `exit 0, not the kernel's SIGALRM (${r.ms} ms in all)`);
  });
}

t.test('an output that drains again: the drops are said in the log itself', async (t) => {
  const r = await logChild(t, 'drain');
  t.ok(r.stats?.droppedLines > 0, `dropped while full: ${r.err}`);
  t.ok(r.drained?.notice, 'a notice came out');
  const notice = JSON.parse(r.drained.notice);
  t.equal(notice.level, 40, 'a warning');
  t.equal(notice.dropped_lines, r.stats.droppedLines, 'with the count of lines dropped');
  t.match(notice.msg, /lines dropped over [\d.]+ s: stdout did not drain/);
  t.equal(r.drained.stats.pendingBytes, 0, 'nothing waits after');
  t.same(r.exit, { code: 0, signal: null });
});

t.test('routeConsole: a library\'s console lines become warnings in the JSON log, clipped, at most 10 a minute; restored after', async (t) => {
  const { pino } = await import('pino');
  const { routeConsole } = await import('../controller/src/util/console.js');
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  const original = console.log;
  const restore = routeConsole(log);
  try {
    console.log('reader closed', new Error('boom'));
    console.error('x'.repeat(5000));
    for (let i = 0; i < 20; i++) console.info('again', i);
  } finally {
    restore();
  }
  t.equal(console.log, original, 'the console put back');
  const warned = lines.filter((l) => l.msg === 'a library wrote to the console');
  t.equal(warned.length, 10, 'ten a minute');
  t.equal(warned[0].level, 40);
  t.equal(warned[0].console, 'log');
  t.match(warned[0].text, /^reader closed Error: boom\n {4}at /, 'formatted as the console would, the stack with it');
  t.equal((warned[1].text as string).length, 2001, 'clipped at 2,000 characters');
  t.match(lines.at(-1)?.msg, /\(12 more, not logged\)$/, 'the rest counted when it is put back');
});
