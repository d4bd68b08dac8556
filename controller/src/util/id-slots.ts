// Columns by agent: each id gets a slot, a small index into arrays that hold one value of every id —
// typed arrays for numbers, plain arrays for strings and shared objects. A fleet's per-agent state is
// most of the tap's heap, and V8 here (no pointer compression) spends ~24 bytes of header on every
// object and 8 on every field: an object an agent cost 64–84 bytes where its columns cost 20–40,
// and 100,000 of them are what the old generation grows around (docs/performance.md, item 31).
// A released slot is handed out again before a new one, so the columns stay as long as the most ids
// held at once.

import { IdMap } from './id-map.js';

export class IdSlots {
  private readonly byId = new IdMap<number>();
  private readonly free: number[] = [];
  private used = 0;

  /** Ids that hold a slot. */
  get size(): number {
    return this.byId.size;
  }

  /** Slots handed out so far (released ones included): how long a column must be. */
  get length(): number {
    return this.used;
  }

  /** The id's slot, or undefined. */
  of(id: number): number | undefined {
    return this.byId.get(id);
  }

  /** The id's slot, given one if it had none (a released one first). The caller fills its columns. */
  add(id: number): number {
    let s = this.byId.get(id);
    if (s !== undefined) return s;
    s = this.free.pop() ?? this.used++;
    this.byId.set(id, s);
    return s;
  }

  /** The id gives its slot back (the caller clears what its columns hold there); the slot, or undefined. */
  delete(id: number): number | undefined {
    const s = this.byId.get(id);
    if (s === undefined) return undefined;
    this.byId.delete(id);
    this.free.push(s);
    return s;
  }

  /** The first id in IdMap's order (the lowest of the ids a manager hands out). */
  firstId(): number | undefined {
    return this.byId.firstKey();
  }

  /** [id, slot] of every id, in IdMap's order. */
  entries(): IterableIterator<[number, number]> {
    return this.byId.entries();
  }
}

/** `col` if it has `length` values, else a copy 1.5 times longer (at least `length`), the rest `fill`. */
export function grownTo<T extends Float64Array | Int32Array | Uint8Array | Uint16Array>(col: T, length: number, fill = 0): T {
  if (length <= col.length) return col;
  const bigger = new (col.constructor as new (n: number) => T)(Math.max(length, Math.ceil(col.length * 1.5)));
  if (fill !== 0) bigger.fill(fill, col.length);
  bigger.set(col);
  return bigger;
}
