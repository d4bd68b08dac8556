// NATS connection security from the configuration (SPEC §6): TLS with the
// server verified (against tls_ca, else the system CAs), an optional client
// certificate, and one of: .creds (JWT + nkey), nkey seed, token, user +
// password. Secret files are read here, at connect time, and kept only in
// the connection's options: never in the configuration object or a log.
import { X509Certificate } from 'node:crypto';
import { readRegularFileSync } from '../util/read-file.js';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';

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

// Never a blocking read: the files were checked regular at start, and a FIFO swapped in since is refused.
const read = (file: string) => readRegularFileSync(file, 1024 * 1024);
const secret = (file: string) => read(file).toString('utf8').trim();

export function connectOptions(s: NatsSecurity): Partial<ConnectionOptions> {
  const o: Partial<ConnectionOptions> = {};
  if (s.discoverServers === false) o.ignoreClusterUpdates = true;
  const wantsTls = s.tlsCa || s.tlsCert || s.serverUrls.some((u) => u.startsWith('tls://'));
  if (wantsTls) {
    o.tls = {
      ...(s.tlsCa ? { caFile: s.tlsCa } : {}),
      ...(s.tlsCert && s.tlsKey ? { certFile: s.tlsCert, keyFile: s.tlsKey } : {}),
    };
  }
  if (s.credentialsFile) o.authenticator = credsAuthenticator(new Uint8Array(read(s.credentialsFile)));
  else if (s.nkeySeedFile) o.authenticator = nkeyAuthenticator(new TextEncoder().encode(secret(s.nkeySeedFile)));
  else if (s.tokenFile) o.token = secret(s.tokenFile);
  else if (s.user) {
    o.user = s.user;
    o.pass = s.passwordFile ? secret(s.passwordFile) : undefined;
  }
  return o;
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
    cert = new X509Certificate(read(s.tlsCert));
  } catch (e) {
    return `tls_cert ${s.tlsCert} cannot be read as a PEM certificate (${(e as Error).message})`;
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (now > to) return `tls_cert ${s.tlsCert} expired on ${new Date(to).toISOString()}: the server will refuse the TLS handshake; renew it`;
  if (now < from) return `tls_cert ${s.tlsCert} is not valid before ${new Date(from).toISOString()}: the server will refuse the TLS handshake`;
  return null;
}
