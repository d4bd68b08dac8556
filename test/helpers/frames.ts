// wdb framing for tests: a u32 little-endian length, then the payload (with
// the 4.x trailing NUL counted in the length when nul is true). No range check:
// tests build broken frames on purpose.
const enc = new TextEncoder();

export function wire(payload: string, nul = false): Uint8Array {
  const body = enc.encode(nul ? `${payload}\0` : payload);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out.set(body, 4);
  return out;
}
