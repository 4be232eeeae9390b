import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every markdown file of the repository, as git knows them (a fresh clone has exactly these). */
const markdownFiles = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);

interface Line {
  /** 1-based, as an editor shows it. */
  number: number;
  text: string;
}

/** The lines of a markdown file outside its fenced code blocks, where a `#` is a heading, not a shell comment. */
function proseLines(file: string): Line[] {
  let fenced = false;
  const lines: Line[] = [];
  readFileSync(path.join(root, file), 'utf8')
    .split('\n')
    .forEach((text, index) => {
      if (/^\s*(```|~~~)/.test(text)) fenced = !fenced;
      else if (!fenced) lines.push({ number: index + 1, text });
    });
  return lines;
}

const anchorsByFile = new Map<string, Set<string>>();

/** The anchors GitHub gives a file's headings: its slugs, numbered when a heading text repeats. Read once per file. */
function anchorsOf(file: string): Set<string> {
  let anchors = anchorsByFile.get(file);
  if (anchors) return anchors;
  const slugger = new GithubSlugger();
  anchors = new Set<string>();
  for (const { text } of proseLines(file)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    // GitHub slugs the rendered text: code spans and links count by their text.
    if (heading) anchors.add(slugger.slug(heading[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')));
  }
  anchorsByFile.set(file, anchors);
  return anchors;
}

interface Link {
  line: number;
  target: string;
}

/** The relative links of a file (`[text](target)`), outside code; web and mail links are not checked here. */
function relativeLinks(file: string): Link[] {
  const links: Link[] = [];
  for (const { number, text } of proseLines(file)) {
    for (const match of text.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) links.push({ line: number, target });
    }
  }
  return links;
}

describe('documentation links', () => {
  it('finds the markdown files and their links', () => {
    expect(markdownFiles).toContain('README.md');
    expect(markdownFiles).toContain('docs/benchmarks.md');
    expect(relativeLinks('README.md').length).toBeGreaterThan(10);
  });

  for (const file of markdownFiles) {
    it(`${file}: every relative link reaches a file of the repository and, with #, one of its headings`, () => {
      const broken: string[] = [];
      for (const { line, target } of relativeLinks(file)) {
        const [targetPath = '', anchor] = target.split('#', 2);
        const resolved = targetPath === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(targetPath)));
        if (!existsSync(path.join(root, resolved))) {
          broken.push(`line ${line}: ${target} (no file ${resolved})`);
        } else if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) {
          broken.push(`line ${line}: ${target} (no heading #${anchor} in ${resolved})`);
        }
      }
      expect(broken).toEqual([]);
    });
  }
});
