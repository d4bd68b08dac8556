// A capture of the wazuh-db socket of a home (argv[2]) in a process of its own, for tests that need
// the capture to run where the test's process cannot (another pid namespace). Prints one JSON line
// `{"ready":true,"pidMax":N}` once attached — pidMax as this process reads kernel.pid_max, what the
// shim sizes the kernel's pid marks by — then `{"tgid":N}` for each request record; ends at EOF on stdin.
import { readFileSync } from 'node:fs';
import { Capture } from '../../controller/src/capture/capture.js';
import { artefacts } from '../../controller/src/paths.js';

const home = process.argv[2];
const capture = Capture.open({
  ...artefacts(), home, onRescanError: (e) => { process.stderr.write(`rescan: ${e.message}\n`); },
});
capture.start((batch) => {
  for (const r of batch) if (r.direction === 'request') process.stdout.write(`${JSON.stringify({ tgid: r.tgid })}\n`);
}, (e) => { process.stderr.write(`${e.message}\n`); process.exitCode = 1; });
capture.attach();
const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
process.stdout.write(`${JSON.stringify({ ready: true, pidMax })}\n`);
process.stdin.resume();
process.stdin.on('end', () => { void capture.close().then(() => process.exit()); });
