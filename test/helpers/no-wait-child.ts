// For test/capture-no-wait.test.ts, run with test/helpers/slow-reader.c preloaded: opens the shim (its
// reader thread starts at once, and holds the rounds' lock most of the time), then times wdbtap_rest and
// wdbtap_delivered as the controller's thread calls them. Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { loadShim } from '../../controller/src/capture/shim.js';
import { artefacts } from '../../controller/src/paths.js';

const { objPath, libPath } = artefacts();
const lib = loadShim(libPath);
const err = Buffer.alloc(512);
const h = lib.open(objPath, 8, 1, err, err.length);
if (!h) throw new Error(err.toString('utf8', 0, err.indexOf(0)));
const out = new BigUint64Array(1);
/** The longest of 16 calls, 25 ms apart: each call alone, so one never waits behind the other. */
async function longest(call: () => void): Promise<number> {
  let max = 0;
  for (let i = 0; i < 16; i++) {
    const t0 = performance.now();
    call();
    max = Math.max(max, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 25));
  }
  return max;
}
const rest = await longest(() => { if (lib.rest(h) < 0) throw new Error(lib.last_error(h)); });
const delivered = await longest(() => { lib.delivered(h, out); });
lib.close(h);
process.stdout.write(`${JSON.stringify({ rest, delivered })}\n`);
