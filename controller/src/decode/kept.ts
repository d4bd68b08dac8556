// What the decoder keeps of each agent's last update-agent-data for its ticks (bpf/shim/fastpath.h):
// the fields the state applies (state/agents.ts), not the manager's host, the os codename, major and
// uname. One is kept per agent, so it is small: the payload's hash, the agent's id and address in
// columns by agent key (util/id-slots.ts), and the rest (status, versions, os, node: the same for
// thousands of agents) as one shared template. At 100,000 agents a whole parse each was ~22 MB, an
// object each ~7 MB (64 bytes and a map slot); the columns are ~3.5 MB.

import type { AgentDataUpdate, WdbRequest } from '../types.js';
import { SharedPool } from '../util/intern.js';
import { grownTo, IdSlots } from '../util/id-slots.js';

interface Template {
  readonly connection_status: AgentDataUpdate['connection_status'];
  readonly sync_status: string | undefined;
  readonly group_config_status: string | undefined;
  readonly version: string | undefined;
  readonly node_name: string | undefined;
  readonly os_name: string | undefined;
  readonly os_version: string | undefined;
  readonly os_platform: string | undefined;
  readonly os_arch: string | undefined;
  readonly dropped: string[] | undefined;
  /** Every field above but `dropped` is defined. */
  readonly complete: boolean;
}

const templates = new SharedPool<Template>();
const FIRST_SLOTS = 1024;

export class KeptParses {
  private readonly slots = new IdSlots();
  /** The payload's 53-bit hash (exact in a double). */
  private hashes = new Float64Array(FIRST_SLOTS);
  /** The request's agent id (0: not an update-agent-data, kept whole in `shared`). */
  private ids = new Int32Array(FIRST_SLOTS);
  private readonly ips: (string | undefined)[] = [];
  /** A shared, frozen template; or a request that is not update-agent-data, kept whole. */
  private readonly shared: (Template | WdbRequest | undefined)[] = [];

  constructor(private readonly max: number) {}

  get size(): number {
    return this.slots.size;
  }

  /** The request a tick of `key` stands for, if the parse kept for that key has this hash. */
  request(key: number, hash: number): WdbRequest | undefined {
    const s = this.slots.of(key);
    if (s === undefined || this.hashes[s] !== hash) return undefined;
    return requestOf(this.ids[s], this.ips[s], this.shared[s]!);
  }

  /** Keeps `request`'s parse for `key`'s ticks. Bounded: past `max` keys the lowest goes (its next tick misses once, and the shim then sends that payload whole). */
  keep(key: number, hash: number, request: WdbRequest): void {
    if (this.slots.of(key) === undefined && this.slots.size >= this.max) {
      const first = this.slots.firstId();
      if (first !== undefined) this.forget(first);
    }
    const s = this.slots.add(key);
    this.hashes = grownTo(this.hashes, this.slots.length);
    this.ids = grownTo(this.ids, this.slots.length);
    this.hashes[s] = hash;
    if (request.cmd === 'update-agent-data') {
      const d = request.data;
      this.ids[s] = d.id;
      this.put(s, d.agent_ip, templateOf(request));
    } else {
      this.ids[s] = 0;
      this.put(s, undefined, request);
    }
  }

  private forget(key: number): void {
    const s = this.slots.delete(key);
    if (s !== undefined) this.put(s, undefined, undefined);
  }

  /** Plain arrays filled in slot order, never with holes (V8 keeps them packed). */
  private put(s: number, ip: string | undefined, shared: Template | WdbRequest | undefined): void {
    if (s === this.ips.length) {
      this.ips.push(ip);
      this.shared.push(shared);
    } else {
      this.ips[s] = ip;
      this.shared[s] = shared;
    }
  }
}

function templateOf(r: Extract<WdbRequest, { cmd: 'update-agent-data' }>): Template {
  const d = r.data;
  const t: Template = {
    connection_status: d.connection_status, sync_status: d.sync_status, group_config_status: d.group_config_status,
    version: d.version, node_name: d.node_name, os_name: d.os_name, os_version: d.os_version, os_platform: d.os_platform,
    os_arch: d.os_arch, dropped: r.dropped,
    complete: d.connection_status !== undefined && d.sync_status !== undefined && d.group_config_status !== undefined
      && d.version !== undefined && d.node_name !== undefined && d.os_name !== undefined && d.os_version !== undefined
      && d.os_platform !== undefined && d.os_arch !== undefined,
  };
  // The key: the values joined by NUL (\u0001 for an absent one). No value holds either: the decoder
  // took each as a status, a version (printable ASCII), a label or a text (no control character:
  // decode/values.ts), and `dropped` names fields. Twice as fast as JSON.stringify of the values, at
  // every agent's first keepalive.
  const key = `${u(t.connection_status)}\u0000${u(t.sync_status)}\u0000${u(t.group_config_status)}\u0000${u(t.version)}\u0000${
    u(t.node_name)}\u0000${u(t.os_name)}\u0000${u(t.os_version)}\u0000${u(t.os_platform)}\u0000${u(t.os_arch)}\u0000${
    t.dropped === undefined ? '\u0001' : t.dropped.join(',')}`;
  return templates.of(key, () => Object.freeze(t));
}

function u(v: string | undefined): string {
  return v === undefined ? '\u0001' : v;
}

/**
 * The request a tick stands for, made again from what was kept (fields absent from it stay absent). A
 * keepalive that had every field — every real one — is one literal: built field by field, its
 * properties' store grew as it went (~250 bytes of garbage a tick).
 */
function requestOf(id: number, ip: string | undefined, shared: Template | WdbRequest): WdbRequest {
  if (!isTemplate(shared)) return shared;
  const t = shared;
  let data: AgentDataUpdate;
  if (t.complete && ip !== undefined) {
    data = {
      id, connection_status: t.connection_status, agent_ip: ip, sync_status: t.sync_status,
      group_config_status: t.group_config_status, version: t.version, node_name: t.node_name, os_name: t.os_name,
      os_version: t.os_version, os_platform: t.os_platform, os_arch: t.os_arch,
    };
  } else {
    data = { id };
    if (t.connection_status !== undefined) data.connection_status = t.connection_status;
    if (ip !== undefined) data.agent_ip = ip;
    if (t.sync_status !== undefined) data.sync_status = t.sync_status;
    if (t.group_config_status !== undefined) data.group_config_status = t.group_config_status;
    if (t.version !== undefined) data.version = t.version;
    if (t.node_name !== undefined) data.node_name = t.node_name;
    if (t.os_name !== undefined) data.os_name = t.os_name;
    if (t.os_version !== undefined) data.os_version = t.os_version;
    if (t.os_platform !== undefined) data.os_platform = t.os_platform;
    if (t.os_arch !== undefined) data.os_arch = t.os_arch;
  }
  return t.dropped ? { cmd: 'update-agent-data', data, dropped: t.dropped } : { cmd: 'update-agent-data', data };
}

function isTemplate(x: Template | WdbRequest): x is Template {
  return !('cmd' in x);
}
