// The simulator's wazuh-analysisd as the alerts tests rely on it: real-shaped JSON lines,
// alerts.json a hard link to the day's file, rotation re-links it, and the file is written
// through stdio's buffer, so write(2) calls end in the middle of lines (checked under strace).
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager } from '../scripts/sim/manager.mjs';
import { ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { alertEvent, DEFAULT_THRESHOLDS } from '../controller/src/alerts/alert-event.js';

t.test('analysisd writes real-shaped alerts through stdio and rotates by re-linking alerts.json', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-simalerts-'));
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home });
  t.teardown(() => sim.stop());
  await sim.start();
  const day1 = statSync(sim.alertsFile);

  // Every write(2) analysisd makes to its alerts file, as strace sees it.
  const log = join(home, 'strace.log');
  const st = spawn('strace', ['-p', String(sim.analysisd!.pid), '-e', 'trace=write', '-e', 'signal=none', '-o', log], { stdio: 'ignore' });
  t.teardown(() => { st.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 500)); // attached
  const w = await sim.writeAlerts(10, 12);
  await new Promise((r) => setTimeout(r, 200));
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  // fd 1 is the reply to the harness; the others are the alerts file.
  const writes = readFileSync(log, 'utf8').split('\n').filter((l) => /^write\((\d+),/.exec(l)?.[1] !== undefined && !l.startsWith('write(1,'));
  const sizes = writes.map((l) => Number(/= (\d+)$/.exec(l)?.[1] ?? 0)).filter((n) => n > 0);
  t.ok(sizes.length >= 2, `several writes (${sizes.join(', ')})`);
  t.ok(sizes.some((n) => n === 4096), 'a full 4 KiB stdio buffer per write, whatever the line boundaries');

  const lines = readFileSync(sim.alertsFile, 'utf8').trim().split('\n');
  t.equal(lines.length, 10);
  const ends = new Set<number>();
  lines.reduce((at, l) => { ends.add(at + Buffer.byteLength(l) + 1); return at + Buffer.byteLength(l) + 1; }, 0);
  t.notOk(ends.has(sizes[0]), `the first write (${sizes[0]} bytes) ends inside a line`);
  const rules = { managerNode: 'node01', thresholds: DEFAULT_THRESHOLDS, minLevel: 0 };
  const evs = lines.map((l) => alertEvent(l, rules, 0));
  t.ok(evs.every((r) => 'event' in r), 'every line is an alert');
  const first = JSON.parse(lines[0]);
  t.match(first, {
    timestamp: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$/, rule: { level: 12, id: '5715', groups: Array },
    agent: { id: /^\d{3}$/, name: String, ip: String }, manager: { name: 'node01' }, id: /^\d+\.\d+$/,
    full_log: String, decoder: { name: 'sshd' }, data: { srcip: '192.168.1.50', dstuser: 'admin', srcport: String(w.first) },
    location: '/var/log/auth.log',
  });

  const next = await sim.rotateAlerts();
  const day2 = statSync(sim.alertsFile);
  t.not(day2.ino, day1.ino, 'alerts.json is a new file after the rotation');
  t.equal(statSync(next).ino, day2.ino, 'a hard link to the new day\'s file');
  t.match(next, /logs\/alerts\/\d{4}\/[A-Z][a-z]{2}\/ossec-alerts-\d\d\.json$/);
  t.equal(statSync(next).size, 0);
  await sim.writeAlerts(1, 3);
  await waitFor(() => statSync(next).size > 0, 2000, 'the new day written');
  await sim.writeAlertBytes('{"broken\n');
  t.match(readFileSync(sim.alertsFile, 'utf8'), /\n\{"broken\n$/, 'raw bytes as they are');
  await t.rejects(sim.writeAlerts(1, 16), /level must be/);
});

t.test('analysisd names agents as client.keys does (a removed one, or one not in it, is agent<N>)', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-simnames-'));
  const sim = new SimManager({ binDir: join(ROOT, 'build/sim/bin'), home, agents: [{ id: 2, name: 'db-server-01', ip: '10.0.0.2' }] });
  t.teardown(() => sim.stop());
  await sim.start();
  await sim.writeAlerts(3, 5);
  const lines = readFileSync(sim.alertsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const names = Object.fromEntries(lines.map((a) => [a.agent.id, a.agent.name]));
  t.same(names, { '001': 'agent1', '002': 'db-server-01', '003': 'agent3' });
  t.ok(lines.every((a) => a.predecoder.hostname === a.agent.name && a.full_log.includes(` ${a.agent.name} sshd[`)), 'the log line names the same host');
  const authd = await sim.spawnClient('wazuh-authd');
  await authd.remove(2);
  await sim.writeAlerts(3, 5);
  const after = readFileSync(sim.alertsFile, 'utf8').trim().split('\n').slice(3).map((l) => JSON.parse(l));
  t.equal(after.find((a) => a.agent.id === '002')?.agent.name, 'agent2', 'removed: no longer named by client.keys');
});
