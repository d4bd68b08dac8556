// The agents' state before the first record (SPEC §3): what this tap last
// published (agents.status), names and addresses from client.keys (followed
// as it changes), and every agent's status from wazuh-db itself, so the first
// transition reports the right previous_status.
import { join } from 'node:path';
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { StatusJournal, type JournalOp, type PublishedStatus } from '../../state/sources/status-journal.js';
import { initialSync, seedTable } from '../../state/sources/initial-sync.js';
import { applyClientKeys, clientKeysPath, watchClientKeys } from '../../state/sources/client-keys.js';

/** What the log says of a fault of agents.status. */
const JOURNAL_FAULTS: Record<JournalOp, string> = {
  compact: 'cannot compact the status journal: kept as it is',
  read: 'agents.status: cannot read: starting without the statuses it held (wazuh-db\'s are taken as they are)',
  open: 'agents.status: cannot write (disk full?): kept in memory, retrying',
  write: 'agents.status: cannot write (disk full?): kept in memory, retrying',
  oversized: 'agents.status is larger than it is read: only its end was (each agent\'s latest status there); '
    + 'agents with no line in it are taken from wazuh-db as they are',
  invalid: 'agents.status holds lines that are no journal line, or name more agents than the tap keeps (damaged: a disk, a restore, an edit?): skipped; '
    + 'the statuses they held are taken from wazuh-db as they are, and their first changes may carry a previous_status the consumers never got',
};

/** Removals at start worth a word: more than wazuh-db lists now, and more than a handful. */
export function manyRemoved(removed: number, listed: number): boolean {
  return removed >= 100 && removed > listed;
}

export function statePart(tap: Tap): Part {
  let keys: { close(): void } | null = null;
  return {
    name: 'state',
    async start() {
      const { log, state, opts } = tap;
      const journal = new StatusJournal(join(tap.spoolAt, 'agents.status'), {
        onError: (e, op, failures) => {
          const err = tap.shownPath(e.message); // spool_dir's path, not /proc/self/fd/<n> (tap.spoolAt)
          if (op === 'oversized' || op === 'invalid') log.error({ err, op }, JOURNAL_FAULTS[op]); // statuses lost: not a passing fault
          else log.warn({ err, op, failures }, JOURNAL_FAULTS[op]);
        },
        onRecovered: () => log.info('agents.status: writing again'),
      });
      const known = journal.open();
      // What an earlier run left in the spool is replayed to the consumers now: newer than the journal,
      // which lacks it when that run was killed between the spool's write and the journal's.
      const behind: { agentId: string; status: PublishedStatus['status']; statusCode: number }[] = [];
      for (const [id, p] of tap.spooledStatuses) {
        if (known.get(id) === p) continue;
        known.set(id, p);
        behind.push({ agentId: String(id), status: p.status, statusCode: p.status_code });
      }
      tap.spooledStatuses.clear();
      if (behind.length) {
        journal.recordMany(behind);
        log.info({ agents: behind.length }, 'agents.status: statuses the spool held and the journal lacked, taken from the spool');
      }
      for (const [id, p] of known) {
        tap.published.set(id, p);
        // A removed agent (told `unknown`) is not held: held, it was an agent wazuh-db's listing need not
        // name, and remoted's late keepalive for it (wazuh-db answers ok, no row) brought it back.
        if (p.status !== 'unknown') state.setKnown({ id, status: p.status, status_code: p.status_code });
      }
      tap.journal = journal;

      // Names and addresses from client.keys, now and whenever the file changes (no events).
      try {
        // Another home's client.keys (the path leads there now: tap.homePin) names other agents: not applied.
        const w = watchClientKeys(clientKeysPath(opts.home), (k) => { if (tap.homePin.holds()) applyClientKeys(state, k); },
          { onError: (e) => log.warn({ err: e.message }, 'cannot read client.keys') });
        keys = w;
        await w.ready;
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'agent names unavailable: cannot watch client.keys');
      }

      // An agent whose last published status differs from wazuh-db's (it changed while the tap was
      // down, or in records a crash lost) gets one status event now; the others are adopted silently.
      if (!tap.homePin.holds()) return; // another home now (said by the pin): nothing to ask
      // Applied a chunk of rows at a time as wazuh-db answers (a fleet's rows are never all held).
      let corrected = 0;
      const first = await initialSync({
        home: opts.home,
        onRows: (rows, startedNs) => {
          if (tap.life.stopping) return;
          seedTable(state, rows.filter((r) => !tap.published.has(r.id)));
          const missed = state.resync(rows.filter((r) => tap.published.has(r.id)), startedNs);
          corrected += missed.length;
          tap.publishEvents(missed);
        },
      });
      if (tap.life.stopping) return;
      if (first.complete) {
        tap.fullLookEnded(); // the look after attach may then be a light one (LIGHT_LOOK_WITHIN_MS)
        // An agent the journal knows and wazuh-db no longer lists was removed while the tap was down.
        const removed = state.removeUnlisted(first.ids, first.startedNs);
        tap.publishEvents(removed);
        if (manyRemoved(removed.length, first.ids.length)) {
          // Agents removed while the tap was down are a few; more than remain looks like another manager's journal, or a made one.
          log.warn({ removed: removed.length, listed: first.ids.length },
            'agents.status named many more agents than wazuh-db lists: each unlisted one was published as removed (is it this manager\'s journal?)');
        }
        log.info({ agents: first.described, ms: first.elapsedMs, corrected: corrected + removed.length }, 'initial state from wazuh-db');
      } else log.warn({ reason: first.reason, described: first.described, listed: first.ids.length }, 'initial sync incomplete');
    },
    stop() {
      keys?.close();
      keys = null;
      tap.journal?.close(tap.published);
      tap.journal = null;
    },
  };
}
