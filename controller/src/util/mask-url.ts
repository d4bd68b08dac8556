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
const URL_IN_TEXT = new RegExp(`${SCHEME_CHARS}[^\\s"'<>]+`, 'gi');
/** A URL's user info as a URL parser reads it: to the last `@` before `/`, `?` or `#`. */
const PARSED_USER_INFO = new RegExp(`^(?:${SCHEME_CHARS})?([^/?#]*)@`, 'i');

/**
 * Each URL of a text holding one or a comma-separated list of them: its start (scheme included) and
 * its user info, if any. The user info runs from the scheme to the LAST `@` of the URL, wherever it
 * is: a password holding `#`, `/`, `?` or a raw `@` is no URL a parser takes as the writer meant
 * (the first three end its authority), but it is all a secret; and a NATS URL has no path for an
 * `@` to be in. A comma in a password is no separator either: a URL ends only where the next begins.
 */
function userInfos(text: string): { head: string; info: string | null; tail: string }[] {
  const out: { head: string; info: string | null; tail: string }[] = [];
  let rest = text;
  for (;;) {
    const next = NEXT_URL.exec(rest);
    const one = next ? rest.slice(0, next.index) : rest;
    const head = SCHEME.exec(one)![0];
    const at = one.lastIndexOf('@');
    out.push(at < head.length ? { head: one, info: null, tail: '' } : { head, info: one.slice(head.length, at), tail: one.slice(at) });
    if (!next) return out;
    out[out.length - 1].tail += next[0];
    rest = rest.slice(next.index + next[0].length);
  }
}

/** `alice:secret` → `alice:***`; `token` → `***`. */
const masked = (info: string) => {
  const colon = info.indexOf(':');
  return colon >= 0 ? `${info.slice(0, colon)}:***` : '***';
};

/**
 * `nats://alice:***@host:4222`, `nats://***@host:4222` (a token); a URL without user info is
 * returned as it is. A text holding several URLs, comma-separated, has each masked; the user info
 * runs to the last `@` of its URL (userInfos), so a password holding `#`, `/`, `?`, `@` or `,` is
 * masked whole.
 */
export function maskUrl(url: string): string {
  return userInfos(url).map((u) => (u.info === null ? u.head + u.tail : `${u.head}${masked(u.info)}${u.tail}`)).join('');
}

/** Every `scheme://user:password@` in a text (an error message, a warning, a command line) masked. */
export function maskUrlsIn(text: string): string {
  // Up to a space or a quote: the URL a message quotes; commas kept, a list is masked as one.
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
    for (const { info } of userInfos(u.trim())) if (info !== null) add(info);
    const parsed = PARSED_USER_INFO.exec(u.trim());
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
