// The light look at wazuh-db (initial-sync.ts, `held`): which agents of a complete listing to describe,
// given wazuh-db's listings by connection status, and by status and cluster node. Pure: no socket, no
// table.
//
// The listings are read one after another, not at one instant: an agent whose status changed between
// two of them is named by both or by neither. Such an agent is described (its row says where it is);
// so is one named with a status the caller does not hold, and one held on a node whose listing of that
// status does not name it: the table's node is what a node's own listing of its active agents
// (remoted's, every 5 s) is checked against — an agent that moved to another node while nothing was
// captured, still active, was published as disconnected once this node's listing lacked it, and one
// that moved while disconnected was, once a write that carries no node (5.x's keepalive) made it active
// (helper-81, helper-82). The others are left as they are.

import type { ConnectionStatus, WazuhConnectionStatus } from '../../types.js';

/** The statuses wazuh-db gives an agent, each listed by `get-agents-by-connection-status`. */
export const LISTED_STATUSES: readonly WazuhConnectionStatus[] = Object.freeze(['never_connected', 'pending', 'active', 'disconnected']);

/**
 * Nodes a light look lists the agents of at most (four listings a node, each a scan of wazuh-db's agent
 * table); an agent held on another is described. A cluster has a few nodes.
 */
export const MAX_LISTED_NODES = 16;

/** What the caller holds of its agents, asked of each listed one. */
export interface HeldAgents {
  /** The agent's status; undefined: not held. */
  statusOf(id: number): ConnectionStatus | undefined;
  /** The agent's cluster node; null: none known. */
  nodeOf(id: number): string | null;
  /**
   * The nodes its agents are on, those with the most agents first: each is listed by status
   * (`get-agents-by-connection-status … <status> <node> -1`), MAX_LISTED_NODES at most.
   */
  nodes(): Iterable<string>;
}

/** A node name that can be one word of a wazuh-db command (no space, nothing unprintable). */
export function isListableNode(node: string): boolean {
  return /^[\x21-\x7e]{1,127}$/.test(node);
}

/** wazuh-db's listings of agent ids, by connection status. */
export type Listings = ReadonlyMap<WazuhConnectionStatus, readonly number[]>;

/**
 * The ids of `all` to describe, ascending: those no status listing or more than one names, those one
 * names with a status the caller does not hold, and those held on a node whose listing of that status
 * (in `byNode`) does not name them. Ids a listing names that `all` lacks (registered after it was
 * read) are not: the capture saw their registration.
 */
export function idsToDescribe(
  all: readonly number[], // no id twice (initialSync's listing)
  listings: Listings,
  byNode: ReadonlyMap<string, Listings>,
  held: Pick<HeldAgents, 'statusOf' | 'nodeOf'>,
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
  const nodes = new Map([...byNode].map(([node, m]) => [node, new Map([...m].map(([st, list]) => [st, Int32Array.from(list).sort()]))]));
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const status = statuses[statusOf[i]];
    if (named[i] !== 1 || held.statusOf(id) !== status) out.push(id);
    else {
      const node = held.nodeOf(id);
      const list = node === null ? undefined : nodes.get(node)?.get(status);
      if (node !== null && (list === undefined || indexOf(list, id) < 0)) out.push(id);
    }
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
