#!/usr/bin/env node
// The tap's CPU per keepalive (all its threads) at a steady rate, with the real tap, nats-server and the
// simulated manager: a quick probe while optimising (`node scripts/bench/keepalive-cost.mjs [rate] [seconds]`).
import { readdirSync, readFileSync } from 'node:fs';
import { procSample, sleep, startNats, startSim, startTap } from './lib.mjs';

/** CPU seconds of each thread of a process, by thread name (summed over threads of the same name). */
function threads(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out[`${name} user`] = (out[`${name} user`] ?? 0) + Number(f[11]) / 100;
      out[`${name} sys`] = (out[`${name} sys`] ?? 0) + Number(f[12]) / 100;
      // Wake-ups: a thread that sleeps and is woken switches out voluntarily once (the VM's price of
      // a wake-up is ~30 µs of CPU here, docs/performance.md "Where the time goes").
      const sw = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (sw) out[`${name} wakes`] = (out[`${name} wakes`] ?? 0) + Number(sw[1]) * 1e-6; // scaled as the CPU seconds are
    } catch { /* gone */ }
  }
  return out;
}

const rate = Number(process.argv[2] ?? 5000);
const seconds = Number(process.argv[3] ?? 10);
const nats = await startNats();
const s = await startSim({ cpuPerRequestUs: Number(process.env.WDB_COST_US ?? 0), registered: process.env.UNREGISTERED === '1' ? 0 : 2000 }); // 33: the real wazuh-db's CPU a request
const tap = await startTap({ home: s.home, natsUrl: nats.url, extra: process.env.TAP_EXTRA ?? '', nodeArgs: (process.env.TAP_NODE_ARGS ?? '').split(' ').filter(Boolean) });
try {
  const agents = 2000;
  const ipByAgent = process.env.IP_BY_FRAME !== '1'; // a real agent's keepalive is the same bytes every time
  await s.load({ agents, rate: 2000, count: agents, maxMs: 5000, statusPermille: 0, ipByAgent }); // every agent active first
  // WARM_S seconds of load first (at 7,000/s, or the rate if higher), not counted: V8 compiles the hot
  // paths in the first seconds under load (one window of 8 s: ~29 µs a keepalive at 7,000/s, then 24.6,
  // 22.9, 21.8, 21.6) — at a low rate, in the first minutes —, a once-per-process cost that would blur an A/B.
  const warmS = Number(process.env.WARM_S ?? 10);
  const warmRate = Math.max(rate, 7000);
  if (warmS > 0) await s.load({ agents, rate: warmRate, count: Math.round(warmRate * warmS), maxMs: warmS * 1000 + 2000, statusPermille: 0, ipByAgent });
  await sleep(1000);
  const a = procSample(tap.pid);
  const ta = threads(tap.pid);
  const r = await s.load({ agents, rate, count: rate * seconds, maxMs: seconds * 1000 + 2000, statusPermille: 0, ipByAgent });
  await sleep(500);
  const b = procSample(tap.pid);
  const tb = threads(tap.pid);
  const cpuUs = (b.cpu - a.cpu) * 1e6;
  console.log(`${r.keepalives} keepalives at ${rate}/s: tap ${(cpuUs / r.keepalives).toFixed(2)} µs CPU each (${((b.cpu - a.cpu) * 1000 / ((b.t - a.t) || 1) * 100).toFixed(0)} % of a core), rss ${Math.round(b.rss / 1048576)} MB, errors ${r.errors}`);
  const st = await tap.status();
  if (process.env.TAP_STDERR) console.log(tap.stderr());
  console.log(`  fast path: ${JSON.stringify(st.fastpath)}; captured ${st.counters?.captured}`);
  console.log(`  latency (ms, the tap's last 4,096 messages): ${JSON.stringify(st.nats?.latency_ms)}`);
  const per = (k) => ((tb[k] - (ta[k] ?? 0)) * 1e6) / r.keepalives;
  const keys = Object.keys(tb);
  console.log(`  by thread (µs per keepalive): ${keys.filter((k) => !k.endsWith(' wakes')).map((k) => `${k} ${per(k).toFixed(1)}`).join(', ')}`);
  console.log(`  wake-ups per keepalive (voluntary context switches): ${keys.filter((k) => k.endsWith(' wakes')).map((k) => `${k.slice(0, -6)} ${per(k).toFixed(2)}`).join(', ')}`);
} finally {
  await tap.stop();
  await s.stop();
  await nats.stop();
}
