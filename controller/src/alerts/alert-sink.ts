// Between the follower and the publisher: lines → alert events (pure) → the spool, with every
// skipped line counted by reason. Returns how many lines are safely taken, which is what lets the
// follower save its position only behind events that are on disk.
import type { FileLine } from './line-splitter.js';
import { alertEvent, type AlertEvent, type AlertRules, type AlertSkip } from './alert-event.js';

export interface AlertCounters {
  /** Alerts accepted by the spool. */
  published: number;
  invalid_json: number;
  not_an_object: number;
  too_deep: number;
  below_min_level: number;
  /** Events the publisher threw on (never expected): skipped, so one cannot stall the file. */
  unpublishable: number;
  /**
   * Alerts read after NUL bytes on their line (what a power loss on the manager leaves at the end of
   * alerts.json, analysisd appending after it): published, the NULs and what was before them dropped.
   */
  nul_repaired: number;
}

export class AlertSink {
  readonly counters: AlertCounters = { published: 0, invalid_json: 0, not_an_object: 0, too_deep: 0, below_min_level: 0, unpublishable: 0, nul_repaired: 0 };

  /**
   * @param rules read at every call, so a reload (SIGHUP) applies to the next line
   * @param publish spools events; per event, true when it is on disk
   * @param onSkip told about each skipped line (for a bounded log)
   */
  constructor(
    private readonly rules: () => AlertRules,
    private readonly publish: (evs: AlertEvent[]) => boolean[],
    private readonly onSkip?: (why: AlertSkip, line: FileLine) => void,
    private readonly now: () => number = Date.now,
  ) {}

  take(lines: FileLine[]): number {
    const rules = this.rules();
    const events: AlertEvent[] = [];
    const lineOf: number[] = [];
    const repaired: boolean[] = [];
    const skipped: [AlertSkip, number][] = [];
    for (let i = 0; i < lines.length; i++) {
      const r = alertEvent(lines[i].text, rules, this.now());
      if ('event' in r) {
        events.push(r.event);
        lineOf.push(i);
        repaired.push(r.repaired === true);
      } else {
        skipped.push([r.skip, i]);
      }
    }
    const ok = events.length ? this.spool(events) : [];
    const refused = ok.indexOf(false);
    // Lines from the first refused event on are read again later; count only what is taken now.
    const taken = refused === -1 ? lines.length : lineOf[refused];
    const published = refused === -1 ? events.length : refused;
    this.counters.published += published;
    for (let e = 0; e < published; e++) if (repaired[e]) this.counters.nul_repaired++;
    for (const [why, i] of skipped) {
      if (i >= taken) break;
      this.counters[why]++;
      this.onSkip?.(why, lines[i]);
    }
    return taken;
  }

  /**
   * Spool a batch. Should the publisher throw (a bug, never expected), the batch is tried again
   * one event at a time and the events it throws on are skipped and counted: one alert must not
   * stall the file forever.
   */
  private spool(events: AlertEvent[]): boolean[] {
    try {
      return this.publish(events);
    } catch {
      return events.map((ev) => {
        try {
          return this.publish([ev])[0];
        } catch {
          this.counters.unpublishable++;
          return true;
        }
      });
    }
  }
}
