import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const appModule = new URL('../dist/app.js', import.meta.url).href;

describe('what user management loads', () => {
  it("takes undici's dispatcher classes without undici's index, which would load all of undici", async () => {
    // A process of its own: this test runner has loaded undici's index already.
    const script = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(appModule)});
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/node_modules/undici/'));
      console.log(JSON.stringify(loaded.map((f) => f.slice(f.indexOf('/node_modules/undici/') + 21))));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    const files = JSON.parse(stdout) as string[];
    expect(files).toContain('lib/dispatcher/pool.js');
    expect(files).toContain('lib/dispatcher/client.js');
    expect(files).not.toContain('index.js');
    expect(files).not.toContain('lib/web/fetch/index.js');
  });
});
