import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Tests import @flowgate/sdk as built (rebuilt when its sources changed), and `npm start` runs
    // compiled JavaScript: dist/ is built once, before the files that start it.
    globalSetup: ['test/support/build-sdk.ts', 'test/support/build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores here; every file has its own database and Redis prefix, so files run in parallel.
    maxWorkers: 2,
  },
});
