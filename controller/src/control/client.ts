// The CLI's side of the control socket.
import { connect } from 'node:net';
import type { ControlCommand, ControlReply } from './protocol.js';

export class ControlUnavailable extends Error {
  readonly exitCode = 1;
}

/** Send one command to the running agent; bounded in time. */
export async function sendControl(path: string, cmd: ControlCommand, timeoutMs = 10_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ControlUnavailable(`no answer from the agent on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => sock.write(`${JSON.stringify({ cmd })}\n`));
    sock.on('data', (d) => { buf += d.toString('utf8'); });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? `the agent is not running (no control socket at ${path})`
        : e.code === 'EACCES' ? `permission denied on ${path}: run as root` : e.message;
      reject(new ControlUnavailable(why));
    });
    sock.once('close', () => {
      clearTimeout(timer);
      const line = buf.split('\n')[0];
      try {
        resolve(JSON.parse(line) as ControlReply);
      } catch {
        if (buf) reject(new ControlUnavailable(`unreadable answer from the agent: ${line.slice(0, 200)}`));
      }
    });
  });
}
