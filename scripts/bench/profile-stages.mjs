#!/usr/bin/env node
// Where the tap's main thread spends its time, by pipeline stage: each sample of a V8 .cpuprofile is
// charged to the nearest frame of the tap's own code (dist/<stage>/…) or of nats.js above it, so a
// native call (a write, a hash) counts for the stage that made it.
import { readFileSync } from 'node:fs';

const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const stageOf = (url, fn) => {
  if (/\/dist\/capture\//.test(url)) return 'capture (poll, records)';
  if (/\/dist\/decode\//.test(url)) return 'decode';
  if (/\/dist\/state\//.test(url)) return 'state + event JSON';
  if (/\/dist\/publish\/spool/.test(url)) return 'spool (disk)';
  if (/\/dist\/publish\//.test(url)) return 'delivery';
  if (/@nats-io/.test(url)) return 'nats.js';
  if (/\/dist\/(pipeline|agent)\.js/.test(url)) return 'pipeline glue';
  if (/\/dist\//.test(url)) return `other dist (${url.split('/dist/')[1]})`;
  if (fn === '(idle)') return '(idle)';
  if (fn === '(garbage collector)') return '(gc)';
  return null;
};
const hits = new Map();
for (const id of p.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const stages = new Map();
for (const [id, h] of hits) {
  let s = null;
  for (let x = id; x !== undefined && !s; x = parent.get(x)) {
    const cf = byId.get(x).callFrame;
    s = stageOf(cf.url ?? '', cf.functionName);
  }
  s ??= '(node internals, no tap frame)';
  stages.set(s, (stages.get(s) ?? 0) + h);
}
const total = p.samples.length;
const busy = total - (stages.get('(idle)') ?? 0);
console.log(`${total} samples, ${((100 * busy) / total).toFixed(1)} % busy\nshare of the busy time:`);
for (const [s, h] of [...stages].filter(([s]) => s !== '(idle)').sort((a, b) => b[1] - a[1])) {
  console.log(`${((100 * h) / busy).toFixed(1).padStart(5)} %  ${s}`);
}
