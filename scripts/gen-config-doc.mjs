#!/usr/bin/env node
// Rewrites the generated reference block of docs/configuration.md from
// controller/src/config/schema.ts (compiled alone into a temporary directory,
// so work in progress elsewhere in the tree cannot block it).
// `--check`: exit 1 when the document differs instead of writing it.
// test/config-doc.test.ts runs the same comparison in the suite.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = join(ROOT, 'docs/configuration.md');

const out = mkdtempSync(join(tmpdir(), 'gen-config-doc-'));
let withGeneratedReference;
try {
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), [
    '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--strict', '--skipLibCheck',
    '--types', 'node', '--rootDir', join(ROOT, 'controller/src'), '--outDir', out, join(ROOT, 'controller/src/config/doc.ts'),
  ], { cwd: ROOT, stdio: 'inherit' });
  // Node resolves fast-xml-parser from the output's location: give it the package's node_modules.
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  execFileSync('ln', ['-s', join(ROOT, 'node_modules'), join(out, 'node_modules')]);
  ({ withGeneratedReference } = await import(pathToFileURL(join(out, 'config/doc.js')).href));
} finally {
  rmSync(out, { recursive: true, force: true });
}

const current = readFileSync(DOC, 'utf8');
const next = withGeneratedReference(current);
if (process.argv.includes('--check')) {
  if (next !== current) {
    process.stderr.write('docs/configuration.md differs from controller/src/config/schema.ts: run node scripts/gen-config-doc.mjs\n');
    process.exit(1);
  }
  process.stdout.write('docs/configuration.md matches the schema\n');
} else if (next !== current) {
  writeFileSync(DOC, next);
  process.stdout.write('docs/configuration.md updated\n');
} else {
  process.stdout.write('docs/configuration.md already up to date\n');
}
