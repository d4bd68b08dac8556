// `config check` as a person reads it: one aligned line per setting with where
// its value came from (default, file:line, --flag). Built from maskedConfig only,
// so it can show nothing maskedConfig hides.
import { basename } from 'node:path';
import { maskedConfig, type MaskedConfig } from './mask.js';
import type { EffectiveConfig } from './ossec-conf.js';

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
}

export function renderMasked(m: MaskedConfig): string {
  const out: string[] = [];
  out.push(...table([
    ['configuration', m.file, m.origins.file],
    ['home', m.home, m.origins.home],
    ['manager_node', m.manager_node, m.origins.manager_node],
  ]));
  out.push('');
  out.push(...table([
    ['<nats>', 'value', 'from'],
    ...m.settings.map((s) => [
      s.element,
      s.value === null ? '-' : s.secret ? `${s.value} (secret file, contents not shown)` : s.value,
      s.where ? `${s.source} ${s.where.replace(`${m.file}:`, `${basename(m.file)}:`)}` : s.source,
    ]),
  ]));
  if (m.warnings.length) {
    out.push('', 'warnings:');
    for (const w of m.warnings) out.push(`  - ${w}`);
  }
  out.push('', m.enabled
    ? 'configuration valid; the tap is enabled'
    : 'configuration valid; the tap is disabled (<enabled>no</enabled>): `run` exits 0 without starting');
  return `${out.join('\n')}\n`;
}

export function renderConfig(cfg: EffectiveConfig): string {
  return renderMasked(maskedConfig(cfg));
}
