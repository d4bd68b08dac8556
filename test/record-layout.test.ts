// The controller's reading of the shim's records (capture/record-layout.ts): fields at their offsets,
// the payload copied out, comm decoded once per daemon and still right when the next record's differs.
import t from 'tap';
import { RECORD_SIZE, parseRecords } from '../controller/src/capture/record-layout.js';

function record(o: { ts: bigint; local: bigint; peer: bigint; tgid: number; comm: string; data: string; direction?: number; readAgo?: number; flags?: number }): Uint8Array {
  const data = new TextEncoder().encode(o.data);
  const b = new Uint8Array(4 + RECORD_SIZE + data.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, RECORD_SIZE + data.length, true);
  const at = 4;
  v.setBigUint64(at, o.ts, true);
  v.setBigUint64(at + 8, o.local, true);
  v.setBigUint64(at + 16, o.peer, true);
  v.setUint32(at + 24, o.tgid, true);
  v.setUint32(at + 28, o.tgid, true);
  v.setUint32(at + 32, data.length, true);
  v.setUint32(at + 40, data.length, true);
  v.setUint16(at + 44, o.direction ?? 1, true);
  v.setUint16(at + 46, o.flags ?? 0, true);
  v.setUint16(at + 48, 1, true);
  v.setUint32(at + 68, o.readAgo ?? 0, true);
  b.set(new TextEncoder().encode(o.comm).subarray(0, 16), at + 72);
  b.set(data, at + RECORD_SIZE);
  return b;
}

t.test('fields, inodes above 32 bits, and each record its own comm', async (t) => {
  const recs = [
    record({ ts: 5n, local: 0x1_0000_0002n, peer: 7n, tgid: 10, comm: 'wazuh-remoted', data: 'one' }),
    record({ ts: 6n, local: 7n, peer: 0x1_0000_0002n, tgid: 11, comm: 'wazuh-db', data: 'ok', direction: 2 }),
    record({ ts: 7n, local: 0x1f_ffff_ffff_fffen, peer: 7n, tgid: 10, comm: 'wazuh-remoted', data: 'two' }),
    record({ ts: 8n, local: 9n, peer: 7n, tgid: 12, comm: 'a-sixteen-chars!', data: '' }),
  ];
  const buf = new Uint8Array(recs.reduce((n, r) => n + r.length, 0));
  let off = 0;
  for (const r of recs) { buf.set(r, off); off += r.length; }
  const out = parseRecords(buf, buf.length, ['wazuh-remoted']);
  t.same(out.map((r) => r.comm), ['wazuh-remoted', 'wazuh-db', 'wazuh-remoted', 'a-sixteen-chars!'], 'comm, NUL-terminated or all 16 bytes');
  t.same(out.map((r) => r.localIno), [0x1_0000_0002, 7, 0x1f_ffff_ffff_fffe, 9], 'local inodes, above 32 bits too');
  t.same(out.map((r) => r.peerIno), [7, 0x1_0000_0002, 7, 7]);
  t.same(out.map((r) => r.tsNs), [5n, 6n, 7n, 8n]);
  t.same(out.map((r) => r.direction), ['request', 'reply', 'request', 'request']);
  t.same(out.map((r) => new TextDecoder().decode(r.data)), ['one', 'ok', 'two', '']);
  buf.fill(0);
  t.equal(new TextDecoder().decode(out[0].data), 'one', 'the payload is a copy: the take buffer is reused');
});

t.test('a reply carries when wazuh-db\'s thread read the request (read_ago before its time); a request never does', async (t) => {
  const recs = [
    record({ ts: 5_000n, local: 1n, peer: 2n, tgid: 10, comm: 'wazuh-remoted', data: 'req', readAgo: 7 }),
    record({ ts: 6_000n, local: 2n, peer: 1n, tgid: 11, comm: 'wazuh-db', data: 'ok', direction: 2, readAgo: 400 }),
    record({ ts: 7_000n, local: 2n, peer: 1n, tgid: 11, comm: 'wazuh-db', data: 'ok', direction: 2 }),
    record({ ts: 300n, local: 2n, peer: 1n, tgid: 11, comm: 'wazuh-db', data: 'ok', direction: 2, readAgo: 300 }),
  ];
  // A tick (the shim's): read_ago is before its reply's time, carried in its data.
  const tick = record({ ts: 8_000n, local: 1n, peer: 2n, tgid: 10, comm: 'wazuh-remoted', data: '', readAgo: 100, flags: 16 });
  const withReply = new Uint8Array(tick.length + 8);
  withReply.set(tick);
  const tv = new DataView(withReply.buffer);
  tv.setUint32(0, RECORD_SIZE + 8, true);
  tv.setUint32(4 + 40, 8, true);
  tv.setBigUint64(4 + RECORD_SIZE, 9_000n, true);
  recs.push(withReply);
  const buf = new Uint8Array(recs.reduce((n, r) => n + r.length, 0));
  let off = 0;
  for (const r of recs) { buf.set(r, off); off += r.length; }
  const out = parseRecords(buf, buf.length);
  t.same(out.map((r) => r.readNs), [undefined, 5_600n, undefined, undefined, 8_900n],
    'a request\'s is ignored; 0 is unknown; one at or before the clock\'s start is nonsense');
  t.same(out[4].tick, { replyTsNs: 9_000n });
});
