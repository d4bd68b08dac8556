// Reads the `<nats>` section of the manager's ossec.conf (SPEC §6) into the
// effective configuration, validated the way Wazuh validates its own sections
// (WAZUH-PROTOCOL §8): an unknown element, an empty one, a bad value, a missing
// file or a secret file others can read or another user owns is a ConfigError
// (exit 2) naming the element and the file. CLI flags override the file.
import { closeSync, constants as fsc, existsSync, lstatSync, openSync, statSync } from 'node:fs';
import { onForeignMount } from '../util/proc-root.js';
import { hostname as osHostname } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { credsAuthenticator, nkeyAuthenticator } from '@nats-io/transport-node';
import { ConfigError, ConfigFileMissing, isPermissionError, PermissionDenied } from '../errors.js';
import { clip, clipPath, clipRuns } from '../util/clip.js';
import { existsInView, viewProblem } from '../util/in-view.js';
import { containerWritten, FOREIGN_MOUNT, CREDENTIAL_FILE_BYTES, fileKind, NotRegularFile, readRegularFileSync, readTrustedFileSync, secretModeOpen, secretOwnerOther, UntrustedFile } from '../util/read-file.js';
import { maskUrl } from '../util/mask-url.js';
import { validatePrefix } from '../publish/subjects.js';
import { MAX_BATCH_EVENTS } from '../publish/keepalive-batch.js';
import { MAX_ROUND_MS, isRoundMs } from '../capture/round.js';
import { HOOK_NAMES, NATS_ELEMENTS, OTHER_OVERRIDES, camelFlag, elementByKey, elementByName, type ConfigElement, type SettingKey } from './schema.js';

export type HookName = (typeof HOOK_NAMES)[number];

/** The settings of `<nats>`, parsed. Secret elements hold paths only: no file contents live in the configuration. */
export interface NatsSettings {
  enabled: boolean;
  serverUrls: string[];
  credentialsFile: string | null;
  nkeySeedFile: string | null;
  tokenFile: string | null;
  user: string | null;
  passwordFile: string | null;
  subjectPrefix: string;
  tlsCert: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
  maxReconnects: number;
  reconnectDelaySec: number;
  /** Also use the servers a NATS server announces (nats.js's cluster updates). */
  discoverServers: boolean;
  encryptMessages: boolean;
  encryptionKey: string | null;
  jetstream: boolean;
  stream: string;
  createStream: boolean;
  agentsKv: boolean;
  /** Replicas of what the tap creates (stream, KV bucket): 1–5, or auto (3 on a cluster of 3 or more, else 1). */
  streamReplicas: number | 'auto';
  spoolDir: string;
  /** Bytes. */
  spoolMaxSize: number;
  keepaliveEvents: boolean;
  /** Keepalives per message; 0: no batching. */
  keepaliveBatch: number;
  keepaliveBatchIntervalSec: number;
  alerts: boolean;
  alertsMinLevel: number;
  /** Lowest level of each severity above `low`. */
  alertThresholds: { medium: number; high: number; critical: number };
  /** With no saved position, read the existing alerts.json from its start. */
  alertsFromBeginning: boolean;
  /** null: metrics disabled (`no`). */
  metrics: { host: string; port: number } | null;
  hooks: HookName[];
  /** capture_interval: the capture's round while records flow (milliseconds). */
  captureIntervalMs: number;
}

export type ValueSource = 'default' | 'file' | 'flag';

export interface ValueOrigin {
  source: ValueSource;
  /** `/var/ossec/etc/ossec.conf:42`, `--nats-url`, `host name`, `detected`… */
  where?: string;
}

export interface EffectiveConfig extends NatsSettings {
  /** The ossec.conf that was read. */
  file: string;
  /** The manager's home. */
  home: string;
  /** `<cluster><node_name>`, else the host name. */
  managerNode: string;
  /** Where each value came from. */
  origins: Record<SettingKey | 'managerNode' | 'home' | 'file', ValueOrigin>;
  /** Legal but probably unintended settings, for `config check` and the log. */
  warnings: string[];
}

/** CLI flags of `run` (camelCase, as yargs gives them). Undefined: not given. */
export interface ConfigOverrides {
  /** `--nats-url` → `<server_url>` */
  natsUrl?: string;
  /** `--prefix` → `<subject_prefix>` */
  prefix?: string;
  /** `--hooks` → `<hooks>` */
  hooks?: string;
  /** `--metrics` → `<metrics>` (`host:port` or `no`) */
  metrics?: string;
  /** `--node` → manager_node (`<cluster><node_name>`, host name) */
  node?: string;
}

export interface LoadOptions {
  /** `--config`: default `<home>/etc/nats-tap.conf`, else the `<nats>` of `<home>/etc/ossec.conf` (SPEC §6). */
  file?: string;
  /** `--home`: default derived from `file` (`<home>/etc/ossec.conf`, or another file in a `<home>/etc` that holds ossec.conf) or detected. */
  home?: string;
  overrides?: ConfigOverrides;
  /** Where to look for the home (tests). */
  homeCandidates?: readonly string[];
}

export const HOME_CANDIDATES: readonly string[] = ['/var/ossec', '/var/wazuh-manager'];

/** The tap's own configuration file in a home: Wazuh refuses `<nats>` in its ossec.conf (SPEC §6). */
export const TAP_CONF = 'etc/nats-tap.conf';

/** The first candidate holding etc/nats-tap.conf or etc/ossec.conf, else the first that exists, else the first. */
export function detectHome(candidates: readonly string[] = HOME_CANDIDATES): string {
  return candidates.find((d) => existsSync(join(d, TAP_CONF)) || existsSync(join(d, 'etc/ossec.conf')))
    ?? candidates.find((d) => existsSync(d))
    ?? candidates[0] ?? '/var/ossec';
}

// ---------------------------------------------------------------------------
// XML

const ROOT = 'wazuh-nats-tap-root';
const META = XMLParser.getMetaDataSymbol() as unknown as symbol;

type XNode = Record<string, unknown>;

interface Leaf {
  name: string;
  text: string | null; // null: holds elements
  line: number;
}

interface Parsed {
  /** Every element of every `<nats>`, in document order. */
  nats: Leaf[];
  /** The last `<cluster><node_name>`. */
  nodeName: Leaf | null;
}

function tagOf(node: XNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@');
}

function children(node: XNode, tag: string): XNode[] {
  const c = node[tag];
  return Array.isArray(c) ? (c as XNode[]) : [];
}

function textOf(kids: XNode[]): string | null {
  let text = '';
  for (const k of kids) {
    const tag = tagOf(k);
    if (tag === '#text') text += String(k['#text']);
    else if (tag !== undefined && !tag.startsWith('?')) return null;
  }
  return text.trim();
}

/** Deeper than this is no Wazuh configuration (ossec.conf nests three or four levels). */
export const MAX_XML_DEPTH = 32;

/** The line of `idx` in `text` (1-based). */
function lineAt(text: string, idx: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < idx; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Before the XML parser sees the text: a DOCTYPE (with its entities, external or not) is refused —
 * Wazuh's own parser knows none, and an entity can read another file or expand without bound —
 * and the nesting is bounded (the parser recurses: 100,000 nested tags exhaust its stack). Both
 * name the file and line. Comments, CDATA and processing instructions are skipped, and quoted
 * attribute values may hold '>'; what is malformed is left to the validator, which says where.
 */
function screenXml(text: string, file: string): void {
  let depth = 0;
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return;
    // Past a comment, CDATA or processing instruction (-1: unterminated, the validator says where).
    const skip = (open: string, close: string) => {
      if (!text.startsWith(open, lt)) return -2;
      const e = text.indexOf(close, lt + open.length);
      return e < 0 ? -1 : e + close.length;
    };
    let end = skip('<!--', '-->');
    if (end === -2) end = skip('<![CDATA[', ']]>');
    if (end === -2) end = skip('<?', '?>');
    if (end === -1) return;
    if (end >= 0) {
      i = end;
      continue;
    }
    if (text[lt + 1] === '!') {
      throw new ConfigError(`${file}:${lineAt(text, lt)}: '${clip(text.slice(lt, lt + 40).split(/\s/)[0], 20)}' is not allowed: `
        + 'no DOCTYPE or entity declaration in the configuration (Wazuh\'s parser has none; an entity could read another file)');
    }
    if (!/[A-Za-z_:/]/.test(text[lt + 1] ?? '')) {
      i = lt + 1; // not a tag: the validator has its say
      continue;
    }
    let j = lt + 1;
    let quote = '';
    for (; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === '\'') {
        quote = c;
      } else if (c === '>') {
        break;
      }
    }
    if (j >= text.length) return;
    if (text[lt + 1] === '/') depth--;
    else if (text[j - 1] !== '/' && ++depth > MAX_XML_DEPTH) {
      throw new ConfigError(`${file}:${lineAt(text, lt)}: elements nested more than ${MAX_XML_DEPTH} deep: not a Wazuh configuration`);
    }
    i = j + 1;
  }
}

/** A parser error as a ConfigError naming the file and the line (the parser's, else the first). */
function xmlError(file: string, e: unknown): ConfigError {
  const msg = e instanceof Error ? e.message : String(e);
  const line = /\bline:? ?(\d+)/i.exec(msg)?.[1] ?? '1';
  return new ConfigError(`${file}:${line}: malformed XML: ${clipRuns(msg)}`);
}

/**
 * How the top level of a file is read. Wazuh (ReadConfig) refuses a root element other than
 * <ossec_config> ("Invalid element in the configuration"), takes several, and skips text between
 * them — an empty file is an empty configuration to it.
 * - `own`: the tap's own file (nats-tap.conf, or a --config not named ossec.conf): as Wazuh, and
 *   also no text outside elements and at least one <ossec_config> — a `<nats>` written as the
 *   root, a misspelt root or a file that is no configuration at all (a key given to --config) was
 *   read as "no <nats>": valid, disabled, `run` exiting 0 without doing anything.
 * - `wazuh`: Wazuh's ossec.conf, read for the settings (no nats-tap.conf): as Wazuh.
 * - `lenient`: ossec.conf read only for the node name: Wazuh's business, read as it is.
 */
type TopLevel = 'own' | 'wazuh' | 'lenient';

function parseXml(text: string, file: string, top: TopLevel = 'own'): Parsed {
  // The XML declaration may only open a document: blank it (keeping lines) before wrapping.
  const body = text.replace(/^\uFEFF?\s*<\?xml[\s\S]*?\?>/, (m) => m.replace(/[^\n]/g, ' '));
  screenXml(body, file);
  const wrapped = `<${ROOT}>${body}</${ROOT}>`;
  const offset = ROOT.length + 2;
  let valid: ReturnType<typeof XMLValidator.validate>;
  try {
    valid = XMLValidator.validate(wrapped);
  } catch (e) {
    throw xmlError(file, e);
  }
  if (valid !== true) {
    throw new ConfigError(`${file}:${valid.err.line}: malformed XML: ${clipRuns(valid.err.msg)}`);
  }
  const lineStarts = [0];
  for (let i = body.indexOf('\n'); i !== -1; i = body.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const lineOf = (node: XNode): number => {
    const idx = ((node as Record<symbol, { startIndex?: number } | undefined>)[META]?.startIndex ?? offset) - offset;
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= idx) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const parser = new XMLParser({
    preserveOrder: true, ignoreAttributes: true, parseTagValue: false, trimValues: true,
    captureMetaData: true, ignoreDeclaration: true, ignorePiTags: true,
  });
  let doc: XNode[];
  try {
    doc = parser.parse(wrapped) as XNode[];
  } catch (e) {
    throw xmlError(file, e);
  }
  const out: Parsed = { nats: [], nodeName: null };
  const root = doc.find((n) => tagOf(n) === ROOT);
  let roots = 0;
  for (const el of root ? children(root, ROOT) : []) {
    const tag = tagOf(el);
    if (tag !== 'ossec_config' && top !== 'lenient' && tag !== undefined && !tag.startsWith('?')) {
      if (tag === '#text') {
        if (top === 'own') {
          const words = String(el['#text']).trim();
          const at = body.indexOf(words.slice(0, 40));
          throw new ConfigError(`${file}:${at < 0 ? 1 : lineAt(body, at)}: text outside <ossec_config>: '${clip(words, 40)}' — `
            + 'the tap\'s settings are a <nats> section inside <ossec_config>…</ossec_config> (comments: <!-- … -->)');
        }
        continue; // Wazuh skips text between its roots
      }
      throw new ConfigError(`${file}:${lineOf(el)}: Invalid element in the configuration: '${clip(tag)}' — the root element must be `
        + `<ossec_config>${tag === 'nats' ? ', with <nats> inside it: <ossec_config><nats>…</nats></ossec_config>' : ''}`);
    }
    if (tag !== 'ossec_config') continue;
    roots++;
    for (const section of children(el, 'ossec_config')) {
      const tag = tagOf(section);
      if (tag === 'nats') {
        for (const el of children(section, 'nats')) {
          const name = tagOf(el);
          if (name === undefined || name === '#text' || name.startsWith('?')) continue;
          out.nats.push({ name, text: textOf(children(el, name)), line: lineOf(el) });
        }
      } else if (tag === 'cluster') {
        for (const el of children(section, 'cluster')) {
          if (tagOf(el) === 'node_name') out.nodeName = { name: 'node_name', text: textOf(children(el, 'node_name')), line: lineOf(el) };
        }
      }
    }
  }
  if (top === 'own' && roots === 0) {
    throw new ConfigError(`${file}: no <ossec_config> element: not a configuration — the tap's settings are a <nats> section `
      + 'inside <ossec_config>…</ossec_config> (docs/configuration.md)');
  }
  return out;
}

// ---------------------------------------------------------------------------
// Values

interface Ctx {
  /** `file:line` or `--flag`, for messages. */
  where: string;
  home: string;
}

function invalid(ctx: Ctx, el: string, value: string, expected: string): never {
  throw new ConfigError(`${ctx.where}: Invalid value for element '${el}': '${clip(value)}' — ${expected}`);
}

const BOOL: Record<string, boolean> = { yes: true, no: false };
const TIME_UNIT: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };
const SIZE_UNIT: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };
const TOKEN = /^[A-Za-z0-9_-]+$/;

function parseUrls(ctx: Ctx, el: string, text: string): string[] {
  // Never the text as written: a URL's password masked first, then clipped (clipped first, a long
  // password cut before its '@' is no URL to mask). A list with credentials is quoted whole, masked:
  // a comma in a password splits it into parts whose masking could not tell a password from a host.
  const quoted = (part: string) => (maskUrl(text) !== text ? maskUrl(text) : part);
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) invalid(ctx, el, quoted(text), 'comma-separated URLs, none empty');
  for (const p of parts) {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      invalid(ctx, el, quoted(p), 'not a URL; expected nats://host:port or tls://host:port');
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') invalid(ctx, el, quoted(p), `scheme '${clip(u.protocol, 20)}' is not nats:// or tls://`);
    if (!u.hostname) invalid(ctx, el, quoted(p), 'no host');
    if ((u.pathname && u.pathname !== '/') || u.search || u.hash) invalid(ctx, el, quoted(p), 'a NATS URL has no path, query or fragment');
  }
  return parts;
}

/**
 * A `--nats-url` given to a command that reads no configuration (`tail --nats-url` alone): checked
 * as `<server_url>` and `run --nats-url` are — empty, not a URL, another scheme: a ConfigError (exit 2).
 */
export function parseServerUrls(flag: string, text: string): string[] {
  if (text.trim() === '') throw new ConfigError(`${flag}: Invalid NULL content for element: server_url`);
  return parseUrls({ where: flag, home: '/' }, 'server_url', text.trim());
}

/** `nats://user:secret@host` → `nats://user:***@host`; a lone user part (a NATS token) → `***`. */
// maskUrl lives in util/mask-url.ts (the log, status and tail mask URLs too); re-exported for config/.
export { maskUrl };

/** A file the configuration names that this user may not read: missing privileges (exit 3), not a bad setting. */
function unreadable(ctx: Ctx, def: ConfigElement, path: string): PermissionDenied {
  return new PermissionDenied(`${ctx.where}: <${def.element}>: '${clipPath(path)}' cannot be read (permission denied; run as root)`);
}

/** Whether the file at `path` lies on another mount namespace's mount (util/proc-root.ts); false when it cannot be opened. */
function onForeignMountPath(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch {
    return false; // what follows says why it cannot be read
  }
  try {
    return onForeignMount(fd);
  } finally {
    closeSync(fd);
  }
}

function checkFile(ctx: Ctx, def: ConfigElement, path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (isPermissionError(e)) throw new PermissionDenied(`${ctx.where}: <${def.element}>: file '${clipPath(path)}' cannot be read (permission denied; run as root)`);
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`;
    throw new ConfigError(`${ctx.where}: <${def.element}>: file '${clipPath(path)}' ${why}`);
  }
  // A CA or a secret in a container's files is its root user's to read and replace (or to link to a host file).
  const foreign = def.secret || def.key === 'tlsCa' ? containerWritten(path) ?? (st.isFile() && onForeignMountPath(path) ? FOREIGN_MOUNT : null) : null;
  if (foreign) {
    throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' is ${foreign}; keep the tap's `
      + `${def.secret ? 'secrets' : 'CA'} on the host (e.g. /etc/wazuh-nats-tap/), with an absolute path`);
  }
  // A FIFO or a device is refused here, never opened (reading one would block or never end).
  if (!st.isFile()) throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' is not a regular file (${fileKind(st)})`);
  if (!def.secret) {
    // A CA is not secret, but whoever could write it could read what the tap sends over TLS: its
    // credentials (publish/connect-options.ts reads it the same way). A certificate without its key
    // is nothing to anyone: it may be anyone's.
    if (def.key !== 'tlsCa') return;
    try {
      readTrustedFileSync(path, CREDENTIAL_FILE_BYTES);
    } catch (e) {
      if (isPermissionError(e)) throw unreadable(ctx, def, path);
      if (!(e instanceof UntrustedFile)) throw new ConfigError(`${ctx.where}: <${def.element}>: ${(e as Error).message}`);
      throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' is ${e.message}: the tap trusts the servers it `
        + 'vouches for, so it must belong to root and be writable by root only');
    }
    return;
  }
  const mode = secretModeOpen(st.mode);
  if (mode) {
    throw new ConfigError(
      `${ctx.where}: <${def.element}>: '${clipPath(path)}' has mode ${mode}: a file holding a secret must give no access `
      + `to group or others (mode & 0077 must be 0, e.g. 0600 or 0400); fix: chmod 600 '${clipPath(path)}'`);
  }
  const link = lstatSync(path);
  const owner = secretOwnerOther(st) ?? (link.isSymbolicLink() ? secretOwnerOther(link) : null);
  if (owner) {
    throw new ConfigError(
      `${ctx.where}: <${def.element}>: '${clipPath(path)}' is ${owner}: a file holding a secret must belong to root (the tap's user): `
      + `its owner can read it and replace it; fix: chown root: '${clipPath(path)}'`);
  }
  if (st.size === 0) throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' is empty`);
  if (def.key === 'credentialsFile' || def.key === 'nkeySeedFile') {
    let bytes: Buffer;
    try {
      bytes = readRegularFileSync(path, CREDENTIAL_FILE_BYTES);
    } catch (e) {
      if (isPermissionError(e)) throw unreadable(ctx, def, path);
      throw new ConfigError(`${ctx.where}: <${def.element}>: ${(e as Error).message}`);
    }
    const problem = credentialProblem(def.key, bytes);
    bytes.fill(0);
    if (problem) {
      throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' ${def.key === 'credentialsFile'
        ? 'is not a NATS .creds file (a user JWT block, then its nkey seed block, as nsc writes it)'
        : 'does not hold an nkey seed (SU…, as nk -gen user writes it)'}: ${problem}`);
    }
  }
  if (def.key === 'encryptionKey') {
    // Checked here so a bad key stops the start, not the first publish; the key itself is not kept.
    let n: number | null;
    try {
      n = keyBytes(readRegularFileSync(path, 4096).toString('utf8'));
    } catch (e) {
      if (isPermissionError(e)) throw unreadable(ctx, def, path);
      throw new ConfigError(`${ctx.where}: <${def.element}>: ${(e as Error).message}`);
    }
    if (n !== 32) {
      throw new ConfigError(`${ctx.where}: <${def.element}>: '${clipPath(path)}' must hold a 32-byte key as 64 hex digits or base64 `
        + `(${n === null ? 'neither hex nor base64' : `${n} bytes`}); generate one with: openssl rand -hex 32 > '${clipPath(path)}'`);
    }
  }
}

/** A JWT as NATS writes one: three base64url parts. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Why the contents of a nkey_seed_file or credentials_file cannot authenticate, or null — checked
 * here as nats.js reads them at each connection (its own authenticators, given a nonce to sign), so
 * a bad file stops the start (exit 2), not every connection of a tap that retries forever. The
 * reasons never quote the contents.
 */
function credentialProblem(key: SettingKey, bytes: Buffer): string | null {
  try {
    let seed: Uint8Array;
    if (key === 'credentialsFile') {
      const auth = credsAuthenticator(new Uint8Array(bytes))('check') as { jwt?: string; nkey?: string };
      if (!auth.jwt || !JWT.test(auth.jwt)) return 'its first block is not a user JWT';
      if (!auth.nkey?.startsWith('U')) return 'its seed is not a user\'s (SU…)';
      return null;
    } else {
      seed = new TextEncoder().encode(bytes.toString('utf8').trim());
    }
    const auth = nkeyAuthenticator(seed)('check') as { nkey?: string };
    return auth.nkey?.startsWith('U') ? null : 'not a user\'s seed (SU…)';
  } catch (e) {
    // nats.js and nkeys say what is wrong in a few fixed words ("unable to parse credentials",
    // "nkeys: invalid checksum", "nkeys: invalid seed"); clipped all the same.
    return clip((e as Error).message, 80);
  }
}

function keyBytes(text: string): number | null {
  const s = text.trim();
  if (/^[0-9a-fA-F]+$/.test(s) && s.length % 2 === 0) return s.length / 2;
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return Buffer.from(s, 'base64').length;
  return null;
}

function parseValue(ctx: Ctx, def: ConfigElement, text: string): unknown {
  const el = def.element;
  switch (def.type) {
    case 'boolean':
      if (!(text in BOOL)) invalid(ctx, el, text, 'yes or no');
      return BOOL[text];
    case 'urls':
      return parseUrls(ctx, el, text);
    case 'file': {
      const path = resolve(ctx.home, text);
      checkFile(ctx, def, path);
      return path;
    }
    case 'user':
      if (!/^[^\s,]{1,256}$/.test(text)) invalid(ctx, el, text, 'a user name without spaces or commas');
      return text;
    case 'prefix':
      try {
        return validatePrefix(text);
      } catch {
        return invalid(ctx, el, text, 'dot-separated tokens of letters, digits, \'-\' and \'_\'');
      }
    case 'count': {
      if (!/^\d{1,9}$/.test(text)) invalid(ctx, el, text, 'a whole number ≥ 0');
      return Number(text);
    }
    case 'time': {
      const m = /^(\d{1,9})([smhd]?)$/.exec(text);
      if (!m) invalid(ctx, el, text, 'seconds, or a number with s, m, h or d (30s, 1m)');
      const sec = Number(m[1]) * TIME_UNIT[m[2]];
      if (sec === 0 && def.zeroTime) return 0;
      if (sec < 1 || sec > 86400) invalid(ctx, el, text, def.zeroTime ? '0, or between 1 second and 1 day' : 'between 1 second and 1 day');
      return sec;
    }
    case 'name':
      if (!TOKEN.test(text) || text.length > 64) invalid(ctx, el, text, 'letters, digits, \'-\' and \'_\' (at most 64)');
      return text;
    case 'dir': {
      if (!isAbsolute(text)) invalid(ctx, el, text, 'an absolute path');
      const path = resolve(text);
      if (existsSync(path) && !statSync(path).isDirectory()) invalid(ctx, el, text, 'exists and is not a directory');
      return path;
    }
    case 'size': {
      const m = /^(\d{1,15})\s*([a-zA-Z]*)$/.exec(text);
      const unit = m ? SIZE_UNIT[m[2].toLowerCase()] : undefined;
      if (!m || unit === undefined) invalid(ctx, el, text, 'bytes, or a number with KB, MB or GB (512MB)');
      const bytes = Number(m[1]) * unit;
      if (bytes < 1024 ** 2 || !Number.isSafeInteger(bytes)) invalid(ctx, el, text, 'at least 1MB');
      return bytes;
    }
    case 'level': {
      if (!/^\d{1,2}$/.test(text) || Number(text) > 15) invalid(ctx, el, text, 'a rule level from 0 to 15');
      return Number(text);
    }
    case 'levels': {
      const parts = text.split(',').map((s) => s.trim());
      const ok = parts.length === 3 && parts.every((p) => /^\d{1,2}$/.test(p));
      const [medium, high, critical] = parts.map(Number);
      if (!ok || !(medium >= 1 && medium < high && high < critical && critical <= 15)) {
        invalid(ctx, el, text, 'three ascending rule levels from 1 to 15: medium,high,critical (7,10,13)');
      }
      return { medium, high, critical };
    }
    case 'address': {
      if (text === 'no') return null;
      const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) invalid(ctx, el, text, 'host:port (127.0.0.1:9464, [::1]:9464) or no');
      return { host: m[1], port };
    }
    case 'millis': { // capture_interval: the capture's round (capture/round.ts)
      const m = /^(\d{1,3})(ms)?$/.exec(text);
      if (!m || !isRoundMs(Number(m[1]))) invalid(ctx, el, text, `milliseconds from 1 to ${MAX_ROUND_MS} (3, 3ms)`);
      return Number(m[1]);
    }
    case 'replicas': {
      if (text === 'auto') return 'auto';
      if (!/^[1-5]$/.test(text)) invalid(ctx, el, text, 'auto, or a number of replicas from 1 to 5');
      return Number(text);
    }
    case 'hooks': {
      const hooks = text.split(',').map((s) => s.trim());
      const bad = hooks.filter((h) => !(HOOK_NAMES as readonly string[]).includes(h));
      if (bad.length) invalid(ctx, el, text, `comma-separated syscalls among ${HOOK_NAMES.join(', ')}`);
      return [...new Set(hooks)];
    }
  }
}

// ---------------------------------------------------------------------------

/**
 * A configuration larger than this is not an ossec.conf (Wazuh's own is tens of KB). It is parsed on the
 * event loop, at start and at every SIGHUP: 16 MiB took 9–12 s and 700 MB there (a reload froze the tap,
 * and a SIGTERM meanwhile passed its deadline); 1 MiB ~0.25 s.
 */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The file the tap's settings come from. Never a blocking read: a FIFO (or a device) where the file
 * should be is refused, not waited on. `trusted`: its settings are the tap's, so nobody but root (or
 * the tap's user) may have written it (util/read-file.ts readTrustedFileSync) — `<home>/etc` is the
 * wazuh user's to write, and a Wazuh daemon taken over could otherwise point the tap, run as root,
 * at its own server with a root-only file as the token, at its own CA, or its spool anywhere.
 * ossec.conf read for the manager's node name only is Wazuh's own, read as it is.
 */
function readConfigFile(file: string, trusted = true): string {
  try {
    return (trusted ? readTrustedFileSync(file, MAX_CONFIG_BYTES) : readRegularFileSync(file, MAX_CONFIG_BYTES)).toString('utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const f = clipPath(file);
    if (code === 'ENOENT') throw new ConfigFileMissing(`configuration file '${f}' does not exist (write the <nats> section there, give another file with --config, or the manager's home with --home)`);
    if (isPermissionError(e)) throw new PermissionDenied(`configuration file '${f}' cannot be read: permission denied (run as root)`);
    if (e instanceof NotRegularFile) throw new ConfigError(`configuration file ${e.message}`);
    if (e instanceof UntrustedFile) {
      if (e.container) {
        throw new ConfigError(`configuration file '${f}' is ${e.message}: the tap runs as the host's root, and whoever writes its `
          + 'configuration chooses where it sends its credentials and which of the host\'s files it reads as secrets. Give it a '
          + 'configuration of the host\'s: --config /etc/wazuh-nats-tap/<name>.conf (owned by root, mode 0640), with --home as it is');
      }
      const wazuhs = basename(file) === 'ossec.conf'
        ? ` Wazuh keeps ossec.conf writable by its group (its API rewrites it): put the <nats> section in ${TAP_CONF.replace(/^etc\//, '<home>/etc/')} instead, owned by root, mode 0640.`
        : '';
      throw new ConfigError(`configuration file '${f}' is ${e.message}: whoever can write it could send the tap's credentials, `
        + `or a file only root may read, to a server of theirs; it must belong to root and be writable by root only.${wazuhs}`);
    }
    throw new ConfigError(`configuration file '${f}' cannot be read (${code ?? (e as Error).message})`);
  }
}

/** The effective configuration: defaults, then ossec.conf, then flags. Throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): EffectiveConfig {
  const overrides = opts.overrides ?? {};
  let home: string;
  let homeOrigin: ValueOrigin;
  if (opts.home !== undefined) {
    if (opts.home === '') throw new ConfigError('--home: Invalid NULL content');
    home = resolve(opts.home);
    homeOrigin = { source: 'flag', where: '--home' };
  } else if (opts.file !== undefined && basename(dirname(resolve(opts.file))) === 'etc'
    && (basename(opts.file) === 'ossec.conf' || existsSync(join(dirname(resolve(opts.file)), 'ossec.conf')))) {
    // <home>/etc/ossec.conf, or a file of its own beside it (<home>/etc/nats-tap.conf, as the guide recommends).
    home = dirname(dirname(resolve(opts.file)));
    homeOrigin = { source: 'default', where: 'from the configuration file\'s path' };
  } else {
    home = detectHome(opts.homeCandidates);
    homeOrigin = { source: 'default', where: 'detected' };
  }
  const viewed = viewProblem(home);
  if (viewed) throw new ConfigError(`the Wazuh home '${clipPath(home)}' cannot be followed: ${viewed}`);
  if (opts.file === '') throw new ConfigError('--config: Invalid NULL content');
  // The tap's own file, else a <nats> in ossec.conf (a Wazuh built to accept it), read only when
  // the tap's file is absent. The manager's node name is Wazuh's, in ossec.conf, either way.
  const ossecConf = join(home, 'etc/ossec.conf');
  const ownFile = join(home, TAP_CONF);
  // Below a container's root, as the container resolves the paths (its /var/ossec may be a link: util/in-view.ts).
  const file = resolve(opts.file ?? (existsInView(ownFile) || !existsInView(ossecConf) ? ownFile : ossecConf));
  const parsed = parseXml(readConfigFile(file), file, basename(file) === 'ossec.conf' ? 'wazuh' : 'own');
  let nodeFile = file;
  /** Why ossec.conf, there, could not be read for the node name: said as a warning (null: it was, or is absent). */
  let nodeUnread: string | null = null;
  if (!parsed.nodeName && file !== resolve(ossecConf) && existsInView(ossecConf)) {
    try {
      // A regular file, read without blocking and to a bound (readConfigFile): a FIFO or a device
      // there is refused at once, never waited on or read without end.
      parsed.nodeName = parseXml(readConfigFile(ossecConf, false), ossecConf, 'lenient').nodeName;
      nodeFile = ossecConf;
    } catch (e) {
      // Wazuh's own file is Wazuh's business: unreadable here, the host name names the node — but
      // said, as the reason: in a cluster every event's manager_node changes with it.
      nodeUnread = (e as Error).message;
    }
  }

  // Later elements override earlier ones, across every <nats> block, as in Wazuh.
  const fromFile = new Map<string, Leaf>();
  for (const leaf of parsed.nats) {
    const where = `${file}:${leaf.line}`;
    if (!elementByName(leaf.name)) {
      throw new ConfigError(`${where}: Invalid element in the configuration: '${clip(leaf.name)}' (in <nats>; known: ${NATS_ELEMENTS.map((e) => e.element).join(', ')})`);
    }
    if (leaf.text === null) throw new ConfigError(`${where}: Invalid value for element '${leaf.name}': it holds elements, expected text`);
    if (leaf.text === '') throw new ConfigError(`${where}: Invalid NULL content for element: ${leaf.name}`);
    fromFile.set(leaf.name, leaf);
  }

  const values: Partial<Record<SettingKey, unknown>> = {};
  const origins = {} as EffectiveConfig['origins'];
  const lines = new Map<SettingKey, string>();
  for (const def of NATS_ELEMENTS) {
    const flagKey = def.flag ? (camelFlag(def.flag) as keyof ConfigOverrides) : undefined;
    const flagValue = flagKey ? overrides[flagKey] : undefined;
    const leaf = fromFile.get(def.element);
    if (flagValue !== undefined) {
      const where = `--${def.flag}`;
      if (flagValue.trim() === '') throw new ConfigError(`${where}: Invalid NULL content for element: ${def.element}`);
      values[def.key] = parseValue({ where, home }, def, flagValue.trim());
      origins[def.key] = { source: 'flag', where };
    } else if (leaf) {
      const where = `${file}:${leaf.line}`;
      values[def.key] = parseValue({ where, home }, def, leaf.text as string);
      origins[def.key] = { source: 'file', where };
    } else {
      values[def.key] = def.default === null ? null
        : parseValue({ where: `default of <${def.element}>`, home }, def, def.default.replace('<home>', home));
      origins[def.key] = { source: 'default' };
    }
    lines.set(def.key, origins[def.key].where ?? file);
  }
  const s = values as unknown as NatsSettings;

  // Elements that only make sense together.
  const at = (k: SettingKey) => lines.get(k) ?? file;
  const el = (k: SettingKey) => `<${elementByKey(k).element}>`;
  const pair = (a: SettingKey, b: SettingKey, why: string) => {
    if ((s[a] === null) !== (s[b] === null)) {
      const [set, unset] = s[a] !== null ? [a, b] : [b, a];
      throw new ConfigError(`${at(set)}: ${el(set)} is set but ${el(unset)} is not: ${why} (set both or neither)`);
    }
  };
  pair('tlsCert', 'tlsKey', 'a client certificate needs its private key');
  pair('user', 'passwordFile', 'user and password authenticate together');
  const auths = (['credentialsFile', 'nkeySeedFile', 'tokenFile', 'user'] as const).filter((k) => s[k] !== null);
  if (auths.length > 1) {
    throw new ConfigError(`${at(auths[1])}: ${auths.map(el).join(' and ')} are both set: choose one NATS authentication`);
  }
  if (s.keepaliveBatch > MAX_BATCH_EVENTS) {
    throw new ConfigError(`${at('keepaliveBatch')}: Invalid value for element 'keepalive_batch': ${s.keepaliveBatch} (at most ${MAX_BATCH_EVENTS} keepalives per message)`);
  }
  if (s.encryptMessages && s.encryptionKey === null) {
    throw new ConfigError(`${at('encryptMessages')}: <encrypt_messages> is yes but <encryption_key> is not set: encrypting needs the key file`);
  }

  const warnings: string[] = [];
  if (s.createStream && !s.jetstream) warnings.push('<create_stream> is yes but <jetstream> is no: no stream is created');
  if (origins.keepaliveBatchIntervalSec.source !== 'default' && !s.keepaliveBatch) warnings.push('<keepalive_batch_interval> is set but <keepalive_batch> is 0: keepalives are not batched');
  if (origins.keepaliveBatch.source !== 'default' && s.keepaliveBatch && !s.keepaliveEvents) warnings.push('<keepalive_batch> is set but <keepalive_events> is no: no keepalive is published');
  if (s.agentsKv && !s.jetstream) warnings.push('<agents_kv> is yes but <jetstream> is no: no KV bucket is kept');
  if (origins.stream.source !== 'default' && !s.jetstream) warnings.push('<stream> is set but <jetstream> is no: it is not used');
  if (origins.streamReplicas.source !== 'default' && !(s.jetstream && (s.createStream || s.agentsKv))) {
    warnings.push('<stream_replicas> is set but the tap creates nothing (it needs <jetstream> yes and <create_stream> or <agents_kv> yes): it is not used');
  }
  if (s.serverUrls.some((u) => maskUrl(u) !== u)) warnings.push('<server_url> carries credentials: prefer credentials_file, token_file or user + password_file');

  // The node name: --node, else <cluster><node_name> (read even when the cluster is disabled), else the host name.
  let managerNode: string;
  if (overrides.node !== undefined) {
    if (overrides.node.trim() === '') throw new ConfigError('--node: Invalid NULL content for element: node_name');
    managerNode = overrides.node.trim();
    origins.managerNode = { source: 'flag', where: '--node' };
  } else if (parsed.nodeName) {
    const where = `${nodeFile}:${parsed.nodeName.line}`;
    if (!parsed.nodeName.text) throw new ConfigError(`${where}: Invalid NULL content for element: node_name`);
    managerNode = parsed.nodeName.text;
    origins.managerNode = { source: 'file', where: `${where} <cluster><node_name>` };
  } else {
    managerNode = osHostname();
    origins.managerNode = { source: 'default', where: nodeUnread ? 'host name; etc/ossec.conf could not be read, see warnings' : 'host name' };
    if (nodeUnread) {
      const why = nodeUnread.includes(clipPath(ossecConf)) ? nodeUnread : `${clipPath(ossecConf)}: ${nodeUnread}`;
      warnings.push(`<cluster><node_name> could not be read: manager_node is the host name '${clip(managerNode)}' `
        + `(give --node, or fix ossec.conf): ${why}`);
    }
  }
  origins.home = homeOrigin;
  origins.file = opts.file !== undefined ? { source: 'flag', where: '--config' }
    : { source: 'default', where: file === resolve(ownFile) ? `<home>/${TAP_CONF}` : '<home>/etc/ossec.conf (no nats-tap.conf beside it)' };

  return { ...s, file, home, managerNode, origins, warnings };
}

/** The flags that override the configuration, for docs and help: flag → what it replaces. */
export function overrideMapping(): { flag: string; replaces: string }[] {
  return [
    ...NATS_ELEMENTS.filter((e) => e.flag).map((e) => ({ flag: `--${e.flag}`, replaces: `\`<${e.element}>\`` })),
    ...OTHER_OVERRIDES.map((o) => ({ flag: `--${o.flag}`, replaces: o.replaces })),
  ];
}
