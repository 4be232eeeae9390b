import path from 'node:path';

export const bundledServices = ['notification', 'user-management'] as const;
export type BundledService = (typeof bundledServices)[number];

/** What a service's image, the local stack and the bench run: one file, beside tsc's output it is built from. */
export function serviceBundle(rootDir: string, service: BundledService): string {
  return path.join(rootDir, 'services', service, 'dist', 'bundle.js');
}
