// The commented example nats-tap.conf the .deb and .rpm ship, generated from schema.ts so
// it names every element with its current meaning and default (scripts/package.sh writes
// it; test/package.test.ts runs `config check` on it). Only <enabled> is set, to `no`: the example
// is installed as the live file on a first install and must start nothing by itself.
import { NATS_ELEMENTS } from './schema.js';

/** A value to show for the elements without a default (file paths are relative to the home). */
export const EXAMPLE_VALUES: Readonly<Record<string, string>> = {
  credentials_file: 'etc/nats.creds',
  nkey_seed_file: 'etc/nats.nk',
  token_file: 'etc/nats.token',
  user: 'wazuh-tap',
  password_file: 'etc/nats.password',
  tls_cert: 'etc/nats-client.crt',
  tls_key: 'etc/nats-client.key',
  tls_ca: 'etc/nats-ca.pem',
  encryption_key: 'etc/nats-tap.key',
};

/** Plain text of a description: no markdown backticks, and never `--`, which ends no XML comment but is illegal inside one. */
function plain(s: string): string {
  const t = s.replace(/`/g, '');
  if (t.includes('--')) throw new Error(`'--' cannot appear in an XML comment: ${s}`);
  return t;
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else {
      line = line ? `${line} ${w}` : w;
    }
  }
  if (line) out.push(line);
  return out;
}

export function exampleConfig(): string {
  const head = [
    '<!--',
    '  wazuh-nats-tap: the <nats> section, in Wazuh\'s ossec.conf format, in a file of its own:',
    '  <home>/etc/nats-tap.conf (/var/ossec/etc/nats-tap.conf; 5.x /var/wazuh-manager/etc/nats-tap.conf).',
    '  Not in ossec.conf itself: Wazuh refuses elements it does not know, and a <nats> there stops',
    '  the manager. The node name comes from <cluster><node_name> of ossec.conf.',
    '',
    '  Every element is shown with its default, commented out. Set <enabled> to yes and',
    '  <server_url> to your NATS servers, then:',
    '    wazuh-nats-tap config check      (what the tap will use, secrets masked)',
    '    systemctl enable wazuh-nats-tap; systemctl start wazuh-nats-tap',
    '  Secret files (tls_key, credentials_file, nkey_seed_file, token_file, password_file,',
    '  encryption_key) must be readable by their owner only (chmod 600). Relative paths are',
    '  relative to the home. Reference: /usr/share/doc/wazuh-nats-tap/configuration.md',
    '-->',
    '<ossec_config>',
    '  <nats>',
  ];
  const body: string[] = [];
  for (const e of NATS_ELEMENTS) {
    // A default under the home (spool_dir's <home>/var/nats-tap) is written out for 4.x's: `<home>` inside
    // an element is markup, and the line uncommented was malformed XML.
    const home = e.default?.includes('<home>') ?? false;
    const value = e.element === 'enabled' ? 'no' : home ? e.default!.replaceAll('<home>', '/var/ossec') : e.default ?? EXAMPLE_VALUES[e.element];
    if (value === undefined) throw new Error(`example.ts: no example value for <${e.element}>`);
    const note = e.default === null ? ' (no default; an example value)'
      : home ? ` (default: ${e.default}, i.e. ${value} on 4.x, ${e.default.replaceAll('<home>', '/var/wazuh-manager')} on 5.x)`
        : ` (default: ${e.default})`;
    body.push('', ...wrap(plain(e.description) + note, 88).map((l, i) => `    ${i ? '     ' : '<!-- '}${l}`));
    body[body.length - 1] += ' -->';
    const el = `<${e.element}>${value}</${e.element}>`;
    body.push(e.element === 'enabled' ? `    ${el}` : `    <!-- ${el} -->`);
  }
  return [...head, ...body.slice(1), '  </nats>', '</ossec_config>', ''].join('\n');
}
