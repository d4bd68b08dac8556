// The CLI's side of the control socket.
import { connect } from 'node:net';
import type { ControlCommand, ControlReply } from './protocol.js';
import { clip, clipPath, clipRuns } from '../util/clip.js';
import { escapeUnsafe } from '../util/printable.js';

/** An answer is a line of JSON (a status is a few KB): more than this is not an answer. */
const MAX_REPLY = 16 * 1024 * 1024;

/** The agent could not be reached or did not answer: exit 1, or 3 when the caller may not (EACCES, EPERM: not root). */
export class ControlUnavailable extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** Send one command to the running agent; bounded in time. */
export async function sendControl(path: string, cmd: ControlCommand, timeoutMs = 10_000): Promise<ControlReply> {
  const where = clipPath(path);
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ControlUnavailable(`no answer from the agent on ${where} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('connect', () => sock.write(`${JSON.stringify({ cmd })}\n`));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.length > MAX_REPLY) {
        clearTimeout(timer);
        sock.destroy();
        reject(new ControlUnavailable(`unreadable answer from the agent on ${where}: more than ${MAX_REPLY} bytes`));
      }
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'EACCES' || e.code === 'EPERM') {
        reject(new ControlUnavailable(`permission denied on ${where}: run as root`, 3)); // SPEC §7: missing privileges
        return;
      }
      const why = e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? `the agent is not running (no control socket at ${where})`
        : e.code === 'EPIPE' || e.code === 'ECONNRESET' ? `the agent on ${where} closed the connection without answering (is it stopping? try again)`
          : clipRuns(e.message);
      reject(new ControlUnavailable(why));
    });
    sock.once('close', () => {
      clearTimeout(timer);
      // A connection closed without a line is no answer (an agent stopping, or not an agent at all).
      if (!buf) {
        reject(new ControlUnavailable(`the agent on ${where} closed the connection without answering (is it stopping? try again)`));
        return;
      }
      const line = buf.split('\n')[0];
      try {
        resolve(JSON.parse(line) as ControlReply);
      } catch {
        reject(new ControlUnavailable(`unreadable answer from the agent on ${where}: ${escapeUnsafe(clip(line))}`)); // whoever listens there wrote it
      }
    });
  });
}
