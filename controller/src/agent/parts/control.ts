// The control socket (SPEC §7): `status`, `attach`, `detach` from the CLI, root only.
// Unavailable at the start (the path taken by something else, its directory read-only under the
// unit's sandbox): fatal — an agent attached that no `status`, `detach` or `attach` reaches is the
// half-alive process SPEC §8 forbids. Removed or replaced later: made again, or said (ControlServer).
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { ControlServer } from '../../control/server.js';

/** How often the socket file is looked at (made again when it was removed: ControlServer.ensure). */
export const CONTROL_CHECK_MS = 2000;

export function controlPart(tap: Tap, capture: { attach(): void; detach(): void }): Part {
  let server: ControlServer | null = null;
  let check: NodeJS.Timeout | null = null;
  return {
    name: 'control socket',
    async start() {
      const path = tap.opts.controlSocket;
      if (!path) return;
      server = new ControlServer({
        path, log: tap.log,
        handlers: {
          status: () => tap.status(),
          attach: () => { capture.attach(); return tap.status(); },
          detach: () => { capture.detach(); return tap.status(); },
        },
      });
      try {
        await server.listen();
      } catch (e) {
        server = null;
        throw new Error(`control socket unavailable: ${(e as Error).message} (attach, detach and status could not reach this agent: `
          + 'fix the path or give another with --control-socket)');
      }
      let checking = false;
      check = setInterval(() => {
        if (checking || !server) return;
        checking = true;
        server.ensure().catch(() => 'unknown').finally(() => { checking = false; });
      }, CONTROL_CHECK_MS);
      check.unref();
    },
    async stop() {
      if (check) clearInterval(check);
      check = null;
      await server?.close();
      server = null;
    },
  };
}
