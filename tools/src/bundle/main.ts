import { fileURLToPath } from 'node:url';
import { bundleServices } from './service-bundles.js';

// Run by `npm run build` after tsc: the bundles are built from tsc's output.
const rootDir = fileURLToPath(new URL('../../../', import.meta.url));
bundleServices(rootDir).then(
  (sizes) => {
    const listed = Object.entries(sizes).map(([service, bytes]) => `${service} ${(bytes / 1_048_576).toFixed(1)} MiB`);
    process.stdout.write(`bundled: ${listed.join(', ')}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`bundling failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
