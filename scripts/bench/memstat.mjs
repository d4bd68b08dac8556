// Loaded into the tap with `node --import` by the memory measurement: at SIGTERM (before the tap's own
// shutdown frees anything) it prints one line to stderr, `BENCH_MEM {json}`, with the V8 heap, its
// spaces, external memory and RSS, so the figure can be split into heap, buffers and native memory.
// With `--expose-gc` it then collects twice and adds what is live (`live_heap_mb`): where the RSS
// peak moves by tens of MB from run to run with the same code, this moves by about one — the figure
// to compare two versions' memory by (docs/performance.md, item 12).
import v8 from 'node:v8';

process.once('SIGTERM', () => {
  const mb = (x) => Math.round((x / 2 ** 20) * 10) / 10;
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => [s.space_name, { used_mb: mb(s.space_used_size), size_mb: mb(s.space_size) }]));
  const live = {};
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
    live.live_heap_mb = mb(v8.getHeapStatistics().used_heap_size);
    live.live_large_object_mb = mb(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'large_object_space')?.space_used_size ?? 0);
  }
  process.stderr.write(`BENCH_MEM ${JSON.stringify({
    rss_mb: mb(m.rss), heap_total_mb: mb(m.heapTotal), heap_used_mb: mb(m.heapUsed),
    external_mb: mb(m.external), array_buffers_mb: mb(m.arrayBuffers),
    native_mb: mb(m.rss - m.heapTotal - m.external), spaces, ...live,
  })}\n`);
});
