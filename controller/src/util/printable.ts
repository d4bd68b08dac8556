// Text from outside the tool — a NATS message's fields, headers and subject (`tail`), what a Wazuh
// daemon wrote to wazuh-db or wazuh-db answered (`capture`) — printed on an operator's terminal.
// Anyone who can publish under the prefix, or put a log line on a monitored agent (an alert's
// description quotes it), writes some of it: a raw ESC could clear the screen, set the window title,
// write the clipboard (OSC 52); a CR or LF could print a line that looks exactly like a real event;
// a bidi override could show `evil` as `live`. Every such character is shown as a visible escape.

/**
 * What a terminal or a reader of the line could take for something other than text: C0 (CR, LF, ESC,
 * BEL…), DEL, C1 (U+009B is CSI on terminals that honour C1), the line and paragraph separators, the
 * bidirectional embeddings, overrides and isolates (one character class)…
 */
export const UNSAFE_CLASS = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
/** …and lone UTF-16 surrogates. The wdb decoder refuses the same set in the values it keeps (decode/values.ts). */
export const LONE_SURROGATE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';

const UNSAFE = new RegExp(`${UNSAFE_CLASS}|${LONE_SURROGATE}`, 'g');

/** Longest value printed whole: a field of an event, a header, a subject (an honest one is far shorter). */
export const PRINTABLE_MAX = 512;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `s` with every unsafe character as `\uXXXX` (JSON's notation); nothing else changed. */
export function escapeUnsafe(s: string): string {
  return s.replace(UNSAFE, escape);
}

/**
 * A value as one safe piece of a line: text (a number, a boolean as their text; anything else as
 * JSON), cut to `max` characters and marked `…(N chars)`, every unsafe character escaped.
 */
export function printable(v: unknown, max = PRINTABLE_MAX): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (v === undefined) s = 'undefined';
  else {
    try {
      s = typeof v === 'object' && v !== null ? JSON.stringify(v) ?? String(v) : String(v);
    } catch {
      s = '(unprintable value)'; // nested too deep, or holding a BigInt
    }
  }
  // Cut before escaping: the bound is on what was received; an escape is not cut in half.
  return s.length > max ? `${escapeUnsafe(s.slice(0, max))}…(${s.length} chars)` : escapeUnsafe(s);
}

/**
 * JSON text made safe to print as it is: U+2028/2029, C1, DEL and the bidi controls that
 * JSON.stringify leaves raw written as `\uXXXX` escapes. The same value for any JSON parser.
 */
export function safeJson(text: string): string {
  return escapeUnsafe(text);
}
