// A spool record the tap could have written. Every message the tap makes is one; a record made by hand
// (the spool's checksum is no signature: anyone who can write the spool can compute one) may not be, and
// read back from disk it was published again and again: one nats.js refuses held every later message
// behind it (core NATS) or threw out of the pump (JetStream); one the server refuses (a subject over its
// control line closes the connection; `..`, a subject outside the stream, a `Nats-Expected-*` header: no
// PubAck ever) was retried for ever; one outside the prefix (`$JS.API.STREAM.DELETE.…`) was sent with the
// tap's credentials. Checked where a record is read (spool.ts), so such a record is damage, counted and
// skipped like a bad checksum (review helper-89). Pure.
import { tapSubjectPrefix } from './subjects.js';

/**
 * An event id (Nats-Msg-Id) and every header value: nats.js refuses CR and LF (validHeaderValue); the
 * tap's are printable ASCII (a type, an agent id, a count, a key id), so nothing else is either — no
 * ESC, NUL or bidi control for a consumer to print (review helper-92).
 */
const VALUE = /^[\x20-\x7e]*$/;
/**
 * A record's headers as the spool holds them, JSON.stringify of names and values the tap writes: names
 * nats.js takes (printable ASCII but the colon), values printable ASCII, neither with a quote or a
 * backslash (none of the tap's has one, so no escape is ever in the text). Checked on the text, before
 * it is parsed: one regex, where a check of the parsed object a name and a value cost a replay ~20 %.
 */
const HEADERS_TEXT = new RegExp('^\\{(?:"[\\x21\\x23-\\x39\\x3b-\\x5b\\x5d-\\x7e]+":"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"'
  + '(?:,"[\\x21\\x23-\\x39\\x3b-\\x5b\\x5d-\\x7e]+":"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*")*)?\\}$');
/** NATS's own headers (Nats-Msg-Id, Nats-Expected-Stream…): the server acts on them; the tap adds its one at publish. */
const NATS_HEADER = /[{,]"nats-/i;

/**
 * Why the tap could not have written a record with these fields (`headersText`: its headers' JSON as
 * the spool holds it), or null when it could.
 */
export function readBackFault(subject: string, eventId: string, headersText: string): string | null {
  if (tapSubjectPrefix(subject) === null) return 'a subject the tap does not publish to';
  if (!VALUE.test(eventId)) return 'an event id that is not printable ASCII';
  if (!HEADERS_TEXT.test(headersText)) return 'headers that are not names and printable values';
  if (NATS_HEADER.test(headersText)) return 'one of NATS\'s own headers';
  return null;
}
