// alerts.json line → alert event (SPEC §4), the line splitter and the sink: pure, no file.
import t from 'tap';
import { alertEvent, jsonDepth, parseAlertTimestamp, severityOf, DEFAULT_THRESHOLDS, MAX_ALERT_DEPTH } from '../controller/src/alerts/alert-event.js';
import { LineSplitter } from '../controller/src/alerts/line-splitter.js';
import { AlertSink } from '../controller/src/alerts/alert-sink.js';
import { alertSubject } from '../controller/src/publish/subjects.js';
import { alertLine, alertObject } from './helpers/alerts.js';

const rules = { managerNode: 'node01', thresholds: DEFAULT_THRESHOLDS, minLevel: 0 };
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);

t.test('the fields of SPEC §4 from a real-shaped alert', async (t) => {
  const line = alertLine({ n: 1, level: 10, srcip: '192.168.1.50', dstuser: 'admin', srcuser: 'bob' });
  const r = alertEvent(line, rules, NOW);
  if (!('event' in r)) throw new Error('no event');
  const ev = r.event;
  t.match(ev, {
    event_type: 'alert', rule_id: 5502, level: 10, severity: 'high', description: 'Login session opened.',
    agent_id: '001', agent_name: 'web-server-01', source_ip: '192.168.1.50', user: 'admin',
    manager_node: 'node01', groups: ['pam', 'syslog', 'authentication_success'],
  });
  t.equal(ev.timestamp, Date.UTC(2024, 4, 28, 12, 35, 0) / 1000, 'timestamp: unix seconds of the alert\'s own time');
  t.equal(ev.time, '2024-05-28T12:35:00.123Z', 'time: RFC 3339 UTC with milliseconds');
  t.same(ev.alert, JSON.parse(line), 'the original alert, whole');
  t.match(ev.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

t.test('event_id: the same line gives the same id; another line or node another', async (t) => {
  const a = alertLine({ n: 1 });
  const id = (line: string, node = 'node01') => {
    const r = alertEvent(line, { ...rules, managerNode: node }, NOW);
    return 'event' in r ? r.event.event_id : '';
  };
  t.equal(id(a), id(a), 'stable across reads');
  t.not(id(a), id(alertLine({ n: 2 })), 'another alert');
  t.not(id(a), id(a, 'node02'), 'another manager node');
  // Same alert id, another content (a reinstalled manager restarts its ids): apart.
  const o = alertObject({ n: 1 });
  t.not(id(a), id(JSON.stringify({ ...o, full_log: 'other' })), 'same alert id, other content');
});

t.test('user falls back to srcuser; absent fields are null; a rule id that is not digits stays text', async (t) => {
  const r1 = alertEvent(alertLine({ n: 1, srcuser: 'bob' }), rules, NOW);
  t.equal('event' in r1 && r1.event.user, 'bob');
  const r2 = alertEvent(JSON.stringify({ rule: { id: 'abc-1', level: 3 } }), rules, NOW);
  if (!('event' in r2)) throw new Error('no event');
  t.match(r2.event, { rule_id: 'abc-1', level: 3, severity: 'low', agent_id: null, agent_name: null, source_ip: null, user: null, description: null, groups: [] });
  t.equal(r2.event.time, new Date(NOW).toISOString(), 'no timestamp in the alert: the read time');
});

t.test('hostile shapes are skipped or neutralised, never thrown', async (t) => {
  t.same(alertEvent('{"rule":', rules, NOW), { skip: 'invalid_json' });
  t.same(alertEvent('not json at all', rules, NOW), { skip: 'invalid_json' });
  t.same(alertEvent('[1,2]', rules, NOW), { skip: 'not_an_object' });
  t.same(alertEvent('42', rules, NOW), { skip: 'not_an_object' });
  t.same(alertEvent('null', rules, NOW), { skip: 'not_an_object' });
  const weird = alertEvent(JSON.stringify({
    rule: { level: 99, id: { x: 1 }, groups: ['a', 7, null, 'b'], description: ['x'] },
    agent: 'nope', data: { srcip: { a: 1 }, dstuser: 5 }, timestamp: 'yesterday',
  }), rules, NOW);
  if (!('event' in weird)) throw new Error('no event');
  t.match(weird.event, { level: null, severity: 'low', rule_id: null, groups: ['a', 'b'], description: null, agent_id: null, source_ip: null, user: '5' });
  t.equal(alertSubject('wazuh', weird.event.severity), 'wazuh.security.alerts.low');
  t.throws(() => alertSubject('wazuh', 'x.>' as never), /refusing severity/);
  // Nesting JSON.parse reads but JSON.stringify (publishing) cannot: refused before parsing.
  const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
  t.same(alertEvent(deep, rules, NOW), { skip: 'too_deep' });
  const ok = `${'{"a":'.repeat(MAX_ALERT_DEPTH)}1${'}'.repeat(MAX_ALERT_DEPTH)}`;
  const r = alertEvent(ok, rules, NOW);
  t.ok('event' in r && JSON.stringify(r.event).length > 0, 'the deepest allowed alert publishes');
  t.equal(jsonDepth('{"x":"[[[{{{\\"]]]","y":[1,[2]]}'), 3, 'brackets inside strings (and escaped quotes) do not count');
});

t.test('severity thresholds and alerts_min_level', async (t) => {
  t.same([0, 6, 7, 9, 10, 12, 13, 15].map((l) => severityOf(l, DEFAULT_THRESHOLDS)),
    ['low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical']);
  t.same([2, 3, 5, 8].map((l) => severityOf(l, { medium: 3, high: 5, critical: 8 })), ['low', 'medium', 'high', 'critical']);
  const min = { ...rules, minLevel: 7 };
  t.same(alertEvent(alertLine({ n: 1, level: 6 }), min, NOW), { skip: 'below_min_level' });
  t.ok('event' in alertEvent(alertLine({ n: 1, level: 7 }), min, NOW));
  t.same(alertEvent(JSON.stringify({ rule: {} }), min, NOW), { skip: 'below_min_level' }, 'no level is below any minimum');
  t.equal(parseAlertTimestamp('2024-05-28T14:35:00.123+0200'), Date.UTC(2024, 4, 28, 12, 35, 0, 123), 'local time with its offset');
  t.equal(parseAlertTimestamp(12), null);
});

t.test('line splitter: lines cut anywhere, offsets, long lines, CR', async (t) => {
  const s = new LineSplitter(16);
  const text = Buffer.from('abc\ndef\r\n\nghij');
  const out = [];
  for (let i = 0; i < text.length; i += 3) out.push(...s.push(text.subarray(i, i + 3), i));
  t.same(out, [{ text: 'abc', end: 4 }, { text: 'def', end: 9 }], 'empty lines dropped, CR removed, offsets after the newline');
  t.equal(s.pending, 4, 'the unfinished line waits');
  t.same(s.push(Buffer.from('\n'), 14), [{ text: 'ghij', end: 15 }]);

  const long = new LineSplitter(8);
  const got = [];
  got.push(...long.push(Buffer.from('12345'), 0));
  got.push(...long.push(Buffer.from('67890123'), 5)); // over the bound while unfinished
  t.equal(long.pending, 0, 'a long line is not buffered');
  got.push(...long.push(Buffer.from('456\nok\n0123456789\nfin\n'), 13));
  t.same(got.map((l) => l.text), ['ok', 'fin']);
  t.equal(long.tooLong, 2, 'each long line counted once');

  const rest = new LineSplitter(100);
  rest.push(Buffer.from('{"a":1}'), 0);
  t.same(rest.finish(7), { text: '{"a":1}', end: 7 }, 'the unterminated tail of a finished file');
  t.equal(rest.finish(7), null);
  t.throws(() => new LineSplitter(0));
});

t.test('sink: counts skips, stops at the first event the spool refuses', async (t) => {
  const lines = [
    { text: alertLine({ n: 1 }), end: 10 },
    { text: 'garbage', end: 20 },
    { text: alertLine({ n: 2, level: 3 }), end: 30 },
    { text: alertLine({ n: 3 }), end: 40 },
    { text: '[]', end: 50 },
  ];
  const spooled: string[] = [];
  let room = Infinity;
  const sink = new AlertSink(() => ({ ...rules, minLevel: 5 }), (evs) => evs.map((e) => {
    if (room <= 0) return false;
    room--;
    spooled.push(e.event_id);
    return true;
  }));
  t.equal(sink.take(lines), 5, 'every line taken');
  t.same(sink.counters, { published: 2, invalid_json: 1, not_an_object: 1, too_deep: 0, below_min_level: 1, unpublishable: 0, nul_repaired: 0 });
  room = 1;
  const again = new AlertSink(() => rules, (evs) => evs.map(() => room-- > 0));
  t.equal(again.take(lines), 2, 'the spool took one alert: the next alert\'s line is the first to read again');
  t.same(again.counters, { published: 1, invalid_json: 1, not_an_object: 0, too_deep: 0, below_min_level: 0, unpublishable: 0, nul_repaired: 0 }, 'skips after the refusal are not counted yet');

  // A publisher that throws on one event: that one is skipped and counted, the others spooled.
  const kept: number[] = [];
  const throwing = new AlertSink(() => rules, (evs) => evs.map((e) => {
    if (evs.some((x) => x.alert.id === alertObject({ n: 3 }).id)) throw new Error('boom');
    kept.push(Number(e.alert.rule && (e.alert as any).rule.firedtimes));
    return true;
  }));
  t.equal(throwing.take(lines), 5, 'every line taken');
  t.same(kept, [1, 2], 'the other alerts spooled');
  t.equal(throwing.counters.unpublishable, 1);
});

t.test('the summary fields are safe to print: control characters, separators and bidi controls escaped; `alert` keeps the exact text', async (t) => {
  const o = alertObject({ n: 1 }) as Record<string, any>;
  const desc = 'Logon failure for user \u001b[2J\u001b[Hroot\u001b]0;owned\u0007\r2024-05-28T12:35:00.123Z  fake line\n\u009b2J \u202eevil\u2028';
  o.rule.description = desc;
  o.rule.id = 'x\u001b[31m';
  o.agent.name = 'web\u202e10';
  o.data = { srcip: '1.2.3.4\r\n', dstuser: 'ad\u0000min' };
  const r = alertEvent(JSON.stringify(o), rules, NOW);
  if (!('event' in r)) throw new Error('no event');
  const ev = r.event;
  t.equal(ev.description, 'Logon failure for user \\u001b[2J\\u001b[Hroot\\u001b]0;owned\\u0007\\u000d2024-05-28T12:35:00.123Z  fake line\\u000a\\u009b2J \\u202eevil\\u2028');
  t.equal(ev.rule_id, 'x\\u001b[31m');
  t.equal(ev.agent_name, 'web\\u202e10');
  t.equal(ev.source_ip, '1.2.3.4\\u000d\\u000a');
  t.equal(ev.user, 'ad\\u0000min');
  t.equal((ev.alert as any).rule.description, desc, 'the alert as analysisd wrote it, exact');
  const plain = alertEvent(alertLine({ n: 1 }), rules, NOW);
  t.match(plain, { event: { description: 'Login session opened.', agent_name: 'web-server-01' } }, 'ordinary text unchanged');
});

t.test('NUL bytes before an alert on its line (a power loss on the manager, then analysisd appends after them): the alert is read, counted', async (t) => {
  // ext4/XFS leave the end of alerts.json as NULs after a crash; the next alert lands right after them.
  // JSON.parse refused the whole line: the alert was counted as invalid_json and never published.
  const line = alertLine({ n: 7, level: 12 });
  for (const [what, text] of [
    ['NULs, then the alert', '\0'.repeat(4096) + line],
    ['the broken end of an earlier write, NULs, then the alert', `{"timestamp":"2024-05-28T12:3${'\0'.repeat(100)}${line}`],
  ] as const) {
    const r = alertEvent(text, rules, NOW);
    t.ok('event' in r, `${what}: an event`);
    if (!('event' in r)) continue;
    t.same(r.event.alert, JSON.parse(line), `${what}: the alert after the NULs`);
    t.equal(r.repaired, true, `${what}: marked as repaired`);
    const clean = alertEvent(line, rules, NOW);
    t.equal(r.event.event_id, 'event' in clean ? clean.event.event_id : '', `${what}: the id of the alert's own text`);
  }
  t.notOk('repaired' in alertEvent(line, rules, NOW), 'an ordinary line is not marked');
  t.match(alertEvent('\0\0\0', rules, NOW), { skip: 'invalid_json' }, 'NULs alone: not an alert');
  const sink = new AlertSink(() => rules, (evs) => evs.map(() => true));
  t.equal(sink.take([{ text: '\0'.repeat(10) + line, end: 10 }, { text: line, end: 20 }]), 2);
  t.match(sink.counters, { published: 2, invalid_json: 0, nul_repaired: 1 }, 'published and counted');
});
