// A manager home with the ossec.conf the tap reads.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Write <home>/etc/ossec.conf with a <nats> section: enabled, no metrics endpoint, plus `extra` elements. */
export function writeOssecConf(home: string, extra = ''): string {
  mkdirSync(join(home, 'etc'), { recursive: true });
  const file = join(home, 'etc/ossec.conf');
  writeFileSync(file, `<ossec_config>\n  <cluster><node_name>node01</node_name><disabled>yes</disabled></cluster>\n</ossec_config>\n`
    + `<ossec_config>\n  <nats>\n    <enabled>yes</enabled>\n    <metrics>no</metrics>\n${extra}  </nats>\n</ossec_config>\n`);
  return file;
}
