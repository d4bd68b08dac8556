// The LD_PRELOAD library of slow-sync.c, built once into build/test/ with the machine's cc.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './tap-process.js';

export function slowSyncLib(): string {
  const src = join(ROOT, 'test/helpers/slow-sync.c');
  const out = join(ROOT, 'build/test/slow-sync.so');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(ROOT, 'build/test'), { recursive: true });
    execFileSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', '-o', out, src, '-ldl']);
  }
  return out;
}
