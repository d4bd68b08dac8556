// JS pipeline cost per keepalive pair (select-agent-group + update-agent-data, each with its reply), no kernel, no NATS.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const D = new URL('../../dist', import.meta.url).pathname;
const { WdbDecoder } = await import(`${D}/decode/index.js`);
const { AgentStateTable } = await import(`${D}/state/agents.js`);
const { Pipeline } = await import(`${D}/pipeline.js`);
const { ReliablePublisher } = await import(`${D}/publish/reliable.js`);
const { pino } = await import('pino');
const withSelect = process.env.SELECT === '1'; // the kernel drops select-agent-group now
const ticks = process.env.TICK !== '0'; // the shim sends unchanged keepalives as ticks (bpf/shim/fastpath.h)
const batch = Number(process.env.KBATCH ?? 0);
// Connected and keeping up, as in production (keepalives in memory; nothing is sent: no server).
const pub = new ReliablePublisher({ servers: ['nats://127.0.0.1:1'], prefix: 'wazuh', node: 'n1', log: pino({ level: 'silent' }),
  spoolDir: mkdtempSync(join(tmpdir(), 'jsb-')), spoolMaxBytes: 2 ** 31, keepaliveBatch: batch ? { maxEvents: batch, intervalMs: 1000 } : undefined });
pub.delivery.up = true;
const state = new AgentStateTable({ managerNode: 'n1', wallClockMs: (ns) => Number(ns / 1000000n) });
let evs = [];
const pipe = new Pipeline(new WdbDecoder(), state, { event: (e) => evs.push(e), flush: () => { pub.publishAgentEvents(evs); evs = []; } });
const enc = new TextEncoder();
const frame = (s, nul) => { const b = enc.encode(s); const o = new Uint8Array(4 + b.length + (nul ? 1 : 0)); new DataView(o.buffer).setUint32(0, b.length + (nul ? 1 : 0), true); o.set(b, 4); return o; };
const data = (id) => `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","agent_ip":"10.0.${id >> 8 & 255}.${id & 255}","labels":"#\\"_manager_hostname\\":vm\\n#\\"_agent_ip\\":127.0.0.1\\n#\\"_node_name\\":node01\\n#\\"_wazuh_version\\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |vm |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`;
const AG = 1000;
let ts = 1n;
const tickRec = (conn, id) => ({ tsNs: ts++, tgid: 1, tid: 1, comm: 'wazuh-remoted', localIno: conn, peerIno: 99, direction: 'request', syscallBytes: 632, offset: 0, data: new Uint8Array(0), truncated: false, syscall: 'sendto', exe: 'wazuh-remoted', keyed: { key: id, hash: id * 7 + 1 }, tick: { replyTsNs: ts++ } });
const rec = (dir, conn, bytes) => ({ tsNs: ts++, tgid: 1, tid: 1, comm: 'wazuh-remoted', localIno: dir === 'request' ? conn : 99, peerIno: dir === 'request' ? 99 : conn, direction: dir, syscallBytes: bytes.length, offset: 0, data: bytes, truncated: false, syscall: 'sendto', exe: 'wazuh-remoted' });
const ok = frame('ok', false), grp = frame('ok [{"group":"default"}]', false);
const datas = Array.from({ length: AG }, (_, i) => frame(data(i + 1), true));
const sels = Array.from({ length: AG }, (_, i) => frame(`global select-agent-group ${i + 1}`, true));
function round(n) {
  const recs = [];
  for (let k = 0; k < n; k++) {
    const id = k % AG;
    if (withSelect) { recs.push(rec('request', 1000 + (k % 4), sels[id])); recs.push(rec('reply', 1000 + (k % 4), grp)); }
    if (ticks && k >= AG) { recs.push(tickRec(1000 + (k % 4), id + 1)); continue; }
    const r = rec('request', 1000 + (k % 4), datas[id]);
    if (ticks) r.keyed = { key: id + 1, hash: (id + 1) * 7 + 1 };
    recs.push(r); recs.push(rec('reply', 1000 + (k % 4), ok));
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
  // As if NATS took them: what the spool holds is handed out and acknowledged (the real publisher's work is not counted).
  for (const e of pub.delivery.spool.read(100000)) pub.delivery.spool.ack(e.seq);
  if (sleepMs) Atomics.wait(sleeper, 0, 0, sleepMs); // as between the tap's rounds: the CPU's caches go to others
}
const c = process.cpuUsage(t0); const w = performance.now() - w0;
console.log(`${N} keepalives: ${((c.user + c.system) / N).toFixed(2)} µs CPU each (${(w * 1000 / N).toFixed(2)} µs wall); events ${pipe.events}; spooled ${pub.stats().spooled}; select=${withSelect} ticks=${ticks} batch=${batch}`);
process.exit(0);
