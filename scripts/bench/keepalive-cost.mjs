#!/usr/bin/env node
// The tap's CPU per keepalive (all its threads) at a steady rate, with the real tap, nats-server and the
// simulated manager: a quick probe while optimising (`node scripts/bench/keepalive-cost.mjs [rate] [seconds]`).
import { procSample, sleep, startNats, startSim, startTap } from './lib.mjs';

const rate = Number(process.argv[2] ?? 5000);
const seconds = Number(process.argv[3] ?? 10);
const nats = await startNats();
const s = await startSim();
const tap = await startTap({ home: s.home, natsUrl: nats.url, extra: process.env.TAP_EXTRA ?? '' });
try {
  const agents = 2000;
  await s.load({ agents, rate: 2000, count: agents, maxMs: 5000, statusPermille: 0 }); // every agent active first
  await sleep(1000);
  const a = procSample(tap.pid);
  const r = await s.load({ agents, rate, count: rate * seconds, maxMs: seconds * 1000 + 2000, statusPermille: 0 });
  await sleep(500);
  const b = procSample(tap.pid);
  const cpuUs = (b.cpu - a.cpu) * 1e6;
  console.log(`${r.keepalives} keepalives at ${rate}/s: tap ${(cpuUs / r.keepalives).toFixed(2)} µs CPU each (${((b.cpu - a.cpu) * 1000 / ((b.t - a.t) || 1) * 100).toFixed(0)} % of a core), rss ${Math.round(b.rss / 1048576)} MB, errors ${r.errors}`);
} finally {
  await tap.stop();
  await s.stop();
  await nats.stop();
}
