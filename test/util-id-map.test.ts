// IdMap (util/id-map.ts): a Map keyed by agent id, an array for the ids a manager hands out and a Map
// for the rest. It must answer as a Map does whatever the ids, and keep the array's cost bounded.
import t from 'tap';
import { prng } from './helpers/prng.js';
import { IdMap } from '../controller/src/util/id-map.js';

t.test('answers as a Map: get, has, set, delete, size, entries by id', async (t) => {
  const m = new IdMap<string>();
  t.equal(m.size, 0);
  t.equal(m.get(1), undefined);
  t.equal(m.firstKey(), undefined, 'empty: no first key');
  m.set(3, 'c').set(1, 'a').set(2, 'b');
  t.equal(m.size, 3);
  t.equal(m.get(2), 'b');
  t.ok(m.has(3));
  t.notOk(m.has(4));
  m.set(2, 'B');
  t.equal(m.size, 3, 'a second set of an id replaces, does not add');
  t.same([...m.entries()], [[1, 'a'], [2, 'B'], [3, 'c']], 'by id, not by insertion');
  t.same([...m.keys()], [1, 2, 3]);
  t.same([...m.values()], ['a', 'B', 'c']);
  t.same([...m], [[1, 'a'], [2, 'B'], [3, 'c']]);
  const seen: [number, string][] = [];
  m.forEach((v, id, map) => { t.equal(map, m); seen.push([id, v]); });
  t.same(seen, [[1, 'a'], [2, 'B'], [3, 'c']]);
  t.equal(m.firstKey(), 1);
  t.ok(m.delete(1));
  t.notOk(m.delete(1), 'deleted once');
  t.notOk(m.delete(99), 'never there');
  t.equal(m.size, 2);
  t.equal(m.firstKey(), 2);
  m.clear();
  t.equal(m.size, 0);
  t.same([...m], []);
  t.throws(() => m.set(1, undefined as unknown as string), TypeError, 'undefined is the empty slot: refused');
});

t.test('ids that are not array indexes are kept beside it, as a Map keeps them', async (t) => {
  const m = new IdMap<string>();
  m.set(1, 'one');
  for (const id of [1.5, -1, Number.NaN, 2 ** 40, 999_999_999]) m.set(id, `v${id}`);
  for (const id of [1.5, -1, Number.NaN, 2 ** 40, 999_999_999]) t.equal(m.get(id), `v${id}`, `get(${id})`);
  t.equal(m.size, 6);
  t.same([...m.keys()].slice(0, 1), [1], 'the array first');
  t.same([...m.keys()].slice(1), [1.5, -1, Number.NaN, 2 ** 40, 999_999_999], 'then the rest in insertion order');
  t.ok(m.arraySlots <= 1024 + 8, `the far ids did not grow the array (${m.arraySlots} slots)`);
  t.ok(m.delete(1.5));
  t.equal(m.get(1.5), undefined);
  t.equal(m.size, 5);
});

t.test('hostile ids cannot grow the array beyond four slots an entry (and the first 1,024)', async (t) => {
  const m = new IdMap<number>();
  // Each id as far as a doubling rule would allow: an array that followed them would be 2^20 long.
  let id = 1;
  for (let i = 0; i < 40; i++) {
    m.set(id, i);
    id = id * 2 + 1;
  }
  t.equal(m.size, 40);
  t.ok(m.arraySlots <= 4 * 40 + 1024, `${m.arraySlots} slots for 40 entries`);
  id = 1;
  for (let i = 0; i < 40; i++) {
    t.equal(m.get(id), i);
    id = id * 2 + 1;
  }
});

t.test('an id kept beside the array moves into it when the array reaches it', async (t) => {
  const m = new IdMap<number>();
  m.set(5000, -1); // far beyond the first 1,024 slots: beside
  t.ok(m.arraySlots < 5000);
  for (let id = 1; id <= 2000; id++) m.set(id, id);
  t.ok(m.arraySlots < 5000, `the array grows as ids come (${m.arraySlots} slots), not ahead of them`);
  t.equal(m.get(5000), -1, 'still found beside it');
  m.set(5001, 5001); // the array now grows over 5000: the id beside it moves in
  t.ok(m.arraySlots > 5000, `${m.arraySlots} slots`);
  t.equal(m.get(5000), -1, 'found in the array');
  t.equal(m.size, 2002, 'each counted once');
  m.set(5000, -2);
  t.equal(m.size, 2002, 'replaced in place, not added again');
  t.equal(m.get(5000), -2);
  t.same([...m.keys()].slice(-2), [5000, 5001], 'in id order with the rest');
  t.ok(m.delete(5000));
  t.equal(m.size, 2001);
  t.equal(m.get(5000), undefined);

  const n = new IdMap<number>(); // and when the set that grows the array is of that very id
  n.set(3000, 1);
  for (let id = 1; id <= 600; id++) n.set(id, id);
  n.set(3000, 2);
  t.equal(n.size, 601, 'moved and replaced: counted once');
  t.equal(n.get(3000), 2);
  t.same([...n.keys()].filter((k) => k === 3000), [3000], 'one entry');
});

t.test('evicting the first again and again walks the array once', async (t) => {
  const m = new IdMap<number>();
  for (let id = 1; id <= 3000; id++) m.set(id, id);
  const order: number[] = [];
  for (let k = m.firstKey(); k !== undefined; k = m.firstKey()) { order.push(k); m.delete(k); }
  t.equal(order.length, 3000);
  t.same(order.slice(0, 3), [1, 2, 3]);
  t.equal(order.at(-1), 3000);
  m.set(7, 7); // below where the walk stopped
  t.equal(m.firstKey(), 7);
});

t.test('model: a long random run answers as a Map does', async (t) => {
  const r = prng(12345); // an LCG in doubles lost its low bits past 2^53: rnd(n) stuck on one value (review helper-85)
  const rnd = (n: number) => Math.floor(r() * n);
  const m = new IdMap<number>();
  const model = new Map<number, number>();
  const pick = () => {
    const k = rnd(10);
    if (k < 6) return 1 + rnd(3000); // a manager's ids
    if (k < 8) return 1 + rnd(200_000); // a few far ones
    if (k < 9) return rnd(2) ? -rnd(5) : 0.5 + rnd(3);
    return 999_000_000 + rnd(1000);
  };
  for (let i = 0; i < 60_000; i++) {
    const id = pick();
    const op = rnd(10);
    let ok = true;
    if (op < 6) { m.set(id, i); model.set(id, i); } else if (op < 8) ok = m.delete(id) === model.delete(id);
    else ok = m.get(id) === model.get(id) && m.has(id) === model.has(id);
    if (op === 9 && rnd(10) === 0) { // evict the first, as the decoder does when it is full
      const first = m.firstKey();
      ok = first === [...m.keys()][0];
      if (first !== undefined) { m.delete(first); model.delete(first); }
    }
    if (!ok) { t.fail(`op ${op} on ${id} at ${i}: ${m.get(id)} vs ${model.get(id)}`); break; }
    if (m.size !== model.size) { t.fail(`size at ${i}: ${m.size} vs ${model.size}`); break; }
  }
  t.same(new Map(m), model, 'the same entries in the end');
  t.ok(m.arraySlots <= 4 * (m.size + 1) + 1024 + 3000, `${m.arraySlots} slots for ${m.size} entries`);
});
