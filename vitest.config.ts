import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // Tests import @flowgate/sdk as built; this rebuilds it when its sources changed.
    globalSetup: ['test/support/build-sdk.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores here; every file has its own database and Redis prefix, so files run in parallel.
    maxWorkers: 2,
  },
});
