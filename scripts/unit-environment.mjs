// The environment systemd gives a service from its unit and drop-ins (in the order given: the unit,
// then its drop-ins by name), parsed as systemd parses it. Read by the benchmark, which starts every
// tap as the unit does, and by the vagrant test, which starts the installed one.
//
// Unit files (systemd's conf-parser.c): lines starting with # or ; are comments; a line ending in an
// odd number of backslashes goes on on the next one (the backslash becomes a space, comment lines
// in between are dropped); `[Section]`; `Key=Value`, white space around both trimmed. Only
// Environment= and EnvironmentFile= of [Service] are read.
//
// Environment= (config_parse_environ, extract_first_word with EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE):
// the value is split into words at white space; "…" and '…' quote anywhere in a word (white space
// inside stays); C escapes (\n \t \s \\ \" \' \xNN \NNN \uNNNN \UNNNNNNNN …) are decoded, in quotes
// or not, and any other backslash is a syntax error. Each word must be NAME=value (NAME of
// [A-Za-z0-9_], not starting with a digit), else it is ignored; a later NAME replaces an earlier
// one. An empty `Environment=` clears every assignment made before it. A syntax error (an unclosed
// quote, a bad escape) drops the rest of that line; the words before it stay. Specifiers: `%%` is
// `%`; any other is refused with an error (resolving them needs systemd).
//
// EnvironmentFile= (env-file.c): the files are read when the service starts (here: when this is
// called), in order, and what they set overrides Environment=. A "-" before the path: a missing file
// is skipped (otherwise the start fails: an error here). An empty `EnvironmentFile=` clears the
// list. In a file: `NAME=value` lines, # and ; comments, white space around the name and the
// unquoted value dropped, '…' literal, "…" with \" \\ \` \$ unescaped (a backslash before anything
// else kept) and backslash-newline joining lines, a backslash outside quotes escaping the next
// character (backslash-newline: a continued value).
import { readFileSync } from 'node:fs';

const WHITESPACE = ' \t\n\r';

/** The unit's logical lines: comments dropped, continuations joined (conf-parser.c). */
function logicalLines(text) {
  const out = [];
  let continuation = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const lead = line.replace(/^[ \t\n\r]+/, '');
    if (lead && '#;'.includes(lead[0])) continue;
    const p = continuation === null ? line : continuation + line;
    let escaped = false;
    for (const c of p) escaped = escaped ? false : c === '\\';
    if (escaped) {
      continuation = `${p.slice(0, -1)} `;
      continue;
    }
    continuation = null;
    out.push(p);
  }
  if (continuation !== null) out.push(continuation);
  return out;
}

/** One C escape after a backslash, s[i] its first character (s: code points): [bytes, length] or null (invalid). */
function cunescapeOne(s, i) {
  const simple = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39, s: 32 };
  const c = s[i];
  if (c in simple) return [Buffer.from([simple[c]]), 1];
  const hex = (from, n) => {
    const digits = s.slice(from, from + n).join('');
    return new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits) ? parseInt(digits, 16) : -1;
  };
  if (c === 'x') {
    const v = hex(i + 1, 2);
    return v > 0 ? [Buffer.from([v]), 3] : null; // \x00: no NUL
  }
  if (c === 'u' || c === 'U') {
    const n = c === 'u' ? 4 : 8;
    const v = hex(i + 1, n);
    if (v <= 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return null;
    return [Buffer.from(String.fromCodePoint(v), 'utf8'), n + 1];
  }
  if (c >= '0' && c <= '7') {
    const o = s.slice(i, i + 3).join('');
    if (!/^[0-7]{3}$/.test(o)) return null;
    const v = parseInt(o, 8);
    return v > 0 && v <= 255 ? [Buffer.from([v]), 3] : null;
  }
  return null;
}

/**
 * extract_first_word(…, EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE) over the whole value: the words, and
 * whether a syntax error ended it early (the words before it are kept).
 */
function words(text) {
  const value = [...text]; // by code point
  const out = [];
  let i = 0;
  for (;;) {
    while (i < value.length && WHITESPACE.includes(value[i])) i++;
    if (i >= value.length) return { words: out, error: false };
    const bytes = [];
    let quote = null;
    for (;;) {
      if (i >= value.length) {
        if (quote) return { words: out, error: true }; // unclosed quote
        break;
      }
      const c = value[i];
      if (c === '\\') {
        const esc = i + 1 < value.length ? cunescapeOne(value, i + 1) : null;
        if (!esc) return { words: out, error: true };
        bytes.push(esc[0]);
        i += 1 + esc[1];
        continue;
      }
      if (quote) {
        if (c === quote) quote = null;
        else bytes.push(Buffer.from(c, 'utf8'));
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        i++;
        continue;
      }
      if (WHITESPACE.includes(c)) break;
      bytes.push(Buffer.from(c, 'utf8'));
      i++;
    }
    out.push(Buffer.concat(bytes));
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** env_assignment_is_valid: NAME=value, the value valid UTF-8. */
function assignment(bytes) {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return null; // not UTF-8
  const eq = text.indexOf('=');
  if (eq < 0 || !NAME.test(text.slice(0, eq))) return null;
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** The `%` specifiers of a word: `%%` only. */
function specifiers(word) {
  return word.replace(/%(.?)/g, (_, c) => {
    if (c === '%') return '%';
    throw new Error(`unit-environment: the specifier %${c} is not resolved here (only %%)`);
  });
}

/**
 * One Environment= value, as systemd takes it (not empty: that clears): the assignments in order,
 * the words ignored as invalid assignments (systemd warns "Invalid environment assignment,
 * ignoring: WORD") and whether a syntax error dropped the rest ("Invalid syntax, ignoring").
 */
export function environmentValue(value) {
  const { words: ws, error } = words(value);
  const set = [];
  const ignored = [];
  for (const w of ws) {
    const word = Buffer.from(specifiers(w.toString('latin1')), 'latin1');
    const a = assignment(word);
    if (a) set.push(a);
    else ignored.push(word.toString('utf8'));
  }
  return { set, ignored, syntaxError: error };
}

/** An environment file's assignments, in order (env-file.c's parser). */
export function parseEnvironmentFile(text) {
  const out = [];
  let key = '';
  let value = null;
  let lastKeyWs = -1;
  let lastValueWs = -1;
  let state = 'PRE_KEY';
  const push = (chompValue) => {
    let k = key;
    if (lastKeyWs >= 0) k = k.slice(0, lastKeyWs);
    let v = value ?? '';
    if (chompValue && lastValueWs >= 0) v = v.slice(0, lastValueWs);
    out.push([k, v]);
    key = '';
    value = null;
  };
  const addValue = (c) => { value = (value ?? '') + c; };
  for (const c of text) {
    switch (state) {
      case 'PRE_KEY':
        if ('#;'.includes(c)) state = 'COMMENT';
        else if (!WHITESPACE.includes(c)) {
          state = 'KEY';
          lastKeyWs = -1;
          key += c;
        }
        break;
      case 'KEY':
        if ('\n\r'.includes(c)) {
          state = 'PRE_KEY';
          key = '';
        } else if (c === '=') {
          state = 'PRE_VALUE';
          lastValueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) lastKeyWs = -1;
          else if (lastKeyWs < 0) lastKeyWs = key.length;
          key += c;
        }
        break;
      case 'PRE_VALUE':
        if ('\n\r'.includes(c)) {
          state = 'PRE_KEY';
          push(false);
        } else if (c === "'") state = 'SINGLE';
        else if (c === '"') state = 'DOUBLE';
        else if (c === '\\') state = 'VALUE_ESCAPE';
        else if (!WHITESPACE.includes(c)) {
          state = 'VALUE';
          addValue(c);
        }
        break;
      case 'VALUE':
        if ('\n\r'.includes(c)) {
          state = 'PRE_KEY';
          push(true);
        } else if (c === '\\') {
          state = 'VALUE_ESCAPE';
          lastValueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) lastValueWs = -1;
          else if (lastValueWs < 0) lastValueWs = (value ?? '').length;
          addValue(c);
        }
        break;
      case 'VALUE_ESCAPE':
        state = 'VALUE';
        if (!'\n\r'.includes(c)) addValue(c); // an escaped newline is dropped
        break;
      case 'SINGLE':
        if (c === "'") state = 'PRE_VALUE';
        else addValue(c);
        break;
      case 'DOUBLE':
        if (c === '"') state = 'PRE_VALUE';
        else if (c === '\\') state = 'DOUBLE_ESCAPE';
        else addValue(c);
        break;
      case 'DOUBLE_ESCAPE':
        state = 'DOUBLE';
        if ('"\\`$'.includes(c)) addValue(c);
        else if (c !== '\n') addValue(`\\${c}`);
        break;
      case 'COMMENT':
        if (c === '\\') state = 'COMMENT_ESCAPE';
        else if ('\n\r'.includes(c)) state = 'PRE_KEY';
        break;
      case 'COMMENT_ESCAPE':
        state = 'COMMENT';
        break;
      default:
        throw new Error(state);
    }
  }
  if (['PRE_VALUE', 'VALUE', 'VALUE_ESCAPE', 'SINGLE', 'DOUBLE', 'DOUBLE_ESCAPE'].includes(state)) push(state === 'VALUE');
  return out;
}

/** The environment systemd gives the service of these unit texts (the unit, then its drop-ins). */
export function unitEnvironment(...texts) {
  let env = new Map();
  let files = [];
  for (const text of texts) {
    let section = null;
    for (const line of logicalLines(text)) {
      const l = line.trim();
      if (!l) continue;
      if (l.startsWith('[')) {
        section = l.endsWith(']') ? l.slice(1, -1) : null;
        continue;
      }
      const eq = l.indexOf('=');
      if (eq < 0 || section !== 'Service') continue;
      const key = l.slice(0, eq).trim();
      const value = l.slice(eq + 1).trim();
      if (key === 'Environment') {
        if (!value) {
          env = new Map();
          continue;
        }
        for (const [k, v] of environmentValue(value).set) env.set(k, v);
      } else if (key === 'EnvironmentFile') {
        if (!value) {
          files = [];
          continue;
        }
        const optional = value.startsWith('-');
        const path = specifiers(optional ? value.slice(1) : value);
        if (!path.startsWith('/')) continue; // systemd: not absolute, ignored
        if (/[*?[]/.test(path)) throw new Error(`unit-environment: EnvironmentFile=${path}: globs are not expanded here`);
        files.push({ path, optional });
      }
    }
  }
  // The files, read now (systemd reads them at each start), over Environment='s assignments.
  for (const { path, optional } of files) {
    let text;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (optional && e.code === 'ENOENT') continue;
      throw new Error(`unit-environment: EnvironmentFile=${path}: ${e.message} (systemd would not start the service)`);
    }
    for (const [k, v] of parseEnvironmentFile(text)) if (NAME.test(k)) env.set(k, v);
  }
  return Object.fromEntries(env);
}
