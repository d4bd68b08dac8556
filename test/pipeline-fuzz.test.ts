// Hostile values (ids at and past the edges, names with dots, wildcards, spaces, Unicode, 10 KB; odd
// addresses, versions, os text, statuses and codes) and random bytes, as requests and replies of
// every command the state reads, through the WHOLE pipeline as the agent wires it: decoder → state →
// a real ReliablePublisher whose real spool (no NATS) receives every event. Nothing throws, no guard
// is needed, and every spooled message has exactly the subject `<prefix>.agent.<3-9 digits>.status|
// keepalive` (or the batch subject) and carries only values Wazuh could have written.
import t from 'tap';
import { WdbDecoder } from '../controller/src/decode/index.js';
import { isAgentIp, isAgentName, isCleanText, isVersion } from '../controller/src/decode/values.js';
import { AgentStateTable } from '../controller/src/state/agents.js';
import { applyClientKeys, parseClientKeys } from '../controller/src/state/sources/client-keys-parse.js';
import { Pipeline } from '../controller/src/pipeline.js';
import type { AgentEvent, CaptureRecord, Direction } from '../controller/src/types.js';
import { wire } from './helpers/frames.js';
import { prng } from './helpers/prng.js';
import { offlinePublisher, spooled } from './helpers/spooled.js';

const BUDGET_MS = 7000;
const ROUND_TRIPS = 40_000;

// JSON literals, as they appear in a request: the valid ones are common, so agents exist and events flow.
const GOOD_IDS = ['1', '2', '3', '7', '42', '999', '1000', '999999999', '0'];
const BAD_IDS = ['-1', '1000000000', '99999999999', '1e21', '1.5', '-0', '"7"', 'null', '[1]', '{"id":1}', '9007199254740993', '1e400', 'true'];
const str = (xs: string[]) => xs.map((x) => JSON.stringify(x));
const TEN_KB = 'x'.repeat(10_240);
const SECRET = 'c4fe'.repeat(16);
const NAMES = [
  ...str(['web-01', 'db.02', 'a', 'n'.repeat(128), 'A.b-C_9']),
  ...str(['n'.repeat(129), 'a.b.c.*', '*', '>', 'a.*', 'a.>', 'a b', 'wéb', '💥', TEN_KB, '', 'a\u0000b', '\u202eabc', 'a\nb', 'a\tb', '\ud800', 'x\u2028y']),
  '5', 'null', '{}',
];
const IPS = [
  ...str(['any', '10.0.0.1', '192.168.56.21', '10.0.0.0/24', '::1', '2001:db8::/32', '10.0.0.0/255.255.255.0']),
  ...str(['256.1.1.1', 'evil.example', '*', '>', '10.0.0.1/33', 'fe80::1%eth0', '', TEN_KB, '10.0.0.1\n', '1.2.3.4 5.6.7.8', 'any.>']),
  '7', 'null',
];
const VERSIONS = [...str(['Wazuh v4.7.5', 'Wazuh v5.0.0']), ...str(['', 'v'.repeat(65), 'Wazuh\u001b[31m', 'Wazuh v4\u2028', 'wéb', TEN_KB.slice(0, 900)]), '4', 'null'];
const TEXTS = [...str(['Debian GNU/Linux', 'Microsoft Windows 10 专业版', 'x86_64', 'node01', 'worker.*', 'synced', 'not synced']),
  ...str(['\u0007', 'a\u202e', TEN_KB, '\udc00', 'line\nbreak']), '1', 'null'];
const STATUSES = [...str(['never_connected', 'pending', 'active', 'disconnected']), ...str(['online', 'ACTIVE', '', 'unknown', 'active.*']), '5', 'null'];
const CODES = ['0', '1', '3', '4', '5', '1000', '-1', '1.5', '"3"', 'null'];

type Rnd = () => number;
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
/** Mostly valid ids, so the state has agents to publish. */
const id = (rnd: Rnd) => (rnd() < 0.75 ? pick(rnd, GOOD_IDS) : pick(rnd, BAD_IDS));
/** An id as a word (`delete-agent 5`): sometimes a JSON literal that is not a word at all. */
const idWord = (rnd: Rnd) => { const v = id(rnd); return rnd() < 0.8 ? v.replace(/^"|"$/g, '') : v; };
const maybe = (rnd: Rnd, key: string, values: readonly string[]) => (rnd() < 0.8 ? `,"${key}":${pick(rnd, values)}` : '');

function row(rnd: Rnd, theId: string): string {
  return `{"id":${theId}${maybe(rnd, 'name', NAMES)}${maybe(rnd, 'ip', IPS)}${maybe(rnd, 'register_ip', IPS)}${maybe(rnd, 'version', VERSIONS)}`
    + `${maybe(rnd, 'node_name', TEXTS)}${maybe(rnd, 'os_name', TEXTS)}${maybe(rnd, 'connection_status', STATUSES)}${maybe(rnd, 'status_code', CODES)}`
    + `${maybe(rnd, 'sync_status', TEXTS)},"internal_key":"${SECRET}"}`;
}
const idList = (rnd: Rnd) => `[${Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => `{"id":${id(rnd)}}`).join(',')}]`;

/** One request and the reply wazuh-db would give (or a hostile one). */
function exchange(rnd: Rnd): [string, string] {
  const k = rnd();
  const sync = maybe(rnd, 'sync_status', TEXTS);
  if (k < 0.2) return [`global update-keepalive {"id":${id(rnd)},"connection_status":${pick(rnd, STATUSES)}${sync}}`, 'ok'];
  if (k < 0.45) {
    return [`global update-agent-data {"id":${id(rnd)}${maybe(rnd, 'version', VERSIONS)}${maybe(rnd, 'agent_ip', IPS)}${maybe(rnd, 'node_name', TEXTS)}`
      + `${maybe(rnd, 'connection_status', STATUSES)}${sync}${maybe(rnd, 'group_config_status', TEXTS)}${maybe(rnd, 'os_name', TEXTS)}`
      + `${maybe(rnd, 'os_platform', TEXTS)}${maybe(rnd, 'os_arch', TEXTS)}}`, 'ok'];
  }
  if (k < 0.55) return [`global update-connection-status {"id":${id(rnd)},"connection_status":${pick(rnd, STATUSES)}${sync}${maybe(rnd, 'status_code', CODES)}}`, 'ok'];
  if (k < 0.6) return [`global update-status-code {"id":${id(rnd)},"status_code":${pick(rnd, CODES)}${maybe(rnd, 'version', VERSIONS)}${sync}}`, 'ok'];
  if (k < 0.67) return [`global insert-agent {"id":${id(rnd)}${maybe(rnd, 'name', NAMES)}${maybe(rnd, 'ip', IPS)}${maybe(rnd, 'register_ip', IPS)},"internal_key":"${SECRET}"}`, 'ok'];
  if (k < 0.72) return [`global update-agent-name {"id":${id(rnd)},"name":${pick(rnd, NAMES)}}`, 'ok'];
  if (k < 0.75) return [`global delete-agent ${idWord(rnd)}`, 'ok'];
  if (k < 0.82) {
    const w = idWord(rnd);
    return [`global get-agent-info ${w}`, `ok [${row(rnd, rnd() < 0.8 ? w : id(rnd))}]`];
  }
  if (k < 0.88) return [`global disconnect-agents ${idWord(rnd)} 1795796741 synced`, `${rnd() < 0.2 ? 'due' : 'ok'} ${idList(rnd)}`];
  if (k < 0.94) return [`global get-agents-by-connection-status ${rnd() < 0.7 ? '0' : idWord(rnd)} ${pick(rnd, ['active', 'pending', 'disconnected'])} node01 -1`, `ok ${idList(rnd)}`];
  if (k < 0.98) return [`global sync-agent-info-set [${Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => row(rnd, id(rnd))).join(',')}]`, 'ok'];
  return ['global reset-agents-connection synced', 'ok'];
}

/** Every value an event carries is one Wazuh could have written; the subject has exactly its tokens. */
function checkEvent(ev: Record<string, any>, subjectId: string | null, bad: string[]): void {
  const why: string[] = [];
  if (!/^[0-9]{3,9}$/.test(ev.agent_id)) why.push('agent_id');
  if (subjectId !== null && ev.agent_id !== subjectId) why.push('agent_id is not the subject token');
  if (ev.agent_name !== null && !isAgentName(ev.agent_name)) why.push('agent_name');
  if (ev.ip_address !== null && !isAgentIp(ev.ip_address)) why.push('ip_address');
  if (ev.sync_status !== null && !isCleanText(ev.sync_status, 64)) why.push('sync_status');
  if (!/^[\x20-\x7e]{1,16}$/.test(ev.source)) why.push('source');
  const statuses = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'];
  if (ev.event_type === 'status_change') {
    if (!statuses.includes(ev.previous_status) || !statuses.includes(ev.current_status)) why.push('status');
    if (!Number.isInteger(ev.status_code) || ev.status_code < 0 || ev.status_code > 999) why.push('status_code');
  } else if (ev.event_type === 'keepalive') {
    if (!statuses.includes(ev.status)) why.push('status');
    if (ev.version !== null && !isVersion(ev.version)) why.push('version');
    if (ev.group_config_status !== null && !isCleanText(ev.group_config_status, 64)) why.push('group_config_status');
    for (const v of Object.values(ev.os ?? {})) if (!isCleanText(v, 1024)) why.push('os');
  } else why.push('event_type');
  if (why.length) bad.push(`${why.join(', ')}: ${JSON.stringify(ev).slice(0, 300)}`);
}

for (const batch of [false, true]) {
  t.test(`hostile values through decoder, state and a real spooled publisher${batch ? ' (keepalive batches)' : ''}`, async (t) => {
    const rnd = prng(batch ? 0xba7c4 : 0x5ab07);
    const { pub, dir } = offlinePublisher(t, batch ? { keepaliveBatch: { maxEvents: 50, intervalMs: 60_000 } } : {});
    const decoder = new WdbDecoder({ reassembler: { maxStreams: 256 }, pairer: { maxQueue: 16, maxConnections: 256 } });
    const state = new AgentStateTable({ managerNode: 'node-1', wallClockMs: (ns) => 1.7e12 + Number(ns / 1_000_000n), maxAgents: 50_000 });
    // client.keys with hostile lines first, as at start.
    const keys = parseClientKeys([
      `001 web-01 any ${'ab'.repeat(32)}`, `002 a.* any ${'ab'.repeat(32)}`, `003 ok evil.example ${'ab'.repeat(32)}`,
      `1000000000 big any ${'ab'.repeat(32)}`, `004 wéb any ${'ab'.repeat(32)}`, `005 ${'n'.repeat(129)} any ${'ab'.repeat(32)}`,
    ].join('\n'));
    t.equal(applyClientKeys(state, keys), 1, 'only the valid client.keys line is fed');

    let events = 0;
    let refused = 0;
    let pending: AgentEvent[] = [];
    const pipeline = new Pipeline(decoder, state, {
      event: (ev) => { pending.push(ev); },
      flush: () => {
        const evs = pending;
        pending = [];
        events += evs.length;
        if (evs.length) refused += pub.publishAgentEvents(evs).filter((ok) => !ok).length;
      },
      error: (e) => t.fail(`the guard was needed: ${(e as Error).stack}`),
    });

    let ts = 0n;
    const rec = (conn: number, direction: Direction, data: Uint8Array, extra: Partial<CaptureRecord> = {}): CaptureRecord => ({
      tsNs: (ts += 1000n), tgid: conn, tid: conn, comm: direction === 'request' ? pick(rnd, ['wazuh-remoted', 'wazuh-monitord', 'wazuh-authd', 'python3', 'odd\u001b[2Jcomm']) : 'wazuh-db',
      localIno: direction === 'request' ? conn : 900_000, peerIno: direction === 'request' ? 900_000 : conn,
      direction, syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto', ...extra,
    });

    let throws = 0;
    let trips = 0;
    const t0 = Date.now();
    while (trips < ROUND_TRIPS && Date.now() - t0 < BUDGET_MS) {
      const records: CaptureRecord[] = [];
      for (let i = 0; i < 16; i++, trips++) {
        const conn = 1 + Math.floor(rnd() * 64);
        if (rnd() < 0.05) {
          // Random bytes on a connection of their own (a hostile client, a corrupt stream).
          const noise = new Uint8Array(Math.floor(rnd() * 80));
          for (let j = 0; j < noise.length; j++) noise[j] = Math.floor(rnd() * 256);
          if (noise.length >= 4 && rnd() < 0.5) new DataView(noise.buffer).setUint32(0, noise.length - 4, true);
          records.push(rec(1000 + conn, rnd() < 0.5 ? 'request' : 'reply', noise));
          continue;
        }
        const [q, a] = exchange(rnd);
        const f = wire(q, rnd() < 0.5);
        if (rnd() < 0.2 && f.length > 1) {
          // 5.x partial sends: one frame in two writes.
          const cut = 1 + Math.floor(rnd() * (f.length - 1));
          records.push(rec(conn, 'request', f.subarray(0, cut)), rec(conn, 'request', f.subarray(cut)));
        } else records.push(rec(conn, 'request', f));
        records.push(rec(conn, 'reply', wire(rnd() < 0.95 ? a : pick(rnd, ['err Invalid JSON syntax', 'ign', 'what', 'due']))));
      }
      try {
        pipeline.push(records);
      } catch (e) {
        throws++;
        if (throws < 3) t.fail(`push threw: ${(e as Error).stack}`);
      }
    }
    await pub.close(100);

    t.equal(throws, 0, `${trips} round trips in ${Date.now() - t0} ms, nothing thrown`);
    t.equal(pipeline.errors, 0, 'no record needed the guard');
    t.equal(pub.unpublishable, 0, 'no event needed the publisher\'s guard');
    t.equal(refused, 0, 'every event spooled (the spool is large enough)');
    const sum = decoder.summary();
    t.ok(sum.invalidRequests > 1000 && sum.malformed >= sum.invalidRequests, `invalid requests ${sum.invalidRequests}, malformed ${sum.malformed}`);
    t.ok(sum.droppedFields > 100, `descriptive fields dropped: ${sum.droppedFields}`);
    t.ok(state.stats().statusEvents > 1000, `status events: ${state.stats().statusEvents}, keepalives: ${state.stats().keepaliveEvents}`);

    const got = spooled(dir);
    const bad: string[] = [];
    let carried = 0;
    const subjects = new Set<string>();
    for (const m of got) {
      subjects.add(m.subject.replace(/\.[0-9]{3,9}\./, '.<id>.'));
      const body = JSON.parse(Buffer.from(m.body).toString());
      if (m.subject === 'wazuh.agent.batch.keepalive' && batch) {
        if (m.headers['Wazuh-Event-Type'] !== 'keepalive_batch' || body.count !== body.events.length) bad.push(`batch: ${JSON.stringify(m.headers)}`);
        for (const ev of body.events) {
          carried++;
          checkEvent(ev, null, bad);
          if (ev.event_type !== 'keepalive') bad.push(`a ${ev.event_type} in a keepalive batch`);
        }
        continue;
      }
      carried++;
      const tokens = m.subject.split('.');
      const ok = tokens.length === 4 && tokens[0] === 'wazuh' && tokens[1] === 'agent' && /^[0-9]{3,9}$/.test(tokens[2])
        && (tokens[3] === 'status' || tokens[3] === 'keepalive') && !/[*> \s]/.test(m.subject);
      if (!ok) bad.push(`subject ${JSON.stringify(m.subject)}`);
      if (tokens[3] !== (body.event_type === 'status_change' ? 'status' : 'keepalive')) bad.push(`subject ${m.subject} for a ${body.event_type}`);
      if (m.headers['Wazuh-Agent-Id'] !== tokens[2]) bad.push(`header ${m.headers['Wazuh-Agent-Id']} on ${m.subject}`);
      checkEvent(body, tokens[2], bad);
    }
    t.same(bad.slice(0, 10), [], `every spooled subject and event is valid (${bad.length} bad)`);
    t.equal(carried, events, `every event is in the spool: ${events}`);
    t.same([...subjects].sort(), batch
      ? ['wazuh.agent.<id>.status', 'wazuh.agent.batch.keepalive']
      : ['wazuh.agent.<id>.keepalive', 'wazuh.agent.<id>.status'], 'only these subjects');
    t.ok(got.some((m) => m.subject === 'wazuh.agent.999999999.status'), 'the last valid id is published');
    t.notMatch(got.map((m) => Buffer.from(m.body).toString()).join('\n'), SECRET, 'no key reached the spool');
  });
}
