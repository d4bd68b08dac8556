#!/usr/bin/env node
// The floor under a round of the tap on this machine, without the tap: what one wake-up of Node's event
// loop on a 1 ms timer costs in CPU, and what one NATS publish (one loopback write) adds to it — the two
// things every round of captured records pays at least once, whatever it carries. Each figure is the
// process's CPU time (user + sys) per round over 5,000 rounds, in one run, against a local nats-server.
// `node scripts/bench/round-floor.mjs` (docs/performance.md, "What is left").
import { connect } from '@nats-io/transport-node';
import { startNats } from './lib.mjs';

const ROUNDS = 5000;
const nats = await startNats();
const nc = await connect({ servers: nats.url });
try {
  const body = 'x'.repeat(5000); // a keepalive batch of about seven keepalives
  const measure = async (publish) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < ROUNDS; i++) {
      await new Promise((r) => setTimeout(r, 1));
      if (publish) nc.publish('wazuh.agent.batch.keepalive', body);
    }
    await nc.flush();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / ROUNDS;
  };
  const rows = [];
  for (let pass = 0; pass < 2; pass++) { // alternated, twice: the machine's noise shows in the spread
    rows.push(['wake-up on a 1 ms timer', await measure(false)]);
    rows.push(['wake-up + one 5 KB publish', await measure(true)]);
  }
  const by = (k) => rows.filter((r) => r[0] === k).map((r) => r[1].toFixed(1)).join(' / ');
  console.log(`per round, µs of CPU: wake-up ${by('wake-up on a 1 ms timer')}; wake-up + publish ${by('wake-up + one 5 KB publish')}`);
} finally {
  await nc.close();
  await nats.stop();
}
