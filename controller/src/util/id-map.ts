// A map keyed by agent id. A manager numbers its agents 1, 2, 3…, so the ids it hands out fill an
// array indexed by id: a slot costs 8 bytes where a Map entry costs ~35, and the array grows by half
// where a Map's table doubles and leaves the old one (3.6 MB at 100,000 entries) for a mark-compact.
// Ids the array would hold too sparsely (a hostile or odd numbering) go to a Map beside it: the array
// stays at most four slots per entry it holds (plus a first 1,024), whatever ids come.
// Iteration is by id through the array, then the rest in insertion order.

const FIRST_SLOTS = 1024;
const SLOTS_PER_ENTRY = 4;

/** How long an array of ids may grow when it holds `held` of them: four slots an entry, plus the first 1,024 (IdMap, IdCodes). */
export function arrayBound(held: number): number {
  return (held + 1) * SLOTS_PER_ENTRY + FIRST_SLOTS;
}

/** An array of ids' next length: `length` at least, else half as long again within arrayBound(held) (IdMap, IdCodes). */
export function grownLength(from: number, length: number, held: number): number {
  return Math.max(length, Math.min(Math.ceil(from * 1.5), arrayBound(held)));
}

/** The ids of `sparse` that an array grown from `from` to `to` now holds: handed to `put` and deleted from it; how many. */
export function moveIntoArray<V>(sparse: Map<number, V>, from: number, to: number, put: (id: number, v: V) => void): number {
  let moved = 0;
  for (const [id, v] of sparse) {
    if (isIndex(id) && id >= from && id < to) {
      put(id, v);
      sparse.delete(id);
      moved++;
    }
  }
  return moved;
}

/** What a map by agent id derives from its entries: the rest of ReadonlyMap (IdMap, PublishedStatuses). */
export abstract class IdEntries<V> implements ReadonlyMap<number, V> {
  abstract readonly size: number;
  abstract get(id: number): V | undefined;
  abstract has(id: number): boolean;
  abstract entries(): MapIterator<[number, V]>;

  *keys(): MapIterator<number> {
    for (const [id] of this.entries()) yield id;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[number, V]> {
    return this.entries();
  }

  forEach(fn: (v: V, id: number, map: ReadonlyMap<number, V>) => void): void {
    for (const [id, v] of this.entries()) fn(v, id, this);
  }
}

export class IdMap<V> extends IdEntries<V> {
  private dense: (V | undefined)[] = [];
  private inDense = 0;
  /** No array slot below this one is filled: firstKey() starts here (evicting the lowest id again and again stays O(1)). */
  private low = 0;
  private readonly sparse = new Map<number, V>();

  get size(): number {
    return this.inDense + this.sparse.size;
  }

  /** Slots of the array: what the ids it holds cost (at most four per entry, plus the first 1,024). */
  get arraySlots(): number {
    return this.dense.length;
  }

  get(id: number): V | undefined {
    return this.inArray(id) ? this.dense[id] : this.sparse.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, v: V): this {
    if (v === undefined) throw new TypeError('IdMap holds no undefined');
    if (!this.inArray(id)) {
      if (!isIndex(id) || id >= arrayBound(this.inDense)) {
        this.sparse.set(id, v);
        return this;
      }
      this.grow(id + 1); // which may move this very id from the Map into the array
    }
    if (this.dense[id] === undefined) this.inDense++;
    this.dense[id] = v;
    if (id < this.low) this.low = id;
    return this;
  }

  delete(id: number): boolean {
    if (this.inArray(id)) {
      if (this.dense[id] === undefined) return false;
      this.dense[id] = undefined;
      this.inDense--;
      return true;
    }
    return this.sparse.delete(id);
  }

  clear(): void {
    this.dense = [];
    this.inDense = 0;
    this.low = 0;
    this.sparse.clear();
  }

  /** The first id in iteration order (the lowest id of the array, else the oldest of the rest). */
  firstKey(): number | undefined {
    const d = this.dense;
    for (let id = this.low; id < d.length; id++) {
      if (d[id] !== undefined) {
        this.low = id;
        return id;
      }
    }
    this.low = d.length;
    for (const id of this.sparse.keys()) return id;
    return undefined;
  }

  *entries(): MapIterator<[number, V]> {
    const d = this.dense;
    for (let id = 0; id < d.length; id++) {
      const v = d[id];
      if (v !== undefined) yield [id, v];
    }
    yield* this.sparse.entries();
  }

  private inArray(id: number): boolean {
    return isIndex(id) && id < this.dense.length;
  }

  /** Slots up to `length`, every one written (a packed array: no holes for V8 to look up). Ids that
   * were in the Map and now fall in the array move into it. */
  private grow(length: number): void {
    const d = this.dense;
    const from = d.length;
    const to = grownLength(from, length, this.inDense);
    for (let id = from; id < to; id++) d.push(undefined);
    if (this.sparse.size === 0) return;
    this.inDense += moveIntoArray(this.sparse, from, to, (id, v) => { d[id] = v; });
  }
}

/** A possible index of the array (a non-negative 32-bit integer: 1.5 or NaN would be a property of it, not a slot). */
export function isIndex(id: number): boolean {
  return (id | 0) === id && id >= 0;
}
