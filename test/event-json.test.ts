// The keepalive's hand-built JSON is JSON.stringify's, byte for byte, whatever the values.
import t from 'tap';
import { keepaliveJson, keepaliveJsonAt } from '../controller/src/publish/event-json.js';
import type { KeepaliveEvent } from '../controller/src/types.js';
import { prng } from './helpers/prng.js';

const base: KeepaliveEvent = {
  event_id: 'a019c233-b9ac-89ff-81b6-9b4ba630f34e', event_type: 'keepalive', agent_id: '001', agent_name: 'web-01',
  ip_address: '10.0.0.1', status: 'active', version: 'Wazuh v4.7.5',
  os: { name: 'Debian GNU/Linux', version: '12', platform: 'debian', arch: 'x86_64' },
  group_config_status: 'synced', sync_status: 'synced', timestamp: 1796203366, time: '2026-12-02T09:22:46.485Z',
  manager_node: 'node01', source: 'remoted',
};

t.test('equal to JSON.stringify: the usual event, nulls, partial os, and hostile strings', async (t) => {
  t.equal(keepaliveJson(base), JSON.stringify(base));
  const nulls: KeepaliveEvent = { ...base, agent_name: null, ip_address: null, version: null, os: null, group_config_status: null, sync_status: null };
  t.equal(keepaliveJson(nulls), JSON.stringify(nulls));
  t.equal(keepaliveJson({ ...base, os: { name: 'Windows', arch: 'x86_64' } }), JSON.stringify({ ...base, os: { name: 'Windows', arch: 'x86_64' } }));
  t.equal(keepaliveJson({ ...base, os: {} }), JSON.stringify({ ...base, os: {} }));
  // The quotes around the event's own strings are in the pieces beside them: every null/non-null pair
  // of name and address, and an id, an agent id and a time that need escaping.
  for (const agent_name of [null, 'web-01', 'a "quoted" \\ name\u2028']) {
    for (const ip_address of [null, '10.0.0.7', 'any\nhost']) {
      for (const odd of [{}, { event_id: 'id "x"\\', agent_id: '\ud800', time: 'é\u0000' }]) {
        const ev: KeepaliveEvent = { ...base, agent_name, ip_address, ...odd };
        const pieces: string[] = [];
        const len = keepaliveJsonAt(ev, pieces, 0);
        // (described by kind: a raw U+2028 in a test's name breaks the TAP stream)
        const kind = (v: string | null) => (v === null ? 'null' : /^[\x20-\x7e]*$/.test(v) && !/["\\]/.test(v) ? 'plain' : 'escaped');
        t.equal(pieces.join(''), JSON.stringify(ev), `name ${kind(agent_name)}, address ${kind(ip_address)}, ${Object.keys(odd).length ? 'escaped' : 'plain'} id and time`);
        t.equal(len, JSON.stringify(ev).length, 'and its length');
      }
    }
  }
  const rnd = prng(42);
  const nasty = ['"', '\\', '\n', '\u2028', '\u0000', 'é', '😀', '\ud800', '</script>', '${x}'];
  for (let i = 0; i < 2000; i++) {
    const s = () => Array.from({ length: Math.floor(rnd() * 12) }, () => (rnd() < 0.5 ? nasty[Math.floor(rnd() * nasty.length)] : String.fromCharCode(32 + Math.floor(rnd() * 95)))).join('');
    const ev: KeepaliveEvent = { ...base, agent_name: s(), ip_address: rnd() < 0.3 ? null : s(), version: s(), os: rnd() < 0.2 ? null : { name: s(), version: s() },
      group_config_status: s(), sync_status: s(), manager_node: s(), source: s(), time: s(), timestamp: Math.floor(rnd() * 2e9) };
    if (keepaliveJson(ev) !== JSON.stringify(ev)) {
      t.fail(`differs for ${JSON.stringify(ev)}`);
      return;
    }
    const pieces: string[] = [];
    if (keepaliveJsonAt(ev, pieces, 0) !== JSON.stringify(ev).length || pieces.join('') !== JSON.stringify(ev)) {
      t.fail(`pieces or their length differ for ${JSON.stringify(ev)}`);
      return;
    }
  }
  t.pass('2,000 random events: identical, and so are the pieces a batch joins and their length');
});

t.test('remembered runs of text follow the values, not the objects: shared os, changed fields, many values', async (t) => {
  const os = { name: 'Debian GNU/Linux', version: '12', platform: 'debian', arch: 'x86_64' };
  const evs: KeepaliveEvent[] = [
    { ...base, os }, { ...base, os, version: 'Wazuh v4.8.0' }, { ...base, os, group_config_status: 'not synced' },
    { ...base, os, sync_status: null }, { ...base, os, source: 'wazuh-db' }, { ...base, os, manager_node: 'node02' },
    { ...base, os: { ...os, version: '13' } }, { ...base, os }, // the same values again after others
  ];
  for (const ev of evs) t.equal(keepaliveJson(ev), JSON.stringify(ev));
  // More distinct values than are remembered: still exact, whatever was forgotten.
  for (let i = 0; i < 10_000; i++) {
    const ev = { ...base, version: `v${i % 5000}`, os: { name: `os${i}` }, sync_status: `s${i % 7}` };
    if (keepaliveJson(ev) !== JSON.stringify(ev)) {
      t.fail(`differs at ${i}`);
      return;
    }
  }
  t.pass('10,000 events of varied values: identical');
});

t.test('a status change\'s JSON is JSON.stringify\'s, byte for byte, for the events the state makes', async (t) => {
  const { statusChangeEvent } = await import('../controller/src/state/events.js');
  const { statusJson } = await import('../controller/src/publish/event-json.js');
  const rnd = prng(7);
  const nasty = ['"', '\\', '\n', '\u2028', '\u0000', 'é', '😀', '\ud800', '\udc00x', '</script>', '${x}', '\u007f'];
  const s = () => Array.from({ length: Math.floor(rnd() * 12) }, () => (rnd() < 0.5 ? nasty[Math.floor(rnd() * nasty.length)] : String.fromCharCode(32 + Math.floor(rnd() * 95)))).join('');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const statuses = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'] as const;
  const reasons = ['keepalive', 'agent_startup', 'agent_shutdown', 'timeout', 'manager_reset', 'registered', 'removed', 'initial_sync'] as const;
  for (let i = 0; i < 3000; i++) {
    const odd = i % 3 === 0;
    const ev = statusChangeEvent(odd ? s() : 'node01', {
      id: Math.floor(rnd() * 1e9), name: rnd() < 0.2 ? null : odd ? s() : `agent-${i}`, ip: rnd() < 0.3 ? null : odd ? s() : `10.0.${i % 256}.1`,
      status: pick(statuses), status_code: 0, version: null, os: null, last_keepalive: null, node: null, groups: [], sync_status: null, group_config_status: null,
    } as never, {
      previous: pick(statuses), current: pick(statuses), code: pick([0, 1, 3, 5, 2 ** 31, -1, 0.5]), reason: odd ? s() as never : pick(reasons), codeOnly: rnd() < 0.1,
    }, { tsNs: BigInt(Math.floor(rnd() * 1e15)), ms: pick([0, 1796203366485, -1, NaN, 8.64e15, 1e20, 1796203366485.7]), source: odd ? s() : pick(['remoted', 'monitord', 'wazuh-db']), sync: rnd() < 0.3 ? null : odd ? s() : 'synced' });
    const want = JSON.stringify(ev);
    if (statusJson(ev) !== want) {
      t.equal(statusJson(ev), want, `event ${i}`);
      return;
    }
  }
  t.pass('3,000 events: the same text');
  // The shape the state makes, key for key: a key added to statusChangeEvent fails here first.
  const one = statusChangeEvent('n', { id: 1, name: 'a', ip: null } as never, { previous: 'pending', current: 'active', code: 0, reason: 'keepalive' }, { tsNs: 1n, ms: 0, source: 'remoted', sync: null });
  t.equal(statusJson(one), JSON.stringify(one));
  t.same(Object.keys(one), ['event_id', 'event_type', 'agent_id', 'agent_name', 'previous_status', 'current_status', 'status_code', 'reason', 'ip_address', 'timestamp', 'time', 'manager_node', 'source', 'sync_status']);
});
