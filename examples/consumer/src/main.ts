#!/usr/bin/env node
// wazuh-events: print the agents' current state, then follow the events.
//   NATS_URL=nats://nats-1:4222 node dist/main.js [--prefix wazuh] [--stream WAZUH]
//     [--durable NAME] [--max-events N] [--json]
// The NATS user, from the environment (never a URL: nats.js does not read credentials there):
//   NATS_USER and NATS_PASSWORD, or NATS_TOKEN, or NATS_CREDS (a .creds file); TLS: NATS_CA (the
//   CA that signed the server's certificate), NATS_CERT and NATS_KEY (a client certificate).
// --json prints one JSON object per line: {"kind":"agent",...} for the KV state, then
// {"kind":"event","subject":...,"event":{...}}; without it, a line a person reads.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect, credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { consume, currentAgents } from './consumer.js';
import type { WazuhEvent } from './events.js';

const { values: a } = parseArgs({
  options: {
    prefix: { type: 'string', default: 'wazuh' },
    stream: { type: 'string', default: 'WAZUH' },
    durable: { type: 'string', default: 'wazuh-events-example' },
    'max-events': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

function describe(ev: WazuhEvent): string {
  switch (ev.event_type) {
    case 'status_change':
      return `agent ${ev.agent_id} ${ev.agent_name ?? '?'}: ${ev.previous_status} -> ${ev.current_status} (${ev.reason})`;
    case 'keepalive':
      return `agent ${ev.agent_id} keepalive, ${ev.version ?? 'version ?'}, ${ev.os?.name ?? 'os ?'}`;
    case 'keepalive_batch':
      return `${ev.count} keepalives: ${ev.events.map((k) => k.agent_id).join(', ')}`;
    case 'alert':
      return `alert ${ev.severity} rule ${ev.rule_id} level ${ev.level}: ${ev.description ?? ''}`;
    case 'tap':
      return `tap on ${ev.manager_node}: ${ev.action}`;
  }
}

const out = (o: object, text: string): void => {
  process.stdout.write(`${a.json ? JSON.stringify(o) : text}\n`);
};

/** The connection's options from the environment (see the top of this file). */
function fromEnv(env: NodeJS.ProcessEnv): NodeConnectionOptions {
  const o: NodeConnectionOptions = { servers: (env.NATS_URL ?? 'nats://127.0.0.1:4222').split(','), name: 'wazuh-events-example' };
  if (env.NATS_USER) Object.assign(o, { user: env.NATS_USER, pass: env.NATS_PASSWORD ?? '' });
  if (env.NATS_TOKEN) o.token = env.NATS_TOKEN;
  if (env.NATS_CREDS) {
    const file = env.NATS_CREDS;
    o.authenticator = credsAuthenticator(() => readFileSync(file)); // read again at each connection
  }
  if (env.NATS_CA || env.NATS_CERT) o.tls = { caFile: env.NATS_CA, certFile: env.NATS_CERT, keyFile: env.NATS_KEY };
  return o;
}

const nc = await connect(fromEnv(process.env));
const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
try {
  for (const [id, st] of await currentAgents(nc, a.prefix)) {
    out({ kind: 'agent', agent_id: id, state: st }, `agent ${id} ${st.agent_name ?? '?'} is ${st.current_status} since ${st.time}`);
  }
  await consume(nc, {
    prefix: a.prefix, stream: a.stream, durable: a.durable, signal: stop.signal,
    maxEvents: a['max-events'] === undefined ? undefined : Number(a['max-events']),
    onEvent: (ev, subject) => out({ kind: 'event', subject, event: ev }, `${ev.time}  ${describe(ev)}`),
  });
} finally {
  await nc.drain();
}
