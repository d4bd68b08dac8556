// Loaded into a tap with `node --import` (BENCH_NODE_ARGS="--import $PWD/scripts/bench/memtrace.mjs": the
// path absolute, the tap runs in its own home): every
// 500 ms, one line of where its memory is — RSS, V8's heap (total/used), external and array buffers, the
// native rest, and each heap space (size/used) — to build/bench/memtrace-<pid>.txt. Between two
// mark-compacts the old space and the array buffers should grow only by what is really kept; a steady
// slope there is garbage that was promoted or allocated old (docs/performance.md, item 11).
import v8 from 'node:v8';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(new URL('../..', import.meta.url).pathname, 'build/bench');
mkdirSync(dir, { recursive: true });
const out = join(dir, `memtrace-${process.pid}.txt`);
writeFileSync(out, '# s rss heap(total/used) external array_buffers native {space: size/used} — MB\n');
const mb = (b) => (b / 2 ** 20).toFixed(0); // MB of 2^20 bytes, as every MB of the bench
const t0 = Date.now();
setInterval(() => {
  const m = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => `${s.space_name.replace(/_space$/, '')} ${mb(s.space_size)}/${mb(s.space_used_size)}`).join(', ');
  appendFileSync(out, `${((Date.now() - t0) / 1000).toFixed(1)} rss ${mb(m.rss)} heap ${mb(m.heapTotal)}/${mb(m.heapUsed)} `
    + `ext ${mb(m.external)} ab ${mb(m.arrayBuffers)} native ${mb(m.rss - m.heapTotal - m.external)} {${spaces}}\n`);
}, 500).unref();
