// A keepalive's event_id is laid out, not hashed (format.ts keepaliveEventId): the same keepalive
// always gives the same id, two keepalives never share one, and the number fast path (below 2^53 ns)
// writes exactly what the BigInt layout writes.
import t from 'tap';
import { keepaliveEventId } from '../controller/src/state/format.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The layout written with BigInt only: what the id must be. */
function reference(node: string, agentId: number, tsNs: bigint, status: string): string {
  const prefix = keepaliveEventId(node, 0, 0n, status).slice(0, 7); // node hash + status nibble
  const ts = (tsNs & 0x3fffffffffffffffn).toString(16).padStart(16, '0');
  const id = agentId.toString(16).padStart(8, '0');
  return `${prefix}${id[0]}-${id.slice(1, 5)}-8${id.slice(5, 8)}-${(8 | (parseInt(ts[0], 16) & 3)).toString(16)}${ts.slice(1, 4)}-${ts.slice(4, 16)}`;
}

t.test('the fast path and the BigInt layout agree, at the edges of 32 and 53 bits and beyond', async (t) => {
  const edges = [0n, 1n, 0xffffffffn, 0x100000000n, 0x100000001n, 2n ** 52n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n - 1n, 2n ** 61n + 12345n];
  for (const ts of edges) {
    for (const agent of [1, 999, 65_535, 999_999_999]) {
      const id = keepaliveEventId('node01', agent, ts, 'active');
      t.match(id, UUID, `ts ${ts} agent ${agent}`);
      t.equal(id, reference('node01', agent, ts, 'active'), `ts ${ts} agent ${agent}`);
    }
  }
});

t.test('unique by agent, time, status and node; stable for the same keepalive', async (t) => {
  const seen = new Set<string>();
  for (const node of ['node01', 'node02']) {
    for (const status of ['active', 'pending']) {
      for (let agent = 1; agent <= 50; agent++) {
        for (let ts = 1_000_000_000n; ts < 1_000_000_040n; ts++) seen.add(keepaliveEventId(node, agent, ts, status));
      }
    }
  }
  t.equal(seen.size, 2 * 2 * 50 * 40);
  t.equal(keepaliveEventId('node01', 7, 123_456_789_012n, 'active'), keepaliveEventId('node01', 7, 123_456_789_012n, 'active'));
});
