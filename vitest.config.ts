import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'tools/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Suites start real servers and processes on a 2-core machine: give them room, never a wall-clock assertion.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
