// `make demo` is the README's first command: the script it runs (scripts/demo.mjs) starts its own
// nats-server, the simulated manager and the tap, and prints every event it receives. Each kind of
// event must come out as a readable line — a kind the view does not know (keepalive batches, the
// default since issue 16, once printed as "TAP undefined") is a broken demo.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';

const run = promisify(execFile);

t.test('the demo shows status changes, keepalive batches, alerts and the tap, and leaves nothing behind', async (t) => {
  const mark = bpfMark();
  const { stdout } = await run(process.execPath, [join(ROOT, 'scripts/demo.mjs')], {
    cwd: ROOT, env: { ...process.env, DEMO_SECONDS: '10', NO_COLOR: '1' }, timeout: 90_000, maxBuffer: 1 << 24,
  });
  const lines = stdout.split('\n');
  t.notOk(lines.some((l) => /undefined|NaN|\[object Object\]/.test(l)), 'no line shows a value the view did not know');
  t.ok(lines.some((l) => /STATUS\s+agent 00[123] \S+\s+\w+\s+→ (pending|active)\s+(agent_startup|keepalive)/.test(l)), 'status changes, with from → to and the reason');
  t.ok(lines.some((l) => /KEEPALIVE\s+\d+ in a batch: 00[123] active/.test(l)), 'keepalive batches, with each agent of the batch');
  t.ok(lines.some((l) => /ALERT\s+agent 00[123] .* rule 5715 level \d+/.test(l)), 'alerts');
  t.ok(lines.some((l) => /TAP\s+started/.test(l)), "the tap's own start event");
  t.match(stdout, /demo stopped: nats-server, simulator and tap are gone/);
  t.same(await leftBehind(mark), [], "no program of the demo's tap left in the kernel");
});
