// The control socket (SPEC §7): `status`, `attach`, `detach` from the CLI, root only.
// Unavailable at the start (the path taken by something else, its directory read-only under the
// unit's sandbox): fatal — an agent attached that no `status`, `detach` or `attach` reaches is the
// half-alive process SPEC §8 forbids. Exit 2 when no restart can fix it (an empty path, or a file, a
// directory or a symbolic link at it: the unit's RestartPreventExitStatus=2 3 then stops restarting it
// every 2 s), else 1. Removed or replaced later: made again, or said (ControlServer).
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { ControlServer } from '../../control/server.js';
import { checkControlSocketPath } from '../../control/protocol.js';
import { ConfigError } from '../../errors.js';

/** How often the socket file is looked at (made again when it was removed: ControlServer.ensure). */
export const CONTROL_CHECK_MS = 2000;

export function controlPart(tap: Tap, capture: { attach(): Promise<void>; detach(): Promise<void> }): Part {
  let server: ControlServer | null = null;
  let check: NodeJS.Timeout | null = null;
  return {
    name: 'control socket',
    async start() {
      const path = tap.opts.controlSocket;
      if (path === undefined || path === null) return; // none (an embedding without one); '' is a usage error
      checkControlSocketPath(path);
      server = new ControlServer({
        path, log: tap.log,
        handlers: {
          status: () => tap.status(),
          attach: async () => { await capture.attach(); return tap.status(); },
          detach: async () => { await capture.detach(); return tap.status(); },
        },
      });
      try {
        await server.listen();
      } catch (e) {
        server = null;
        const msg = `control socket unavailable: ${(e as Error).message} (attach, detach and status could not reach this agent: `
          + 'fix the path or give another with --control-socket)';
        throw e instanceof ConfigError ? new ConfigError(msg) : new Error(msg);
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
