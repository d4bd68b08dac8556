// `status`, `attach`, `detach`: talk to the running agent over its control socket.
import { sendControl } from '../control/client.js';
import { checkControlSocketPath, ERROR_EXIT, type ControlCommand } from '../control/protocol.js';
import { LOG_STALL_MS } from '../util/log-output.js';
import { DEFAULT_ROUND_MS } from '../capture/round.js';
import { lossOf } from '../capture/loss.js';
import { escapeUnsafe, safeJson } from '../util/printable.js';

export const DEFAULT_CONTROL_SOCKET = '/run/wazuh-nats-tap.sock';

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}

/**
 * The short table `status` prints (SPEC §8: readable, not a JSON dump). Much of what it quotes is not
 * the tap's own text: paths and file names (a renamed spool directory's name is chosen by whoever may
 * write spool_dir's parent: the wazuh group in `<home>/var`), server URLs, reasons quoted from errors,
 * daemons' names. Each row is made printable as a whole, at the one place below, so that no value,
 * present or added later, puts a raw ESC, BEL, CR… on root's terminal (util/printable.ts).
 */
export function renderStatus(st: Record<string, any>): string {
  const rows: [string, string][] = [];
  const targets = st.targets as { pid: number; name: string }[] | null | undefined;
  const c = st.counters ?? {};
  const agents = Object.entries(st.agents ?? {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`);
  // capture_interval, when set: how long flowing records wait for the tap to take them.
  const every = st.capture_interval_ms && st.capture_interval_ms !== DEFAULT_ROUND_MS ? `, records taken every ${st.capture_interval_ms} ms` : '';
  const state = st.attached ? `attached (${(st.hooks ?? []).join(', ')})${every}`
    : st.detaching ? 'detaching: the hooks are being removed (the kernel waits for its grace periods)' : 'detached: no hook in the kernel';
  rows.push(['state', `${state}, up ${duration(st.uptime_s ?? 0)}`]);
  rows.push(['node', `${st.node}  home ${st.home}  prefix ${st.prefix}`]);
  if (st.restart_needed?.length) {
    rows.push(['config', `RESTART NEEDED: the configuration file changed ${st.restart_needed.join(', ')}; the running values stay until a restart`]);
  }
  const moved = st.home_moved;
  if (moved) {
    rows.push(['home', `MOVED: ${st.home} leads to another Wazuh home since ${new Date(moved.since).toISOString()} (${moved.what} is ${moved.found}, `
      + `was ${moved.followed}); nothing of it is followed: restart the tap with the new container's pid`]);
  }
  const id = st.identity;
  if (id) {
    // What the kernel matches: the socket entry of this directory, the daemons of these directories (SPEC §2).
    rows.push(['socket', id.wdb_dir ? `${id.wdb_dir} entry wdb, now ${id.wdb_socket ?? 'absent (wazuh-db not running)'}` : `${id.home}/queue/db not found: nothing is captured until it exists`]);
    rows.push(['daemons', (id.exe_dirs ?? []).map((d: { path: string; id: string }) => `${d.path} (${d.id})`).join(', ') || `no ${id.home}/bin yet`]);
  }
  // Detached, no daemon is followed or looked for (null): not "none running", which they may well be.
  rows.push(['targets', !targets ? 'not followed while detached (no hook in the kernel)'
    : targets.length ? targets.map((p) => `${p.name} ${p.pid}`).join(', ') : 'none running']);
  // published: every publish, resends included; acknowledged: what NATS confirmed (as in /metrics); shed:
  // refused for a full spool (`failed` in an older tap's JSON). Then, when there were any, the publishes
  // that failed and were retried, the last one's reason and age: a JetStream outage shows there, while
  // the connection itself stays up.
  const n = st.nats ?? {};
  const lf = n.last_failure;
  rows.push(['nats', `${n.connected ? `connected to ${n.server ?? (n.servers ?? []).join(', ')}` : 'DISCONNECTED'}`
    + `${n.server !== undefined || !n.connected ? ` (configured: ${(n.servers ?? []).join(', ')})` : ''}, published ${n.published ?? 0}`
    + `${n.acknowledged !== undefined ? `, acknowledged ${n.acknowledged}` : ''}, shed (spool full) ${n.shed ?? n.failed ?? 0}`
    + (n.stream_ready === false ? ', JetStream stream NOT READY (being looked up or made: nothing is published)' : '')
    + (n.failures ? `, publish failures ${n.failures} (resent ${n.resent ?? 0}), the last ${lf?.age_s ?? '?'} s ago: ${lf?.reason ?? 'unknown'}` : '')
    + (n.failures && n.in_flight ? `, in flight ${n.in_flight}` : '')
    + (n.kv?.pending ? `, KV bucket: ${n.kv.pending} agents' latest status waiting for it (${n.kv.saved ?? 0} saved for a restart${n.kv.failures ? `, ${n.kv.failures} puts failed` : ''})` : '')
    + (n.rejected ? `, rejected (larger than max_payload) ${n.rejected}` : '')
    + (n.denied ? `, DENIED by the user's permissions ${n.denied} (last: ${n.last_denied})` : '')]);
  const lat = st.nats?.latency_ms;
  const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
  // A figure never measured is not shown as 0.00 ms: `no sample yet`.
  const times = (x: { count?: number; p50: number; p99: number } | undefined) => (x?.count ? `p50 ${ms(x.p50)} p99 ${ms(x.p99)} ms` : 'no sample yet');
  if (lat?.capture_to_publish?.count || lat?.publish_to_ack?.count) {
    // The tap's own share (syscall → NATS), then NATS' (publish → acknowledgement), recent messages.
    rows.push(['latency', `syscall → NATS ${times(lat.capture_to_publish)}, publish → ack ${times(lat.publish_to_ack)}`]);
  }
  const sp = st.spool;
  if (sp) {
    rows.push(['spool', `${sp.records ?? 0} events, ${sp.bytes ?? 0} bytes`
      + (sp.bound_bytes !== undefined ? ` of ${sp.bound_bytes}` : '')
      // Under a second is the normal flow; more, NATS is away or slow to acknowledge.
      + (sp.records && sp.oldest_age_s >= 1 ? `, the oldest waiting ${sp.oldest_age_s} s` : '')
      + (sp.disk_full ? ', DISK FULL: new events refused (counted) until there is room' : '')
      + (sp.write_errors ? `, write errors ${sp.write_errors}` : '')
      + (sp.read_errors ? `, read errors ${sp.read_errors}` : '')
      + (sp.refused_files ? `, files refused (not the tap's) ${sp.refused_files}` : '')
      + (sp.lost ? `, LOST with a segment file gone ${sp.lost}` : '')
      + (sp.owed_statuses ? `, ${sp.owed_statuses} agents' latest status change waiting for room` : '')
      + (sp.dir_moved ? ', MOVED: spool_dir leads elsewhere now; move the directory back before the next start' : '')
      + (sp.replaced ? `, NOT THE LAST RUN'S: the spool and statuses it held are ${sp.replaced.found_at ? `at ${sp.replaced.found_at}` : 'gone'} (see the log)` : '')]);
  }
  rows.push(['agents', agents.length ? agents.join(', ') : 'none known']);
  const al = st.alerts;
  if (al) {
    rows.push(['alerts', !al.enabled ? 'not followed (<alerts>no</alerts>)'
      : `${al.following ? 'following' : 'waiting for'} ${al.file}${al.refusing ? ` (refused: ${al.refusing})` : ''}, published ${al.published ?? 0}, `
        + `not alerts ${(al.invalid_json ?? 0) + (al.not_an_object ?? 0) + (al.too_deep ?? 0)}, `
        + `too long ${al.too_long ?? 0}, below min level ${al.below_min_level ?? 0}, rotations ${al.rotations ?? 0}`
        + `${al.untrusted_file ? `, files refused (not Wazuh's) ${al.untrusted_file}` : ''}`]);
  }
  // Lost: every counter the loss check counts (capture/loss.ts), each named — not the kernel's ring alone.
  const loss = lossOf(c);
  rows.push(['capture', `captured ${c.captured ?? 0}, ${loss.total ? `LOST ${loss.total} (${loss.by.map(([k, n]) => `${k} ${n}`).join(', ')})` : 'lost 0'}, `
    + `other sockets ${c.filtered ?? 0}, non-global ${c.content_dropped ?? 0}`]);
  const errors = (st.errors?.records ?? 0) + (st.errors?.unpublishable ?? 0);
  rows.push(['decoder', `frames ${st.decoder?.frames ?? 0}, malformed ${st.decoder?.malformed ?? 0}`
    + (errors ? `, ERRORS: ${st.errors.records ?? 0} records, ${st.errors.unpublishable ?? 0} events dropped (see the log)` : '')]);
  const m = st.metrics;
  if (m) {
    rows.push(['metrics', m.listening ? `http://${m.address}/metrics`
      : `UNAVAILABLE on ${m.address}: ${m.error ?? 'not listening yet'} (tried again every ${m.retry_s ?? 5} s; what answers there now is not this tap)`]);
  }
  const lg = st.log;
  const stalled = lg?.stalled_ms >= LOG_STALL_MS;
  if (lg && (lg.dropped_lines || stalled)) {
    // Only when something is wrong: the log's stdout (journald, a pipe) stopped draining.
    rows.push(['log', (stalled ? `STALLED: stdout has not drained for ${(lg.stalled_ms / 1000).toFixed(0)} s, ${lg.pending_bytes} bytes waiting` : 'stdout drains')
      + (lg.dropped_lines ? `, ${lg.dropped_lines} lines dropped` : '')]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${escapeUnsafe(v)}`).join('\n');
}

/** Run one control command; prints the answer; returns the exit code. */
export async function controlCommand(path: string, cmd: ControlCommand, json: boolean): Promise<number> {
  checkControlSocketPath(path); // a usage error: exit 2
  const r = await sendControl(path, cmd);
  if (!r.ok) {
    process.stderr.write(`wazuh-nats-tap ${cmd}: ${escapeUnsafe(String(r.error))}\n`);
    // Refused for want of privileges (not root) or of kernel support (attach): exit 3; else 1.
    return (r.code && ERROR_EXIT[r.code]) || 1;
  }
  const { ok: _ok, ...st } = r;
  // JSON escapes C0 only: C1 (U+009B is CSI on some terminals), DEL, U+2028/2029 and bidi controls
  // are written `\uXXXX` too (safeJson), the same value for any JSON parser.
  process.stdout.write(json ? `${safeJson(JSON.stringify(st))}\n` : `${renderStatus(st)}\n`);
  return 0;
}
