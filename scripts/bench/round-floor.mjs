#!/usr/bin/env node
// The floor under a round of the tap on this machine, without the tap: what one wake-up of Node's event
// loop on a 1 ms timer costs in CPU, and what one NATS publish (one loopback write) adds to it — the two
// things every round of captured records pays at least once, whatever it carries. Each figure is the
// process's CPU time (user + sys, all threads) per round over 5,000 rounds, in one run, against a local
// nats-server.
//
// A third figure prices the "decode + state off the publishing thread": the same round when a
// worker thread wakes on the timer (where it would take the records, decode and apply them) and hands the
// round's events, as one 5 KB string, to the main thread, which publishes them. The difference to the
// second figure is what the hand-off costs a round before any work has moved.
// `node scripts/bench/round-floor.mjs` (docs/performance.md, "What is left").
import { Worker } from 'node:worker_threads';
import { connect } from '@nats-io/transport-node';
import { startNats } from './lib.mjs';

const ROUNDS = 5000;
const nats = await startNats();
const nc = await connect({ servers: nats.url });
const body = 'x'.repeat(5000); // a keepalive batch of about seven keepalives
const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.once('message', async (rounds) => {
  const body = 'x'.repeat(5000);
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setTimeout(r, 1));
    parentPort.postMessage((i & 1 ? 'y' : 'z') + body.slice(1)); // a new string each round, as new events would be
  }
  parentPort.postMessage(null);
});`;
try {
  const inThread = async (publish) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < ROUNDS; i++) {
      await new Promise((r) => setTimeout(r, 1));
      if (publish) nc.publish('wazuh.agent.batch.keepalive', body);
    }
    await nc.flush();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / ROUNDS;
  };
  const handedOff = async () => {
    const w = new Worker(WORKER, { eval: true });
    await new Promise((r) => w.once('online', r));
    const c0 = process.cpuUsage(); // the process's: both threads
    await new Promise((resolve) => {
      w.on('message', (m) => (m === null ? resolve() : nc.publish('wazuh.agent.batch.keepalive', m)));
      w.postMessage(ROUNDS);
    });
    await nc.flush();
    const c = process.cpuUsage(c0);
    await w.terminate();
    return (c.user + c.system) / ROUNDS;
  };
  const rows = [];
  for (let pass = 0; pass < 2; pass++) { // alternated, twice: the machine's noise shows in the spread
    rows.push(['wake', await inThread(false)]);
    rows.push(['publish', await inThread(true)]);
    rows.push(['worker', await handedOff()]);
  }
  const by = (k) => rows.filter((r) => r[0] === k).map((r) => r[1].toFixed(1)).join(' / ');
  console.log(`per round, µs of CPU: wake-up ${by('wake')}; wake-up + publish ${by('publish')}; ` +
    `worker wakes, hands the events to the main thread, which publishes ${by('worker')}`);
} finally {
  await nc.close();
  await nats.stop();
}
