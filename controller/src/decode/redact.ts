// Secrets (agent keys in `insert-agent` and `get-agent-info`, and anything named like one) must never
// leave the decoder: every text the decoder hands on passes through here first.

const SECRET_WORD = /key|password|secret|token/i;
/** Keys that could reach an object's prototype when copied; dropped along with secrets. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export const REDACTED = '[redacted]';

/**
 * The shape of an agent key (authd writes 32 random bytes as 64 hex digits). Such a value is dropped
 * whatever its key is called, so a renamed or mangled key name cannot carry one out. No other value
 * Wazuh sends on this socket has that shape (sums are 32 hex digits, group hashes 8).
 */
const KEY_SHAPE = /[0-9a-fA-F]{64}/;
const KEY_VALUE = /^[0-9a-fA-F]{64}$/;

/** A value shaped like an agent key: dropped wherever it is read (a row's column, a request's field), whatever its name. */
export function isKeyShaped(v: string): boolean {
  return v.length === 64 && KEY_VALUE.test(v);
}

export function isSecretKey(key: string): boolean {
  return SECRET_WORD.test(key);
}

export function isDroppedKey(key: string): boolean {
  return UNSAFE_KEYS.has(key) || SECRET_WORD.test(key);
}

/**
 * Returns `text` with secret-like JSON keys, and key-shaped values, removed. Text that mentions no secret word is returned as is
 * (the common case, and it keeps the hot path free of JSON work). Text that mentions one but is not
 * JSON — a truncated request, an `err … near '…'` echo — cannot be cleaned reliably, so it is replaced
 * whole by `[redacted]`.
 */
export function redactText(text: string): string {
  if (!SECRET_WORD.test(text) && !KEY_SHAPE.test(text)) return text;
  try {
    // The reviver deletes a property by returning undefined; it runs bottom-up over every level.
    const clean: unknown = JSON.parse(text, (k, v: unknown) =>
      isDroppedKey(k) || (typeof v === 'string' && isKeyShaped(v)) ? undefined : v);
    if (clean === null || typeof clean !== 'object') return REDACTED;
    return JSON.stringify(clean);
  } catch {
    // Invalid JSON, or nesting deep enough to exhaust the stack.
    return REDACTED;
  }
}
