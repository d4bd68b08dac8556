// The wazuh-db watch part asks wazuh-db again whenever its socket is a new one (a wazuh-db
// (re)started: agent/parts/wazuh-db.ts), and only then. The socket's identity was its device,
// inode and ctime: a chmod or chown of the socket — what wazuh-db does to it right after bind(2) —
// changes ctime, and every one was taken for a new wazuh-db and cost a resynchronisation (every
// agent asked again). The birth time tells a re-created socket from the same one changed.
import t from 'tap';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wazuhDbPart } from '../controller/src/agent/parts/wazuh-db.js';
import type { Tap } from '../controller/src/agent/tap.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const listen = (path: string) => new Promise<Server>((res, rej) => {
  const s = createServer();
  s.once('error', rej);
  s.listen(path, () => res(s));
});
const closed = (s: Server) => new Promise<void>((res) => s.close(() => res()));

t.test('a chmod or chown of the socket is no new wazuh-db; a socket made again is', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'wnt-wdbwatch-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  mkdirSync(join(home, 'queue/db'), { recursive: true });
  const sock = join(home, 'queue/db/wdb');
  const resyncs: string[] = [];
  const tap = {
    opts: { home },
    homePin: { holds: () => true },
    resync: async (why: string) => { resyncs.push(why); },
  };
  const part = wazuhDbPart(tap as unknown as Tap);
  part.start();
  t.teardown(() => part.stop());

  let srv = await listen(sock);
  await waitFor(() => resyncs.length === 1, 5000, 'a resynchronisation for the socket that appeared');
  t.same(resyncs, ['wazuh-db socket appeared']);

  // What wazuh-db does after bind(2), then an administrator's chmod: seen by inotify at once and by
  // the check each second; 2.5 s covers both.
  chmodSync(sock, 0o660);
  chownSync(sock, 0, 0);
  await sleep(300);
  chmodSync(sock, 0o600);
  await sleep(2500);
  t.equal(resyncs.length, 1, 'no resynchronisation for the same socket changed');

  // wazuh-db restarted: the socket removed and made again (its inode number may be the same).
  await closed(srv);
  try { unlinkSync(sock); } catch { /* removed by close */ }
  srv = await listen(sock);
  t.teardown(() => closed(srv));
  await waitFor(() => resyncs.length === 2, 5000, 'a resynchronisation for the socket made again');
  t.equal(resyncs.length, 2);
});
