// The reference tables of docs/configuration.md, generated from schema.ts
// (scripts/gen-config-doc.mjs writes them; test/config-doc.test.ts fails when
// the document and the schema differ).
import { NATS_ELEMENTS } from './schema.js';
import { overrideMapping } from './ossec-conf.js';

export const DOC_BEGIN = '<!-- BEGIN GENERATED from controller/src/config/schema.ts by scripts/gen-config-doc.mjs: do not edit -->';
export const DOC_END = '<!-- END GENERATED -->';

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function configReferenceMarkdown(): string {
  const live = NATS_ELEMENTS.filter((e) => e.live && e.element !== 'enabled').map((e) => `\`${e.element}\``).join(', ');
  const lines = [
    '| element | default | secret file | meaning |',
    '|---|---|---|---|',
    ...NATS_ELEMENTS.map((e) => `| \`${e.element}\` | ${e.default === null ? '—' : `\`${e.default}\``} | ${e.secret ? 'yes' : ''} | ${cell(e.description)} |`),
    '',
    'Flags of `run` (and `config check`) that override the file:',
    '',
    '| flag | overrides |',
    '|---|---|',
    ...overrideMapping().map((o) => `| \`${o.flag}\` | ${cell(o.replaces)} |`),
    '',
    `A reload (\`systemctl reload wazuh-nats-tap\`, SIGHUP) applies ${live} to the running tap (\`enabled\` \`no\` `
      + 'stops it). A change to any other element, to the key in `encryption_key`\'s file or to the node name is not applied: '
      + 'the reload names each such setting in its log line (`needs_restart`, names only, never a value), and the running '
      + 'value stays until a restart; `status` says it meanwhile (`config  RESTART NEEDED: …`, `restart_needed` in '
      + '`status --json`). A reload reads the file the start read, in the same home: a `nats-tap.conf` missing at that '
      + 'moment (an editor\'s or a deployment\'s instant) is a failed reload that changes nothing — not a fallback to '
      + '`ossec.conf` — and one created after a start from `ossec.conf`\'s `<nats>` is read at the next restart. The '
      + 'loader\'s warnings (an unreadable `ossec.conf`) are logged again.',
  ];
  return `${DOC_BEGIN}\n${lines.join('\n')}\n${DOC_END}`;
}

/** `doc` with its generated block replaced by the current one. Throws when the markers are missing. */
export function withGeneratedReference(doc: string): string {
  const a = doc.indexOf(DOC_BEGIN);
  const b = doc.indexOf(DOC_END);
  if (a < 0 || b < a) throw new Error('docs/configuration.md: generated-block markers not found');
  return doc.slice(0, a) + configReferenceMarkdown() + doc.slice(b + DOC_END.length);
}
