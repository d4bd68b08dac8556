// Numbered test events of a few agents, for the delivery tests, and a reader of a whole JetStream stream.
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Delivery, DeliveryMessage, MessageKind } from '../../controller/src/publish/delivery.js';

export function testEvent(i: number, agents: number, kind: MessageKind = 'status'): DeliveryMessage {
  const agent = String(i % agents).padStart(3, '0');
  return {
    subject: `wazuh.agent.${agent}.${kind === 'keepalive' ? 'keepalive' : 'status'}`,
    headers: { 'Content-Type': 'application/json', 'Wazuh-Event-Type': kind === 'keepalive' ? 'keepalive' : 'status_change', 'Wazuh-Agent-Id': agent },
    body: JSON.stringify({ event_id: `ev-${i}`, agent_id: agent, n: i }),
    kind,
    eventId: `ev-${i}`,
  };
}

export interface StoredEvent { seq: number; subject: string; msgId: string; event_id: string; agent_id: string; n: number }

/** Every message of a stream, in stream order (bounded by timeoutMs); `onMessage` sees each (e.g. a contract check). */
export async function readStream(nc: NatsConnection, stream: string, timeoutMs = 20_000, onMessage?: (m: JsMsg) => void): Promise<StoredEvent[]> {
  // Right after a cluster node died, JetStream API requests can time out while the cluster
  // elects new leaders: retry the setup, bounded.
  const setup = async () => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const c = info.state.messages === 0 ? null : await jetstream(nc).consumers.get(stream);
    return { info, c };
  };
  let ready: Awaited<ReturnType<typeof setup>> | null = null;
  for (let attempt = 0; !ready; attempt++) {
    try {
      ready = await setup();
    } catch (e) {
      if (attempt >= 8) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const { info, c } = ready;
  const last = info.state.last_seq;
  const out: StoredEvent[] = [];
  if (!c) return out;
  const it = await c.consume({ max_messages: 1000 });
  const timer = setTimeout(() => it.stop(), timeoutMs);
  for await (const m of it) {
    onMessage?.(m);
    const b = m.json<{ event_id: string; agent_id: string; n: number }>();
    out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id') ?? '', ...b });
    if (m.seq >= last) break;
  }
  clearTimeout(timer);
  await it.close().catch(() => {});
  return out;
}

/** What a lossless, ordered, de-duplicated delivery of events [0, n) looks like; problems as strings. */
export function checkDelivery(got: { event_id: string; agent_id: string; n: number }[], expected: number[]): string[] {
  const problems: string[] = [];
  const ids = got.map((g) => g.event_id);
  const uniq = new Set(ids);
  if (uniq.size !== ids.length) problems.push(`${ids.length - uniq.size} duplicates`);
  const missing = expected.filter((i) => !uniq.has(`ev-${i}`));
  if (missing.length) problems.push(`${missing.length} missing, first ${missing.slice(0, 5).join(',')}`);
  const lastN = new Map<string, number>();
  let disorder = 0;
  for (const g of got) {
    const p = lastN.get(g.agent_id);
    if (p !== undefined && g.n <= p) disorder++;
    lastN.set(g.agent_id, g.n);
  }
  if (disorder) problems.push(`${disorder} out of per-agent order`);
  return problems;
}

/** Enqueue `perTick` events every `tickMs` until stopped; returns the numbers accepted. */
export function steady(d: Delivery, agents: number, perTick: number, tickMs: number, start = 0) {
  let i = start;
  const accepted: number[] = [];
  const timer = setInterval(() => {
    const batch: DeliveryMessage[] = [];
    for (let k = 0; k < perTick; k++) batch.push(testEvent(i++, agents));
    const ok = d.enqueueMany(batch);
    ok.forEach((a, k) => { if (a) accepted.push(i - perTick + k); });
  }, tickMs);
  return { accepted, stop: () => clearInterval(timer), get next() { return i; } };
}

/**
 * The event ids of every message on `subject` (live, a core subscription), in arrival order: connected,
 * subscribed and flushed before it returns (so nothing published after is missed); closed at teardown.
 */
export async function liveEventIds(t: { teardown: (fn: () => unknown) => void }, url: string, subject = 'wazuh.>'): Promise<string[]> {
  const nc = await connect({ servers: url });
  t.teardown(() => nc.close());
  const got: string[] = [];
  nc.subscribe(subject, { callback: (_e, m) => got.push(m.json<{ event_id: string }>().event_id) });
  await nc.flush();
  return got;
}
