import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at once: the namespace lab's files wait on the network far more than they compute, and one at a time
    // (Vitest's default on two cores) the suite takes twice as long.
    maxWorkers: 2,
    // In CI also write a JSON report, from which .ci/run prints "N passed, N failed".
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-report.json' },
  },
});
