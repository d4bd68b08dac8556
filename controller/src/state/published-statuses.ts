// What this tap last published of each agent's status (the status and its code): held for every agent
// a fleet has, twice (the tap's and its journal's), so two bytes an agent (util/id-codes.ts) — a code
// for each (status, status_code) pair Wazuh can write (codes 0–999: decode/values.ts). A pair outside
// those (a code a caller seeded) is kept as it is, in a Map beside: never lost, only larger.

import { CONNECTION_STATUSES, type ConnectionStatus } from '../types.js';
import { IdCodes } from '../util/id-codes.js';
import { IdEntries } from '../util/id-map.js';
import { SharedPool } from '../util/intern.js';

export interface PublishedStatus {
  readonly status: ConnectionStatus;
  readonly status_code: number;
}

/** The few (status, code) pairs there are, one shared frozen object each. */
const pairs = new SharedPool<PublishedStatus>(); // codes are 0–999 (decode/values.ts): its bound is never reached by Wazuh

export function publishedStatus(status: ConnectionStatus, status_code: number): PublishedStatus {
  return pairs.of(`${status} ${status_code}`, () => Object.freeze({ status, status_code }));
}

const CODES = 1000;

/** The pair's code (1 to 5,000), or 0 when it has none (a code outside 0–999, a status not Wazuh's). */
function codeOf(p: PublishedStatus): number {
  const s = CONNECTION_STATUSES.indexOf(p.status);
  const c = p.status_code;
  return s >= 0 && Number.isInteger(c) && c >= 0 && c < CODES ? 1 + s * CODES + c : 0;
}

/** The pair of each code, made once (the pool above holds 4,096 of the 5,000, and a lookup was a string key). */
const BY_CODE: (PublishedStatus | undefined)[] = new Array(CONNECTION_STATUSES.length * CODES + 1); // its length first: assigned far past its end, V8 made it a dictionary

function pairOf(code: number): PublishedStatus {
  const n = code - 1;
  return (BY_CODE[code] ??= publishedStatus(CONNECTION_STATUSES[Math.floor(n / CODES)], n % CODES));
}

export class PublishedStatuses extends IdEntries<PublishedStatus> {
  private readonly codes = new IdCodes();
  /** Pairs without a code (codeOf 0). */
  private readonly odd = new Map<number, PublishedStatus>();

  get size(): number {
    return this.codes.size + this.odd.size;
  }

  get(id: number): PublishedStatus | undefined {
    const c = this.codes.get(id);
    return c !== 0 ? pairOf(c) : this.odd.get(id);
  }

  has(id: number): boolean {
    return this.codes.get(id) !== 0 || this.odd.has(id);
  }

  set(id: number, p: PublishedStatus): this {
    const c = codeOf(p);
    if (c !== 0) {
      this.codes.set(id, c);
      this.odd.delete(id);
    } else {
      this.codes.delete(id);
      this.odd.set(id, p);
    }
    return this;
  }

  delete(id: number): boolean {
    return this.codes.delete(id) || this.odd.delete(id);
  }

  clear(): void {
    this.codes.clear();
    this.odd.clear();
  }

  /** By id among those with a code, then the others in insertion order. Not while an id moves between the two (no caller changes the map while it iterates). */
  *entries(): MapIterator<[number, PublishedStatus]> {
    for (const [id, c] of this.codes.entries()) yield [id, pairOf(c)];
    yield* this.odd.entries();
  }
}
