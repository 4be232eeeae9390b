import { readFile, writeFile } from 'node:fs/promises';
import { transform } from 'esbuild';

// Any UTF-16 code unit outside ASCII; without the `u` flag a surrogate pair is two matches, so lengths are kept.
const nonAscii = /[^\x00-\x7f]/g;

/** The code without its comments and whitespace: equal for two texts that differ only inside comments. */
async function codeOnly(text: string): Promise<string> {
  const { code } = await transform(text, { loader: 'js', minifyWhitespace: true, legalComments: 'none', charset: 'ascii' });
  return code;
}

/**
 * Makes a bundle pure ASCII, so that V8 keeps its source (for the process's whole life) at one byte a character
 * instead of two: a single character above 0x7f (above 0xff on Node 20) makes Node hold all of the file as UTF-16.
 * esbuild's `charset: 'ascii'` escapes strings, templates, regular expressions and names, but copies comments as
 * they are, and dependencies' and our comments hold a few (`µs`, `≈`, `¥`). Each such UTF-16 unit becomes `?`, which
 * keeps every line's length, so the source map still points at the right columns. Proven harmless before it is
 * written: with comments and whitespace stripped, the code must be the same as before, or the bundle is left alone
 * and this throws. Returns how many units were replaced.
 */
export async function makeBundleAscii(file: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  const count = text.match(nonAscii)?.length ?? 0;
  if (count === 0) return 0;
  const replaced = text.replace(nonAscii, '?');
  if ((await codeOnly(replaced)) !== (await codeOnly(text))) {
    throw new Error(`${file}: a character outside ASCII is in code, not in a comment; it cannot be replaced safely`);
  }
  await writeFile(file, replaced, 'ascii');
  return count;
}
