// The wdb commands the state learns from (state/agents.ts). Only these leave the kernel in
// production (with their replies): the capture is told the list, so remoted's select-agent-group
// with every keepalive, analysisd's get-labels and the like cost no copy at all.
import type { WdbRequest } from '../types.js';

/** Commands that change wazuh-db's agent table. */
export const WRITES: ReadonlySet<WdbRequest['cmd']> = new Set([
  'update-keepalive', 'update-agent-data', 'update-connection-status', 'update-status-code', 'insert-agent',
  'delete-agent', 'update-agent-name', 'reset-agents-connection', 'disconnect-agents', 'sync-agent-info-set',
]);

/** Queries whose replies teach the table something. */
export const READS: ReadonlySet<WdbRequest['cmd']> = new Set(['get-agent-info', 'get-agents-by-connection-status']);

/** Every command the state uses: what the agent asks the kernel to capture. */
export const STATE_COMMANDS: readonly string[] = [...WRITES, ...READS];
