// Delivery (SPEC §5): the disk spool and NATS. Started first among the data
// parts so that every later event has a place to go; stopped last, after the
// capture, so the `stopped` event counts everything and the spool is flushed.
import type { Part } from '../lifecycle.js';
import type { Tap } from '../tap.js';
import { ReliablePublisher } from '../../publish/reliable.js';
import { clientCertificateProblem, connectOptions, credentialProblem } from '../../publish/connect-options.js';
import { errorFields } from '../../pipeline.js';
import { publishedStatus } from '../../state/sources/status-journal.js';

/** What the publisher may take of the shutdown deadline to deliver what is spooled. */
const FLUSH_MS = 5000;

export function publisherPart(tap: Tap): Part {
  return {
    name: 'publisher',
    async start() {
      const { opts, log } = tap;
      const d = opts.delivery ?? {};
      const certProblem = d.security ? () => clientCertificateProblem(d.security!) : () => null;
      const problem = certProblem();
      if (problem) log.error(problem);
      const connect = d.security ? connectOptions(d.security) : undefined;
      // Said with a failed connection: what nats.js cannot tell (an expired certificate, a secret file that could not be read again).
      const diagnose = () => certProblem() ?? credentialProblem(connect);
      tap.publisher = new ReliablePublisher({
        servers: opts.natsUrls, prefix: tap.prefix, node: tap.node, log,
        // The directory the lock part opened (tap.spoolAt), whatever spool_dir's path leads to now.
        spoolDir: tap.spoolDir, spoolMaxBytes: tap.spoolMaxBytes, spool: tap.spoolAt !== tap.spoolDir ? { openAt: tap.spoolAt } : undefined,
        jetstream: d.jetstream, stream: d.stream ?? 'WAZUH', createStream: d.createStream, kv: d.agentsKv, replicas: d.streamReplicas,
        maxReconnects: d.maxReconnects ?? 10, reconnectDelayMs: (d.reconnectDelaySec ?? 2) * 1000,
        connectOptions: connect,
        encryption: d.encryption, diagnose,
        keepaliveBatch: d.keepaliveBatch ? { maxEvents: d.keepaliveBatch, intervalMs: (d.keepaliveBatchIntervalSec ?? 0) * 1000 } : undefined,
        onSpooledStatus: (st) => tap.spooledStatuses.set(st.agentId, publishedStatus(st.status, st.statusCode)),
        onUnpublishable: (e, ev) => tap.eventErrors.log({ ...errorFields(e, null), at: 'publish', agent_id: String(ev.agent_id).slice(0, 32) },
          'an event could not be published: dropped'),
      });
      await tap.publisher.connect(); // returns at once: events are spooled while NATS is away
      tap.publisher.publishLifecycle('started', { home: opts.home });
    },
    async stop() {
      const p = tap.publisher;
      if (!p) return;
      p.flushBatch();
      // What the guards left out of the log since their last line, before the last lines of all.
      tap.recordErrors.summary();
      tap.eventErrors.summary();
      p.publishLifecycle('stopped', { records: tap.pipeline.records, events: tap.pipeline.events });
      // Bounded here too: whatever NATS does (silent, away with a long reconnect delay), the rest stops in time.
      await Promise.race([p.close(FLUSH_MS), new Promise((r) => setTimeout(r, FLUSH_MS + 1000).unref())]);
      tap.log.info({ decoder: tap.decoder.stats(), state: tap.state.stats(), delivery: p.stats() }, 'stopped');
      tap.publisher = null;
    },
  };
}
