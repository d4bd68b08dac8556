// NATS connection security from the configuration (SPEC §6): TLS with the
// server verified (against tls_ca, else the system CAs), an optional client
// certificate, and one of: .creds (JWT + nkey), nkey seed, token, user +
// password. Secret files are read for each connection nats.js makes (its
// authenticators call back at every CONNECT), so a rotated .creds, token or
// password is used from the next connection on without a restart; their
// contents live only in those callbacks: never in the configuration object or a log.
import { X509Certificate } from 'node:crypto';
import { CREDENTIAL_FILE_BYTES, readRegularFileSync, readTrustedFileSync } from '../util/read-file.js';
import { clip, clipPath } from '../util/clip.js';
import {
  credsAuthenticator, nkeyAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type ConnectionOptions,
} from '@nats-io/transport-node';

export interface NatsSecurity {
  tlsCert: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
  credentialsFile: string | null;
  nkeySeedFile: string | null;
  tokenFile: string | null;
  user: string | null;
  passwordFile: string | null;
  serverUrls: string[];
  /** false: the servers a NATS server announces (INFO `connect_urls`) are not added to `serverUrls`. */
  discoverServers?: boolean;
}

// Never a blocking read (a FIFO swapped in since the start is refused), and only what root (or
// the tap's user) wrote: util/read-file.ts readTrustedFileSync, as the configuration was checked.
// A client certificate, without its key, is nothing to anyone: read as it is (it may be anyone's).
const read = (file: string, trust: 'secret' | 'trusted' | 'any') => (trust === 'any'
  ? readRegularFileSync(file, CREDENTIAL_FILE_BYTES) : readTrustedFileSync(file, CREDENTIAL_FILE_BYTES, { secret: trust === 'secret' }));

/**
 * A secret file as the connections see it: read again for each one. When it cannot be used at a
 * reconnection — gone for a moment while it is replaced, swapped for something that is not a
 * regular file, readable by group or others or another user's (refused at start too) — the contents last read are,
 * and `problem` says why (the failed connection's warning shows it). Read once at creation: a file
 * that cannot be used at start fails the start, as before.
 */
class SecretFile<T> {
  private last: T;
  problem: string | null = null;

  constructor(private readonly element: string, private readonly file: string, private readonly parse: (b: Buffer) => T,
    private readonly trust: 'secret' | 'trusted' | 'any' = 'secret') {
    this.last = this.read();
  }

  get = (): T => {
    try {
      this.last = this.read();
      this.problem = null;
    } catch (e) {
      this.problem = `${this.element} ${clipPath(this.file)}: ${clip((e as Error).message, 200)}; the contents read before are used`;
    }
    return this.last;
  };

  private read(): T {
    return this.parse(read(this.file, this.trust));
  }
}

const text = (b: Buffer) => b.toString('utf8').trim();

/** The files each options object reads at its connections: what they say is wrong with them now (credentialProblem). */
const problems = new WeakMap<object, SecretFile<unknown>[]>();

/** Why a secret or TLS file of these options could not be read again, if it could not: for the log of a failed connection. */
export function credentialProblem(o: Partial<ConnectionOptions> | undefined): string | null {
  return (o && problems.get(o)?.find((f) => f.problem)?.problem) ?? null;
}

export function connectOptions(s: NatsSecurity): Partial<ConnectionOptions> {
  const o: Partial<ConnectionOptions> = {};
  if (s.discoverServers === false) o.ignoreClusterUpdates = true;
  const files: SecretFile<unknown>[] = [];
  problems.set(o, files);
  // A file read for each connection (the secret of the authentication, one at most; the TLS files), its problems said through `o`.
  const secret = <T>(element: string, path: string, parse: (b: Buffer) => T, trust: 'secret' | 'trusted' | 'any' = 'secret'): (() => T) => {
    const f = new SecretFile(element, path, parse, trust);
    files.push(f as SecretFile<unknown>);
    return f.get;
  };
  const wantsTls = s.tlsCa || s.tlsCert || s.serverUrls.some((u) => u.startsWith('tls://'));
  if (wantsTls) {
    // The contents, not the paths: nats.js would read a path itself at each connection, whoever had
    // written it since. Getters, read as nats.js reads its TLS options (each connection, if it does).
    const tls = {};
    const file = (name: string, get: () => unknown) => Object.defineProperty(tls, name, { get, enumerable: true });
    if (s.tlsCa) {
      const ca = secret('tls_ca', s.tlsCa, (b) => b, 'trusted');
      file('ca', () => [ca()]);
    }
    if (s.tlsCert && s.tlsKey) {
      file('cert', secret('tls_cert', s.tlsCert, (b) => b, 'any'));
      file('key', secret('tls_key', s.tlsKey, (b) => b));
    }
    o.tls = tls;
  }
  if (s.credentialsFile) o.authenticator = credsAuthenticator(secret('credentials_file', s.credentialsFile, (b) => new Uint8Array(b)));
  else if (s.nkeySeedFile) o.authenticator = nkeyAuthenticator(secret('nkey_seed_file', s.nkeySeedFile, (b) => new TextEncoder().encode(text(b))));
  else if (s.tokenFile) o.authenticator = tokenAuthenticator(secret('token_file', s.tokenFile, text));
  else if (s.user) o.authenticator = usernamePasswordAuthenticator(s.user, s.passwordFile ? secret('password_file', s.passwordFile, text) : undefined);
  else Object.assign(o, urlOptions(s.serverUrls));
  return o;
}

/**
 * Credentials written in a server URL — `nats://user:password@host`, `nats://token@host` — as
 * nats.go and the nats CLI take them. nats.js 3 connects to such a URL but never sends what its
 * user part holds (the server answers `Authorization Violation`): the tap sends it itself. The
 * first URL that carries credentials gives them (one authenticator for a connection, whichever
 * server it reaches); an element of the configuration (`token_file`, `user`…) comes first.
 */
export function urlAuthenticator(urls: string[]): ConnectionOptions['authenticator'] | undefined {
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u.includes('://') ? u : `nats://${u}`);
    } catch {
      continue;
    }
    if (!url.username && !url.password) continue;
    let user: string;
    let pass: string;
    try {
      user = decodeURIComponent(url.username);
      pass = decodeURIComponent(url.password);
    } catch {
      continue; // a bad %-escape: nothing sensible to send
    }
    return pass ? usernamePasswordAuthenticator(user, pass) : tokenAuthenticator(user);
  }
  return undefined;
}

/**
 * What is wrong with the client certificate, if anything: expired, not valid yet, or not a
 * certificate. The server refuses such a certificate during the TLS handshake, and nats.js
 * then reports only a time-out, so the tap says why itself (at start, and with every failed
 * connection: a renewed file is read again on the next attempt).
 */
export function clientCertificateProblem(s: Pick<NatsSecurity, 'tlsCert'>, now = Date.now()): string | null {
  if (!s.tlsCert) return null;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(read(s.tlsCert, 'any'));
  } catch (e) {
    return `tls_cert ${s.tlsCert} cannot be read as a PEM certificate (${(e as Error).message})`;
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (now > to) return `tls_cert ${s.tlsCert} expired on ${new Date(to).toISOString()}: the server will refuse the TLS handshake; renew it`;
  if (now < from) return `tls_cert ${s.tlsCert} is not valid before ${new Date(from).toISOString()}: the server will refuse the TLS handshake`;
  return null;
}

/** The options of a connection made from URLs alone (`tail --nats-url`): their credentials, if they carry any. */
export function urlOptions(urls: string[]): Partial<ConnectionOptions> | undefined {
  const authenticator = urlAuthenticator(urls);
  return authenticator ? { authenticator } : undefined;
}
