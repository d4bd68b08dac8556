#!/usr/bin/env node
// `run` owns its process: signals are taken from the first instant (before the
// modules load, a signal would otherwise end it with 143 and no clean-up), and
// once the agent's shutdown returned the process ends, whatever a library
// still holds open — or a disk holds in libuv's threads. Other commands end when
// their work is done.
// `tail` and `capture` take SIGTERM and SIGINT from the first instant too (util/early-signals.ts):
// a Ctrl-C while they load ends them with exit 0 and their summary, as one a second later does.
const isRun = process.argv[2] === 'run';
const early = [];
const remember = (sig) => early.push(sig);
const earlySignals = isRun ? ['SIGTERM', 'SIGINT', 'SIGHUP'] : ['tail', 'capture'].includes(process.argv[2]) ? ['SIGTERM', 'SIGINT'] : [];
for (const sig of earlySignals) process.on(sig, remember);
globalThis.__wazuhNatsTapEarlySignals = { signals: early, release: () => { for (const sig of earlySignals) process.off(sig, remember); } };
// `ps` shows the command, not node and a path (and the tests see from it that the signals are ours now),
// with no credentials: /proc/<pid>/cmdline is every user's to read, and --nats-url may carry a password
// (the value of --nats-url masked as a URL list, and any URL with user info in any other argument).
// A checkout that was never built has no dist/: said in one line, not as a module-resolution stack.
const { existsSync, readFileSync } = await import('node:fs');
if (!existsSync(new URL('../dist/cli.js', import.meta.url))) {
  process.stderr.write("wazuh-nats-tap: dist/ is missing: build it with 'make' (or 'make build')\n");
  process.exit(1);
}
// Loading the modules opens many files at once (Node's ESM loader reads the graph concurrently): under
// a low open-files limit (RLIMIT_NOFILE of 20-64) it fails with EMFILE, or with a "Cannot find
// package" for a file that is there (the loader took the failed read of its package.json for none).
// Said in one line with the limit and how to raise it, exit 1 (a failed start), not as Node's stack.
// The soft and hard RLIMIT_NOFILE ('unlimited' or a number), read now: once the loader failed, the
// descriptors it holds may leave none to read them with. null: unknown.
const nofile = (() => {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? { soft: m[1], hard: m[2] } : null;
  } catch {
    return null;
  }
})();
/** Whether a failed import is the process (EMFILE) or the system (ENFILE) out of descriptors: the code, or null. */
function outOfDescriptors(err) {
  for (let e = err, depth = 0; e && depth < 8; e = e.cause, depth++) {
    if (e.code === 'EMFILE' || e.code === 'ENFILE') return e.code;
    const named = /\b(EMFILE|ENFILE)\b/.exec(String(e.message ?? ''));
    if (named) return named[1];
  }
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && Number(nofile?.soft) < 1024) {
    // "Cannot find package '/…/node_modules/fast-xml-parser/index.js'" (a guess at its main file)
    // for a package that is there, under a limit below the usual 1024: the loader could not open
    // its package.json. A package or file really missing is Node's own error, as it was.
    const path = /'(\/[^']+)'/.exec(String(err.message))?.[1];
    const pkg = path && /^(.*\/node_modules\/(?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
    if (path && (existsSync(path) || (pkg && existsSync(`${pkg}/package.json`)))) return 'EMFILE';
  }
  return null;
}
async function load(specifier) {
  try {
    return await import(specifier);
  } catch (err) {
    const code = outOfDescriptors(err);
    if (!code) throw err;
    const limits = nofile ? ` (RLIMIT_NOFILE: soft ${nofile.soft}, hard ${nofile.hard})` : '';
    process.stderr.write(code === 'ENFILE'
      ? "wazuh-nats-tap: cannot start: the system's open-files table is full (ENFILE): raise fs.file-max (sysctl) or find what holds the files\n"
      : `wazuh-nats-tap: cannot start: the open-files limit is too low (EMFILE while loading)${limits}: `
        + 'raise it to 1024 or more: LimitNOFILE= in the unit (systemctl edit wazuh-nats-tap), or ulimit -n 1024 in the shell\n');
    process.exit(1);
  }
}
const { maskUrl, maskUrlsIn } = await load('../dist/util/mask-url.js');
const URL_FLAG = /^--nats[-_]?url$/i;
process.title = ['wazuh-nats-tap', ...process.argv.slice(2).map((arg, i, all) => {
  const inline = /^(--nats[-_]?url=)([^]*)$/i.exec(arg);
  if (inline) return inline[1] + maskUrl(inline[2]);
  return URL_FLAG.test(all[i - 1] ?? '') ? maskUrl(arg) : maskUrlsIn(arg);
})].join(' ');
// No allocation-site pretenuring for the long-running tap (docs/performance.md, item 11). Once most
// objects of an allocation site have been seen to survive — as while 100,000 agents first come in —
// V8 allocates that site's later objects straight in the old generation; some site on the way of
// every published message had been so marked, and its buffers, dead milliseconds later, waited
// there for a mark-compact (3–9 MB/s; peaks of 271–286 MB at 100,000 agents, 198–238 without).
// Set here, before the modules load, it measured as the `node` flag does.
// And an old generation that grows by half what the last mark-compact kept, not by V8's factor of up
// to 4 (docs/performance.md, item 18): the tap's live heap is its agents, nearly all of it kept, so a
// larger factor only lets garbage pile up before the next mark-compact — peaks of 191–195 MB at
// 100,000 agents, 156–162 with it, for the same CPU. V8 reads it at each mark-compact, so it is not
// too late here as it would be for the young generation's size.
if (isRun) {
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
  v8.setFlagsFromString('--heap-growing-percent=50');
}

const { main } = await load('../dist/cli.js');
const code = await main(process.argv.slice(2));
if (!isRun) {
  // tail and capture gave up on a reader that does not read (util/line-output.ts): Node's stdout
  // holds what it queued for the pipe until the reader takes it, so the process ends here instead.
  const { outputAbandoned } = await load('../dist/util/line-output.js');
  if (outputAbandoned()) process.exit(code);
}
if (isRun) {
  // Not process.exit() alone: it would wait for a thread of libuv's pool that a hung disk holds (agent/process-exit.ts).
  const { exitWhenIdle } = await load('../dist/agent/process-exit.js');
  await exitWhenIdle(code, 1000);
}
process.exitCode = code;
