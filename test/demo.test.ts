// `make demo` is the README's first command: the script it runs (scripts/demo.mjs) starts its own
// nats-server, the simulated manager and the tap, and prints every event it receives. Each kind of
// event must come out as a readable line — a kind the view does not know (keepalive batches, the
// default since issue 16, once printed as "TAP undefined") is a broken demo.
import t from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './helpers/tap-process.js';
import { bpfMark, leftBehind } from './helpers/bpf.js';
import { waitFor } from './helpers/wait.js';

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
  // The demo's manager polls its active agents every 5 s beside the agents' traffic (SimManager background):
  // the tap agrees with wazuh-db all along, so no poll ever corrects it.
  t.notOk(lines.some((l) => /initial_sync/.test(l)), 'no correction from the background polls');
  t.match(stdout, /demo stopped: nats-server, simulator and tap are gone/);
  t.same(await leftBehind(mark), [], "no program of the demo's tap left in the kernel");
});

t.test('a Ctrl-C at the terminal (SIGINT to the whole process group) stops everything in order: the tap\'s last word is shown', async (t) => {
  // The children shared the terminal's group: nats-server died of the SIGINT itself, before the tap had said
  // `stopped`, and the demo then waited ~4 s draining a connection to a server that was gone.
  const mark = bpfMark();
  const p = spawn(process.execPath, [join(ROOT, 'scripts/demo.mjs')], {
    cwd: ROOT, env: { ...process.env, DEMO_SECONDS: '60', NO_COLOR: '1' }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => { if (p.exitCode === null) process.kill(-p.pid!, 'SIGKILL'); });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = once(p, 'exit');
  await waitFor(() => /STATUS\s+agent 001/.test(out), 60_000, `the first status change: ${out}`);
  const work = /simulated manager in (\S+)\/ossec/.exec(out)?.[1];
  t.ok(work, 'the banner names the work directory');
  t.match(out, /npx wazuh-nats-tap status --control-socket \S+\/tap\.sock/, 'and how to reach the running tap');
  const t0 = performance.now();
  process.kill(-p.pid!, 'SIGINT');
  const [code] = await exited;
  t.equal(code, 0);
  t.ok(performance.now() - t0 < 4000, `stopped in ${Math.round(performance.now() - t0)} ms`);
  t.match(out, /TAP\s+stopped/, 'the tap said stopped, and it reached the live view');
  t.match(out, /demo stopped: nats-server, simulator and tap are gone/);
  t.notOk(existsSync(work!), 'its work directory removed');
  t.same(await leftBehind(mark), [], "no program of the demo's tap left in the kernel");
});

t.test('DEMO_SECONDS that is no number of seconds is refused, before anything starts', async (t) => {
  for (const v of ['abc', '', '0', '-5']) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/demo.mjs')], { env: { ...process.env, DEMO_SECONDS: v }, encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 2, `'${v}': exit 2`);
    t.match(r.stderr, /DEMO_SECONDS must be a number of seconds > 0/);
  }
});
