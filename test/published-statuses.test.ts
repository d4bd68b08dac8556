// PublishedStatuses (state/published-statuses.ts): the status a tap last published of each agent, two
// bytes an agent (util/id-codes.ts), answering as the Map it replaced whatever the ids and values.
import t from 'tap';
import { prng } from './helpers/prng.js';
import { PublishedStatuses, publishedStatus } from '../controller/src/state/published-statuses.js';
import { IdCodes } from '../controller/src/util/id-codes.js';
import type { ConnectionStatus } from '../controller/src/types.js';

t.test('answers as a Map: every status and code Wazuh writes, dense and sparse ids', async (t) => {
  const m = new PublishedStatuses();
  const ref = new Map<number, ReturnType<typeof publishedStatus>>();
  const statuses: ConnectionStatus[] = ['never_connected', 'pending', 'active', 'disconnected', 'unknown'];
  let deletesDiffering = 0;
  const r = prng(7); // an LCG in doubles lost its low bits past 2^53: rnd(n) stuck on one value (review helper-85)
  const rnd = (n: number) => Math.floor(r() * n);
  for (let i = 0; i < 20_000; i++) {
    const id = rnd(10) === 0 ? 1_000_000 + rnd(999_000_000) : rnd(5000);
    if (rnd(5) === 0) {
      if (m.delete(id) !== ref.delete(id)) deletesDiffering++;
    } else {
      const p = publishedStatus(statuses[rnd(5)], rnd(4) === 0 ? rnd(1000) : rnd(6));
      m.set(id, p);
      ref.set(id, p);
    }
  }
  t.equal(deletesDiffering, 0, 'delete answers as a Map');
  t.equal(m.size, ref.size);
  for (const [id, p] of ref) if (m.get(id) !== p) t.fail(`agent ${id}: ${JSON.stringify(m.get(id))} against ${JSON.stringify(p)}`);
  t.same(new Map(m), ref, 'the same entries');
  t.equal(m.get(123_456_789_0), undefined);
  t.notOk(m.has(-1));
});

t.test('a pair without a code (a seeded code past 999) is kept as it is, and replaced either way', async (t) => {
  const m = new PublishedStatuses();
  const odd = publishedStatus('disconnected', 5000);
  m.set(4, odd);
  t.equal(m.get(4), odd);
  t.ok(m.has(4));
  t.equal(m.size, 1);
  m.set(4, publishedStatus('active', 0));
  t.same(m.get(4), { status: 'active', status_code: 0 });
  t.equal(m.size, 1, 'one entry an agent, whichever side it is on');
  m.set(4, odd);
  t.equal(m.get(4), odd);
  t.equal(m.size, 1);
  t.same([...m.keys()], [4]);
  t.ok(m.delete(4));
  t.notOk(m.delete(4));
  t.equal(m.size, 0);
});

t.test('IdCodes: a code 1–65535 an id, the array bounded by the ids it holds', async (t) => {
  const c = new IdCodes();
  t.throws(() => c.set(1, 0), RangeError);
  t.throws(() => c.set(1, 65536), RangeError);
  t.throws(() => c.set(1, 1.5), RangeError);
  c.set(5_000_000, 9); // far past the array's bound: beside it
  c.set(2, 3);
  t.equal(c.get(5_000_000), 9);
  t.equal(c.get(2), 3);
  t.equal(c.get(3), 0, 'none: 0');
  t.equal(c.size, 2);
  // Fill the ids below it: the array grows over them (by half each time), the far id stays found wherever it is.
  for (let id = 1; id <= 1_300_000; id++) c.set(id, 1 + (id % 65535));
  t.equal(c.get(5_000_000), 9);
  t.equal(c.size, 1_300_001);
  t.same([...c.entries()].slice(0, 3), [[1, 2], [2, 3], [3, 4]], 'by id');
  t.ok(c.delete(2));
  t.notOk(c.delete(2));
  t.equal(c.get(2), 0);
  c.clear();
  t.equal(c.size, 0);
  t.same([...c.entries()], []);
});

t.test('IdCodes: an iteration sees what is set meanwhile, even when it grew the array (helper-78)', async (t) => {
  const c = new IdCodes();
  c.set(1, 1);
  c.set(2_000, 7); // past the first array's bound: beside it
  const seen: [number, number][] = [];
  for (const [id, code] of c.entries()) {
    seen.push([id, code]);
    if (id === 1) {
      for (let i = 3; i < 1_900; i++) c.set(i, 5); // grows the array past 2,000, which takes that agent in (helper-79)
      c.set(3, 9);
    }
  }
  t.equal(seen.filter(([id]) => id === 2_000).length, 1, 'the id moved into the array seen once');
  t.same(seen.find(([id]) => id === 3), [3, 9], 'a code set meanwhile is the one seen');
  t.equal(seen.length, c.size);
});
