// scripts/list-test-failures.mjs: what CI's tail names when a run fails (node-tap 18's own output).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const list = (tapOutput: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'wnt-failures-'));
  try {
    writeFileSync(join(dir, 'out.txt'), tapOutput);
    return execFileSync(process.execPath, ['scripts/list-test-failures.mjs', join(dir, 'out.txt')], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const NESTED = `TAP version 14
1..2
# Subtest: test/a.test.ts
    # Subtest: outer
        # Subtest: inner
            not ok 1 - one is two
              ---
              compare: ===
              at:
                fileName: test/a.test.ts
                lineNumber: 3
              diff: |
                --- expected
                +++ actual
                @@ -1,1 +1,1 @@
                -2
                +1
              ...
            ok 2 - should be equal
            1..2
        not ok 1 - inner # time=29.732ms
          ---
          at:
            fileName: test/a.test.ts
            lineNumber: 3
          ...
        1..1
    not ok 1 - outer # time=37.287ms
    ok 2 - should be equal
    1..2
not ok 1 - test/a.test.ts # time=48.25ms
  ---
  exitCode: 1
  ...
# Subtest: test/b.test.ts
    # Subtest: hangs
        not ok 1 - test unfinished
          ---
          timeout: 500
          ...
    not ok 1 - hangs # time=500ms
    1..1
not ok 2 - test/b.test.ts # time=600ms
# Subtest: test/c.test.ts
    ok 1 - fine
not ok 3 - test/c.test.ts # time=900ms
  ---
  signal: SIGKILL
  ...
# { total: 6, pass: 2, fail: 4 }
`;

t.test('each failure once, by its innermost test, with where and what', async (t) => {
  const lines = list(NESTED).trimEnd().split('\n');
  t.same(lines, [
    '3 failure(s), from ' + lines[0].split(' from ')[1],
    '  not ok: test/a.test.ts › outer › inner › one is two',
    '      fileName: test/a.test.ts',
    '      lineNumber: 3',
    '      -2',
    '      +1',
    '  not ok: test/b.test.ts › hangs › test unfinished',
    '      timeout: 500',
    // A file that failed with no failing assertion in it (killed) is named by itself.
    '  not ok: test/c.test.ts',
    '      signal: SIGKILL',
  ]);
});

t.test('a passing run prints nothing', async (t) => {
  t.equal(list('TAP version 14\n1..1\n# Subtest: test/a.test.ts\n    ok 1 - fine\n    1..1\nok 1 - test/a.test.ts\n'), '');
});

t.test('at most 12 failures, said as the first ones', async (t) => {
  const many = Array.from({ length: 20 }, (_, i) => `# Subtest: test/f${i}.test.ts\n    not ok 1 - bad ${i}\nnot ok ${i + 1} - test/f${i}.test.ts\n`).join('');
  const out = list(many);
  t.match(out, /^12 failure\(s\) \(the first ones\)/);
  t.equal(out.match(/not ok: /g)?.length, 12);
  t.notMatch(out, /bad 12/);
});

t.test('names in UTF-8 as printed, long or hostile details cut and escaped, a crashed file\'s args no diff, a todo no failure (review helper-95)', async (t) => {
  const out = list(`# Subtest: test/é.test.ts
    not ok 1 - agent’s “name” ✓
      ---
      found: ${'x'.repeat(500)}
      wanted: a\u001b]0;title\u0007b
      ...
    not ok 2 - later # TODO not done yet
not ok 1 - test/é.test.ts # time=1ms
# Subtest: test/killed.test.ts
    ok 1 - fine
not ok 2 - test/killed.test.ts # time=1ms
  ---
  args:
    - --import=x
    - /work/test/é.test.ts
  signal: SIGKILL
  ...
`);
  t.match(out, /not ok: test\/é\.test\.ts › agent’s “name” ✓\n/, 'the name as the test gave it');
  t.match(out, new RegExp(`found: ${'x'.repeat(193)}…\\n`), 'a long value cut');
  t.match(out, /wanted: a\\u001b\]0;title\\u0007b/, 'control characters escaped');
  t.notMatch(out, /later/, 'a todo is no failure');
  t.match(out, /not ok: test\/killed\.test\.ts\n {6}signal: SIGKILL/, 'a killed file named, with its signal');
  t.notMatch(out, /--import/, 'its args are no diff');
});

t.test('a `#` of a test\'s own name is no directive; a diff written as a quoted YAML string, or of lines starting with + or -, is shown (review helper-96)', async (t) => {
  const out = list(`# Subtest: test/h.test.ts
    not ok 1 - the \\# TODO marker is kept
      ---
      diff: |
        --- expected
        +++ actual
        @@ -1,2 +1,2 @@
        -+plus
        ++minus line
         same
      ...
    not ok 2 - controls in a diff
      ---
      diff: "--- expected

        +++ actual

        @@ -1,3 +1,3 @@

        \\ Object {

        -  \\"s\\": \\"abc\\",

        +  \\"s\\": \\"a\\\\u0000b\u009bc\\",

        \\ }\\n"
      ...
not ok 1 - test/h.test.ts # time=1ms
`);
  t.match(out, /^2 failure\(s\)/, 'both listed');
  t.match(out, /the \\# TODO marker is kept\n {6}-\+plus\n {6}\+\+minus line\n/, 'the first, its diff lines whole');
  t.match(out, /controls in a diff\n {6}- {2}"s": "abc",\n {6}\+ {2}"s": "a\\u0000b\\u009bc",\n/, 'the quoted diff read, its C1 escaped');
});
