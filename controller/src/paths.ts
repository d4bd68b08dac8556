// Where the built artefacts live: build/ in the package (from dist/ or, in
// tests, from controller/src/), or where `make install` put them
// (WAZUH_NATS_TAP_LIBDIR).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

export function artefacts(): { objPath: string; libPath: string } {
  const base = process.env.WAZUH_NATS_TAP_LIBDIR ?? join(packageRoot(), 'build');
  return { objPath: join(base, 'bpf/wdbtap.bpf.o'), libPath: join(base, 'lib/libwdbtap.so') };
}
