// Wazuh's alerts: followed in alerts.json (not captured: a write tracepoint
// would cost every write on the machine). The read position is saved beside
// the spool, behind what the spool holds — and behind what it synced, so a
// power loss cannot leave it ahead of the spool either — so a restart neither
// loses nor repeats an alert.
import { join } from 'node:path';
import type { Part } from '../lifecycle.js';
import type { AlertsPosition } from '../../alerts/position.js';
import type { Tap } from '../tap.js';
import { AlertsFollower } from '../../alerts/follower.js';
import { AlertSink } from '../../alerts/alert-sink.js';
import { wazuhUid } from '../../alerts/trusted-open.js';

export function alertsPart(tap: Tap): Part & { follow(on: boolean): void } {
  const { log } = tap;
  // alerts.position is reached through /proc/self/fd/<n> (tap.spoolAt): its messages name spool_dir's path.
  const shown = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? tap.shownPath(v) : v]));
  const followerLog = {
    info: (o: object, msg: string) => log.info(shown(o), tap.shownPath(msg)),
    warn: (o: object, msg: string) => log.warn(shown(o), tap.shownPath(msg)),
  };
  let blocked = false;
  /** The last follower's close: its last position may still be on its way to the disk. */
  let closing: Promise<void> = Promise.resolve();
  /** Where the last follower stopped: the next one resumes there, not from the file (see resumeFrom). */
  let stoppedAt: AlertsPosition | null = null;

  /** Resolves once the last position is written (bounded: the follower's stopWaitMs) when following stops. */
  const follow = (on: boolean): Promise<void> => {
    if (on && !tap.follower) {
      tap.follower = new AlertsFollower({
        file: tap.alertsFile, positionFile: join(tap.spoolAt, 'alerts.position'), fromBeginning: tap.alertOpts.fromBeginning,
        sink: (lines) => tap.alertSink!.take(lines), log: followerLog, wazuhUid: () => wazuhUid(tap.opts.home),
        // Another home's alerts.json (the path leads there now: tap.homePin) is not this manager's.
        elsewhere: () => !tap.homePin.holds(),
        // Written once the spool synced the alerts behind it. With no publisher, no alert was accepted.
        afterSync: (now) => tap.publisher?.delivery.spool.afterSync(now) ?? Promise.resolve(true),
        syncPosition: tap.publisher?.delivery.spool.fsyncPolicy !== 'never',
        resumeFrom: stoppedAt,
      });
      // A follower closed a moment ago (alerts turned off and on again by two reloads) may still be
      // writing its last position: this one resumes where that one stopped (resumeFrom), and starts
      // once that write is done or given up (a close waits at most its stopWaitMs), so that its own
      // writes of the file come after it.
      const follower = tap.follower;
      void closing.then(() => { if (tap.follower === follower) follower.start(); });
      log.info({ file: tap.alertsFile, min_level: tap.alertOpts.minLevel }, 'following Wazuh\'s alerts');
    } else if (!on && tap.follower) {
      const closed = tap.follower.close(); // its position is saved behind what the spool synced
      stoppedAt = tap.follower.lastPosition() ?? stoppedAt;
      closing = closed.catch(() => {});
      tap.keepAlertCounts(tap.follower); // the counters never go down: a later follower's add to them
      tap.follower = null;
      log.info('alerts: no longer followed');
      return closed;
    }
    return Promise.resolve();
  };

  return {
    name: 'alerts',
    follow,
    start() {
      const sink: AlertSink = new AlertSink(
        () => ({ managerNode: tap.node, thresholds: tap.alertOpts.thresholds, minLevel: tap.alertOpts.minLevel }),
        (evs) => {
          const publisher = tap.publisher;
          if (!publisher) return evs.map(() => false);
          // The spool refused alerts (full of undelivered events, no keepalive left to drop): the
          // follower reads them again from alerts.json later, so they are not lost. Until the spool
          // drained below 90 %, do not offer them again (a refusal is counted as deferred, not shed).
          if (blocked) {
            const sp = publisher.stats(); // the bound in force: spool_max_size, or less while the disk is full
            if (sp.spoolBytes > sp.spoolBoundBytes * 0.9) return evs.map(() => false);
            blocked = false;
          }
          const ok = publisher.publishAlerts(evs);
          if (ok.includes(false)) {
            blocked = true;
            log.warn('spool full: alerts wait in alerts.json until it has room');
          }
          for (const r of ok) if (r) tap.eventsByType.alert = (tap.eventsByType.alert ?? 0) + 1;
          return ok;
        },
        (why, line) => {
          const n = sink.counters.invalid_json + sink.counters.not_an_object + sink.counters.too_deep;
          if (why !== 'below_min_level' && (n <= 10 || n % 1000 === 0)) {
            log.warn({ why, end: line.end, skipped: n, line: line.text.slice(0, 200) }, 'alerts.json: a line that is not an alert was skipped');
          }
        },
      );
      tap.alertSink = sink;
      follow(tap.alertOpts.enabled);
    },
    // Before the publisher's stop (parts stop in reverse): the spool is open for the last position's sync.
    async stop() {
      await follow(false);
    },
  };
}
