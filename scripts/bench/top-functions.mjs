#!/usr/bin/env node
// The functions that took the most samples in a V8 .cpuprofile (self time), and by file.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const limit = Number(process.argv[3] ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8'));
const self = new Map();
const byFile = new Map();
const total = p.samples.length;
const hits = new Map();
for (const id of p.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
for (const n of p.nodes) {
  const h = hits.get(n.id) ?? 0;
  if (!h) continue;
  const cf = n.callFrame;
  const f = (cf.url || '').replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
  const key = `${cf.functionName || '(anonymous)'}  ${f ? `${f}:${cf.lineNumber + 1}` : ''}`;
  self.set(key, (self.get(key) ?? 0) + h);
  const mod = f ? f.split(':')[0] : cf.functionName;
  byFile.set(mod, (byFile.get(mod) ?? 0) + h);
}
const pct = (h) => `${((100 * h) / total).toFixed(1).padStart(5)} %`;
console.log(`${total} samples\n\nself time by function:`);
for (const [k, h] of [...self].sort((a, b) => b[1] - a[1]).slice(0, limit)) console.log(`${pct(h)}  ${k}`);
console.log('\nself time by file:');
for (const [k, h] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, limit)) console.log(`${pct(h)}  ${k}`);
