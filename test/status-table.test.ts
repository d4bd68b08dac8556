// The `status` table (SPEC §8: a person reads it): what it says must be what the tap knows. The
// replies rendered here have the shape of a real `status --json` (cli-control.test.ts checks that
// shape on a running tap); each case sets what a running tap could not be made to show on demand
// (the shim's queue overflowing, a kernel's scratch map failing).
import t from 'tap';
import { renderStatus } from '../controller/src/commands/control.js';
import { LOSS_COUNTERS } from '../controller/src/capture/loss.js';
import { UNSAFE_CLASS } from '../controller/src/util/printable.js';

const base = () => ({
  attached: true, hooks: ['sendto'], capture_interval_ms: 1, targets: [{ pid: 10, name: 'wazuh-db' }], identity: null, home_moved: null,
  counters: { captured: 33342, lost: 0, truncated: 0, filtered: 25006, content_dropped: 10, queue_drops: 0, scratch_failures: 0, inflight_full: 0 },
  decoder: { frames: 33342, malformed: 0 }, errors: { records: 0, unpublishable: 0 },
  nats: {
    connected: true, servers: ['nats://127.0.0.1:4222'], server: 'nats://127.0.0.1:4222' as string | null, mode: 'core', published: 70, acknowledged: 65, shed: 0, failed: 0, rejected: 0,
    failures: 0, resent: 0, last_failure: null as { reason: string; age_s: number } | null, in_flight: 0, stream_ready: null as boolean | null,
    denied: 0, last_denied: null, latency_ms: null,
  },
  spool: { records: 0, oldest_age_s: null, bytes: 33569, bound_bytes: 536870912, disk_full: false, write_errors: 0, read_errors: 0, refused_files: 0, lost: 0, owed_statuses: 0 },
  agents: { active: 3 }, alerts: { enabled: false }, log: null, metrics: null, node: 'n1', home: '/var/ossec', prefix: 'wazuh', uptime_s: 60,
});
const row = (table: string, name: string) => new RegExp(`^${name}\\s+(.*)$`, 'm').exec(table)?.[1];

t.test('capture: lost is every counter the loss check counts, each named — not the kernel\'s ring alone', async (t) => {
  const st = base();
  t.equal(row(renderStatus(st), 'capture'), 'captured 33342, lost 0, other sockets 25006, non-global 10');
  Object.assign(st.counters, { lost: 0, queue_drops: 5000, scratch_failures: 7, inflight_full: 3 });
  t.equal(row(renderStatus(st), 'capture'), 'captured 33342, LOST 5010 (queue_drops 5000, scratch_failures 7, inflight_full 3), other sockets 25006, non-global 10',
    'the shim\'s and the kernel\'s drops, as the review\'s probe set them');
  Object.assign(st.counters, { lost: 2, queue_drops: 0, scratch_failures: 0, inflight_full: 0, truncated: 1 });
  t.equal(row(renderStatus(st), 'capture'), 'captured 33342, LOST 3 (lost 2, truncated 1), other sockets 25006, non-global 10');
  // The same set as the loss check's (agent/parts/capture.ts): a counter added there is counted here.
  const all = Object.fromEntries(Object.keys(LOSS_COUNTERS).map((k) => [k, 1]));
  Object.assign(st.counters, all);
  t.match(row(renderStatus(st), 'capture'), `LOST ${Object.keys(LOSS_COUNTERS).length} (`);
});

t.test('targets while detached: not followed, not "none running"', async (t) => {
  const st = { ...base(), attached: false, hooks: [], targets: null };
  t.equal(row(renderStatus(st), 'targets'), 'not followed while detached (no hook in the kernel)');
  t.equal(row(renderStatus({ ...base(), targets: [] }), 'targets'), 'none running', 'attached, and none runs: said so');
});

t.test('latency: a figure never measured reads "no sample yet", not 0.00 ms', async (t) => {
  const st = base();
  st.nats.latency_ms = { capture_to_publish: { count: 0, p50: 0, p99: 0, max: 0 }, publish_to_ack: { count: 2, p50: 40, p99: 40, max: 40 } } as never;
  t.equal(row(renderStatus(st), 'latency'), 'syscall → NATS no sample yet, publish → ack p50 40 p99 40 ms');
  st.nats.latency_ms = { capture_to_publish: { count: 9, p50: 0.5, p99: 1.25, max: 3 }, publish_to_ack: { count: 9, p50: 12, p99: 30, max: 40 } } as never;
  t.equal(row(renderStatus(st), 'latency'), 'syscall → NATS p50 0.50 p99 1.25 ms, publish → ack p50 12 p99 30 ms');
  st.nats.latency_ms = { capture_to_publish: { count: 0, p50: 0, p99: 0, max: 0 }, publish_to_ack: { count: 0, p50: 0, p99: 0, max: 0 } } as never;
  t.equal(row(renderStatus(st), 'latency'), undefined, 'no row before any message');
});

t.test('nats: acknowledged beside published (publishes, resends included)', async (t) => {
  t.equal(row(renderStatus(base()), 'nats'), 'connected to nats://127.0.0.1:4222 (configured: nats://127.0.0.1:4222), published 70, acknowledged 65, shed (spool full) 0');
});

t.test('nats: a JetStream outage with the connection up — the server in use, publish failures, resends, the last failure\'s reason and age, in flight, the stream (review F4)', async (t) => {
  const st = base();
  Object.assign(st.nats, {
    servers: ['nats://a:4222', 'nats://b:4222', 'nats://c:4222'], server: 'nats://b:4222', mode: 'jetstream', published: 922, acknowledged: 702, shed: 3, failed: 3,
    failures: 220, resent: 200, last_failure: { reason: 'PubAck timeout', age_s: 0.4 }, in_flight: 20, stream_ready: true,
  });
  t.equal(row(renderStatus(st), 'nats'), 'connected to nats://b:4222 (configured: nats://a:4222, nats://b:4222, nats://c:4222), published 922, acknowledged 702, shed (spool full) 3, '
    + 'publish failures 220 (resent 200), the last 0.4 s ago: PubAck timeout, in flight 20');
  Object.assign(st.nats, { stream_ready: false });
  t.match(row(renderStatus(st), 'nats'), /, JetStream stream NOT READY \(being looked up or made: nothing is published\), publish failures 220/);
  Object.assign(st.nats, { connected: false, server: null });
  t.match(row(renderStatus(st), 'nats'), /^DISCONNECTED \(configured: nats:\/\/a:4222, nats:\/\/b:4222, nats:\/\/c:4222\), published 922/);
  // A tap from before `shed` (its JSON said `failed` only) reads the same.
  const old = base();
  delete (old.nats as Partial<typeof old.nats>).shed;
  old.nats.failed = 5;
  t.match(row(renderStatus(old), 'nats'), /shed \(spool full\) 5$/);
});

t.test('nats: agents_kv with a bucket that takes no puts — delivery goes on, the agents waiting for the bucket are said', async (t) => {
  const st = base();
  Object.assign(st.nats, {
    mode: 'jetstream', failures: 12, resent: 0, last_failure: { reason: 'KV put: no responders: the KV bucket KV_wazuh_agents has no leader (an election, a server down) or is gone', age_s: 0.2 },
    stream_ready: true, kv: { pending: 4, saved: 3, failures: 12 },
  });
  t.match(row(renderStatus(st), 'nats'), /the last 0\.2 s ago: KV put: no responders: .*, KV bucket: 4 agents' latest status waiting for it \(3 saved for a restart, 12 puts failed\)$/);
  Object.assign(st.nats, { kv: { pending: 0, saved: 0, failures: 12 } });
  t.notMatch(row(renderStatus(st), 'nats'), /KV bucket: \d/, 'nothing waiting: not said');
});

t.test('spool: the age of the oldest event waiting, once it is a second or more', async (t) => {
  const st = base();
  t.equal(row(renderStatus(st), 'spool'), '0 events, 33569 bytes of 536870912');
  Object.assign(st.spool, { records: 10, oldest_age_s: 0.2 });
  t.equal(row(renderStatus(st), 'spool'), '10 events, 33569 bytes of 536870912', 'under a second: the normal flow');
  Object.assign(st.spool, { records: 10, oldest_age_s: 42.5 });
  t.equal(row(renderStatus(st), 'spool'), '10 events, 33569 bytes of 536870912, the oldest waiting 42.5 s');
});

t.test('metrics: where Prometheus scrapes, or that the port could not be had', async (t) => {
  t.equal(row(renderStatus(base()), 'metrics'), undefined, 'no endpoint (<metrics>no</metrics>): no row');
  const on = { ...base(), metrics: { address: '127.0.0.1:9464', listening: true, error: null, failures: 0, retry_s: 5 } };
  t.equal(row(renderStatus(on), 'metrics'), 'http://127.0.0.1:9464/metrics');
  const off = { ...base(), metrics: { address: '127.0.0.1:9464', listening: false, error: 'listen EADDRINUSE: address already in use 127.0.0.1:9464', failures: 3, retry_s: 5 } };
  t.equal(row(renderStatus(off), 'metrics'),
    'UNAVAILABLE on 127.0.0.1:9464: listen EADDRINUSE: address already in use 127.0.0.1:9464 (tried again every 5 s; what answers there now is not this tap)');
});

// Review rr-poison-files F12: a renamed spool directory's name (the wazuh group may write spool_dir's
// parent) was printed raw. Every value the table quotes that is not the tap's own text — paths, file
// names, URLs, reasons quoted from errors, daemons' names, agents' statuses — is shown with visible escapes.
t.test('every quoted value is printable: ESC, BEL, CR, C1, bidi controls in any of them are shown escaped', async (t) => {
  const bad = 'q\u001b]0;PWNED\u0007\r\u001b[2K\u009b2J\u202e\u2028\n';
  const shown = 'q\\u001b]0;PWNED\\u0007\\u000d\\u001b[2K\\u009b2J\\u202e\\u2028\\u000a';
  const st = base() as Record<string, any>;
  Object.assign(st, {
    node: `n${bad}`, home: `/h${bad}`, prefix: `p${bad}`, restart_needed: [`r${bad}`],
    home_moved: { since: 0, what: `w${bad}`, found: `f${bad}`, followed: `o${bad}` },
    identity: { wdb_dir: `/d${bad}`, wdb_socket: `s${bad}`, exe_dirs: [{ path: `/b${bad}`, id: `i${bad}` }], home: `/h${bad}` },
    targets: [{ pid: 1, name: `t${bad}` }], agents: { [`a${bad}`]: 1 },
    alerts: { enabled: true, following: true, file: `/al${bad}`, refusing: `why${bad}` },
    metrics: { address: `m${bad}`, listening: false, error: `e${bad}`, retry_s: 5 },
  });
  Object.assign(st.nats, { server: `nats://s${bad}`, servers: [`nats://c${bad}`], failures: 1, last_failure: { reason: `l${bad}`, age_s: 1 }, denied: 1, last_denied: `d${bad}` });
  Object.assign(st.spool, { replaced: { was: '1:2', noted: `x${bad}`, found_at: `/var/x${bad}` } });
  const out = renderStatus(st);
  t.notMatch(out.replace(/\n/g, ''), new RegExp(UNSAFE_CLASS), 'no raw control, line separator or bidi control: only the rows\' own line ends');
  t.equal(out.split('\n').length, new Set(out.split('\n').map((l) => l.split(' ')[0])).size, 'no row broken in two, no row faked');
  t.match(row(out, 'spool'), `NOT THE LAST RUN'S: the spool and statuses it held are at /var/x${shown} (see the log)`);
  for (const [r, v] of [['node', `n${shown}`], ['node', `home /h${shown}`], ['nats', `connected to nats://s${shown}`], ['nats', `the last 1 s ago: l${shown}`],
    ['nats', `(last: d${shown})`], ['targets', `t${shown} 1`], ['agents', `a${shown} 1`], ['alerts', `/al${shown} (refused: why${shown})`],
    ['metrics', `m${shown}: e${shown}`], ['socket', `/d${shown} entry wdb, now s${shown}`], ['daemons', `/b${shown} (i${shown})`],
    ['config', `r${shown}`], ['home', `f${shown}`]] as const) {
    t.ok(row(out, r)?.includes(v), `${r}: ${v}`);
  }
});
