#!/usr/bin/env node
// `run` owns its process: signals are taken from the first instant (before the
// modules load, a signal would otherwise end it with 143 and no clean-up), and
// once the agent's shutdown returned the process ends, whatever a library
// still holds open. Other commands end when their work is done.
const isRun = process.argv[2] === 'run';
const early = [];
const remember = (sig) => early.push(sig);
if (isRun) for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, remember);
globalThis.__wazuhNatsTapEarlySignals = { signals: early, release: () => { for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.off(sig, remember); } };
// `ps` shows the command, not node and a path (and the tests see from it that the signals are ours now).
process.title = ['wazuh-nats-tap', ...process.argv.slice(2)].join(' ');
// No allocation-site pretenuring for the long-running tap (docs/performance.md, item 11): while
// 100,000 agents first come in, V8 learns that objects from some sites live long and from then on
// allocates every object of those sites in the old generation — among them, through nats.js, every
// published message's buffers, which die milliseconds later and wait there for a mark-compact
// (4 MB/s of dead array buffers, peaks of 270–290 MB at 100,000 agents; 200–220 without it).
// V8 reads the flag at each GC, so setting it before anything is allocated is as good as `node --…`.
if (isRun) (await import('node:v8')).setFlagsFromString('--no-allocation-site-pretenuring');

const { main } = await import('../dist/cli.js');
const code = await main(process.argv.slice(2));
if (isRun) process.exit(code);
process.exitCode = code;
