// A spool record the tap could have written. Every message the tap makes is one; a record made by hand
// (the spool's checksum is no signature: anyone who can write the spool can compute one) may not be, and
// read back from disk it was published again and again: one nats.js refuses held every later message
// behind it (core NATS) or threw out of the pump (JetStream); one the server refuses (a subject over its
// control line closes the connection; `..`, a subject outside the stream, a `Nats-Expected-*` header: no
// PubAck ever) was retried for ever; one outside the prefix (`$JS.API.STREAM.DELETE.…`) was sent with the
// tap's credentials. Checked where a record is read (spool.ts), so such a record is damage, counted and
// skipped like a bad checksum (review helper-89). Pure.
import { tapSubjectPrefix } from './subjects.js';

/** A header name nats.js takes (canonicalMIMEHeaderKey: printable ASCII but the colon); not empty. */
const NAME = /^[\x21-\x39\x3b-\x7e]+$/;
/** NATS's own headers (Nats-Msg-Id, Nats-Expected-Stream…): the server acts on them; the tap adds its one at publish. */
const NATS_HEADER = /^nats-/i;
/**
 * A header value, and the event id (Nats-Msg-Id): nats.js refuses CR and LF (MsgHdrsImpl.validHeaderValue);
 * the tap's are printable ASCII (a type, an agent id, a count, a key id), so nothing else is either — no
 * ESC, NUL or bidi control for a consumer to print (review helper-92).
 */
const VALUE = /^[\x20-\x7e]*$/;

/** Why the tap could not have written a record with these fields, or null when it could. */
export function unpublishable(subject: unknown, eventId: unknown, headers: unknown): string | null {
  if (typeof subject !== 'string' || tapSubjectPrefix(subject) === null) return 'a subject the tap does not publish to';
  if (typeof eventId !== 'string' || !VALUE.test(eventId)) return 'an event id that is not printable ASCII';
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return 'headers that are not an object';
  for (const k of Object.keys(headers)) {
    if (!NAME.test(k) || NATS_HEADER.test(k)) return 'a header name NATS refuses, or one of NATS\'s own';
    const v = (headers as Record<string, unknown>)[k];
    if (typeof v !== 'string' || !VALUE.test(v)) return 'a header value that is not printable ASCII';
  }
  return null;
}
