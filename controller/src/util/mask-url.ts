// Credentials written in a URL (`nats://alice:secret@host`, `nats://token@host`) are masked
// wherever the tap shows a URL (SPEC §8): `config check`, the log, `status`, `tail`.

/**
 * `nats://alice:***@host:4222`, `nats://***@host:4222` (a token); a URL without user info is
 * returned as it is. The user info runs to the last `@` before the path: a raw `@` in a
 * password (which URL parsers accept) is masked too.
 */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)?([^/?#]*)@/i, (_m, scheme: string | undefined, info: string) => {
    const colon = info.indexOf(':');
    return `${scheme ?? ''}${colon >= 0 ? `${info.slice(0, colon)}:***` : '***'}@`;
  });
}

/** Every `scheme://user:password@` in a text (an error message, a warning) masked. */
export function maskUrlsIn(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s,"'<>]+/gi, (u) => maskUrl(u));
}

/**
 * The secret part of each URL's user info — the password, or the whole of it (a token) — as
 * written and percent-decoded: what an error text could carry without the URL around it.
 */
export function urlSecrets(urls: readonly string[]): string[] {
  const out = new Set<string>();
  for (const u of urls) {
    const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?([^/?#]*)@/i.exec(u.trim());
    if (!m) continue;
    const colon = m[1].indexOf(':');
    const secret = colon >= 0 ? m[1].slice(colon + 1) : m[1];
    if (!secret) continue;
    out.add(secret);
    try {
      out.add(decodeURIComponent(secret));
    } catch {
      // not percent-encoded
    }
  }
  return [...out].filter(Boolean).sort((a, b) => b.length - a.length);
}

/** A text to show (a log field, a message) with the URLs in it masked and the given secrets replaced by `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let s = maskUrlsIn(text);
  for (const secret of secrets) s = s.split(secret).join('***');
  return s;
}
