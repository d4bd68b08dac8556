// What systemd's side of sd_notify(3) sees: an AF_UNIX datagram socket (a path, or `@name` in the
// abstract namespace) whose datagrams are collected with the time they came. Node has no datagram
// UNIX sockets; a python3 child binds and reads it (python3 is on every machine the tests run on).
import { spawn } from 'node:child_process';
import { onLines } from './lines.js';
import { waitFor } from './wait.js';

const READER = `
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
name = sys.argv[1]
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print('bound', flush=True)
while True:
    d = s.recv(65536)
    print(json.dumps({'at': time.monotonic() * 1000, 'msg': d.decode()}), flush=True)
`;

export interface Notification { at: number; msg: string; fields: Record<string, string> }

export interface NotifySocket {
  got: Notification[];
  /** The notifications with `KEY=value` among their fields. */
  with(key: string, value?: string): Notification[];
}

export async function notifySocket(t: { teardown(fn: () => unknown): void }, name: string): Promise<NotifySocket> {
  const p = spawn('python3', ['-c', READER, name], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => p.kill('SIGKILL'));
  const got: Notification[] = [];
  let bound = false;
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  onLines(p.stdout!, (l) => {
    if (l === 'bound') { bound = true; return; }
    const n = JSON.parse(l) as { at: number; msg: string };
    const fields = Object.fromEntries(n.msg.split('\n').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    got.push({ ...n, fields });
  });
  await waitFor(() => bound || p.exitCode !== null, 10_000, 'the notify socket to be bound');
  if (!bound) throw new Error(`cannot bind ${name}: ${err}`);
  return { got, with: (key, value) => got.filter((n) => key in n.fields && (value === undefined || n.fields[key] === value)) };
}
