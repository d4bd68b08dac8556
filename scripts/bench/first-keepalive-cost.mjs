// JS pipeline cost per agent first keepalive (update-agent-data of a never_connected agent → active: a status
// change and a keepalive, spooled and journaled), no kernel, no NATS: the memory step's ramp, where every
// keepalive is an agent's first (docs/performance.md, item 33). DIST=<tree>/dist compares another build;
// AG agents (100,000), B records a batch (200), JOURNAL=0 without the status journal. Prints µs of CPU a
// first keepalive.
import { join } from 'node:path';
import { DIST, modules, scratchDir, publisher, stateTable, drainSpool, frame, okFrame, keepaliveText, record } from './pipeline-fixture.mjs';
const { seedTable } = await import(`${DIST}/state/sources/initial-sync.js`);
const { StatusJournal } = await import(`${DIST}/state/sources/status-journal.js`);
const dir = scratchDir('fkb-');
const pub = publisher(dir, { maxEvents: 500, intervalMs: 1000 });
const journal = process.env.JOURNAL === '0' ? null : new StatusJournal(join(dir, 'journal'));
const state = stateTable();
const AG = Number(process.env.AG ?? 100000);
seedTable(state, Array.from({ length: AG }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, register_ip: 'any', connection_status: 'never_connected' })));
let evs = [];
const pipe = new modules.Pipeline(new modules.WdbDecoder(), state, { event: (e) => evs.push(e), flush: () => {
  const acc = pub.publishAgentEvents(evs);
  const st = []; evs.forEach((ev, i) => { if (ev.event_type === 'status_change' && acc[i]) st.push({ agentId: ev.agent_id, status: ev.current_status, statusCode: ev.status_code }); });
  if (st.length) journal?.recordMany(st);
  evs = [];
} });
const B = Number(process.env.B ?? 200);
const all = [];
for (let k = 0; k < AG; k++) {
  const c = 1000 + (k % 4);
  all.push(record('request', c, frame(keepaliveText(k + 1, true), true), { keyed: { key: k + 1, hash: k * 7 + 1 } }));
  all.push(record('reply', c, okFrame));
}
globalThis.gc?.();
const t0 = process.cpuUsage(); const w0 = performance.now();
for (let i = 0; i < all.length; i += B) {
  pipe.push(all.slice(i, i + B));
  pub.flushBatch();
  drainSpool(pub);
}
const c = process.cpuUsage(t0); const w = performance.now() - w0;
console.log(`${AG} first keepalives: ${((c.user + c.system) / AG).toFixed(2)} µs CPU each (${(w * 1000 / AG).toFixed(2)} µs wall); events ${pipe.events}; spooled ${pub.stats().spooled}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`);
process.exit(0);
