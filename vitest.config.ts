import { defineConfig } from 'vitest/config';
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';
import { statSync } from 'node:fs';

/** The files that take longest (they wait out doctor's budgets and resolvers' timeouts), longest first. */
const SLOW = ['doctor-netns', 'doctor-loss-netns', 'watch-netns', 'doctor-causes-netns', 'dnsbench.test', 'doctor-cli', 'doctor-watch', 'cli.test', 'glibc-netns', 'engine/udp'];

/**
 * The longest files first, so that two workers end together instead of one waiting out a long file started last:
 * the known slow ones in their order, then the rest by size.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification): number => {
      const k = SLOW.findIndex((s) => f.moduleId.includes(s));
      return k >= 0 ? 1e12 - k : statSync(f.moduleId).size;
    };
    return [...files].sort((a, b) => rank(b) - rank(a));
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Three files at once on two cores: the namespace lab's files wait out budgets and timeouts far more than they
    // compute (one at a time, Vitest's default on two cores, the suite takes twice as long).
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
    // In CI also write a JSON report, from which .ci/run prints "N passed, N failed".
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: '.vitest-report.json' },
  },
});
