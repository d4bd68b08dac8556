// The relative links of Markdown files under a directory, and the ones that lead nowhere: a file
// that is not there, or an anchor no heading of the target makes (GitHub's slugs). For the docs as
// installed (make install, the .deb): links written for the repository's tree must resolve there.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? markdownFiles(p) : f.endsWith('.md') ? [p] : [];
  });
}

/** GitHub's anchors of a Markdown file's headings. */
export function anchors(file: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').replace(/```[^]*?```/g, '').split('\n')) {
    const m = /^#+\s+(.*)/.exec(line);
    if (!m) continue;
    const slug = m[1].trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  return out;
}

/** `file: link` for every relative link of the Markdown files under `dir` that does not resolve. */
export function brokenLinks(dir: string): string[] {
  return brokenLinksOf(markdownFiles(dir), dir);
}

/** The same for these files (named relative to `dir` in the result). */
export function brokenLinksOf(files: string[], dir: string): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[^]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1];
      if (/^[a-z]+:/.test(link)) continue;
      const [path, anchor] = link.split('#', 2);
      const target = path ? normalize(join(dirname(file), path)) : file;
      if (!existsSync(target)) bad.push(`${file.slice(dir.length + 1)}: ${link}`);
      else if (anchor && target.endsWith('.md') && !anchors(target).has(anchor)) bad.push(`${file.slice(dir.length + 1)}: ${link} (no such heading)`);
    }
  }
  return bad;
}
