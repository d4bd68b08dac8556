// Optional payload encryption (SPEC §6 encrypt_messages): AES-256-GCM with a
// fresh 96-bit nonce per message and the subject as additional authenticated
// data, so a ciphertext cannot be replayed under another subject. The body on
// the wire is base64(nonce ‖ ciphertext ‖ tag); the headers name the scheme
// and the key (a fingerprint, never the key).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError, isPermissionError, PermissionDenied } from '../errors.js';
import { clipPath } from '../util/clip.js';
import { readRegularFileSync } from '../util/read-file.js';

export const SCHEME = 'AES-256-GCM';
export const HEADER_SCHEME = 'Wazuh-Encryption';
export const HEADER_KEY_ID = 'Wazuh-Key-Id';
const NONCE = 12;
const TAG = 16;

export interface EncryptionKey {
  key: Buffer;
  /** First 16 hex digits of sha256(key): tells a consumer which key to use. */
  id: string;
}

/**
 * A key file holds 32 bytes as 64 hex digits or as base64 (surrounding white space ignored). A file
 * that is missing, not a regular file (never read: a FIFO would block) or not a key is a ConfigError.
 */
export function readKeyFile(path: string): EncryptionKey {
  let text: string;
  try {
    text = readRegularFileSync(path, 4096).toString('utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (isPermissionError(e)) throw new PermissionDenied(`encryption key file '${clipPath(path)}' cannot be read: permission denied (run as root)`);
    throw new ConfigError(code === 'ENOENT' ? `encryption key file '${clipPath(path)}' does not exist` : `encryption key file: ${(e as Error).message}`);
  }
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex')
    : /^[A-Za-z0-9+/]{43}=$/.test(text) ? Buffer.from(text, 'base64') : null;
  if (!key || key.length !== 32) throw new ConfigError(`${clipPath(path)}: an encryption key is 32 bytes, as 64 hex digits or base64`);
  return { key, id: createHash('sha256').update(key).digest('hex').slice(0, 16) };
}

export function encrypt(k: EncryptionKey, subject: string, plaintext: string): string {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', k.key, nonce);
  c.setAAD(Buffer.from(subject, 'utf8'));
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
}

/** The plaintext, or an Error saying why not (wrong key, tampered, another subject). */
export function decrypt(k: EncryptionKey, subject: string, body: string | Uint8Array): string {
  const raw = Buffer.from(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'), 'base64');
  if (raw.length < NONCE + TAG) throw new Error('not an encrypted message (too short)');
  const d = createDecipheriv('aes-256-gcm', k.key, raw.subarray(0, NONCE));
  d.setAAD(Buffer.from(subject, 'utf8'));
  d.setAuthTag(raw.subarray(raw.length - TAG));
  try {
    return Buffer.concat([d.update(raw.subarray(NONCE, raw.length - TAG)), d.final()]).toString('utf8');
  } catch {
    throw new Error('cannot decrypt: wrong key, or the message was altered or moved to another subject');
  }
}

/** Headers of an encrypted message (replacing Content-Type: the body is no longer JSON). */
export function encryptedHeaders(k: EncryptionKey, headers: Record<string, string>): Record<string, string> {
  return {
    ...headers,
    'Content-Type': 'application/octet-stream',
    [HEADER_SCHEME]: SCHEME,
    [HEADER_KEY_ID]: k.id,
  };
}
