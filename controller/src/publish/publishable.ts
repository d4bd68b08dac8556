// What nats.js publishes without throwing. Every message the tap makes is; a spool record made by hand
// (its checksum is no signature: anyone who can write the spool can compute one) may not be, and read
// back from disk it was published again and again — in core NATS it held every later message behind
// it, in JetStream its headers threw out of the pump. Checked where a record is read (spool.ts), so
// such a record is damage, counted and skipped like a bad checksum. Pure.

/** nats.js refuses an empty subject and one with white space (NatsConnectionImpl._check). */
const SUBJECT = /^[^ \n\r\t]+$/;
/** A header name nats.js takes (canonicalMIMEHeaderKey: printable ASCII but the colon); not empty. */
const NAME = /^[\x21-\x39\x3b-\x7e]+$/;
/** A header value: nats.js refuses CR and LF (MsgHdrsImpl.validHeaderValue). The event id is one (Nats-Msg-Id). */
const VALUE = /^[^\r\n]*$/;

/** Why nats.js would refuse a message with these fields, or null when it takes them. */
export function unpublishable(subject: unknown, eventId: unknown, headers: unknown): string | null {
  if (typeof subject !== 'string' || !SUBJECT.test(subject)) return 'a subject empty or with white space';
  if (typeof eventId !== 'string' || !VALUE.test(eventId)) return 'an event id with a line break';
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return 'headers that are not an object';
  for (const k of Object.keys(headers)) {
    if (!NAME.test(k)) return 'a header name NATS refuses';
    const v = (headers as Record<string, unknown>)[k];
    if (typeof v !== 'string' || !VALUE.test(v)) return 'a header value that is not a line of text';
  }
  return null;
}
