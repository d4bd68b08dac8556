// nats.js's reconnect loop against a step back of the wall clock.
//
// Between two attempts at a server, nats.js waits until `lastConnect + reconnectTimeWait <=
// Date.now()`, looking again every reconnectTimeWait. `lastConnect` is wall-clock time: when the
// clock steps back during an outage (an NTP correction at boot, `date -s`), that moment lies in the
// future and the loop waits without dialling — and without counting an attempt, so its cycle never
// ends and the tap's own loop (delivery.ts) never starts the next — until the clock has caught up:
// a step of an hour was an hour without NATS (test/clock-step.test.ts). A server whose last attempt
// lies in the future is taken as tried just now: the next attempt follows reconnect_delay later.
import { Servers } from '@nats-io/transport-node';

let installed = false;

export function followClockSteps(): void {
  if (installed) return;
  installed = true;
  const select = Servers.prototype.selectServer;
  Servers.prototype.selectServer = function selectServerAfterSteps(this: Servers) {
    const s = select.call(this);
    const now = Date.now();
    if (s && s.lastConnect > now) s.lastConnect = now;
    return s;
  };
}
