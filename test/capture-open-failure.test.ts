// A Capture.open that fails (a file that is no BPF object, an ELF without the programs) gives back
// everything the shim made for it: wdbtap_open made its notify pipe first and its early failures freed
// the handle without closing it, two descriptors per failed open, so an agent retrying its start ran out.
import t from 'tap';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture } from '../controller/src/capture/capture.js';
import { artefacts } from '../controller/src/paths.js';

const fds = () => readdirSync('/proc/self/fd').length;

t.test('a failed open leaks no descriptor', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-openfail-'));
  const notElf = join(dir, 'not-an-object.bpf.o');
  writeFileSync(notElf, 'this is not an ELF file\n');
  const home = join(dir, 'home');
  // Once first: the shim's library, libbpf and koffi open what they keep for the process's life.
  t.throws(() => Capture.open({ ...artefacts(), objPath: notElf, home }), /cannot open BPF object/);
  for (const [what, objPath] of [['a file that is no ELF', notElf], ['an ELF that is no BPF object', '/bin/true']] as const) {
    const before = fds();
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        Capture.open({ ...artefacts(), objPath, home }).close();
      } catch {
        refused++;
      }
    }
    t.equal(refused, 20, `${what}: refused`);
    t.equal(fds(), before, `${what}: 20 failed opens, as many descriptors as before`);
  }
});
