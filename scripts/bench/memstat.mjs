// Loaded into the tap with `node --import` by the memory measurement: at SIGTERM (before the tap's own
// shutdown frees anything) it prints one line to stderr, `BENCH_MEM {json}`, with the V8 heap, its
// spaces, external memory and RSS, so the figure can be split into heap, buffers and native memory.
import v8 from 'node:v8';

process.once('SIGTERM', () => {
  const mb = (x) => Math.round((x / 2 ** 20) * 10) / 10;
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map((s) => [s.space_name, { used_mb: mb(s.space_used_size), size_mb: mb(s.space_size) }]));
  process.stderr.write(`BENCH_MEM ${JSON.stringify({
    rss_mb: mb(m.rss), heap_total_mb: mb(m.heapTotal), heap_used_mb: mb(m.heapUsed),
    external_mb: mb(m.external), array_buffers_mb: mb(m.arrayBuffers),
    native_mb: mb(m.rss - m.heapTotal - m.external), spaces,
  })}\n`);
});
