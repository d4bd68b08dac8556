// One copy of a string that thousands of agents share (a version, an os name, a node, a status):
// every parse makes a new string, and an agent record or a kept parse held its own — ~1 KB an agent
// of the same few words. Bounded: past INTERN_MAX distinct strings it starts again (a hostile
// stream of distinct values costs lookups, never memory).
const pool = new Map<string, string>();
const INTERN_MAX = 16_384;
/** Longer strings are rarely shared: kept as they are. */
const INTERN_LEN = 256;

export function intern(s: string): string;
export function intern(s: string | undefined): string | undefined;
export function intern(s: string | undefined): string | undefined {
  if (s === undefined || s.length > INTERN_LEN) return s;
  const c = pool.get(s);
  if (c !== undefined) return c;
  if (pool.size >= INTERN_MAX) pool.clear();
  const o = own(s);
  pool.set(o, o);
  return o;
}

/**
 * A copy of `s` that holds nothing else alive. V8 makes a long substring (13 characters or more) a
 * view into its parent — JSON.parse's values point into the request's text — so keeping one value
 * of a request kept all of its ~900 bytes: 61 MB for 100,000 agents' addresses and hosts.
 */
export function own(s: string): string {
  return s.length < 13 ? s : (` ${s}`).slice(1);
}

/**
 * One shared copy of a value object per key (a string of its values): the os of thousands of agents,
 * the (status, code) pairs, the templates of kept keepalives, the headers of batch messages. Bounded
 * like intern(): past `max` keys it starts again, so a hostile stream of distinct values costs
 * lookups, never memory. `make` is a closure: for lookups off the per-keepalive path.
 */
export class SharedPool<T> {
  private readonly pool = new Map<string, T>();

  constructor(private readonly max = 4096) {}

  /** The copy kept for `key`; `make()`'s when there is none yet. */
  of(key: string, make: () => T): T {
    let v = this.pool.get(key);
    if (v === undefined) {
      if (this.pool.size >= this.max) this.pool.clear();
      this.pool.set(key, (v = make()));
    }
    return v;
  }
}
