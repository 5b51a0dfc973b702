import { defineConfig } from 'vitest/config';
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';
import { statSync } from 'node:fs';

/**
 * The longest files first, so that two workers end together instead of one waiting out a long file started last:
 * the namespace lab's files (they wait out budgets and resolver timeouts), then the rest by size.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const weight = (f: TestSpecification): number => (/netns|doctor-(watch|cli)|dnsbench\.test/.test(f.moduleId) ? 1e9 : 0) + statSync(f.moduleId).size;
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at once: the namespace lab's files wait on the network far more than they compute, and one at a time
    // (Vitest's default on two cores) the suite takes twice as long.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    // In CI also write a JSON report, from which .ci/run prints "N passed, N failed".
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-report.json' },
  },
});
