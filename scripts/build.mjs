#!/usr/bin/env node
// Builds everything `make` promises: the BPF object (clang -target bpf against
// this kernel's BTF), the libbpf shim, the simulator and the TypeScript.
// Each step runs only when its inputs are newer than its output, so a second
// build is quick and quiet.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD = join(ROOT, 'build');

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const newest = (paths) => Math.max(...paths.map(mtime));
const stale = (out, inputs) => !existsSync(out) || newest(inputs) > mtime(out);
const filesIn = (dir, re) => readdirSync(dir, { recursive: true })
  .map(String).filter((f) => re.test(f)).map((f) => join(dir, f));

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (e) {
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} failed${out ? `:\n${out}` : ` (${e.message})`}`);
  }
}

/**
 * Makes `out` from `inputs` when it is older. `fn(tmp)` writes a copy beside it, renamed over `out`
 * once whole: a build beside another (two first `make demo`s in one checkout), or a tap running from
 * the object being rebuilt, never sees a half-written object (dist/, a directory: made beside it and
 * renamed in).
 */
function step(what, out, inputs, fn) {
  if (!stale(out, inputs)) return;
  process.stderr.write(`  build  ${what}\n`);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    fn(tmp);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export async function build({ ts = true } = {}) {
  const vmlinux = join(BUILD, 'vmlinux.h');
  // CO-RE: the types come from the running kernel's BTF; relocations make the object portable.
  step('vmlinux.h from /sys/kernel/btf/vmlinux', vmlinux, ['/sys/kernel/btf/vmlinux'], (tmp) => {
    writeFileSync(tmp, run('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'],
      { maxBuffer: 256 << 20 }));
  });

  const arch = { x64: 'x86', arm64: 'arm64' }[process.arch] ?? process.arch;
  const bpfSrc = [join(ROOT, 'bpf/wdbtap.bpf.c'), join(ROOT, 'bpf/wdbtap.h'), vmlinux];
  step('bpf/wdbtap.bpf.o', join(BUILD, 'bpf/wdbtap.bpf.o'), bpfSrc, (tmp) => {
    run('clang', ['-g', '-O2', '-Wall', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`,
      '-I', join(ROOT, 'bpf'), '-I', BUILD, '-c', bpfSrc[0], '-o', tmp]);
  });

  const shimC = ['wdbtap_shim.c', 'reorder.c', 'minq.c', 'fastpath.c'].map((f) => join(ROOT, 'bpf/shim', f));
  const shimSrc = [...shimC, ...['wdbtap_shim.h', 'reorder.h', 'fastpath.h', 'siphash.h'].map((f) => join(ROOT, 'bpf/shim', f)), join(ROOT, 'bpf/wdbtap.h')];
  step('lib/libwdbtap.so', join(BUILD, 'lib/libwdbtap.so'), shimSrc, (tmp) => {
    // Hardened like a distribution's build (the .deb's lintian checks it): fortified libc
    // calls, read-only relocations bound at load.
    run('gcc', ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-D_FORTIFY_SOURCE=2', '-fPIC', '-shared', '-Wl,-z,relro,-z,now', '-o',
      tmp, ...shimC, '-lbpf', '-pthread']);
  });

  const { buildSim } = await import('./sim/build-sim.mjs');
  await buildSim(join(BUILD, 'sim'));

  if (ts) {
    const tsInputs = [...filesIn(join(ROOT, 'controller/src'), /\.ts$/), join(ROOT, 'tsconfig.json')];
    step('dist/ (TypeScript)', join(ROOT, 'dist/.stamp'), tsInputs, (tmp) => {
      // Made whole beside it (no output of a removed source survives), then put in its place by two
      // renames: a tap started meanwhile finds the old dist/ or the new one, never one half-written
      // (tsc in place left it incomplete for seconds) — but for the instant between the renames.
      const next = join(ROOT, `dist.${process.pid}.tmp`);
      const old = join(ROOT, `dist.${process.pid}.old`);
      rmSync(next, { recursive: true, force: true });
      try {
        run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.json'), '--outDir', next]);
        if (existsSync(join(ROOT, 'dist'))) renameSync(join(ROOT, 'dist'), old);
        try {
          renameSync(next, join(ROOT, 'dist'));
        } catch (e) {
          // A build beside this one put its dist/ there between the two renames: the same sources, kept.
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
        }
      } finally {
        rmSync(next, { recursive: true, force: true });
        rmSync(old, { recursive: true, force: true });
      }
      writeFileSync(tmp, '');
    });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((e) => {
    process.stderr.write(`build failed: ${e.message}\n`);
    process.exit(1);
  });
}
