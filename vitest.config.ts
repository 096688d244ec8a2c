import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Two cores: two test files at a time.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
