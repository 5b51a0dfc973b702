/** watch's test of chance: the upper bound of a loss rate, against its closed form and against a plain search. */
import { describe, expect, it } from 'vitest';
import { lossUpperBound } from '../../src/commands/watch-findings.js';

/** P(X <= k) for X ~ Binomial(n, q), summed term by term. */
function cdf(k: number, n: number, q: number): number {
  let sum = 0;
  let term = (1 - q) ** n;
  for (let x = 0; x <= k; x++) {
    sum += term;
    term *= ((n - x) / (x + 1)) * (q / (1 - q));
  }
  return sum;
}

describe('lossUpperBound', () => {
  it('none lost of n: 1 - 0.05^(1/n), the closed form', () => {
    for (const n of [1, 5, 16, 41, 300]) expect(lossUpperBound(0, n)).toBeCloseTo(1 - 0.05 ** (1 / n), 6);
  });
  it('k of n: the rate where seeing k or fewer has a 5% chance, found by a plain scan', () => {
    for (const [k, n] of [[1, 20], [3, 50], [10, 40], [0, 10]] as const) {
      let q = 0;
      while (cdf(k, n, q + 1e-5) > 0.05) q += 1e-5;
      expect(lossUpperBound(k, n)).toBeCloseTo(q, 4);
    }
  });
  it('all lost, or nothing seen: 1', () => {
    expect(lossUpperBound(5, 5)).toBe(1);
    expect(lossUpperBound(0, 0)).toBe(1);
  });
});
