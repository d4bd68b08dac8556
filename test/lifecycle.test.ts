// The agent's lifecycle on its own (agent/lifecycle.ts): parts start in order and
// stop in reverse through one path, whatever asks for the stop and whenever.
import t from 'tap';
import { pino } from 'pino';
import { Lifecycle, type Part } from '../controller/src/agent/lifecycle.js';
import { ConfigError } from '../controller/src/errors.js';

const quiet = pino({ level: 'silent' });

/** A part that records its calls; start may be held open until released. */
function part(name: string, trace: string[], o: { hold?: Promise<void>; failStart?: Error; hangStop?: boolean } = {}): Part {
  return {
    name,
    async start() {
      trace.push(`start ${name}`);
      if (o.failStart) throw o.failStart;
      await o.hold;
      trace.push(`started ${name}`);
    },
    async stop() {
      trace.push(`stop ${name}`);
      if (o.hangStop) await new Promise(() => {});
    },
  };
}

t.test('starts in order, waits for the stop, stops in reverse; the first request decides the code', async (t) => {
  const trace: string[] = [];
  const life = new Lifecycle(quiet);
  for (const n of ['a', 'b', 'c']) life.add(part(n, trace));
  const run = life.run();
  await new Promise((r) => setTimeout(r, 20));
  t.ok(life.ready, 'ready once every part started');
  life.requestStop({ why: 'SIGTERM', code: 0 });
  life.requestStop({ why: 'SIGTERM again', code: 1, err: new Error('late') }); // already stopping: changes nothing
  t.equal(await run, 0);
  t.same(trace, ['start a', 'started a', 'start b', 'started b', 'start c', 'started c', 'stop c', 'stop b', 'stop a']);
});

t.test('a stop during a slow start does not wait for it, and stops what began', async (t) => {
  const trace: string[] = [];
  const life = new Lifecycle(quiet);
  life.add(part('lock', trace));
  life.add(part('sync', trace, { hold: new Promise(() => {}) })); // never finishes by itself
  life.add(part('capture', trace));
  const run = life.run();
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(life.ready);
  const t0 = Date.now();
  life.requestStop({ why: 'SIGTERM', code: 0 });
  t.equal(await run, 0);
  t.ok(Date.now() - t0 < 500, 'at once');
  t.same(trace, ['start lock', 'started lock', 'start sync', 'stop sync', 'stop lock'], 'capture never started');
});

t.test('a stop requested before run starts nothing', async (t) => {
  const trace: string[] = [];
  const life = new Lifecycle(quiet);
  life.add(part('a', trace));
  life.requestStop({ why: 'SIGTERM', code: 0 });
  t.equal(await life.run(), 0);
  t.same(trace, []);
});

t.test('a part that fails to start is fatal: its exit code, and the parts before it stopped', async (t) => {
  const trace: string[] = [];
  const life = new Lifecycle(quiet);
  life.add(part('a', trace));
  life.add(part('b', trace, { failStart: new ConfigError('another instance runs') }));
  life.add(part('c', trace));
  t.equal(await life.run(), 2, 'ConfigError: 2');
  t.same(trace, ['start a', 'started a', 'start b', 'stop b', 'stop a']);
  t.match(life.stopping, { why: /starting b/, code: 2 });
});

t.test('a part that does not stop: the deadline ends the process with the code', async (t) => {
  const trace: string[] = [];
  let exited: number | null = null;
  let armedMs = 0;
  let disarmed = false;
  const life = new Lifecycle(quiet, 200, { exit: (code) => { exited = code; }, arm: (ms) => { armedMs = ms; return () => { disarmed = true; }; } });
  life.add(part('a', trace));
  life.add(part('stuck', trace, { hangStop: true }));
  const run = life.run();
  await new Promise((r) => setTimeout(r, 20));
  life.requestStop({ why: 'fatal', code: 1, err: new Error('boom') });
  const t0 = Date.now();
  await Promise.race([run, new Promise((r) => setTimeout(r, 1000))]);
  t.equal(exited, 1, 'hard exit with the code');
  t.ok(Date.now() - t0 < 900);
  t.equal(armedMs, 2200, 'the kernel\'s deadline: 2 s after ours');
  t.ok(disarmed, 'disarmed once the shutdown returned');
});

t.test('SIGHUP: deferred during start-up, handled once ready, ignored once stopping, never fatal', async (t) => {
  let release: () => void = () => {};
  const hold = new Promise<void>((r) => { release = r; });
  const life = new Lifecycle(quiet);
  let reloads = 0;
  life.setReload(() => { reloads++; if (reloads === 2) throw new Error('bad file'); });
  life.add(part('slow', [], { hold }));
  const run = life.run();
  life.hup();
  life.hup();
  t.equal(reloads, 0, 'not during start-up');
  release();
  await new Promise((r) => setTimeout(r, 20));
  t.equal(reloads, 1, 'once after start-up, for both');
  life.hup();
  t.equal(reloads, 2, 'a failing reload is logged, not thrown');
  life.requestStop({ why: 'SIGTERM', code: 0 });
  life.hup();
  t.equal(reloads, 2, 'none once stopping');
  t.equal(await run, 0);
});

t.test('watchers (systemd): told ready once every part started, stopping before the first part stops; one that throws changes nothing', async (t) => {
  const trace: string[] = [];
  const life = new Lifecycle(quiet);
  life.watch({ ready: () => { throw new Error('a broken watcher'); }, stopping: () => { throw new Error('again'); } });
  life.watch({ ready: () => trace.push('ready'), stopping: (req) => trace.push(`stopping ${req.why}`) });
  for (const n of ['a', 'b']) life.add(part(n, trace));
  const run = life.run();
  await new Promise((r) => setTimeout(r, 20));
  life.requestStop({ why: 'SIGTERM', code: 0 });
  t.equal(await run, 0);
  t.same(trace, ['start a', 'started a', 'start b', 'started b', 'ready', 'stopping SIGTERM', 'stop b', 'stop a']);

  const never: string[] = [];
  const failed = new Lifecycle(quiet);
  failed.watch({ ready: () => never.push('ready'), stopping: (req) => never.push(`stopping ${req.why}`) });
  failed.add(part('a', never, { failStart: new Error('no') }));
  t.equal(await failed.run(), 1);
  t.same(never, ['start a', 'stopping fatal error while starting a', 'stop a'], 'a start that failed is never ready');
});
