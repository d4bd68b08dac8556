// A manager home with the ossec.conf the tap reads.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { fmtCreds } from '@nats-io/jwt';

/** Write <home>/etc/ossec.conf with a <nats> section: enabled, no metrics endpoint, plus `extra` elements. */
export function writeOssecConf(home: string, extra = ''): string {
  mkdirSync(join(home, 'etc'), { recursive: true });
  const file = join(home, 'etc/ossec.conf');
  writeFileSync(file, `<ossec_config>\n  <cluster><node_name>node01</node_name><disabled>yes</disabled></cluster>\n</ossec_config>\n`
    + `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n    <metrics>no</metrics>\n${extra}  </nats>\n</ossec_config>\n`);
  return file;
}

/**
 * What a secret file of `element` holds when it is valid: the loader checks an nkey seed and a .creds
 * file for what they are (a user's seed; a JWT block, then the seed block); the other secrets are
 * opaque to it. The JWT is only shaped like one: nothing here connects.
 */
export function validSecret(element: string): string {
  const user = nkeys.createUser();
  if (element === 'nkey_seed_file') return `${new TextDecoder().decode(user.getSeed())}\n`;
  if (element === 'credentials_file') {
    return new TextDecoder().decode(fmtCreds('eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2lnbmF0dXJl', user));
  }
  return 'a'.repeat(64);
}
