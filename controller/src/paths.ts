// Where the built artefacts live: beside dist/ in a checkout (build/), or where
// `make install` put them (WAZUH_NATS_TAP_LIBDIR).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function artefacts(): { objPath: string; libPath: string } {
  const base = process.env.WAZUH_NATS_TAP_LIBDIR ?? join(packageRoot, 'build');
  return { objPath: join(base, 'bpf/wdbtap.bpf.o'), libPath: join(base, 'lib/libwdbtap.so') };
}
