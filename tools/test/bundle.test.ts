import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { repositoryRoot } from '../src/bench/service-startup.js';
import { makeBundleAscii } from '../src/bundle/ascii-source.js';
import { bundledServices, serviceBundle, type BundledService } from '../src/bundle/bundle-paths.js';
import { bundleServices } from '../src/bundle/service-bundles.js';

const run = promisify(execFile);
const nonAscii = /[^\x00-\x7f]/;
let rootDir: string | undefined;

afterEach(async () => {
  if (rootDir) await rm(rootDir, { recursive: true, force: true });
  rootDir = undefined;
});

/** A repository root whose two services' `dist/` hold the given files, as ES module packages. */
async function fakeRepository(files: Record<BundledService, Record<string, string>>): Promise<string> {
  rootDir = await mkdtemp(path.join(os.tmpdir(), 'bundle-test-'));
  for (const [service, contents] of Object.entries(files)) {
    const dist = path.join(rootDir, 'services', service, 'dist');
    await mkdir(dist, { recursive: true });
    // As the real services are: ES modules by their package.json.
    await writeFile(path.join(rootDir, 'services', service, 'package.json'), '{ "type": "module" }\n');
    for (const [name, text] of Object.entries(contents)) await writeFile(path.join(dist, name), text);
  }
  return rootDir;
}

describe('service bundles', () => {
  it('bundle a CommonJS dependency that requires a module by a computed name into an ES module that runs', async () => {
    const root = await fakeRepository({
      notification: {
        'server.js': "import dep from './dep.cjs';\nconsole.log(`notification ${dep.joined}`);\n",
        // A require esbuild cannot resolve while bundling (as mysql2's optional one of cardinal): Node's at run time.
        'dep.cjs': "const id = ['node', 'path'].join(':');\nconst path = require(id);\nmodule.exports = { joined: path.posix.join('a', 'b') };\n",
      },
      'user-management': { 'server.js': "console.log('user management');\n" },
    });

    const sizes = await bundleServices(root);

    expect(sizes.notification).toBeGreaterThan(0);
    expect(sizes['user-management']).toBeGreaterThan(0);
    // Without the banner's require, esbuild's shim throws 'Dynamic require of "node:path" is not supported'.
    const { stdout } = await run(process.execPath, [serviceBundle(root, 'notification')]);
    expect(stdout).toBe('notification a/b\n');
    expect(existsSync(`${serviceBundle(root, 'notification')}.map`)).toBe(true);
  });

  it('fail on any esbuild warning, naming the service, the file and the warning', async () => {
    const root = await fakeRepository({
      notification: { 'server.js': "console.log('notification');\n" },
      'user-management': { 'server.js': 'export const settings = { retries: 1, retries: 2 };\n' },
    });

    await expect(bundleServices(root)).rejects.toThrow(
      /^bundling user-management:\n.*services\/user-management\/dist\/server\.js:1: Duplicate key "retries" in object literal$/,
    );
  });

  it('hold only ASCII, characters in comments replaced one for one and those in strings escaped, and run as before', async () => {
    const root = await fakeRepository({
      notification: {
        // Before a class member, where esbuild keeps the comment: µ and ≈ are one UTF-16 unit each, the emoji two.
        'server.js': "class Greeter {\n  /** costs 5 µs ≈ nothing 😀 */\n  say() {\n    return 'µ ≈ 😀';\n  }\n}\nconsole.log(new Greeter().say());\n",
      },
      'user-management': { 'server.js': "console.log('user management');\n" },
    });

    await bundleServices(root);

    const bundle = await readFile(serviceBundle(root, 'notification'), 'utf8');
    expect(bundle).not.toMatch(nonAscii);
    expect(bundle).toContain('  /** costs 5 ?s ? nothing ?? */\n');
    const { stdout } = await run(process.execPath, [serviceBundle(root, 'notification')]);
    expect(stdout).toBe('µ ≈ 😀\n');
  });

  it('leave a bundle whose code holds a character outside ASCII as it is, and say why', async () => {
    rootDir = await mkdtemp(path.join(os.tmpdir(), 'bundle-test-'));
    const file = path.join(rootDir, 'bundle.js');
    // What esbuild would write with charset utf8: the character in a string, where '?' would change the program.
    const text = "// 5 µs\nconsole.log('µ');\n";
    await writeFile(file, text);

    await expect(makeBundleAscii(file)).rejects.toThrow(`${file}: a character outside ASCII is in code, not in a comment; it cannot be replaced safely`);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('report how many characters it replaced, and leave a pure ASCII bundle untouched', async () => {
    rootDir = await mkdtemp(path.join(os.tmpdir(), 'bundle-test-'));
    const file = path.join(rootDir, 'bundle.js');
    await writeFile(file, "/* ≈ 😀 */ console.log('\\u00b5');\n");
    expect(await makeBundleAscii(file)).toBe(3);
    expect(await readFile(file, 'utf8')).toBe("/* ? ?? */ console.log('\\u00b5');\n");
    expect(await makeBundleAscii(file)).toBe(0);
  });
});

describe("the services' bundles, as npm run build made them", () => {
  it.each(bundledServices)('%s: only ASCII, so V8 keeps its source at one byte a character', async (service) => {
    const bundle = await readFile(serviceBundle(repositoryRoot, service), 'utf8');
    expect(bundle.length).toBeGreaterThan(1_000_000);
    expect(bundle.match(nonAscii)?.[0]).toBeUndefined();
  });
});
