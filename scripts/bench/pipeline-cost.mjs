// JS pipeline cost per keepalive pair (select-agent-group + update-agent-data, each with its reply), no kernel, no NATS.
// SELECT=1 with the select-agent-group pair (the kernel drops it now); TICK=0 without the shim's ticks (every
// keepalive whole); KBATCH=N keepalives batched N a message; N keepalives (200,000), B records a batch (200),
// SLEEP_MS between batches (as between the tap's rounds: the CPU's caches go to others); DIST=<tree>/dist.
import { modules, scratchDir, publisher, stateTable, drainSpool, frame, okFrame, keepaliveText, record, tickRecord } from './pipeline-fixture.mjs';
const withSelect = process.env.SELECT === '1';
const ticks = process.env.TICK !== '0'; // the shim sends unchanged keepalives as ticks (bpf/shim/fastpath.h)
const batch = Number(process.env.KBATCH ?? 0);
const pub = publisher(scratchDir('jsb-'), batch ? { maxEvents: batch, intervalMs: 1000 } : undefined);
let evs = [];
const pipe = new modules.Pipeline(new modules.WdbDecoder(), stateTable(), { event: (e) => evs.push(e), flush: () => { pub.publishAgentEvents(evs); evs = []; } });
const AG = 1000;
const grp = frame('ok [{"group":"default"}]', false);
const datas = Array.from({ length: AG }, (_, i) => frame(keepaliveText(i + 1), true));
const sels = Array.from({ length: AG }, (_, i) => frame(`global select-agent-group ${i + 1}`, true));
function round(n) {
  const recs = [];
  for (let k = 0; k < n; k++) {
    const id = k % AG, conn = 1000 + (k % 4);
    if (withSelect) { recs.push(record('request', conn, sels[id])); recs.push(record('reply', conn, grp)); }
    if (ticks && k >= AG) { recs.push(tickRecord(conn, id + 1)); continue; }
    recs.push(record('request', conn, datas[id], ticks ? { keyed: { key: id + 1, hash: (id + 1) * 7 + 1 } } : undefined));
    recs.push(record('reply', conn, okFrame));
  }
  return recs;
}
const N = Number(process.env.N ?? 200000), B = Number(process.env.B ?? 200);
const sleepMs = Number(process.env.SLEEP_MS ?? 0);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const all = round(N);
const t0 = process.cpuUsage(); const w0 = performance.now();
for (let i = 0; i < all.length; i += B) {
  pipe.push(all.slice(i, i + B));
  if (batch) pub.flushBatch();
  drainSpool(pub); // the real publisher's work is not counted
  if (sleepMs) Atomics.wait(sleeper, 0, 0, sleepMs);
}
const c = process.cpuUsage(t0); const w = performance.now() - w0;
console.log(`${N} keepalives: ${((c.user + c.system) / N).toFixed(2)} µs CPU each (${(w * 1000 / N).toFixed(2)} µs wall); events ${pipe.events}; spooled ${pub.stats().spooled}; select=${withSelect} ticks=${ticks} batch=${batch}`);
process.exit(0);
