// What pipeline-cost.mjs and first-keepalive-cost.mjs share: the controller's pipeline from a built tree
// (DIST, default this tree's dist/) with a publisher that is connected to no server but keeps up (what
// the spool holds is handed out and acknowledged, as if NATS took it), and the records the shim would
// hand it — Wazuh 4.7.5's keepalive frames and their replies. No kernel, no NATS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DIST = process.env.DIST ?? new URL('../../dist', import.meta.url).pathname;
const { WdbDecoder } = await import(`${DIST}/decode/index.js`);
const { AgentStateTable } = await import(`${DIST}/state/agents.js`);
const { Pipeline } = await import(`${DIST}/pipeline.js`);
const { ReliablePublisher } = await import(`${DIST}/publish/reliable.js`);
const { pino } = await import('pino');
export const modules = { WdbDecoder, AgentStateTable, Pipeline, ReliablePublisher };

/** A scratch directory removed when the process exits (a run that throws too). */
export function scratchDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A publisher as in production, connected and keeping up; `keepaliveBatch` as the config's. */
export function publisher(dir, keepaliveBatch) {
  const pub = new ReliablePublisher({ servers: ['nats://127.0.0.1:1'], prefix: 'wazuh', node: 'n1', log: pino({ level: 'silent' }),
    spoolDir: join(dir, 'spool'), spoolMaxBytes: 2 ** 31, keepaliveBatch });
  pub.delivery.up = true;
  return pub;
}

export function stateTable() {
  return new AgentStateTable({ managerNode: 'n1', wallClockMs: (ns) => Number(ns / 1000000n) });
}

/** What NATS would take: every spooled entry handed out and acknowledged. */
export function drainSpool(pub) {
  for (const e of pub.delivery.spool.read(100000)) pub.delivery.spool.ack(e.seq);
}

const enc = new TextEncoder();
/** A wazuh-db frame: a 4-byte little-endian length, the text, and the NUL requests end with. */
export function frame(text, nul) {
  const b = enc.encode(text);
  const o = new Uint8Array(4 + b.length + (nul ? 1 : 0));
  new DataView(o.buffer).setUint32(0, b.length + (nul ? 1 : 0), true);
  o.set(b, 4);
  return o;
}
export const okFrame = frame('ok', false);

/**
 * remoted's update-agent-data for agent `id` (4.7.5's columns). `unique`: each agent its own address
 * (10.a.b.c, not 10.0.b.c) and host in os_uname — 100,000 agents, each a row of its own.
 */
export function keepaliveText(id, unique = false) {
  const ip = unique ? `10.${id >> 16 & 255}.${id >> 8 & 255}.${id & 255}` : `10.0.${id >> 8 & 255}.${id & 255}`;
  const host = unique ? `host${id}` : 'vm';
  return `global update-agent-data {"id":${id},"version":"Wazuh v4.7.5","config_sum":"ab73af41699f13fdd81903b5f23d8d00","merged_sum":"4a8724b20dee0124ff9656783c490c4e","manager_host":"vm","node_name":"node01","agent_ip":"${ip}","labels":"#\\"_manager_hostname\\":vm\\n#\\"_agent_ip\\":127.0.0.1\\n#\\"_node_name\\":node01\\n#\\"_wazuh_version\\":Wazuh v4.7.5","connection_status":"active","sync_status":"synced","group_config_status":"synced","os_name":"Debian GNU/Linux","os_version":"12","os_major":"12","os_codename":"bookworm","os_platform":"debian","os_uname":"Linux |${host} |6.18.44-fc-v782 |#1 SMP PREEMPT_DYNAMIC @0 |x86_64","os_arch":"x86_64"}`;
}

let ts = 1n;
/** A captured sendto by remoted on connection `conn` (its socket's inode; wazuh-db's is 99). */
export function record(direction, conn, bytes, extra) {
  return { tsNs: ts++, tgid: 1, tid: 1, comm: 'wazuh-remoted', localIno: direction === 'request' ? conn : 99, peerIno: direction === 'request' ? 99 : conn,
    direction, syscallBytes: bytes.length, offset: 0, data: bytes, truncated: false, syscall: 'sendto', exe: 'wazuh-remoted', ...extra };
}

/** The shim's tick: an update-agent-data equal to the agent's last, sent as its key and hash with its reply's time. */
export function tickRecord(conn, id) {
  const r = record('request', conn, new Uint8Array(0), { syscallBytes: 632, keyed: { key: id, hash: id * 7 + 1 } });
  r.tick = { replyTsNs: ts++ }; // after the request's own time
  return r;
}
