// One shared copy per key, bounded: the pool behind shared os objects, status pairs, tick templates
// and batch headers.
import t from 'tap';
import { SharedPool } from '../controller/src/util/intern.js';

t.test('the first copy of a key is the one every later lookup gets; make runs once per key', async (t) => {
  const pool = new SharedPool<{ v: string }>();
  let made = 0;
  const a = pool.of('x', () => ({ v: `x${++made}` }));
  const b = pool.of('x', () => ({ v: `x${++made}` }));
  t.equal(a, b, 'the same object');
  t.equal(made, 1);
  t.not(pool.of('y', () => ({ v: 'y' })), a, 'another key, another object');
});

t.test('bounded: past max keys it starts again, holding at most max', async (t) => {
  const pool = new SharedPool<number>(4);
  const first = pool.of('k0', () => 0);
  for (let i = 1; i < 100; i++) pool.of(`k${i}`, () => i);
  t.equal(first, 0);
  t.equal(pool.of('k99', () => -2), 99, 'the latest keys are still there');
  t.equal(pool.of('k0', () => -1), -1, 'k0 was forgotten when the pool started again');
});
