// A map from agent id to a small code (1 to 65,535): two bytes an id a manager hands out, where an IdMap
// slot is eight (a pointer, on this node without pointer compression). For a value of a few hundred
// kinds per agent — the status a tap last published, say — at 100,000 agents: 0.2 MB instead of 0.8,
// and a grown array's old copy as small. The array's bounds are IdMap's (util/id-map.ts): ids it would
// hold too sparsely go to a Map beside it. Iteration is by id through the array, then the rest in
// insertion order.

import { arrayBound, grownLength, isIndex, moveIntoArray } from './id-map.js';

export class IdCodes {
  private dense = new Uint16Array(0);
  private inDense = 0;
  private readonly sparse = new Map<number, number>();

  get size(): number {
    return this.inDense + this.sparse.size;
  }

  /** The id's code, 0 when it has none. */
  get(id: number): number {
    return this.inArray(id) ? this.dense[id] : (this.sparse.get(id) ?? 0);
  }

  /** `code` (1 to 65,535) for `id`. */
  set(id: number, code: number): void {
    if (!Number.isInteger(code) || code < 1 || code > 0xffff) throw new RangeError(`a code is 1 to 65535, not ${code}`);
    if (!this.inArray(id)) {
      if (!isIndex(id) || id >= arrayBound(this.inDense)) {
        this.sparse.set(id, code);
        return;
      }
      this.grow(id + 1); // which may move this very id from the Map into the array
    }
    if (this.dense[id] === 0) this.inDense++;
    this.dense[id] = code;
  }

  delete(id: number): boolean {
    if (this.inArray(id)) {
      if (this.dense[id] === 0) return false;
      this.dense[id] = 0;
      this.inDense--;
      return true;
    }
    return this.sparse.delete(id);
  }

  clear(): void {
    this.dense = new Uint16Array(0);
    this.inDense = 0;
    this.sparse.clear();
  }

  /** As a Map's: a code set meanwhile is seen, even when it grew the array (read afresh at each step). */
  *entries(): Generator<[number, number]> {
    for (let id = 0; id < this.dense.length; id++) {
      const c = this.dense[id];
      if (c !== 0) yield [id, c];
    }
    yield* this.sparse.entries();
  }

  private inArray(id: number): boolean {
    return isIndex(id) && id < this.dense.length;
  }

  private grow(length: number): void {
    const from = this.dense.length;
    const bigger = new Uint16Array(grownLength(from, length, this.inDense));
    bigger.set(this.dense);
    this.dense = bigger;
    this.inDense += moveIntoArray(this.sparse, from, bigger.length, (id, code) => { bigger[id] = code; });
  }
}
