// JS pipeline cost per agent first keepalive (update-agent-data of a never_connected agent → active: a status
// change and a keepalive, spooled and journaled), no kernel, no NATS: the memory step's ramp, where every
// keepalive is an agent's first (docs/performance.md, item 33). DIST=<tree>/dist compares another build;
// AG agents (100,000), B records a batch (200). Prints µs of CPU a first keepalive.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const D = process.env.DIST ?? new URL('../../dist', import.meta.url).pathname;
const { WdbDecoder } = await import(`${D}/decode/index.js`);
const { AgentStateTable } = await import(`${D}/state/agents.js`);
const { Pipeline } = await import(`${D}/pipeline.js`);
const { ReliablePublisher } = await import(`${D}/publish/reliable.js`);
const { seedTable } = await import(`${D}/state/sources/initial-sync.js`);
const { StatusJournal } = await import(`${D}/state/sources/status-journal.js`);
const { pino } = await import('pino');
const dir = mkdtempSync(join(tmpdir(), 'fkb-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true })); // a run that throws too
const pub = new ReliablePublisher({ servers: ['nats://127.0.0.1:1'], prefix: 'wazuh', node: 'n1', log: pino({ level: 'silent' }),
  spoolDir: join(dir, 'spool'), spoolMaxBytes: 2 ** 31, keepaliveBatch: { maxEvents: 500, intervalMs: 1000 } });
pub.delivery.up = true;
const journal = process.env.JOURNAL === '0' ? null : new StatusJournal(join(dir, 'journal'));
const state = new AgentStateTable({ managerNode: 'n1', wallClockMs: (ns) => Number(ns / 1000000n) });
const AG = Number(process.env.AG ?? 100000);
seedTable(state, Array.from({ length: AG }, (_, i) => ({ id: i + 1, name: `agent${i + 1}`, register_ip: 'any', connection_status: 'never_connected' })));
let evs = [];
const pipe = new Pipeline(new WdbDecoder(), state, { event: (e) => evs.push(e), flush: () => {
  const acc = pub.publishAgentEvents(evs);
  const st = []; evs.forEach((ev, i) => { if (ev.event_type === 'status_change' && acc[i]) st.push({ agentId: ev.agent_id, status: ev.current_status, statusCode: ev.status_code }); });
  if (st.length) journal?.recordMany(st);
  evs = [];
} });
const enc = new TextEncoder();
const frame = (s, nul) => { const b = enc.encode(s); const o = new Uint8Array(4 + b.length + (nul ? 1 : 0)); new DataView(o.buffer).setUint32(0, b.length + (nul ? 1 : 0), true); o.set(b, 4); return o; };
const data = (id) => `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","agent_ip":"10.${id >> 16 & 255}.${id >> 8 & 255}.${id & 255}","labels":"#\\"_manager_hostname\\":vm\\n#\\"_agent_ip\\":127.0.0.1\\n#\\"_node_name\\":node01\\n#\\"_wazuh_version\\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |host${id} |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`;
let ts = 1n;
const rec = (dir, conn, bytes, extra) => ({ tsNs: ts++, tgid: 1, tid: 1, comm: 'wazuh-remoted', localIno: dir === 'request' ? conn : 99, peerIno: dir === 'request' ? 99 : conn, direction: dir, syscallBytes: bytes.length, offset: 0, data: bytes, truncated: false, syscall: 'sendto', exe: 'wazuh-remoted', ...extra });
const ok = frame('ok', false);
const B = Number(process.env.B ?? 200);
const all = [];
for (let k = 0; k < AG; k++) { const c = 1000 + (k % 4); all.push(rec('request', c, frame(data(k + 1), true), { keyed: { key: k + 1, hash: k * 7 + 1 } })); all.push(rec('reply', c, ok)); }
globalThis.gc?.();
const t0 = process.cpuUsage(); const w0 = performance.now();
for (let i = 0; i < all.length; i += B) {
  pipe.push(all.slice(i, i + B));
  pub.flushBatch();
  for (const e of pub.delivery.spool.read(100000)) pub.delivery.spool.ack(e.seq);
}
const c = process.cpuUsage(t0); const w = performance.now() - w0;
console.log(`${AG} first keepalives: ${((c.user + c.system) / AG).toFixed(2)} µs CPU each (${(w * 1000 / AG).toFixed(2)} µs wall); events ${pipe.events}; spooled ${pub.stats().spooled}; rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`);
process.exit(0);
