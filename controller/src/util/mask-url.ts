// Credentials written in a URL (`nats://alice:secret@host`, `nats://token@host`) are masked
// wherever the tap shows a URL (SPEC §8): `config check`, the log, `status`, `tail`.

/**
 * A scheme (`nats`), at most 64 characters: unbounded, a long word with no `://` after it was
 * walked again from each of its letters — quadratic, 17 s of CPU for a 100 KB argument the CLI
 * quotes in its error. A longer run of letters still masks: the scheme is taken as its last 64.
 */
const SCHEME_CHARS = '[a-z][a-z0-9+.-]{0,63}:\\/\\/';
/** Where one URL of a comma-separated list begins: a comma, spaces, a scheme (`nats://`). */
const NEXT_URL = new RegExp(`,\\s*(?=${SCHEME_CHARS})`, 'i');
const SCHEME = new RegExp(`^\\s*(?:${SCHEME_CHARS})?`, 'i');
/** A URL in a text, with the URLs after it in a list (`nats://tok@h1, bob:pw@h2`: a comma, maybe spaces). */
const URL_IN_TEXT = new RegExp(`${SCHEME_CHARS}[^\\s"'<>,]+(?:,[ \\t]*[^\\s"'<>,]*)*`, 'gi');
/** A URL's user info as a URL parser reads it: to the last `@` before `/`, `?` or `#`. */
const PARSED_USER_INFO = new RegExp(`^(?:${SCHEME_CHARS})?([^/?#]*)@`, 'i');

/** A URL's place in a text holding one or a comma-separated list of them: [start, end). */
type Span = [number, number];

/**
 * The URLs of a list as a URL ends where the next begins: at a comma followed by a scheme
 * (`nats://`). A comma in a password is no separator this way; but a list whose later URLs have no
 * scheme (`nats://tok@h1,bob:pw@h2` — nats.js takes host:port) is one URL to it.
 */
function spansByScheme(text: string): Span[] {
  const out: Span[] = [];
  let from = 0;
  for (;;) {
    const next = NEXT_URL.exec(text.slice(from));
    if (!next) {
      out.push([from, text.length]);
      return out;
    }
    out.push([from, from + next.index]);
    from += next.index + next[0].length;
  }
}

/**
 * The URLs of a list as the loader and nats.js split it: at every comma — except that a part with
 * no scheme is taken with the one before while that one has no `@` yet (`nats://alice:pa,ss@h` is
 * one URL whose password holds a comma, not `nats://alice:pa` and a token `ss`).
 */
function spansByComma(text: string): Span[] {
  const out: Span[] = [];
  let start = 0;
  let hasAt = false;
  let from = 0;
  for (;;) {
    const comma = text.indexOf(',', from);
    const end = comma < 0 ? text.length : comma;
    const part = text.slice(from, end);
    if (from > start && (hasAt || SCHEME_AHEAD.test(part))) {
      out.push([start, from - 1]); // the comma before this part ends the URL
      start = from;
      hasAt = false;
    }
    hasAt ||= part.includes('@');
    if (comma < 0) {
      out.push([start, text.length]);
      return out;
    }
    from = comma + 1;
  }
}

/** Every comma-separated part on its own (nats.js's own split): a third reading, for the union. */
function spansEveryComma(text: string): Span[] {
  const out: Span[] = [];
  let from = 0;
  for (let comma = text.indexOf(','); comma >= 0; comma = text.indexOf(',', from)) {
    out.push([from, comma]);
    from = comma + 1;
  }
  out.push([from, text.length]);
  return out;
}

/** Each reading of a list, in turn: whatever any of them takes for a secret is one. */
const readings = (text: string): Span[] => [...spansByScheme(text), ...spansByComma(text), ...spansEveryComma(text)];

const SCHEME_AHEAD = new RegExp(`^\\s*${SCHEME_CHARS}`, 'i');

/**
 * The secret of a URL's user info, as a range of the text: the password (after the first `:`) or
 * the whole of it (a token); the user info runs from the scheme to the LAST `@` of the URL,
 * wherever it is: a password holding `#`, `/`, `?` or a raw `@` is no URL a parser takes as the
 * writer meant (the first three end its authority), but it is all a secret; and a NATS URL has no
 * path for an `@` to be in. Null: no user info.
 */
function secretOf(text: string, [start, end]: Span): Span | null {
  const one = text.slice(start, end);
  const head = SCHEME.exec(one)![0];
  const at = one.lastIndexOf('@');
  if (at < head.length) return null;
  const colon = one.slice(head.length, at).indexOf(':');
  return [start + head.length + (colon >= 0 ? colon + 1 : 0), start + at];
}

/**
 * Every secret range of a text holding one URL or a list, read each way (spansByScheme,
 * spansByComma, spansEveryComma): where they disagree — `nats://a:p@q,r@h` is a password `p@q,r`,
 * or two URLs — whatever any takes for a secret is masked. Sorted, overlapping ones merged.
 */
function secretRanges(text: string): Span[] {
  const all = readings(text).map((sp) => secretOf(text, sp)).filter((r): r is Span => r !== null);
  all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Span[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/**
 * `nats://alice:***@host:4222`, `nats://***@host:4222` (a token); a URL without user info is
 * returned as it is. A text holding several URLs, comma-separated, has each masked — with or
 * without a scheme (`nats://tok@h1,bob:pw@h2`: both) —; the user info runs to the last `@` of its
 * URL, so a password holding `#`, `/`, `?`, `@` or `,` is masked whole.
 */
export function maskUrl(url: string): string {
  let out = '';
  let from = 0;
  for (const [start, end] of secretRanges(url)) {
    out += `${url.slice(from, start)}***`;
    from = end;
  }
  return out + url.slice(from);
}

/** Every `scheme://user:password@` in a text (an error message, a warning, a command line) masked. */
export function maskUrlsIn(text: string): string {
  // Up to a space or a quote: the URL a message quotes; a list (commas, spaces after them) masked as one.
  return text.replace(URL_IN_TEXT, (u) => maskUrl(u));
}

/**
 * The secret part of each URL's user info — the password, or the whole of it (a token) — as
 * written and percent-decoded: what an error text could carry without the URL around it. Read both
 * ways: to the last `@` (userInfos) and as a URL parser reads it (to the last `@` before `/?#`).
 */
export function urlSecrets(urls: readonly string[]): string[] {
  const out = new Set<string>();
  const add = (info: string) => {
    const colon = info.indexOf(':');
    const secret = colon >= 0 ? info.slice(colon + 1) : info;
    if (!secret) return;
    out.add(secret);
    try {
      out.add(decodeURIComponent(secret));
    } catch {
      // not percent-encoded
    }
  };
  for (const u of urls) {
    const text = u.trim();
    for (const sp of readings(text)) {
      const r = secretOf(text, sp);
      if (!r) continue;
      const head = SCHEME.exec(text.slice(sp[0], sp[1]))![0];
      add(text.slice(sp[0] + head.length, r[1])); // the whole user info: add() takes its secret part
    }
    const parsed = PARSED_USER_INFO.exec(text);
    if (parsed) add(parsed[1]);
  }
  return [...out].filter(Boolean).sort((a, b) => b.length - a.length);
}

/** A text to show (a log field, a message) with the URLs in it masked and the given secrets replaced by `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let s = maskUrlsIn(text);
  for (const secret of secrets) s = s.split(secret).join('***');
  return s;
}
