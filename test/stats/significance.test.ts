/**
 * The tests of chance against references computed another way: exact rationals with BigInt (every table of the
 * hypergeometric, every term of the binomial), and published values (R's fisher.test).
 */
import { describe, expect, it } from 'vitest';
import { binomialGreater, fisherGreater, poissonBinomialGreater, poissonGreater } from '../../src/stats/significance.js';

/** num / den as a double, with 20 significant digits kept however small the ratio. */
function ratio(num: bigint, den: bigint): number {
  if (num === 0n) return 0;
  const shift = Math.max(0, den.toString().length - num.toString().length + 20);
  return Number((num * 10n ** BigInt(shift)) / den) / 10 ** shift;
}
function choose(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}
/** P(X >= a) for the hypergeometric, as an exact fraction turned into a double at the end. */
function fisherExact(a: number, n: number, b: number, m: number): number {
  const k = a + b;
  let num = 0n;
  for (let x = a; x <= Math.min(k, n); x++) num += choose(n, x) * choose(m, k - x);
  return ratio(num, choose(n + m, k));
}
/** P(X >= k) for Bin(n, num/den), exactly. */
function binomialExact(k: number, n: number, num: number, den: number): number {
  let s = 0n;
  for (let x = k; x <= n; x++) s += choose(n, x) * BigInt(num) ** BigInt(x) * BigInt(den - num) ** BigInt(n - x);
  return ratio(s, BigInt(den) ** BigInt(n));
}

describe('fisherGreater', () => {
  it('matches the exact hypergeometric tail over many tables', () => {
    for (const [n, m] of [[8, 8], [8, 16], [64, 64], [100, 100], [200, 300]] as const) {
      for (let a = 0; a <= Math.min(n, 12); a += 1) {
        for (const b of [0, 1, 2, 5]) {
          if (b > m) continue;
          const want = fisherExact(a, n, b, m);
          const got = fisherGreater(a, n, b, m);
          expect(Math.abs(got - want) / Math.max(want, 1e-300), `${a}/${n} vs ${b}/${m}`).toBeLessThan(1e-9);
        }
      }
    }
  });
  it('agrees with R: fisher.test(matrix(c(3,1,1,3),2), alternative="greater") is 0.2429', () => {
    expect(fisherGreater(3, 4, 1, 4)).toBeCloseTo(0.242857, 5);
  });
  it('8 of 8 against 0 of 8 is 1 in C(16,8) = 12870', () => {
    expect(fisherGreater(8, 8, 0, 8)).toBeCloseTo(1 / 12870, 12);
  });
  it('a tiny tail survives: 60/100 against 0/100', () => {
    const want = fisherExact(60, 100, 0, 100);
    expect(want).toBeGreaterThan(0);
    expect(Math.abs(fisherGreater(60, 100, 0, 100) - want) / want).toBeLessThan(1e-9);
  });
  it('refuses impossible tables', () => {
    expect(() => fisherGreater(9, 8, 0, 8)).toThrow(RangeError);
    expect(() => fisherGreater(1.5, 8, 0, 8)).toThrow(RangeError);
  });
});

describe('binomialGreater', () => {
  it('matches the exact binomial tail', () => {
    for (const n of [8, 50, 200]) {
      for (const k of [0, 1, 2, 3, 5, 10]) {
        for (const [num, den] of [[1, 100], [5, 100], [1, 2]] as const) {
          const want = k > n ? 0 : binomialExact(k, n, num, den);
          const got = binomialGreater(k, n, num / den);
          expect(Math.abs(got - want), `${k}/${n} at ${num}/${den}`).toBeLessThanOrEqual(Math.max(want, 1e-300) * 1e-9);
        }
      }
    }
  });
});

describe('poissonGreater', () => {
  it('is one minus the lower sum, computed term by term', () => {
    for (const lambda of [0.1, 1, 4.5, 20]) {
      for (const k of [1, 2, 5, 10, 30]) {
        let lower = 0;
        let term = Math.exp(-lambda);
        for (let i = 0; i < k; i++) {
          lower += term;
          term *= lambda / (i + 1);
        }
        const want = 1 - lower;
        // Where 1 - lower has lost its digits to rounding, only its order of magnitude is comparable.
        if (want > 1e-10) expect(Math.abs(poissonGreater(k, lambda) - want) / want, `${k} at ${lambda}`).toBeLessThan(1e-6);
      }
    }
    expect(poissonGreater(0, 3)).toBe(1);
    expect(poissonGreater(3, 0)).toBe(0);
  });
});

describe('poissonBinomialGreater', () => {
  /** Every outcome of n trials enumerated: the reference, written apart from the recurrence. */
  function enumerate(k: number, ps: number[]): number {
    let tail = 0;
    for (let mask = 0; mask < 1 << ps.length; mask++) {
      let chance = 1;
      let fails = 0;
      ps.forEach((p, i) => {
        const f = (mask >> i) & 1;
        fails += f;
        chance *= f ? p : 1 - p;
      });
      if (fails >= k) tail += chance;
    }
    return tail;
  }

  it('is the sum over every outcome, for mixed chances', () => {
    const ps = [0.01, 0.04, 0.04, 0.149, 0.149, 0.3, 0.02, 0.5, 0.0199, 0.07, 0.9, 0.001];
    for (let k = 0; k <= ps.length + 1; k++) expect(poissonBinomialGreater(k, ps)).toBeCloseTo(enumerate(k, ps), 12);
  });

  it('is the binomial tail when every chance is the same', () => {
    const ps = new Array(300).fill(0.0199);
    for (const k of [1, 3, 6, 9, 14, 20]) expect(poissonBinomialGreater(k, ps) / binomialGreater(k, 300, 0.0199)).toBeCloseTo(1, 9);
  });

  it('far in the tail, an upper bound that stays under every threshold', () => {
    const ps = new Array(3000).fill(0.02);
    const exact = binomialGreater(200, 3000, 0.02);
    const got = poissonBinomialGreater(200, ps);
    expect(got).toBeGreaterThanOrEqual(exact);
    expect(got).toBeLessThan(1e-9);
  });
});
