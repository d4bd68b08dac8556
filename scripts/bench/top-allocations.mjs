#!/usr/bin/env node
// Where a sampling heap profile (alloc-profile.mjs) says the bytes were allocated: by function (self), and
// by the nearest frame of the tap's own code (dist/) above each allocation. Usage: top-allocations.mjs
// FILE [limit] [units] — `units` (say, the keepalives of the run) prints bytes per unit too.
import { readFileSync } from 'node:fs';

const [file, limitArg, unitsArg] = process.argv.slice(2);
const limit = Number(limitArg ?? 25);
const units = Number(unitsArg ?? 0);
const p = JSON.parse(readFileSync(file, 'utf8'));
const self = new Map();
const byOwn = new Map();
let total = 0;

const where = (cf) => {
  const f = (cf.url || '').replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
  return `${cf.functionName || '(anonymous)'}  ${f ? `${f}:${cf.lineNumber + 1}` : ''}`;
};

function walk(node, own) {
  const cf = node.callFrame;
  const mine = /\/dist\//.test(cf.url || '') ? where(cf) : own;
  const bytes = (node.selfSize ?? 0);
  if (bytes) {
    total += bytes;
    const k = where(cf);
    self.set(k, (self.get(k) ?? 0) + bytes);
    const o = mine ?? '(no tap frame)';
    byOwn.set(o, (byOwn.get(o) ?? 0) + bytes);
  }
  for (const c of node.children ?? []) walk(c, mine);
}
walk(p.head, null);

const show = (b) => `${(b / 1048576).toFixed(1).padStart(8)} MB ${((100 * b) / total).toFixed(1).padStart(5)} %${units ? `  ${(b / units).toFixed(0).padStart(6)} B/unit` : ''}`;
console.log(`${(total / 1048576).toFixed(1)} MB sampled${units ? `, ${(total / units).toFixed(0)} bytes a unit` : ''}\n\nby function:`);
for (const [k, b] of [...self].sort((a, c) => c[1] - a[1]).slice(0, limit)) console.log(`${show(b)}  ${k}`);
console.log('\nby the nearest frame of the tap\'s own code:');
for (const [k, b] of [...byOwn].sort((a, c) => c[1] - a[1]).slice(0, limit)) console.log(`${show(b)}  ${k}`);
