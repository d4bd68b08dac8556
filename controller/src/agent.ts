// The host agent (`wazuh-nats-tap run`): wires the capture, the pipeline and the
// publisher, and owns their lifecycle. SIGINT/SIGTERM: stop capturing, detach,
// flush NATS, exit 0.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Capture, DEFAULT_SOCKET_PATHS } from './capture/capture.js';
import { WdbDecoder } from './decode/index.js';
import { AgentStateTable } from './state/agents.js';
import { Pipeline } from './pipeline.js';
import { Publisher } from './publish/publisher.js';
import { validatePrefix } from './publish/subjects.js';
import { artefacts } from './paths.js';
import { monotonicToWallClock } from './util/clock.js';

export interface AgentOptions {
  home: string;
  natsUrls: string[];
  prefix: string;
  node?: string;
  attach: boolean;
  log: Logger;
}

export async function runAgent(opts: AgentOptions): Promise<number> {
  const { log } = opts;
  const prefix = validatePrefix(opts.prefix);
  const node = opts.node ?? hostname();
  const capture = Capture.open({ ...artefacts(), socketPaths: DEFAULT_SOCKET_PATHS });
  const publisher = new Publisher({ servers: opts.natsUrls, prefix, node, log });
  try {
    await publisher.connect();
  } catch (e) {
    await capture.close();
    throw e;
  }

  const decoder = new WdbDecoder();
  const state = new AgentStateTable({ managerNode: node, wallClockMs: monotonicToWallClock() });
  const pipeline = new Pipeline(decoder, state, {
    event: (ev) => {
      log.debug({ event: ev }, 'event');
      publisher.publishAgentEvent(ev);
    },
  });

  let lastLost = 0;
  const lossCheck = setInterval(() => {
    const lost = capture.counters().lost;
    if (lost > lastLost) {
      log.warn({ lost: lost - lastLost }, 'the kernel dropped records (perf buffer full)');
      publisher.publishLifecycle('records_lost', { lost: lost - lastLost });
      lastLost = lost;
    }
  }, 1000);

  capture.start((records) => pipeline.push(records), (e) => log.error({ err: e }, 'capture failed'));
  publisher.publishLifecycle('started', { home: opts.home });
  if (opts.attach) {
    capture.attach();
    publisher.publishLifecycle('attached');
    log.info({ home: opts.home, node, prefix }, 'attached: capturing wazuh-db traffic');
  } else {
    log.info('started detached (--no-attach)');
  }

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'stopping');
  clearInterval(lossCheck);
  capture.detach();
  await capture.stop();
  const counters = capture.counters();
  await capture.close();
  publisher.publishLifecycle('stopped', { records: pipeline.records, events: pipeline.events });
  await publisher.close();
  log.info({ counters, decoder: decoder.stats(), published: publisher.published }, 'stopped');
  return 0;
}
