import { statSync } from 'node:fs';
import path from 'node:path';
import { build, type BuildOptions, type Message } from 'esbuild';
import { makeBundleAscii } from './ascii-source.js';
import { bundledServices, serviceBundle, type BundledService } from './bundle-paths.js';

function options(rootDir: string, service: BundledService): BuildOptions {
  return {
    entryPoints: [path.join(rootDir, 'services', service, 'dist', 'server.js')],
    outfile: serviceBundle(rootDir, service),
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The oldest Node the root package.json's engines field accepts.
    target: 'node20.19',
    // bcrypt is a native addon: it loads its compiled binding from its own directory, so it stays in node_modules.
    external: ['bcrypt'],
    // A require esbuild cannot resolve while bundling (a computed name, an optional package) runs as Node's own
    // require, which an ES module does not have.
    banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
    // Not minified, so stack traces and the file itself stay readable; the map leads back to the TypeScript
    // (through tsc's maps) when the process runs with --enable-source-maps.
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'linked',
    // esbuild's default, stated because makeBundleAscii relies on it: only comments may keep other characters.
    charset: 'ascii',
    logLevel: 'silent',
  };
}

function describe(messages: Message[]): string {
  return messages.map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`).join('\n');
}

/**
 * Bundles each service from tsc's output into `dist/bundle.js`, pure ASCII (ascii-source.ts says why). Any esbuild
 * warning fails the build: what it warns of (an import that will be undefined, a require it cannot follow) would
 * otherwise show only when that code runs.
 */
export async function bundleServices(rootDir: string): Promise<Record<BundledService, number>> {
  const sizes = {} as Record<BundledService, number>;
  for (const service of bundledServices) {
    const result = await build(options(rootDir, service));
    if (result.warnings.length > 0) throw new Error(`bundling ${service}:\n${describe(result.warnings)}`);
    await makeBundleAscii(serviceBundle(rootDir, service));
    sizes[service] = statSync(serviceBundle(rootDir, service)).size;
  }
  return sizes;
}
