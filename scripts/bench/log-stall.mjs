#!/usr/bin/env node
// The tap at --log-level debug (a line an event) whose stdout nobody reads any more — journald
// stalled, `run | less` left alone: its RSS over 20 s of 3,000 frames/s (5 % status changes), then
// how long a SIGTERM takes and how it ends (util/log-output.ts). A probe:
// `node scripts/bench/log-stall.mjs`; `ROOT=<a checkout>` runs that checkout's tap (an A/B).
import { dirname, resolve } from 'node:path';

const root = process.env.ROOT ?? resolve(dirname(new URL(import.meta.url).pathname), '../..');
const { procSample, sleep, startNats, startSim, startTap } = await import(`${root}/scripts/bench/lib.mjs`);
const nats = await startNats();
const s = await startSim();
const tap = await startTap({ home: s.home, natsUrl: nats.url, logLevel: 'debug' });
try {
  const agents = 1000;
  await s.load({ agents, rate: 2000, count: agents, maxMs: 5000, statusPermille: 0, ipByAgent: true });
  await sleep(1000);
  tap.proc.stdout.pause(); // nobody reads any more: the pipe fills, then the tap's writes wait
  const rss0 = procSample(tap.pid).rss;
  const growth = [];
  const load = s.load({ agents, rate: 3000, count: 3000 * 20, maxMs: 22_000, statusPermille: 50, ipByAgent: true });
  for (let i = 1; i <= 4; i++) {
    await sleep(5000);
    growth.push(Math.round((procSample(tap.pid).rss - rss0) / 1048576));
  }
  await load;
  const t0 = Date.now();
  await tap.stop();
  console.log(`${root}: RSS growth at 5/10/15/20 s ${growth.join(' / ')} MB; SIGTERM → end ${Date.now() - t0} ms, `
    + `${tap.proc.signalCode ? `killed by ${tap.proc.signalCode}` : `exit ${tap.proc.exitCode}`}`);
} finally {
  await s.stop();
  await nats.stop();
}
