// decode/kept.ts: what the decoder keeps of each agent's last update-agent-data for its ticks — the
// request a tick stands for is made again from a template shared by the agents whose kept fields are
// the same. A template found for other values (a key that two sets of values share) would give an agent
// another's version, os or statuses at its every keepalive: random requests, each made again exactly.
import t from 'tap';
import { KeptParses } from '../controller/src/decode/kept.js';
import { parseRequest } from '../controller/src/decode/wdb-request.js';
import { prng } from './helpers/prng.js';

const KEPT = ['connection_status', 'agent_ip', 'sync_status', 'group_config_status', 'version', 'node_name', 'os_name', 'os_version', 'os_platform', 'os_arch'] as const;

t.test('every kept request is made again with its own values, whatever values other agents share', async (t) => {
  const rnd = prng(1234);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  // Two neighbouring fields drawn from one pool of few values, the others fixed: templates are shared
  // and near-misses meet — 'x','y' against 'xy','', '' against absent, separators a key could be made
  // of, values the decoder drops (a control character). With each field's own values (review
  // helper-87), a key that ran two fields together was never caught.
  const pool = ['x', 'y', 'xy', '', undefined, ',', 'Wazuh v4.7.5', 'a\u0000b', '\u0001', 'Windows \u00e9'];
  const texts = ['sync_status', 'group_config_status', 'version', 'node_name', 'os_name', 'os_version', 'os_platform', 'os_arch'];
  const kept = new KeptParses(100_000);
  const want = new Map<number, unknown>();
  for (let id = 1; id <= 3000; id++) {
    const o: Record<string, unknown> = { id, agent_ip: rnd() < 0.1 ? undefined : `10.0.${id >> 8}.${id & 255}` };
    o.connection_status = pick(['active', 'pending', undefined]);
    for (const k of texts) o[k] = 'base';
    const at = Math.floor(rnd() * (texts.length - 1));
    o[texts[at]] = pick(pool);
    o[texts[at + 1]] = pick(pool);
    const r = parseRequest(`global update-agent-data ${JSON.stringify(o)}`);
    if (r.cmd !== 'update-agent-data') continue; // a value the decoder refuses outright: nothing kept
    kept.keep(id, id * 31, r);
    const data: Record<string, unknown> = { id };
    for (const k of KEPT) if (r.data[k] !== undefined) data[k] = r.data[k];
    want.set(id, r.dropped ? { cmd: 'update-agent-data', data, dropped: r.dropped } : { cmd: 'update-agent-data', data });
  }
  t.ok(want.size > 2500, `${want.size} requests kept`);
  let wrong = 0;
  for (const [id, w] of want) {
    const got = kept.request(id, id * 31);
    if (JSON.stringify(got) !== JSON.stringify(w)) {
      if (wrong++ < 3) t.same(got, w, `agent ${id}`);
    }
  }
  t.equal(wrong, 0, 'each made again as it was kept');
  t.equal(kept.request(1, 0), undefined, 'another payload hash: no request');
});

t.test('the os_arch and the fields dropped are apart in a template\'s key (review helper-88)', async (t) => {
  // Run together, 'xos_' + [version] and 'x' + [os_version] were one key.
  const kept = new KeptParses(10);
  const a = parseRequest(`global update-agent-data ${JSON.stringify({ id: 1, os_arch: 'xos_', version: 'v\u0007' })}`);
  const b = parseRequest(`global update-agent-data ${JSON.stringify({ id: 2, os_arch: 'x', os_version: 'v\u0007' })}`);
  t.match(a, { dropped: ['version'] });
  t.match(b, { dropped: ['os_version'] });
  kept.keep(1, 11, a);
  kept.keep(2, 22, b);
  t.match(kept.request(1, 11), { data: { os_arch: 'xos_' }, dropped: ['version'] });
  t.match(kept.request(2, 22), { data: { os_arch: 'x' }, dropped: ['os_version'] });
});
