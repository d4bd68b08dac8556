// The readable log of a foreground `run --log-level debug` (util/log.ts, pino-pretty): a value's control
// characters — ESC/OSC 52, C1 CSI, CR LF, a bidi override, U+2028, DEL — are shown as escapes, never
// reach the terminal raw (review helper-91); the logger's own colours stay.
import t from 'tap';
import { join } from 'node:path';
import { spawnTsChild } from './helpers/ts-child.js';
import { visibleControls } from '../controller/src/util/log.js';

t.test('visibleControls: each control character parses to its escape; the rest of the line unchanged', async (t) => {
  const value = 'a\u001bb\u009bc\r\nd\u202ee\u2028f\u007fg\\u001bh\\\\i\t';
  const line = `${JSON.stringify({ msg: value, [`k\u001b`]: 1 })}\n`;
  const parsed = JSON.parse(visibleControls(line)) as Record<string, unknown>;
  t.equal(parsed.msg, 'a\\u001bb\\u009bc\\r\\nd\\u202ee\\u2028f\\u007fg\\u001bh\\\\i\\t', 'every control a visible escape; backslashes as they were');
  t.ok('k\\u001b' in parsed, 'keys too');
  t.equal((JSON.parse(visibleControls(`${JSON.stringify({ msg: 'a\ud800b 😀' })}\n`)) as { msg: string }).msg, 'a\\ud800b 😀',
    'a lone surrogate escaped (review helper-96 G1); a pair kept');
  const plain = `${JSON.stringify({ msg: 'plain "text" \\ é ✓ 😀', n: 1 })}\n`;
  t.equal(visibleControls(plain), plain, 'a line without controls is the same line');
});

t.test('a foreground debug log on a terminal: no control character of a value reaches it raw', async (t) => {
  const child = spawnTsChild(join(import.meta.dirname, 'helpers/pretty-log-child.ts'), []);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString('utf8'); });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  t.equal(code, 0, `the child ended well (${err.slice(-300)})`);
  t.match(out, /message a\\u001b\]52;c;ZXZpbA==\\u0007b\\u009b2Jc\\r\\nFAKE LINE\\u202eevil\\u2028d\\u007fe\\u001b/, 'the message, every control escaped');
  t.match(out, /boom a\\u001b/, 'an error\'s text too');
  t.match(out, /plain text, nothing to escape: "quoted" \\ backslash/, 'plain text as it is');
  // What is left raw: pino-pretty's colours (SGR: ESC [ digits m) and its line ends.
  const raw = out.replace(/\u001b\[[0-9;]*m/g, '').match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g);
  t.same(raw, null, 'no raw control character but the colours and line feeds');
  t.notMatch(out, /^FAKE LINE/m, 'no line of the value\'s own');
});
