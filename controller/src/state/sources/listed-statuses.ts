// The light look at wazuh-db (initial-sync.ts, `describeOnly`): which agents of a complete listing to
// describe, given wazuh-db's listings by connection status. Pure: no socket, no table.
//
// The listings are read one after another, not at one instant: an agent whose status changed between
// two of them is named by both or by neither. Such an agent is described (its row says where it is);
// so is one named with a status the caller says it does not hold. The others are left as they are.

import type { WazuhConnectionStatus } from '../../types.js';

/** The statuses wazuh-db gives an agent, each listed by `get-agents-by-connection-status`. */
export const LISTED_STATUSES: readonly WazuhConnectionStatus[] = Object.freeze(['never_connected', 'pending', 'active', 'disconnected']);

/**
 * The ids of `all` to describe, ascending: those no listing or more than one names, and those one
 * names with a status `differs` says the caller does not hold. Ids a listing names that `all` lacks
 * (registered after it was read) are not: the capture saw their registration.
 */
export function idsToDescribe(
  all: readonly number[], // no id twice (initialSync's listing)
  listings: ReadonlyMap<WazuhConnectionStatus, readonly number[]>,
  differs: (id: number, status: WazuhConnectionStatus) => boolean,
): number[] {
  // Typed arrays, not a Map of 100,000 ids: a few bytes an agent while the look lasts.
  const ids = Int32Array.from(all).sort();
  const named = new Uint8Array(ids.length); // 0, 1, or 2 for "more than one"
  const statusOf = new Uint8Array(ids.length);
  const statuses = [...listings.keys()];
  statuses.forEach((status, k) => {
    for (const id of listings.get(status)!) {
      const i = indexOf(ids, id);
      if (i < 0) continue;
      named[i] = named[i] === 0 ? 1 : 2;
      statusOf[i] = k;
    }
  });
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (named[i] !== 1 || differs(ids[i], statuses[statusOf[i]])) out.push(ids[i]);
  }
  return out;
}

/** The index of `id` in the ascending `ids`, or -1. */
function indexOf(ids: Int32Array, id: number): number {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = ids[mid];
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
