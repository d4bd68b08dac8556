// scripts/unit-environment.mjs: the environment systemd gives the unit's service, as systemd parses
// Environment= (quotes, splitting, escapes, the empty reset) and EnvironmentFile=. The benchmark and
// the vagrant test start the tap with it, as the unit would (review finding 11: a quoted drop-in was
// ignored, an unquoted two-word value taken whole, an empty reset ignored).
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { environmentValue, parseEnvironmentFile, unitEnvironment } from '../scripts/unit-environment.mjs';
import { ROOT } from './helpers/tap-process.js';

const run = promisify(execFile);
const UNIT = readFileSync(join(ROOT, 'packaging/wazuh-nats-tap.service'), 'utf8');
const dropin = (...lines: string[]) => `[Service]\n${lines.join('\n')}\n`;

t.test('the unit and the drop-ins docs/integration.md leads users to write', async (t) => {
  t.same(unitEnvironment(UNIT), { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '2' }, 'the unit\'s own');
  t.same(unitEnvironment(UNIT, dropin('Environment="NODE_OPTIONS=--max-semi-space-size=8 --max-old-space-size=256"')),
    { NODE_OPTIONS: '--max-semi-space-size=8 --max-old-space-size=256', MALLOC_ARENA_MAX: '2' }, 'a quoted assignment: one variable, white space kept');
  t.same(unitEnvironment(UNIT, dropin('Environment=NODE_OPTIONS=--max-semi-space-size=8 --max-old-space-size=256')),
    { NODE_OPTIONS: '--max-semi-space-size=8', MALLOC_ARENA_MAX: '2' }, 'unquoted: split at white space, only the first word is the value (--max-old… is no assignment)');
  t.same(unitEnvironment(UNIT, dropin('Environment=')), {}, 'an empty Environment= clears what came before');
  t.same(unitEnvironment(UNIT, dropin('Environment=', 'Environment=TZ=UTC')), { TZ: 'UTC' }, 'and what follows it counts');
  t.same(unitEnvironment(UNIT, dropin('Environment=NODE_OPTIONS=--x')), { NODE_OPTIONS: '--x', MALLOC_ARENA_MAX: '2' }, 'a later assignment of a name replaces the earlier');
});

t.test('systemd.exec(5)\'s example, quotes anywhere in a word, escapes, the unit file\'s syntax', async (t) => {
  t.same(unitEnvironment(dropin('Environment="VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"')),
    { VAR1: 'word1 word2', VAR2: 'word3', VAR3: '$word 5 6' }, 'the manual\'s example');
  t.same(unitEnvironment(dropin('Environment=A="x y"z B=\'q "r"\' C=a\\tb D="\\x41\\101\\u00e9\\s" E=100%%')),
    { A: 'x yz', B: 'q "r"', C: 'a\tb', D: 'AAé ', E: '100%' }, 'quotes mid-word, C escapes in and out of quotes, %%');
  t.same(unitEnvironment(dropin('Environment=A=1 \\', '  # a comment inside is dropped', '  B=2', 'Environment = C=3 ')),
    { A: '1', B: '2', C: '3' }, 'a backslash at the end continues the line; white space around = and the value');
  t.same(unitEnvironment('[Unit]\nEnvironment=A=1\n[Service]\n#Environment=B=2\n;Environment=C=3\nEnvironment=D=4\n[Install]\nEnvironment=E=5\n'),
    { D: '4' }, 'only [Service], comments skipped');
  t.same(unitEnvironment(dropin('Environment=A=1 "B=2', 'Environment=C=3 D=\\q E=5')), { A: '1', C: '3' },
    'a syntax error (an unclosed quote, a bad escape) drops the rest of its line');
  t.same(unitEnvironment(dropin('Environment=1A=x A-B=y =z C')), {}, 'not NAME=value: ignored');
  t.throws(() => unitEnvironment(dropin('Environment=N=%n')), /the specifier %n is not resolved here/, 'a specifier it cannot resolve is an error, not a guess');
});

t.test('the same words ignored and the same syntax errors as systemd-analyze verify reports', async (t) => {
  // systemd's own parser on one unit: it warns for each word it ignores and each line cut short.
  const values = [
    '"VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"',
    'NODE_OPTIONS=--max-semi-space-size=8 --max-old-space-size=256',
    'A=1 "B=2',
    '1X=2 Y=\\q Z=3',
    "A='x y' B=\"c\"d E -F=1 G=",
    'H=a\\x00b I=ok',
    'J=\\u00e9 K=\\xff L=\\101',
    'M="unterminated \\" quote',
  ];
  const dir = mkdtempSync(join(tmpdir(), 'wnt-unit-env-'));
  const file = join(dir, 'env-check.service');
  writeFileSync(file, `[Service]\nExecStart=/bin/true\n${values.map((v) => `Environment=${v}`).join('\n')}\n`);
  const r = await run('systemd-analyze', ['verify', '--man=no', file]).then((x) => x, (e) => e as { stderr: string });
  const reported = values.map((_, i) => {
    const at = `${file}:${i + 3}: `;
    const lines = r.stderr.split('\n').filter((l) => l.startsWith(at)).map((l) => l.slice(at.length));
    return {
      ignored: lines.filter((l) => l.startsWith('Invalid environment assignment, ignoring: ')).map((l) => l.slice('Invalid environment assignment, ignoring: '.length)),
      syntaxError: lines.some((l) => l.startsWith('Invalid syntax, ignoring: ')),
    };
  });
  t.ok(reported.some((x) => x.ignored.length) && reported.some((x) => x.syntaxError), `systemd reported on them: ${r.stderr}`);
  values.forEach((v, i) => {
    const mine = environmentValue(v);
    t.same({ ignored: mine.ignored, syntaxError: mine.syntaxError }, reported[i], `Environment=${v}`);
  });
});

t.test('EnvironmentFile=: read at start, over Environment=; "-" for an optional file; an empty one clears', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-unit-envfile-'));
  const f = join(dir, 'tap.env');
  writeFileSync(f, [
    '# a comment', '; another', 'NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=256"',
    '  SPACED = value with spaces   ', "SINGLE='$literal \\n'", 'DOUBLE="a \\"b\\" \\$c \\n"', 'CONT=one\\', 'two',
    'EMPTY=', 'not an assignment', '1BAD=x', 'LAST=1',
  ].join('\n'));
  t.same(parseEnvironmentFile(readFileSync(f, 'utf8')).map(([k]) => k),
    ['NODE_OPTIONS', 'SPACED', 'SINGLE', 'DOUBLE', 'CONT', 'EMPTY', '1BAD', 'LAST'], 'the file\'s assignments');
  t.same(unitEnvironment(UNIT, dropin(`EnvironmentFile=${f}`, 'Environment=NODE_OPTIONS=--later-but-weaker')), {
    NODE_OPTIONS: '--max-semi-space-size=8 --max-old-space-size=256', SPACED: 'value with spaces', SINGLE: '$literal \\n',
    DOUBLE: 'a "b" $c \\n', CONT: 'onetwo', EMPTY: '', LAST: '1', MALLOC_ARENA_MAX: '2',
  }, 'the file\'s variables override Environment=\'s, whatever the order; invalid names dropped');
  t.same(unitEnvironment(UNIT, dropin(`EnvironmentFile=-${join(dir, 'missing.env')}`)), { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '2' }, '"-": a missing file is skipped');
  t.throws(() => unitEnvironment(UNIT, dropin(`EnvironmentFile=${join(dir, 'missing.env')}`)), /systemd would not start the service/, 'without "-": an error');
  t.same(unitEnvironment(UNIT, dropin(`EnvironmentFile=${f}`, 'EnvironmentFile=')), { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '2' }, 'an empty EnvironmentFile= clears the list');
});
