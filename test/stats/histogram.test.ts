import { describe, expect, it } from 'vitest';
import { Counters, Histogram, deltaRecords, mulberry32 as makeRng, rate } from '../../src/stats/index.js';

/** Deterministic PRNG so a failure can be replayed. */
const mulberry32 = (seed: number) => makeRng(seed);

/** Exact nearest-rank percentile of a sorted array. */
function exact(sorted: number[], q: number): number {
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[rank - 1]!;
}

const QS = [1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99];

function check(values: number[]): void {
  const h = new Histogram();
  for (const v of values) h.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  expect(h.count).toBe(values.length);
  expect(h.min).toBe(sorted[0]);
  expect(h.max).toBe(sorted[sorted.length - 1]);
  expect(h.mean).toBeCloseTo(values.reduce((s, v) => s + v, 0) / values.length, 6);
  for (const q of QS) {
    const want = exact(sorted, q);
    const got = h.percentile(q);
    expect(Math.abs(got - want) / Math.max(1, want), `p${q}: got ${got}, want ${want}`).toBeLessThanOrEqual(0.01);
  }
}

describe('Histogram', () => {
  it('percentiles within 1% of exact sorted-array percentiles: uniform, 1 us .. 10 s', () => {
    const r = mulberry32(1);
    check(Array.from({ length: 50_000 }, () => Math.floor(1 + r() * 10_000_000)));
  });

  it('percentiles within 1%: log-normal DNS-like latencies with 5 s stalls', () => {
    const r = mulberry32(2);
    const values = Array.from({ length: 40_000 }, () => {
      const u = Math.max(1e-12, r());
      const v = r();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
      const base = Math.round(Math.exp(6 + 1.2 * z)); // ~400 us median
      return r() < 0.01 ? 5_000_000 + base : base;
    });
    check(values);
  });

  it('is exact for small values and handles a single value and zero', () => {
    check([0, 1, 2, 3, 255, 255, 100]);
    const h = new Histogram();
    h.record(42);
    expect(h.summary()).toEqual({ min: 42, mean: 42, p50: 42, p90: 42, p99: 42, p999: 42, max: 42 });
    expect(new Histogram().summary()).toEqual({ min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
  });

  it('merges into the same result as recording everything in one', () => {
    const r = mulberry32(3);
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 0; i < 20_000; i++) {
      const v = Math.floor(r() * 3_000_000);
      (i % 3 === 0 ? a : b).record(v);
      all.record(v);
    }
    a.merge(b);
    expect(a.toJSON()).toEqual(all.toJSON());
  });

  it('round-trips through JSON and stays mergeable', () => {
    const r = mulberry32(4);
    const h = new Histogram();
    for (let i = 0; i < 5000; i++) h.record(Math.floor(r() * 6_000_000));
    const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h)));
    expect(back.toJSON()).toEqual(h.toJSON());
    expect(back.summary()).toEqual(h.summary());
    expect(() => Histogram.fromJSON({ ...h.toJSON(), subBuckets: 64 })).toThrow(/unsupported/);
  });

  it('keeps fixed memory: bucket count does not grow with the number of values', () => {
    const h = new Histogram();
    for (let i = 0; i < 200_000; i++) h.record(i * 37);
    expect(h.toJSON().buckets.length).toBeLessThan(5000);
  });

  it('counts values at or above a threshold (the slow-query cut)', () => {
    const h = new Histogram();
    [10, 200, 5_000_000, 5_000_001, 9_000_000].forEach((v) => h.record(v));
    expect(h.countAtOrAbove(5_000_000)).toBe(3);
    expect(h.countAtOrAbove(201)).toBe(3);
  });
});

describe('Counters, rates, deltas', () => {
  it('counts, merges and orders by count', () => {
    const a = new Counters();
    a.add('NOERROR', 5);
    a.add('NXDOMAIN', 8);
    const b = Counters.from({ NOERROR: 2, SERVFAIL: 1 });
    a.merge(b);
    expect(a.toJSON()).toEqual({ NXDOMAIN: 8, NOERROR: 7, SERVFAIL: 1 });
    expect(Object.keys(a.toJSON())).toEqual(['NXDOMAIN', 'NOERROR', 'SERVFAIL']);
    expect(a.total).toBe(16);
  });

  it('computes rates', () => {
    expect(rate(500, 250)).toBe(2000);
    expect(rate(5, 0)).toBe(0);
  });

  it('computes per-second deltas and flags counter resets', () => {
    const { deltas, missing } = deltaRecords({ insert_failed: 10, drop: 5, gone: 1 }, { insert_failed: 30, drop: 2, fresh: 4 }, 4);
    expect(deltas.insert_failed).toEqual({ before: 10, after: 30, delta: 20, perSecond: 5, reset: false });
    expect(deltas.drop).toEqual({ before: 5, after: 2, delta: 2, perSecond: 0.5, reset: true });
    expect(missing.sort()).toEqual(['fresh', 'gone']);
  });
});
