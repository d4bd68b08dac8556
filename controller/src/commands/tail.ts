// `wazuh-nats-tap tail [SUBJECT]`: subscribe and print the events as they arrive.
// Bounded whatever the server does: the connection has a deadline (a port that accepts and never
// speaks is an error, exit 1), --duration ends the run on time even while connecting, and the
// final drain is given two seconds before the connection is simply closed.
import type { ConnectionOptions, Msg, NatsConnection } from '@nats-io/transport-node';
import { connectNats, NatsConnectTimeout, within } from '../publish/nats-connect.js';
import { decrypt, HEADER_KEY_ID, HEADER_SCHEME, type EncryptionKey } from '../publish/encryption.js';
import { maskUrl } from '../util/mask-url.js';
import { printable, safeJson } from '../util/printable.js';
import { LineOutput } from '../util/line-output.js';
import { takeEarlySignals } from '../util/early-signals.js';
import { loadConfig, type EffectiveConfig, type LoadOptions } from '../config/ossec-conf.js';
import { ConfigFileMissing } from '../errors.js';

export interface TailOptions {
  servers: string[];
  subject: string;
  json: boolean;
  count: number;
  /** Seconds; 0: until Ctrl-C. */
  duration: number;
  /**
   * Decrypts messages published with encrypt_messages. Given, a message without the encryption
   * header is not authenticated (anyone who may publish under the prefix could have written it):
   * not shown as an event unless allowPlaintext, and then marked.
   */
  key?: EncryptionKey;
  /** With a key: show unencrypted messages too, marked as such (`--allow-plaintext`). */
  allowPlaintext?: boolean;
  /** TLS and authentication (the tap's configuration). */
  connect?: Partial<ConnectionOptions>;
}

/**
 * The tap's configuration, for `tail` (server, TLS, credentials, key, prefix). None at all (a host
 * without the tap's file, no --config or --home): null, and tail takes the defaults. A file that is
 * there but wrong — a file it names missing too — is a configuration error, as for `run`: tail must
 * not quietly drop the TLS and credentials of a configuration it could not read. `overrides.natsUrl`
 * (`--nats-url` with --config or --home): the file's servers replaced, the rest of it kept, as `run`.
 */
export function tapConfigForTail(opts: Pick<LoadOptions, 'file' | 'home' | 'homeCandidates' | 'overrides'>): EffectiveConfig | null {
  try {
    return loadConfig(opts);
  } catch (e) {
    if (opts.file === undefined && opts.home === undefined && e instanceof ConfigFileMissing) return null;
    throw e;
  }
}

/**
 * One readable line per event: time, subject, then the fields a person looks for first. Every value
 * comes from the message, whoever published it: each is printable() — no control character, line
 * break or bidi override reaches the terminal raw, and none is longer than PRINTABLE_MAX.
 */
export function renderEvent(subject: string, ev: Record<string, any>): string {
  const p = (v: unknown) => printable(v);
  const time = typeof ev.time === 'string' ? p(ev.time) : new Date().toISOString();
  const at = `${time}  ${p(subject)}`;
  switch (ev.event_type) {
    case 'status_change':
      return `${at}  agent ${p(ev.agent_id)} (${p(ev.agent_name ?? '?')}) ${p(ev.previous_status)} -> ${p(ev.current_status)}`
        + `  reason=${p(ev.reason)} code=${p(ev.status_code)} ip=${p(ev.ip_address ?? '-')} via ${p(ev.source)}`;
    case 'keepalive':
      return `${at}  agent ${p(ev.agent_id)} (${p(ev.agent_name ?? '?')}) ${p(ev.status)} ${p(ev.version ?? '')} ip=${p(ev.ip_address ?? '-')}`;
    case 'alert':
      return `${at}  rule ${p(ev.rule_id)} level ${p(ev.level)} agent ${p(ev.agent_id ?? '-')}: ${p(ev.description ?? '')}`;
    case 'tap':
      return `${at}  tap ${p(ev.action)}`;
    case 'keepalive_batch': // keepalive_batch: one line per keepalive it carries
      // Each entry its own line, if it is a keepalive-like object; a batch in a batch is not followed.
      return Array.isArray(ev.events) && ev.events.length
        ? ev.events.map((e: unknown) => (isObject(e) && e.event_type !== 'keepalive_batch' ? renderEvent(subject, e)
          : `${at}  (not an event in the batch: ${isObject(e) ? 'a batch' : jsonType(e)})`)).join('\n')
        : `${at}  empty keepalive batch`;
    default:
      return `${at}  ${p(ev)}`;
  }
}

/** A JSON body that can be an event: an object, not an array (nor null, a number, a string). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a JSON value is, for a message saying it is no event. */
function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** The mark of an event shown without the key's authentication (a key given, --allow-plaintext). */
export const NOT_ENCRYPTED = '(NOT ENCRYPTED) ';

/**
 * Why a message is not shown as an event. In --json, the line is `{"subject", "error", …}` with
 * these fields (`error` the kind); in text, `SUBJECT  (text)`.
 */
interface NotAnEvent {
  error: 'encrypted' | 'cannot_decrypt' | 'not_encrypted' | 'not_json' | 'not_an_event' | 'unprintable';
  text: string;
  fields?: Record<string, unknown>;
}

/** An event; `plaintext`: read without a key although one was given (not authenticated). */
type Read = { event: Record<string, unknown>; plaintext?: boolean } | NotAnEvent;

/** The message's body as an event, or why it is none. Never throws. */
function readMessage(m: Pick<Msg, 'subject' | 'data' | 'headers'>, o: Pick<TailOptions, 'key' | 'allowPlaintext'>): Read {
  let text: string;
  const plaintext = !m.headers?.get(HEADER_SCHEME);
  if (!plaintext) {
    const keyId = m.headers!.get(HEADER_KEY_ID);
    if (!o.key) return { error: 'encrypted', text: `encrypted with key ${printable(keyId, 64)}: pass --encryption-key`, fields: { key_id: keyId } };
    try {
      text = decrypt(o.key, m.subject, m.data);
    } catch (e) {
      // The header's key id is the publisher's word only; a mismatch says which key to look for.
      const why = keyId && keyId !== o.key.id
        ? `cannot decrypt: encrypted with key ${keyId}, the key given is ${o.key.id}` : (e as Error).message;
      return { error: 'cannot_decrypt', text: printable(why, 200), fields: { key_id: keyId, reason: why } };
    }
  } else if (o.key && !o.allowPlaintext) {
    // The key is what authenticates the tap's messages (AES-GCM, the subject as AAD): one without
    // it could have been written by anyone allowed to publish here, so it is not shown as an event.
    return { error: 'not_encrypted', text: 'not encrypted, so not authenticated: not shown (--allow-plaintext shows it, marked)' };
  } else {
    text = new TextDecoder().decode(m.data);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: 'not_json', text: `not JSON: ${m.data.length} bytes` };
  }
  if (!isObject(body)) return { error: 'not_an_event', text: `not an event: ${jsonType(body)}, ${m.data.length} bytes`, fields: { json_type: jsonType(body) } };
  return { event: body, plaintext: plaintext && o.key !== undefined };
}

/**
 * The line (or lines, for a keepalive batch in text) one message is printed as: the event, or why
 * it is none. In --json always one JSON object: `{"subject", …the event}` — the subject the message
 * came on, whatever the body says — or `{"subject", "error", "bytes", …}`.
 */
export function messageLine(m: Pick<Msg, 'subject' | 'data' | 'headers'>, o: Pick<TailOptions, 'json' | 'key' | 'allowPlaintext'>): string {
  const r = readMessage(m, o);
  if ('event' in r) {
    try {
      if (!o.json) {
        const text = renderEvent(m.subject, r.event);
        return r.plaintext ? text.split('\n').map((l) => `${NOT_ENCRYPTED}${l}`).join('\n') : text;
      }
      const out: Record<string, unknown> = { subject: m.subject, ...r.event };
      out.subject = m.subject; // first, and the real one: a body's own `subject` does not replace it
      if (r.plaintext) out.not_encrypted = true;
      return safeJson(JSON.stringify(out));
    } catch (e) {
      return notAnEvent(m, o, { error: 'unprintable', text: `unprintable event: ${printable((e as Error)?.message, 200)}, ${m.data.length} bytes`, fields: { reason: String((e as Error)?.message) } });
    }
  }
  return notAnEvent(m, o, r);
}

function notAnEvent(m: Pick<Msg, 'subject' | 'data'>, o: Pick<TailOptions, 'json'>, r: NotAnEvent): string {
  return o.json
    ? safeJson(JSON.stringify({ subject: m.subject, error: r.error, bytes: m.data.length, ...r.fields }))
    : `${printable(m.subject)}  (${r.text})`;
}

/**
 * What happens to the connection while tail runs, on stderr: a gap in the output is otherwise silent
 * (lost, reconnecting — messages published meanwhile are not shown — back, a server's -ERR, lame
 * duck). A server may be anyone's: its words printed escaped and clipped, and each kind of line said
 * at most once a second (a flood of -ERR is one line a second, with its count; the latest of each kind
 * is always said in the end).
 */
/**
 * `say` at most once per `windowMs` for each kind of line; what comes meanwhile is said when the window
 * is over — the latest of its kind, and how many of each `tag` the window held (a return held behind a
 * loss must not hide the loss) — so that the last line said is never older than what happened (a stale
 * "connected again" while a later loss waits). `flush` says what waits now.
 */
export function onceAWindow(say: (text: string) => void, windowMs = 1000): { line(kind: string, text: string, tag?: string): void; flush(): void } {
  const last = new Map<string, { at: number; held: Map<string, number>; text: string; timer: NodeJS.Timeout | null }>();
  const flushKind = (kind: string) => {
    const k = last.get(kind)!;
    if (k.timer) clearTimeout(k.timer);
    k.timer = null;
    if (!k.held.size) return;
    const counts = [...k.held].map(([tag, n]) => (tag ? `${tag} ${n === 1 ? 'once' : `${n} times`}` : `${n} times`));
    say(k.held.size === 1 && [...k.held.values()][0] === 1 ? k.text : `${k.text} (in ${windowMs / 1000} s: ${counts.join(', ')})`);
    k.at = Date.now();
    k.held.clear();
  };
  return {
    line(kind, text, tag = '') {
      const k = last.get(kind);
      const now = Date.now();
      if (k && now - k.at < windowMs) {
        k.held.set(tag, (k.held.get(tag) ?? 0) + 1);
        k.text = text;
        if (!k.timer) {
          k.timer = setTimeout(() => flushKind(kind), windowMs - (now - k.at));
          k.timer.unref();
        }
        return;
      }
      say(text);
      last.set(kind, { at: now, held: new Map(), text, timer: null });
    },
    flush() {
      for (const kind of last.keys()) flushKind(kind);
    },
  };
}

async function sayConnectionEvents(nc: NatsConnection, say: (text: string) => void): Promise<void> {
  const lines = onceAWindow(say);
  // The connection's state is one kind of line (lost, back, lame duck, stale): held back, the one said
  // at the window's end is the latest, whatever came between — never a loss after a later return.
  const state = (text: string, tag: string) => lines.line('connection', text, tag);
  try {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') state(`the connection to NATS at ${printable(maskUrl(s.server), 200)} was lost: reconnecting (messages published meanwhile are not shown)`, 'lost (messages published meanwhile not shown)');
      else if (s.type === 'reconnect') state(`connected again, to ${printable(maskUrl(s.server), 200)}`, 'back');
      else if (s.type === 'ldm') state(`the NATS server ${printable(maskUrl(s.server), 200)} is shutting down (lame duck mode)`, 'lame duck');
      else if (s.type === 'staleConnection') state('the NATS server stopped answering PINGs', 'stale');
      else if (s.type === 'error') lines.line('error', `NATS said: ${printable(s.error.message, 200)}`);
    }
  } catch {
    // the iterator ends with the connection; nothing to say
  }
  lines.flush(); // what the last second held, before the final line
}

/** How long `tail` waits for NATS to answer (less when --duration is shorter). */
export const TAIL_CONNECT_TIMEOUT_MS = 5000;

type StopReason = 'signal' | 'duration' | 'count' | 'closed' | 'error' | 'output';

export class TailError extends Error {
  readonly exitCode = 1;
}

export async function runTail(o: TailOptions): Promise<number> {
  // Ctrl-C and SIGTERM end the run from the first instant, also while connecting. Handled (`on`,
  // not `once`) until the drain and close are done: a second one is ignored (the promise settled
  // with the first), not the default action that kills the process in the middle of the drain.
  let stop: (why: StopReason) => void = () => {};
  const stopped = new Promise<StopReason>((r) => { stop = r; });
  const onSignal = () => stop('signal');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (takeEarlySignals().length) stop('signal'); // a Ctrl-C while the modules loaded
  const durationTimer = o.duration ? setTimeout(() => stop('duration'), o.duration * 1000) : null;
  try {
    const timeout = Math.max(1, Math.min(TAIL_CONNECT_TIMEOUT_MS, o.duration ? o.duration * 1000 : Infinity));
    const attempt = connectNats({ ...o.connect, servers: o.servers, name: 'wazuh-nats-tap tail', timeout, maxReconnectAttempts: 10 }, timeout);
    const first = await Promise.race([
      attempt.connection.then((nc) => ({ nc }), (err: Error) => ({ err })),
      stopped.then((why) => ({ why })),
    ]);
    if ('why' in first) {
      attempt.abandon();
      if (first.why === 'signal') return 0;
      throw new TailError(`no answer from NATS at ${o.servers.map(maskUrl).join(', ')} within --duration ${o.duration} s`);
    }
    if ('err' in first) {
      if (first.err instanceof NatsConnectTimeout) throw first.err;
      // The server's own words (an -ERR) may hold anything: printed escaped, as a message's are.
      throw new TailError(`cannot connect to NATS at ${o.servers.map(maskUrl).join(', ')}: ${printable(first.err.message)}`);
    }
    return await follow(first.nc, o, stopped, stop);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (durationTimer) clearTimeout(durationTimer);
  }
}

async function follow(
  nc: NatsConnection, o: TailOptions,
  stopped: Promise<StopReason>, stop: (why: StopReason) => void,
): Promise<number> {
  const say = (text: string) => process.stderr.write(`wazuh-nats-tap tail: ${text}\n`);
  // stdout closed (`| head`): the end, quietly (exit 0). A reader that does not keep up: messages
  // dropped and counted, not piled up in memory (util/line-output.ts).
  const output = new LineOutput(process.stdout, {
    onGone: (failure) => {
      if (!failure) return stop('output');
      say(`cannot write the output: ${printable(failure.message)}; stopping`);
      stop('error');
    },
    onSlow: () => say('the output is not read fast enough: messages are dropped (counted) until it catches up'),
    onCaughtUp: (n) => say(`${n} messages not shown: the output was too slow`),
  });
  const quiet = () => {};
  process.stderr.on('error', quiet); // a closed stderr (`2>&1 | head`) is no crash either (kept to the end)
  let seen = 0;
  const sub = nc.subscribe(o.subject, {
    callback: (err, m: Msg) => {
      if (err) {
        say(printable(err.message)); // a permissions violation quotes the server's -ERR
        return stop('error');
      }
      // Nothing a message holds may throw out of here: nats.js would take it for its own failure,
      // print a stack, drop the connection and lose every message until it reconnected.
      let line: string;
      try {
        line = messageLine(m, o);
      } catch (e) {
        line = notAnEvent(m, o, { error: 'unprintable', text: `unprintable message: ${printable((e as Error)?.message, 200)}`, fields: { reason: String((e as Error)?.message) } });
      }
      output.write(`${line}\n`);
      if (o.count && ++seen >= o.count) {
        sub.unsubscribe();
        stop('count');
      }
    },
  });
  let closedBy = '';
  void nc.closed().then((err) => {
    if (err) closedBy = `: ${printable(err.message, 200)}`;
    stop('closed');
  });
  void sayConnectionEvents(nc, say);
  // Said once the server has the subscription (a PING answered after it, 2 s at most): said before,
  // messages published right after the line could come before it and never be shown.
  await within(nc.flush().catch(() => {}), 2000);
  say(`${printable(o.subject)} on ${maskUrl(nc.getServer())}; Ctrl-C to stop`);
  const why = await stopped;
  // The server may have gone silent: drain (deliver what arrived) for two seconds at most, then close.
  if (why !== 'closed' && await within(nc.drain().then(() => true, () => false), 2000) === undefined) {
    await within(nc.close().catch(() => {}), 1000);
  }
  // What waits for the reader: a second at most (Ctrl-C must end it whatever the reader does).
  const lost = await output.finish(1000);
  if (!output.gone && output.dropped + lost > 0) say(`${output.dropped + lost} messages not shown in all: the output was too slow`);
  if (why === 'closed') throw new TailError(`the connection to NATS at ${maskUrl(nc.getServer())} was lost${closedBy}`);
  return why === 'error' ? 1 : 0;
}
