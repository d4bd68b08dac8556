// The configuration as `config check` may show it: every value in ossec.conf
// syntax, credentials in URLs masked, secret files by path only. The
// configuration never holds the contents of a secret file, and nothing here
// reads one.
import { NATS_ELEMENTS, type ConfigElement } from './schema.js';
import { maskUrl, type EffectiveConfig, type ValueSource } from './ossec-conf.js';
import { maskUrlsIn } from '../util/mask-url.js';

export interface MaskedSetting {
  element: string;
  /** As it would be written in ossec.conf; null: unset. */
  value: string | null;
  source: ValueSource;
  where?: string;
  /** The value is the path of a file whose contents are secret (never shown). */
  secret: boolean;
}

export interface MaskedConfig {
  file: string;
  home: string;
  manager_node: string;
  enabled: boolean;
  /** Where file, home and manager_node came from. */
  origins: { file: string; home: string; manager_node: string };
  settings: MaskedSetting[];
  warnings: string[];
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function formatSize(bytes: number): string {
  for (const [unit, n] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

function formatValue(def: ConfigElement, v: unknown): string | null {
  if (v === null || v === undefined) return def.type === 'address' ? 'no' : null;
  switch (def.type) {
    case 'boolean': return yesNo(v as boolean);
    case 'urls': return (v as string[]).map(maskUrl).join(',');
    case 'hooks': return (v as string[]).join(',');
    case 'size': return formatSize(v as number);
    case 'time': return `${v as number}s`;
    case 'millis': return `${v as number}ms`;
    case 'levels': {
      const l = v as { medium: number; high: number; critical: number };
      return `${l.medium},${l.high},${l.critical}`;
    }
    case 'address': {
      const a = v as { host: string; port: number };
      return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
    }
    default: return String(v);
  }
}

const originText = (o: { source: ValueSource; where?: string }) => (o.where ? `${o.source} (${o.where})` : o.source);

export function maskedConfig(cfg: EffectiveConfig): MaskedConfig {
  return {
    file: cfg.file,
    home: cfg.home,
    manager_node: cfg.managerNode,
    enabled: cfg.enabled,
    origins: { file: originText(cfg.origins.file), home: originText(cfg.origins.home), manager_node: originText(cfg.origins.managerNode) },
    settings: NATS_ELEMENTS.map((def) => {
      const o = cfg.origins[def.key];
      const s: MaskedSetting = { element: def.element, value: formatValue(def, cfg[def.key]), source: o.source, secret: def.secret };
      if (o.where) s.where = o.where;
      return s;
    }),
    warnings: cfg.warnings.map(maskUrlsIn),
  };
}
