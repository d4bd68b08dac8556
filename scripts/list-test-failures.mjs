#!/usr/bin/env node
// Lists the failures of a node-tap run, each with the names of the tests it is in and what its
// report says (where, found, wanted, message), in a few lines: CI keeps only the tail of the output,
// and a failure 20,000 lines above the closing count must still be named there.
// Usage: node scripts/list-test-failures.mjs build/test-output.txt
import { readFileSync } from 'node:fs';

const MAX_FAILURES = 12;
const MAX_DETAIL_LINES = 8;
const MAX_LINE = 200;
const DETAIL = /^(message|found|wanted|fileName|lineNumber|signal|exitCode|timeout|expired|code):/;

// UTF-8 as the tests print it (a byte that is not becomes U+FFFD); a line printed is cut and its
// control characters escaped: a test's found value may be anything.
const lines = readFileSync(process.argv[2] ?? 'build/test-output.txt', 'utf8').split('\n');
const shown = (s) => {
  const cut = s.length > MAX_LINE ? `${s.slice(0, MAX_LINE)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
};
const indentOf = (line) => line.length - line.trimStart().length;

const names = []; // the enclosing subtests' names, by depth (4 spaces a level)
const failuresBefore = []; // by depth: how many failures were listed when that subtest began
const out = [];
for (let i = 0; i < lines.length && out.length < MAX_FAILURES; i++) {
  const line = lines[i];
  const depth = indentOf(line) / 4;
  const subtest = /^\s*# Subtest: (.*)$/.exec(line);
  if (subtest) {
    names.length = depth;
    names[depth] = subtest[1];
    failuresBefore[depth] = out.length;
    continue;
  }
  const notOk = /^\s*not ok \d+ - (.*?)(?: # time=.*)?$/.exec(line);
  // A todo or a skip is no failure (a `#` of the test's own name is written `\#`).
  if (!notOk || /(?<!\\)# (TODO|SKIP)\b/i.test(notOk[1])) continue;
  // A subtest's own "not ok" repeats the failures listed inside it; it is listed only when it
  // failed on its own (a time-out, a crash: no failing assertion inside).
  const isSubtestEnd = names[depth] === notOk[1];
  if (isSubtestEnd && out.length > failuresBefore[depth]) continue;
  const path = isSubtestEnd ? names.slice(0, depth + 1) : [...names.slice(0, depth), notOk[1]];
  const entry = [`not ok: ${shown(path.join(' › '))}`];
  // Its YAML block: the lines indented deeper than it, up to "..."; of its diff, the lines it changed.
  const block = [];
  for (let j = i + 1; j < lines.length; j++) {
    const d = lines[j];
    if (d.trim() === '...' || (d.trim() !== '' && indentOf(d) <= indentOf(line))) break;
    block.push(d);
  }
  const changed = diffLines(block, indentOf(line) + 2);
  for (const d of block) {
    if (entry.length > MAX_DETAIL_LINES) break;
    const t = d.trim();
    if (DETAIL.test(t)) entry.push(`    ${shown(t)}`);
  }
  for (const c of changed) if (entry.length <= MAX_DETAIL_LINES) entry.push(`    ${shown(c)}`);
  out.push(entry);
}
if (out.length > 0) {
  const more = out.length === MAX_FAILURES ? ' (the first ones)' : '';
  console.log(`${out.length} failure(s)${more}, from ${process.argv[2] ?? 'build/test-output.txt'}:`);
  for (const entry of out) console.log(entry.map((t) => `  ${t}`).join('\n'));
}

/**
 * The lines a failure's `diff` changed (`-` wanted, `+` found), without its headers: YAML writes the diff
 * as a block (`diff: |`, `|-`, `|2`…) or, when a value holds a control character, as a quoted string.
 */
function diffLines(block, keyIndent) {
  const at = block.findIndex((d) => indentOf(d) === keyIndent && /^diff:/.test(d.trim()));
  if (at < 0) return [];
  const head = block[at].trim().slice('diff:'.length).trim();
  let text;
  if (head.startsWith('"')) {
    // A double-quoted scalar folded over lines: a line break is a space, an empty line a line feed;
    // its escapes are JSON's, with `\ ` (a space) and `\xHH`.
    let q = head;
    let blank = false;
    for (let j = at + 1; j < block.length && !/(^|[^\\])(\\\\)*"$/.test(q.slice(1)); j++) {
      const piece = block[j].trim();
      if (piece === '') q += '\\n';
      else q += `${blank ? '' : ' '}${piece}`;
      blank = piece === '';
    }
    try {
      text = JSON.parse(q.replace(/\\ /g, ' ').replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1'));
    } catch {
      return [];
    }
  } else {
    const body = [];
    for (let j = at + 1; j < block.length && (block[j].trim() === '' || indentOf(block[j]) > keyIndent); j++) body.push(block[j].trim());
    text = body.join('\n');
  }
  return String(text).split('\n').filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
}
