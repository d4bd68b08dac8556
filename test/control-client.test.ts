// The CLI's side of the control socket against servers that misbehave (issue 14, item 6): a
// connection closed without a reply is an error (exit 1 and a message), never a silent exit 0;
// a huge unreadable answer is quoted clipped.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sendControl } from '../controller/src/control/client.js';
import { runTap } from './helpers/tap-process.js';

async function server(t: { teardown(fn: () => unknown): void }, onConn: (s: Socket) => void): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'wnt-ctlc-')), 'ctl.sock');
  const srv: Server = createServer((s) => { s.on('error', () => {}); onConn(s); });
  await new Promise<void>((r) => srv.listen(path, r));
  t.teardown(() => new Promise((r) => srv.close(r)));
  return path;
}

t.test('accepted and closed at once: an error, exit 1 with a message', async (t) => {
  const path = await server(t, (s) => s.destroy());
  await t.rejects(sendControl(path, 'status'), /closed the connection without answering/);
  for (const cmd of ['status', 'attach', 'detach']) {
    const r = await runTap([cmd, '--control-socket', path]);
    t.equal(r.code, 1, `${cmd}: exit 1`);
    t.match(r.stderr, new RegExp(`wazuh-nats-tap ${cmd}: the agent on .* closed the connection without answering`));
    t.equal(r.stdout, '', 'nothing printed as if it worked');
  }
});

t.test('the command read, then closed without a reply: an error', async (t) => {
  const path = await server(t, (s) => s.once('data', () => s.end()));
  await t.rejects(sendControl(path, 'status'), /closed the connection without answering/);
  const r = await runTap(['status', '--json', '--control-socket', path]);
  t.equal(r.code, 1);
});

t.test('a huge answer that is not JSON is quoted clipped', async (t) => {
  const path = await server(t, (s) => s.once('data', () => s.end('x'.repeat(1 << 20))));
  const r = await runTap(['status', '--control-socket', path]);
  t.equal(r.code, 1);
  t.match(r.stderr, /unreadable answer from the agent on .*: x{80}…\n$/);
  t.ok(r.stderr.length < 400, `a short message (${r.stderr.length} bytes)`);
});

t.test('an answer that is not JSON, with terminal controls in it: quoted with them escaped, none raw on stderr', async (t) => {
  const path = await server(t, (s) => s.once('data', () => s.end('\u001b]0;PWNED\u0007\r\u001b[2Kok \u009b31m\n')));
  const r = await runTap(['status', '--control-socket', path]);
  t.equal(r.code, 1);
  t.match(r.stderr, /unreadable answer from the agent on .*: /);
  t.notOk(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(r.stderr), `no raw control character: ${JSON.stringify(r.stderr)}`);
});
