// Managers in containers on one node (SPEC §2): each container's manager is
// /var/ossec inside its own root, on an overlay of a shared image, as two
// Wazuh pods (a master and a worker) on a Kubernetes node. One tap per
// container, given `--home /proc/<pid>/root/var/ossec`, sees its own
// manager's traffic and nothing of the other's, although every path text is
// the same. Real overlayfs mounts, chroot'ed simulated daemons, real eBPF.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimManager, installSimDaemon } from '../scripts/sim/manager.mjs';
import { natsCollecting } from './helpers/nats-server.js';
import { startTap, runTap, ROOT } from './helpers/tap-process.js';
import { waitFor } from './helpers/wait.js';
import { writeOssecConf } from './helpers/config.js';

const binDir = join(ROOT, 'build/sim/bin');
const DAEMONS = ['wazuh-db', 'wazuh-remoted', 'wazuh-analysisd', 'wazuh-monitord', 'wazuh-authd', 'python3', 'not-wazuh'];

const mount = (...args: string[]) => execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A directory removed (and unmounted, lazily) at the end of the test. */
function scratch(t: Tap.Test, tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `wnt-ct-${tag}-`));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function unmountLater(t: Tap.Test, dir: string) {
  t.teardown(() => { try { execFileSync('umount', ['-l', dir]); } catch { /* not mounted */ } });
}

/** A container image with a Wazuh manager installed in /var/ossec (bin/, queue/db/). On tmpfs when asked. */
function image(t: Tap.Test, onTmpfs: boolean): string {
  const img = scratch(t, 'img');
  if (onTmpfs) {
    mount('-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', img);
    unmountLater(t, img);
  }
  for (const d of DAEMONS) installSimDaemon(binDir, img, d);
  mkdirSync(join(img, 'queue/db'), { recursive: true });
  return img;
}

/**
 * A container's root: /usr of the host, and /var/ossec (or `homeAt`, a path in the container) an overlay
 * of the image with a layer of its own.
 */
function container(t: Tap.Test, img: string, tag: string, homeAt = '/var/ossec'): string {
  const root = scratch(t, tag);
  const layer = scratch(t, `${tag}-layer`);
  for (const d of ['usr', homeAt, 'tmp']) mkdirSync(join(root, d), { recursive: true });
  for (const l of ['lib', 'lib64', 'bin', 'sbin']) symlinkSync(`usr/${l}`, join(root, l));
  mount('--bind', '/usr', join(root, 'usr'));
  unmountLater(t, join(root, 'usr'));
  mkdirSync(join(layer, 'upper'));
  mkdirSync(join(layer, 'work'));
  mount('-t', 'overlay', 'overlay', '-o', `lowerdir=${img},upperdir=${join(layer, 'upper')},workdir=${join(layer, 'work')}`, join(root, homeAt));
  unmountLater(t, join(root, homeAt));
  return root;
}

const A1 = { id: 1, name: 'master-agent-01', ip: '10.0.1.1' };
const A2 = { id: 2, name: 'master-agent-02', ip: '10.0.1.2' };

async function podWithTap(t: Tap.Test, root: string, natsUrl: string, node: string, o: { homeAt?: string; tapHome?: string; hostSpool?: boolean } = {}) {
  const sim = new SimManager({ binDir, home: o.homeAt ?? '/var/ossec', root, agents: [A1, A2] });
  t.teardown(() => sim.stop());
  writeOssecConf(sim.home);
  await sim.start();
  // The home as the host reaches it: through the manager's own root.
  const home = `/proc/${sim.db!.pid}/root${o.tapHome ?? '/var/ossec'}`;
  const hostDir = scratch(t, `${node}-sock`);
  const sock = join(hostDir, 'tap.sock');
  // The tap's configuration is the host's: a container's files never configure it (its root user writes them).
  const conf = join(hostDir, 'nats-tap.conf');
  // hostSpool: the spool on the host (no link below the container's root is followed on the way to it).
  const spool = o.hostSpool ? `<spool_dir>${join(hostDir, 'spool')}</spool_dir>` : '';
  writeFileSync(conf, `<ossec_config><nats><enabled>yes</enabled><metrics>no</metrics>${spool}</nats></ossec_config>\n`, { mode: 0o640 });
  const tap = await startTap(['run', '--config', conf, '--home', home, '--nats-url', natsUrl, '--node', node, '--control-socket', sock,
    '--metrics', 'no']);
  t.teardown(() => tap.stop('SIGKILL'));
  return { sim, tap, home, sock };
}

t.test('two manager containers from one image: each tap sees its own manager only', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const img = image(t, false);
  const master = await podWithTap(t, container(t, img, 'master'), nats.url, 'master');
  const worker = await podWithTap(t, container(t, img, 'worker'), nats.url, 'worker');

  // The same agent ids in both, different transitions: master's 1 starts and keeps alive, 2 stays;
  // the worker's 1 starts then shuts down, its 2 starts.
  await master.sim.startup(A1);
  await master.sim.keepalive(A1);
  await worker.sim.startup(A1);
  await worker.sim.shutdown(A1);
  await worker.sim.startup(A2);
  await worker.sim.pollActive(); // lists none of master's agents: must correct nothing there
  await master.sim.pollActive();

  const statuses = (node: string) => got.filter((m) => m.body.event_type === 'status_change' && m.body.manager_node === node)
    .map((m) => [m.body.agent_id, m.body.previous_status, m.body.current_status]);
  await waitFor(() => statuses('master').length >= 2 && statuses('worker').length >= 3, 10_000, 'both taps\' events');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(statuses('master'), [['001', 'never_connected', 'pending'], ['001', 'pending', 'active']], 'the master\'s tap: its own agents');
  t.same(statuses('worker'), [['001', 'never_connected', 'pending'], ['001', 'pending', 'disconnected'], ['002', 'never_connected', 'pending']],
    'the worker\'s tap: its own agents');

  for (const pod of [master, worker]) {
    const st = JSON.parse((await runTap(['status', '--json', '--control-socket', pod.sock])).stdout);
    t.match(st.identity.wdb_dir, `${pod.home}/queue/db (`, 'status names the container\'s home');
    const targets = new Set((st.targets as { pid: number }[]).map((x) => x.pid));
    const other = pod === master ? worker : master;
    t.ok(Object.values(pod.sim.pids()).filter((p) => p !== pod.sim.analysisd!.pid).every((p) => targets.has(p)), 'its daemons are targets');
    t.notOk(Object.values(other.sim.pids()).some((p) => targets.has(p)), 'the other container\'s are not');
  }
});

t.test('an image on another filesystem than the container\'s layer (tmpfs under ext4): still its own manager', async (t) => {
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const pod = await podWithTap(t, container(t, image(t, true), 'tmpfs'), nats.url, 'pod');
  await pod.sim.startup(A2);
  await pod.sim.keepalive(A2);
  await waitFor(() => got.filter((m) => m.body.event_type === 'status_change').length >= 2, 10_000, 'the pod\'s events');
  t.same(got.filter((m) => m.body.event_type === 'status_change').map((m) => [m.body.agent_id, m.body.current_status, m.body.source]),
    [['002', 'pending', 'remoted'], ['002', 'active', 'remoted']]);
});

t.test('a container whose home is an absolute link (/var/ossec -> a volume\'s path): its own manager, never the host\'s at that path', async (t) => {
  // The container keeps its manager in /srv/…/ossec and links /var/ossec to it, absolutely. The host has a
  // manager of its own at that very path. The kernel's walk of /proc/<pid>/root/var/ossec resolved the
  // container's link against the host's root: the tap watched the host's manager, asked its wazuh-db for
  // its agents and published them as the container's — and nothing of the container's own.
  const { nats, got } = await natsCollecting(t, 'wazuh.>');
  const at = join(scratch(t, 'vol'), 'ossec'); // the same absolute path on the host and in the container
  const A7 = { id: 7, name: 'host-agent-07', ip: '10.9.9.7' };
  const host = new SimManager({ binDir, home: at, agents: [A7] });
  t.teardown(() => host.stop());
  await host.start();
  const root = container(t, image(t, false), 'linked', at);
  mkdirSync(join(root, 'var'), { recursive: true });
  symlinkSync(at, join(root, 'var/ossec'));
  // The default spool_dir (<home>/var/nats-tap) is reached through the container's link: refused (its root
  // user could point it anywhere on the host), so the spool is the host's, as docs/configuration.md says.
  const pod = await podWithTap(t, root, nats.url, 'linked', { homeAt: at, tapHome: '/var/ossec', hostSpool: true });

  await host.startup(A7);
  await host.keepalive(A7);
  await pod.sim.startup(A1);
  await pod.sim.keepalive(A1);
  const statuses = () => got.filter((m) => m.body.event_type === 'status_change' && m.body.manager_node === 'linked')
    .map((m) => [m.body.agent_id, m.body.previous_status, m.body.current_status]);
  await waitFor(() => statuses().length >= 2, 10_000, 'the container\'s events');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(statuses(), [['001', 'never_connected', 'pending'], ['001', 'pending', 'active']], 'the container\'s manager, not the host\'s');
  t.notOk(got.some((m) => m.body.agent_id === '007'), 'nothing of the host\'s manager at the same path');
  const st = JSON.parse((await runTap(['status', '--json', '--control-socket', pod.sock])).stdout);
  const targets = new Set((st.targets as { pid: number }[]).map((x) => x.pid));
  t.notOk(Object.values(host.pids()).some((p) => targets.has(p)), 'the host\'s daemons are no targets');
  t.ok(targets.has(pod.sim.db!.pid), 'the container\'s wazuh-db is');
});
