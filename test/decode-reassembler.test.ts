// Stream reassembly: splits, coalesced writes, NULs, garbage, truncation, chunk gaps, bounds, isolation.
import t from 'tap';
import { arrayBuffersAfterGc } from './helpers/gc.js';
import { MAX_FRAME, StreamReassembler, type ResetReason } from '../controller/src/decode/reassembler.js';
import type { CaptureRecord, Direction } from '../controller/src/types.js';
import { wire as frame } from './helpers/frames.js';

/** 4.x requests carry a trailing NUL: the default here. */
const wire = (payload: string, nul = true) => frame(payload, nul);

const enc = new TextEncoder();
const KEEPALIVE = String.raw`global update-keepalive {"id":1,"connection_status":"pending","sync_status":"synced"}`;
const SHUTDOWN = String.raw`global update-connection-status {"id":1,"connection_status":"disconnected","sync_status":"synced","status_code":3}`;
const GROUPS = String.raw`global select-agent-group 1`;


function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function rec(data: Uint8Array, o: Partial<CaptureRecord> = {}): CaptureRecord {
  const direction: Direction = o.direction ?? 'request';
  return {
    tsNs: 1n, tgid: 10, tid: 11, comm: 'wazuh-remoted', localIno: 1, peerIno: 2, direction,
    syscallBytes: data.length, offset: 0, data, truncated: false, syscall: 'sendto', ...o,
  };
}

const payloads = (fs: { payload: string }[]) => fs.map((f) => f.payload);

t.test('a frame split at every byte boundary, in two writes, comes out once and whole', async (t) => {
  const w = wire(KEEPALIVE);
  for (let cut = 1; cut < w.length; cut++) {
    const r = new StreamReassembler();
    const a = r.push(rec(w.subarray(0, cut), { tsNs: 5n, tgid: 7, comm: 'first' }));
    const b = r.push(rec(w.subarray(cut), { tsNs: 6n, tgid: 8, comm: 'second' }));
    t.same(payloads(a), [], `cut ${cut}: nothing early`);
    t.same(payloads(b), [KEEPALIVE], `cut ${cut}`);
    t.equal(b[0].tsNs, 5n, 'stamped with the write that began the frame');
    t.equal(b[0].tgid, 7);
    t.equal(b[0].comm, 'first');
    t.equal(r.stats().buffered, 0);
    t.equal(r.stats().malformed, 0);
  }
});

t.test('a frame dribbled one byte per write', async (t) => {
  const w = wire(SHUTDOWN, false);
  const r = new StreamReassembler();
  const out = [];
  for (let i = 0; i < w.length; i++) out.push(...r.push(rec(w.subarray(i, i + 1))));
  t.same(payloads(out), [SHUTDOWN]);
});

t.test('several frames in one write, and a write ending mid-frame', async (t) => {
  const r = new StreamReassembler();
  const all = cat(wire(GROUPS), wire(KEEPALIVE), wire(SHUTDOWN, false));
  t.same(payloads(r.push(rec(all))), [GROUPS, KEEPALIVE, SHUTDOWN]);
  const two = cat(wire(GROUPS), wire(KEEPALIVE));
  const cut = wire(GROUPS).length + 10;
  t.same(payloads(r.push(rec(two.subarray(0, cut)))), [GROUPS]);
  t.same(payloads(r.push(rec(two.subarray(cut), { tsNs: 9n }))), [KEEPALIVE]);
  t.equal(r.stats().frames, 5);
});

t.test('trailing NUL optional; a frame ends at its first NUL, as wazuh-db reads it (a C string)', async (t) => {
  const r = new StreamReassembler();
  t.same(payloads(r.push(rec(wire('ok')))), ['ok']);
  t.same(payloads(r.push(rec(wire('ok', false)))), ['ok']);
  t.same(payloads(r.push(rec(wire('ok\0')))), ['ok']);
  // wazuh-db applied such a shutdown (what follows the NUL is nothing to it); the tap dropped the frame.
  t.same(payloads(r.push(rec(wire(`${SHUTDOWN}\0junk`, false)))), [SHUTDOWN]);
});

t.test('invalid UTF-8 is replaced, not fatal', async (t) => {
  const r = new StreamReassembler();
  const body = cat(enc.encode('ok '), new Uint8Array([0xff, 0xfe]));
  const w = cat(new Uint8Array([body.length, 0, 0, 0]), body);
  t.same(payloads(r.push(rec(w))), ['ok \ufffd\ufffd']);
});

t.test('garbage: the stream is dropped, counted, and resynchronises on the next write', async (t) => {
  const resets: [string, Direction, ResetReason][] = [];
  const r = new StreamReassembler({ onReset: (c, d, why) => resets.push([c, d, why]) });
  t.same(payloads(r.push(rec(wire(GROUPS)))), [GROUPS]);
  // A write of text where a header should be: "glob" read as a length is ~1.6 GB.
  t.same(payloads(r.push(rec(cat(enc.encode('global oops'), wire(KEEPALIVE))))), []);
  t.equal(r.stats().malformed, 1);
  t.equal(r.stats().resyncs, 1);
  t.same(resets, [['1', 'request', 'bad-length']]);
  t.same(payloads(r.push(rec(wire(KEEPALIVE)))), [KEEPALIVE], 'the next whole write is decoded');
  t.equal(r.stats().buffered, 0);
});

t.test('a plausible length followed by non-wdb bytes is caught at once, not after 64 KiB', async (t) => {
  const r = new StreamReassembler();
  const bad = cat(new Uint8Array([0x00, 0x10, 0x00, 0x00]), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]));
  t.same(payloads(r.push(rec(cat(bad, wire(GROUPS))))), []);
  t.equal(r.stats().malformed, 1);
  t.equal(r.stats().buffered, 0, 'nothing held waiting for 4 KiB that will never make sense');
  t.same(payloads(r.push(rec(wire(GROUPS)))), [GROUPS]);
});

t.test('lengths of 0 and above 65536 are malformed; exactly 65536 is allowed', async (t) => {
  for (const len of [0, MAX_FRAME + 1, 0xffffffff, 0x80000000]) {
    const r = new StreamReassembler();
    const h = new Uint8Array(8);
    new DataView(h.buffer).setUint32(0, len, true);
    h.set(enc.encode('ok'), 4);
    t.same(r.push(rec(h)), [], `length ${len}`);
    t.equal(r.stats().malformed, 1, `length ${len} counted`);
    t.equal(r.stats().buffered, 0);
  }
  const r = new StreamReassembler();
  const big = 'ok ' + 'x'.repeat(MAX_FRAME - 3);
  const out = r.push(rec(wire(big, false), { direction: 'reply' }));
  t.equal(out.length, 1);
  t.equal(out[0].payload.length, MAX_FRAME);
});

t.test('truncated record: complete frames inside it are kept, the rest resets the stream', async (t) => {
  const resets: ResetReason[] = [];
  const r = new StreamReassembler({ onReset: (_c, _d, why) => resets.push(why) });
  const two = cat(wire(GROUPS), wire(KEEPALIVE));
  const captured = two.subarray(0, wire(GROUPS).length + 20);
  const out = r.push(rec(captured, { truncated: true, syscallBytes: two.length }));
  t.same(payloads(out), [GROUPS]);
  t.equal(r.stats().truncated, 1);
  t.equal(r.stats().resyncs, 1);
  t.equal(r.stats().buffered, 0);
  t.same(resets, ['truncated']);
  t.same(payloads(r.push(rec(wire(SHUTDOWN)))), [SHUTDOWN]);
});

t.test('a write cut by the kernel: the frames its chunks carry whole are kept, the flag honoured on the record ending the captured part', async (t) => {
  // Two 64 KiB frames in one write (131,080 bytes): the kernel sends 3 chunks of 32 KiB, the first frame
  // whole in them (review #8).
  const big = (c: string) => wire(`global update-keepalive {"id":30,"x":"${c.repeat(MAX_FRAME - 40)}"}`, false);
  const write = cat(big('a'), big('b'));
  t.equal(big('a').length, MAX_FRAME + 4);
  const chunks = [0, 1, 2].map((i) => write.subarray(i * 32768, (i + 1) * 32768));
  for (const on of [2, 0]) {
    const resets: ResetReason[] = [];
    const r = new StreamReassembler({ onReset: (_c, _d, why) => resets.push(why) });
    const out = chunks.flatMap((c, i) => r.push(rec(c, { offset: i * 32768, syscallBytes: write.length, truncated: i === on })));
    t.equal(out.length, 1, `flag on chunk ${on}: the first frame, captured whole, comes out`);
    t.equal(out[0]?.payload.length, MAX_FRAME);
    // The kernel that flags the last chunk says the stream lost bytes (F_GAP) on its next record; the one
    // that flagged the first did not.
    const next = on === 2 ? { gap: true, frameOff: 0 } : {};
    t.same(payloads(r.push(rec(wire(GROUPS), next))), [GROUPS], `flag on chunk ${on}: the next write decodes`);
    t.equal(r.stats().gaps, on === 2 ? 0 : 1, `flag on chunk ${on}: ${on === 2 ? 'no chunk taken for a gap' : 'the missing tail is one gap'}`);
    t.equal(resets.length, 1, `flag on chunk ${on}: one reset (${resets})`);
    t.equal(r.stats().buffered, 0);
  }
});

t.test('a large write in chunks: continuation offsets are followed, a gap resets', async (t) => {
  const big = wire('ok ' + 'y'.repeat(20000), false);
  const chunks = [0, 8000, 16000].map((o) => big.subarray(o, Math.min(o + 8000, big.length)));
  const r = new StreamReassembler();
  const out = [];
  let off = 0;
  for (const c of chunks) {
    out.push(...r.push(rec(c, { direction: 'reply', offset: off, syscallBytes: big.length })));
    off += c.length;
  }
  t.equal(out.length, 1);
  t.equal(out[0].payload.length, 20003);
  t.equal(r.stats().gaps, 0);

  // The middle chunk is lost: the frame is dropped, the loss is reported once, the next write decodes.
  const resets: ResetReason[] = [];
  const g = new StreamReassembler({ onReset: (_c, _d, why) => resets.push(why) });
  t.same(g.push(rec(chunks[0], { direction: 'reply', offset: 0, syscallBytes: big.length })), []);
  t.same(g.push(rec(chunks[2], { direction: 'reply', offset: 16000, syscallBytes: big.length })), []);
  t.equal(g.stats().gaps, 1);
  t.same(resets, ['gap']);
  t.equal(g.stats().buffered, 0);
  t.same(payloads(g.push(rec(wire('ok', false), { direction: 'reply' }))), ['ok']);

  // A write whose first chunk is missing: every later chunk is discarded, counted as one gap.
  const h = new StreamReassembler();
  t.same(h.push(rec(chunks[1], { direction: 'reply', offset: 8000, syscallBytes: big.length })), []);
  t.same(h.push(rec(chunks[2], { direction: 'reply', offset: 16000, syscallBytes: big.length })), []);
  t.equal(h.stats().gaps, 1);
  t.same(payloads(h.push(rec(wire('ok', false), { direction: 'reply' }))), ['ok']);
});

t.test('attaching mid-frame: the tail of a 5.x partial write is discarded until a frame starts', async (t) => {
  const w = wire(KEEPALIVE, false);
  const r = new StreamReassembler();
  t.same(r.push(rec(w.subarray(30))), [], 'a tail of text is not taken for a frame');
  t.same(payloads(r.push(rec(wire(GROUPS)))), [GROUPS]);
});

t.test('two interleaved connections: garbage on one never touches the other', async (t) => {
  const r = new StreamReassembler();
  const a = { localIno: 100, peerIno: 900 };
  const b = { localIno: 200, peerIno: 900 };
  const wa = wire(KEEPALIVE);
  const wb = wire(SHUTDOWN);
  const got: Record<string, string[]> = { '100': [], '200': [] };
  const take = (fs: { connId: string; payload: string }[]) => fs.forEach((f) => got[f.connId].push(f.payload));
  take(r.push(rec(wa.subarray(0, 10), a)));
  take(r.push(rec(wb.subarray(0, 7), b)));
  take(r.push(rec(enc.encode('\xff\xff\xff\xffjunk'), a))); // connection A breaks mid-frame
  take(r.push(rec(wb.subarray(7, 50), b)));
  take(r.push(rec(wa.subarray(10), a))); // A's tail: discarded, A is lost
  take(r.push(rec(wb.subarray(50), b)));
  take(r.push(rec(wire(GROUPS), a))); // A resynchronises
  t.same(got['200'], [SHUTDOWN], 'B is whole');
  t.same(got['100'], [GROUPS], 'A lost its broken frame and nothing else');
  // The break, then A's orphaned tail (checked and refused at a write start): two bad frames, one loss.
  t.equal(r.stats().malformed, 2);
  t.equal(r.stats().resyncs, 1);
});

t.test('request and reply streams of one connection are separate', async (t) => {
  const r = new StreamReassembler();
  const q = wire(GROUPS);
  t.same(r.push(rec(q.subarray(0, 5))), []);
  const reply = r.push(rec(wire('ok [{"group":"default"}]', false), { direction: 'reply', localIno: 2, peerIno: 1 }));
  t.same(payloads(reply), ['ok [{"group":"default"}]']);
  t.equal(reply[0].connId, '1');
  t.same(payloads(r.push(rec(q.subarray(5)))), [GROUPS]);
});

t.test('close forgets both directions of a connection', async (t) => {
  const r = new StreamReassembler();
  r.push(rec(wire(GROUPS).subarray(0, 6)));
  r.push(rec(wire('ok').subarray(0, 3), { direction: 'reply', localIno: 2, peerIno: 1 }));
  t.equal(r.stats().streams, 2);
  t.ok(r.stats().buffered > 0);
  r.close('1');
  t.equal(r.stats().streams, 0);
  t.equal(r.stats().buffered, 0);
});

t.test('bounded: least recently used streams are evicted', async (t) => {
  const resets: string[] = [];
  const r = new StreamReassembler({ maxStreams: 3, onReset: (c) => resets.push(c) });
  for (let i = 1; i <= 3; i++) r.push(rec(wire(GROUPS).subarray(0, 6), { localIno: i, peerIno: 99 }));
  r.push(rec(new Uint8Array(0), { localIno: 1, peerIno: 99 })); // touch stream 1
  r.push(rec(wire(GROUPS), { localIno: 4, peerIno: 99 }));
  t.equal(r.stats().streams, 3);
  t.equal(r.stats().evicted, 1);
  t.same(resets, ['2'], 'stream 2 was least recently used (1 was touched again)');
});

t.test('bounded: total bytes of partial frames', async (t) => {
  const r = new StreamReassembler({ maxBufferedBytes: 1 }); // raised to one maximal frame
  const half = wire('ok ' + 'z'.repeat(40000), false).subarray(0, 40000);
  r.push(rec(half, { localIno: 9, peerIno: 1, direction: 'reply' }));
  r.push(rec(half, { localIno: 9, peerIno: 2, direction: 'reply' }));
  t.equal(r.stats().evicted, 1);
  t.equal(r.stats().buffered, 40000);
  t.ok(r.stats().buffered <= 4 + MAX_FRAME);
});

t.test('kernel-filtered writes (gap flag): the interrupted frame is forgotten, decoding restarts at frameOff', async (t) => {
  const r = new StreamReassembler();
  const AGENT = 'agent 001 syscheck integrity_check_global {"begin":"/etc"}';
  const agentFrame = wire(AGENT);
  // The head of an agent-scoped frame was passed on undecided (5.x: header alone), its body was dropped.
  t.same(r.push(rec(agentFrame.subarray(0, 4))), [], 'a lone header waits');
  // The next record the kernel sends holds the tail of that frame, then a whole global request.
  const tail = agentFrame.subarray(20);
  const both = new Uint8Array(tail.length + wire(SHUTDOWN).length);
  both.set(tail, 0);
  both.set(wire(SHUTDOWN), tail.length);
  const frames = r.push(rec(both, { gap: true, frameOff: tail.length }));
  t.same(frames.map((f) => f.payload), [SHUTDOWN], 'the global request, nothing of the agent frame');
  t.equal(r.stats().filtered, 1);
  t.equal(r.stats().malformed, 0, 'filtering is not a malformed stream');
  t.equal(r.stats().resyncs, 0);
});

t.test('a partial frame kept for the next write holds its own bytes, not the record it came in (review helper-87)', async (t) => {
  const buffers = arrayBuffersAfterGc;
  const r = new StreamReassembler();
  const before = buffers();
  const big = wire(`global update-agent-data {"id":1,"os_uname":"${'x'.repeat(32_000)}"}`);
  const start = wire(KEEPALIVE).subarray(0, 10);
  for (let conn = 0; conn < 200; conn++) {
    // As the capture hands records over: a Buffer each (its slice() is a view).
    const data = Buffer.concat([big, start]);
    r.push(rec(data, { localIno: 1000 + conn, peerIno: 5000 + conn }));
  }
  t.equal(r.stats().buffered, 200 * 10, 'ten bytes a stream waiting for the rest');
  const held = buffers() - before;
  t.ok(held < 1024 * 1024, `200 partials of 10 bytes hold ${(held / 1024).toFixed(0)} KiB of buffers (a record each: 6.4 MB)`);
  // The rest comes: each stream's frame whole.
  const out = r.push(rec(Buffer.from(wire(KEEPALIVE).subarray(10)), { localIno: 1000, peerIno: 5000 }));
  t.same(payloads(out), [KEEPALIVE]);
});
