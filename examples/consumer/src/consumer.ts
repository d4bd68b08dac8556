// Reading wazuh-nats-tap's events the way a platform service would:
//  1. the current state of every agent from the KV bucket `<prefix>_agents` (no replay), then
//  2. every event since the last run from a durable JetStream consumer, acknowledged one by
//     one after it was handled, so a restart resumes where it stopped and nothing is skipped.
// The tap publishes with `Nats-Msg-Id` = `event_id`: the stream never stores an event twice,
// but a consumer can see one twice (an ack lost in a crash): handlers key on `event_id`.
import { AckPolicy, DeliverPolicy, jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { StatusChangeEvent, WazuhEvent } from './events.js';

/** The bucket the tap fills with `<agents_kv>yes</agents_kv>`: the prefix's dots become `_`. */
export function bucketName(prefix: string): string {
  return `${prefix.replace(/\./g, '_')}_agents`;
}

/** Every agent's latest status change, by agent id (`001`), read from the KV bucket. */
export async function currentAgents(nc: NatsConnection, prefix = 'wazuh'): Promise<Map<string, StatusChangeEvent>> {
  const kv = await new Kvm(nc).open(bucketName(prefix));
  const agents = new Map<string, StatusChangeEvent>();
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (entry && entry.operation === 'PUT') agents.set(key, entry.json<StatusChangeEvent>());
  }
  return agents;
}

export interface ConsumeOptions {
  /** The tap's `subject_prefix` (default `wazuh`) and `stream` (default `WAZUH`). */
  prefix?: string;
  stream?: string;
  /** The durable consumer's name: one per consuming service, shared by its replicas. */
  durable: string;
  /** Subjects to receive (default: every event of the prefix); more than one needs NATS 2.10+. */
  subjects?: string[];
  /** Called once per event; the message is acknowledged when it resolves, redelivered later when it throws. */
  onEvent: (ev: WazuhEvent, subject: string) => Promise<void> | void;
  /** Stop after this many events (default: never). */
  maxEvents?: number;
  signal?: AbortSignal;
}

/** Create the durable consumer when it does not exist (a later run reuses it and its position). */
async function ensureDurable(nc: NatsConnection, stream: string, durable: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(stream, durable);
  } catch (e) {
    if (!(e instanceof JetStreamApiError) || e.code !== JetStreamApiCodes.ConsumerNotFound) throw e;
    await jsm.consumers.add(stream, {
      durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
      ack_wait: 30_000_000_000, // 30 s in nanoseconds
      // One subject works with every NATS the tap supports (2.9+); several need 2.10's filter_subjects.
      ...(subjects.length === 1 ? { filter_subject: subjects[0] } : { filter_subjects: subjects }),
    });
  }
}

/** Consume events until `maxEvents` were handled or `signal` aborts. Returns how many were handled. */
export async function consume(nc: NatsConnection, o: ConsumeOptions): Promise<number> {
  const prefix = o.prefix ?? 'wazuh';
  const stream = o.stream ?? 'WAZUH';
  await ensureDurable(nc, stream, o.durable, o.subjects ?? [`${prefix}.>`]);
  const consumer = await jetstream(nc).consumers.get(stream, o.durable);
  const messages = await consumer.consume({ max_messages: 100 });
  const stop = () => void messages.close();
  o.signal?.addEventListener('abort', stop, { once: true });
  let handled = 0;
  try {
    for await (const m of messages) {
      await handle(m, o);
      if (o.maxEvents !== undefined && ++handled >= o.maxEvents) break;
    }
  } finally {
    o.signal?.removeEventListener('abort', stop);
    await messages.close();
  }
  return handled;
}

async function handle(m: JsMsg, o: ConsumeOptions): Promise<void> {
  let ev: WazuhEvent;
  try {
    ev = m.json<WazuhEvent>();
  } catch {
    // Not JSON: an encrypted message (the tap's encrypt_messages) this example cannot read.
    m.term();
    return;
  }
  try {
    await o.onEvent(ev, m.subject);
  } catch (e) {
    process.stderr.write(`event ${ev.event_id}: ${(e as Error).message}: redelivered in 5 s\n`);
    m.nak(5000);
    return;
  }
  // Confirmed by the server before the next one: a crash right after never loses this ack.
  await m.ackAck();
}
