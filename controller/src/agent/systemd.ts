// systemd (packaging/wazuh-nats-tap.service: Type=notify, WatchdogSec=). READY=1 once every part has
// started: `systemctl start` returns when the tap is attached and running, and fails when it could
// not start. STATUS= for `systemctl status`. STOPPING=1 when the shutdown begins. WATCHDOG=1 from a
// timer of the event loop, from the first instant: the loop is what takes the capture's records and
// publishes them, so when it is held (a system call that never returns, a loop that never ends) the
// pings stop and systemd kills the tap (SIGABRT) and starts it again (Restart=on-failure) — the tap
// never stays half alive. Outside systemd ($NOTIFY_SOCKET unset) nothing is done.
import type { Lifecycle } from './lifecycle.js';
import { systemdNotifier, watchdogMs } from './sd-notify.js';

export interface SystemdOptions {
  /** One line for `systemctl status`: what the tap does now. */
  status(): string;
  log?: { info(o: object, msg: string): void };
}

/** Follow `life` for systemd, when $NOTIFY_SOCKET names its socket (the pings stop with the process). */
export function notifySystemd(life: Lifecycle, o: SystemdOptions): void {
  const n = systemdNotifier();
  const ms = watchdogMs();
  if (!n) return;
  if (ms) {
    // Twice an interval, as sd_watchdog_enabled(3) advises, the status with it. Through the shutdown
    // too: it is bounded (10 s, and the kernel's alarm), and systemd still watches it.
    setInterval(() => n.send(`WATCHDOG=1${life.ready && !life.stopping ? `\nSTATUS=${o.status()}` : ''}`), Math.max(1, Math.floor(ms / 2))).unref();
  }
  life.watch({
    ready: () => {
      n.send(`READY=1\nMAINPID=${process.pid}\nSTATUS=${o.status()}`);
      o.log?.info({ watchdog_ms: ms }, `systemd: ready${ms ? ', watchdog on' : ''}`);
    },
    stopping: (req) => { n.send(`STOPPING=1\nSTATUS=stopping (${req.why})`); },
  });
}
