// IdSlots (util/id-slots.ts): each id a slot in columns, a released slot handed out again before a new
// one, so the columns stay as long as the most ids held at once; grownTo: a column grown keeps its values.
import t from 'tap';
import { grownTo, IdSlots } from '../controller/src/util/id-slots.js';

t.test('a slot an id, the same slot while it holds it, released slots first', async (t) => {
  const s = new IdSlots();
  t.equal(s.of(7), undefined);
  t.equal(s.add(7), 0);
  t.equal(s.add(3), 1);
  t.equal(s.add(7), 0, 'an id that holds a slot keeps it');
  t.equal(s.size, 2);
  t.equal(s.length, 2);
  t.equal(s.delete(7), 0, 'delete gives the slot back');
  t.equal(s.delete(7), undefined, 'twice: nothing');
  t.equal(s.of(7), undefined);
  t.equal(s.add(1_000_000_000), 0, 'the released slot, whatever the id (a sparse one too)');
  t.equal(s.add(5), 2, 'then a new one');
  t.equal(s.length, 3, 'columns as long as the most ids held at once');
  t.same([...s.entries()], [[3, 1], [5, 2], [1_000_000_000, 0]], 'by id (dense ids first), as IdMap');
  t.equal(s.firstId(), 3);
});

t.test('churn: ids come and go, the columns do not grow past the most held at once', async (t) => {
  const s = new IdSlots();
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) s.add(round * 100 + i);
    for (let i = 0; i < 100; i++) s.delete(round * 100 + i);
  }
  t.equal(s.size, 0);
  t.equal(s.length, 100);
});

t.test('grownTo: the same column when long enough, else a longer copy with the values and the fill', async (t) => {
  const c = new Float64Array([1, 2, 3]);
  t.equal(grownTo(c, 3), c, 'long enough: the same');
  const g = grownTo(c, 4, Number.NaN);
  t.ok(g instanceof Float64Array);
  t.ok(g.length >= 4);
  t.same([...g.subarray(0, 3)], [1, 2, 3], 'values kept');
  t.ok(g.subarray(3).every(Number.isNaN), 'the rest filled');
  const i = grownTo(new Int32Array(2), 100);
  t.ok(i instanceof Int32Array && i.length === 100, 'at least what is asked');
  t.ok(i.every((v) => v === 0));
});
