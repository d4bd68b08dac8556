// `wazuh-nats-tap tail [SUBJECT]`: subscribe and print the events as they arrive.
import { connect, type ConnectionOptions, type Msg } from '@nats-io/transport-node';
import { decrypt, HEADER_KEY_ID, HEADER_SCHEME, type EncryptionKey } from '../publish/encryption.js';
import { maskUrl } from '../util/mask-url.js';

export interface TailOptions {
  servers: string[];
  subject: string;
  json: boolean;
  count: number;
  /** Seconds; 0: until Ctrl-C. */
  duration: number;
  /** Decrypts messages published with encrypt_messages. */
  key?: EncryptionKey;
  /** TLS and authentication (the tap's configuration). */
  connect?: Partial<ConnectionOptions>;
}

/** One readable line per event: time, subject, then the fields a person looks for first. */
export function renderEvent(subject: string, ev: Record<string, any>): string {
  const time = typeof ev.time === 'string' ? ev.time : new Date().toISOString();
  switch (ev.event_type) {
    case 'status_change':
      return `${time}  ${subject}  agent ${ev.agent_id} (${ev.agent_name ?? '?'}) ${ev.previous_status} -> ${ev.current_status}`
        + `  reason=${ev.reason} code=${ev.status_code} ip=${ev.ip_address ?? '-'} via ${ev.source}`;
    case 'keepalive':
      return `${time}  ${subject}  agent ${ev.agent_id} (${ev.agent_name ?? '?'}) ${ev.status} ${ev.version ?? ''} ip=${ev.ip_address ?? '-'}`;
    case 'alert':
      return `${time}  ${subject}  rule ${ev.rule_id} level ${ev.level} agent ${ev.agent_id ?? '-'}: ${ev.description ?? ''}`;
    case 'tap':
      return `${time}  ${subject}  tap ${ev.action}`;
    case 'keepalive_batch': // keepalive_batch: one line per keepalive it carries
      return Array.isArray(ev.events) && ev.events.length
        ? ev.events.map((e: Record<string, any>) => renderEvent(subject, e)).join('\n')
        : `${time}  ${subject}  empty keepalive batch`;
    default:
      return `${time}  ${subject}  ${JSON.stringify(ev)}`;
  }
}

export async function runTail(o: TailOptions): Promise<number> {
  const nc = await connect({ ...o.connect, servers: o.servers, name: 'wazuh-nats-tap tail' });
  process.stderr.write(`wazuh-nats-tap tail: ${o.subject} on ${maskUrl(nc.getServer())}; Ctrl-C to stop\n`);
  let seen = 0;
  const done = new Promise<void>((resolve) => {
    const sub = nc.subscribe(o.subject, {
      callback: (err, m: Msg) => {
        if (err) return resolve();
        let body: Record<string, any>;
        try {
          if (m.headers?.get(HEADER_SCHEME)) {
            if (!o.key) {
              process.stdout.write(`${m.subject}  (encrypted with key ${m.headers.get(HEADER_KEY_ID)}: pass --encryption-key)\n`);
              return;
            }
            body = JSON.parse(decrypt(o.key, m.subject, m.data));
          } else {
            body = m.json();
          }
        } catch (e) {
          process.stdout.write(`${m.subject}  (${(e as Error).message.startsWith('cannot decrypt') ? (e as Error).message : `not JSON: ${m.data.length} bytes`})\n`);
          return;
        }
        process.stdout.write(o.json ? `${JSON.stringify({ subject: m.subject, ...body })}\n` : `${renderEvent(m.subject, body)}\n`);
        if (o.count && ++seen >= o.count) {
          sub.unsubscribe();
          resolve();
        }
      },
    });
    if (o.duration) setTimeout(resolve, o.duration * 1000).unref();
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await nc.flush();
  await done;
  await nc.drain();
  return 0;
}
