// A throwaway PKI for TLS tests, made with openssl: a CA, a server certificate
// for 127.0.0.1/localhost, and a client certificate (either one expired, on request).
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki { dir: string; ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }

function ssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 30_000 });
}

/** `expired`: that certificate's validity ended a day ago (the CA stays valid). */
export function makePki(name = 'pki', days = 2, expired?: 'server' | 'client'): Pki {
  const dir = mkdtempSync(join(tmpdir(), `wnt-${name}-`));
  ssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', String(days), '-subj', `/CN=${name} test CA`]);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    ssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`]);
    ssl(dir, ['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`,
      '-days', who === expired ? '-1' : String(days), ...(who === 'server' ? ['-extfile', 'san.ext'] : [])]);
    chmodSync(join(dir, `${who}.key`), 0o600);
  }
  return {
    dir, ca: join(dir, 'ca.pem'), serverCert: join(dir, 'server.pem'), serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key'),
  };
}
