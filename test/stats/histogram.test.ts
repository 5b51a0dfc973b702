import { describe, expect, it } from 'vitest';
import { Counters, Histogram, bucketPairs, deltaRecords, mulberry32 as makeRng, rate } from '../../src/stats/index.js';

/** Deterministic PRNG so a failure can be replayed. */
const mulberry32 = (seed: number) => makeRng(seed);

/**
 * The reference, written without the implementation's formula: q is given as
 * an exact fraction num/den, and the answer is the first sorted value whose
 * 1-based position i satisfies i * den >= num * n (integers only).
 */
function exact(sorted: number[], num: number, den: number): number {
  const n = sorted.length;
  for (let i = 1; i <= n; i++) if (i * den >= num * n) return sorted[i - 1]!;
  return sorted[n - 1]!;
}

/** Percentiles as exact fractions: [q for the histogram, numerator, denominator]. */
const QS: Array<[number, number, number]> = [
  [1, 1, 100], [10, 1, 10], [25, 1, 4], [50, 1, 2], [75, 3, 4], [90, 9, 10], [95, 19, 20], [99, 99, 100], [99.9, 999, 1000], [99.99, 9999, 10000],
];

/** The documented bound: a bucket's midpoint is within 1/(2*128) of any value in it. */
const BOUND = 1 / 256;

function check(values: number[]): void {
  const h = new Histogram();
  for (const v of values) h.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  expect(h.count).toBe(values.length);
  expect(h.min).toBe(sorted[0]);
  expect(h.max).toBe(sorted[sorted.length - 1]);
  expect(h.mean).toBeCloseTo(values.reduce((s, v) => s + v, 0) / values.length, 6);
  for (const [q, num, den] of QS) {
    const want = exact(sorted, num, den);
    const got = h.percentile(q);
    expect(Math.abs(got - want) / Math.max(1, want), `p${q}: got ${got}, want ${want}`).toBeLessThanOrEqual(BOUND);
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

  it('p99.9 of 999 x 2 ms and one 5 s stall is 2 ms, not the stall', () => {
    const h = new Histogram();
    h.recordMany(2000, 999);
    h.record(5_000_000);
    expect(Math.abs(h.percentile(99.9) - 2000) / 2000).toBeLessThanOrEqual(BOUND);
    expect(h.percentile(100)).toBe(5_000_000);
  });

  for (const n of [1000, 10_000, 100_000]) {
    for (const share of [0.001, 0.01]) {
      it(`exact percentiles at n = ${n} with ${share * 100}% stalls of 5 s`, () => {
        const r = mulberry32(n + share * 1e6);
        const stalls = Math.round(n * share);
        const values = Array.from({ length: n - stalls }, () => 800 + Math.floor(r() * 3000)); // 0.8-3.8 ms
        for (let i = 0; i < stalls; i++) values.push(5_000_000 + Math.floor(r() * 20_000));
        values.sort(() => r() - 0.5);
        check(values);
        const h = new Histogram();
        for (const v of values) h.record(v);
        // With exactly n * share stalls, the percentile at 100 - share is still a fast value.
        expect(h.percentile(100 - share * 100)).toBeLessThan(4000);
      });
    }
  }

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

  it('every value lands in a bucket that contains it, on both sides of 2^32', () => {
    const r = mulberry32(11);
    const values = [255, 256, 257, 0xffffffff, 0x100000000, 0x100000001, 2 ** 40 - 1];
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(2 ** (8 + r() * 32)));
    for (const v of values) {
      const h = new Histogram();
      h.record(v);
      const [low] = bucketPairs(h.toJSON().buckets)[0]!;
      expect(low, String(v)).toBeLessThanOrEqual(v);
      expect(v - low, String(v)).toBeLessThan(Math.max(1, low / 128));
    }
  });

  it('keeps fixed memory: bucket count does not grow with the number of values', () => {
    const h = new Histogram();
    for (let i = 0; i < 200_000; i++) h.record(i * 37);
    expect(h.toJSON().buckets.length).toBeLessThan(5000);
  });

  it('counts values at or above a threshold (the slow-query cut)', () => {
    const h = new Histogram('us', [5_000_000]);
    [10, 200, 5_000_000, 5_000_001, 9_000_000].forEach((v) => h.record(v));
    expect(h.countAtOrAbove(5_000_000)).toBe(3);
    expect(h.countAtOrAbove(201)).toBe(3);
  });

  it('marks count exactly on both sides of each mark, through merge and JSON', () => {
    const marks = [1_000_000, 5_000_000, 10_000_000];
    const h = new Histogram('us', marks);
    // Just below and just above each mark; 4,990,000 shares a bucket with 5,000,000.
    for (const m of marks) {
      h.record(m - 1);
      h.record(m);
      h.record(m + 1);
    }
    h.record(4_990_000);
    expect(h.countAtOrAbove(5_000_000)).toBe(5);
    expect(h.countAtOrAbove(1_000_000)).toBe(9);
    expect(h.markRows()).toEqual([
      [0, 1_000_000, 1],
      [1_000_000, 5_000_000, 4],
      [5_000_000, 10_000_000, 3],
      [10_000_000, Number.POSITIVE_INFINITY, 2],
    ]);
    const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h)));
    expect(back.markRows()).toEqual(h.markRows());
    back.merge(h);
    expect(back.countAtOrAbove(5_000_000)).toBe(10);
    // Without marks, a threshold inside a bucket never counts values below it.
    const plain = new Histogram();
    plain.record(4_990_000);
    expect(plain.countAtOrAbove(5_000_000)).toBe(0);
  });

  it('isSnapshot: its own JSON is one; a snapshot that does not add up, or with a figure that is not a count, is not', () => {
    const h = new Histogram('us', [1_000, 1_000_000]);
    for (const v of [5, 999, 1_000, 2_000_000]) h.record(v);
    const snap = JSON.parse(JSON.stringify(h)) as Record<string, unknown>;
    expect(Histogram.isSnapshot(snap)).toBe(true);
    expect(Histogram.isSnapshot(new Histogram().toJSON())).toBe(true);
    const broken = [
      { ...snap, count: 5 },
      { ...snap, sum: -1 },
      { ...snap, min: null },
      { ...snap, layout: 'hdr' },
      { ...snap, buckets: [[5, 1], [999, 1], [1_000, 1], [2_000_000, 'x']] },
      { ...snap, markCounts: [1, 1, 1] },
      { ...snap, atMarks: [1] },
      null,
      [],
    ];
    for (const b of broken) expect(Histogram.isSnapshot(b), JSON.stringify(b)).toBe(false);
  });

  it('counts values at or below each mark (values exactly on a mark included), through JSON and merge', () => {
    const marks = [1_000, 1_000_000, 5_000_000];
    const values = [0, 999, 1_000, 1_000, 1_001, 999_999, 1_000_000, 4_990_000, 5_000_000, 5_000_001, 7_000_000];
    const h = new Histogram('us', marks);
    for (const v of values) h.record(v);
    const plain = (m: number) => values.filter((v) => v <= m).length;
    const expected = marks.map((m) => [m, plain(m)]);
    expect(h.atOrBelowMarks()).toEqual(expected);
    const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h)));
    expect(back.atOrBelowMarks()).toEqual(expected);
    back.merge(h);
    expect(back.atOrBelowMarks()).toEqual(marks.map((m) => [m, 2 * plain(m)]));
    // A snapshot that does not say which values lie on the marks: unknown, also after merging it in.
    const { atMarks, ...older } = h.toJSON();
    expect(atMarks).toEqual([2, 1, 1]);
    expect(Histogram.fromJSON(older).atOrBelowMarks()).toBeUndefined();
    expect(new Histogram('us', marks).merge(Histogram.fromJSON(older)).atOrBelowMarks()).toBeUndefined();
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

describe('merging histograms whose marks differ', () => {
  it('keeps every mark both have exact (checked against a plain count of the values) and names the one it drops', async () => {
    const { Histogram: H, LATENCY_MARKS_US: M } = await import('../../src/stats/index.js');
    // Lookups with timeout:1 (1 s is already a mark) and with timeout:3 (3 s added): stalls land around the timeouts.
    const a = [900_000, 1_000_000, 1_000_001, 1_200_000, 1_999_999, 2_500_000, 5_000_000, 5_000_001];
    const b = [999_999, 1_000_000, 1_100_000, 2_999_999, 3_000_000, 3_000_001, 3_400_000, 6_000_000, 12_000_000];
    const ha = new H('us', [...M, 1_000_000]);
    const hb = new H('us', [...M, 3_000_000]);
    for (const v of a) ha.record(v);
    for (const v of b) hb.record(v);
    const m = ha.merge(hb);
    const all = [...a, ...b];
    for (const t of M) expect(m.countAtOrAbove(t), `>= ${t}`).toBe(all.filter((v) => v >= t).length);
    for (const [mark, atOrBelow] of m.atOrBelowMarks()!) expect(atOrBelow, `<= ${mark}`).toBe(all.filter((v) => v <= mark).length);
    expect(m.droppedMarks).toEqual([3_000_000]);
  });
});

describe('merging a snapshot in place', () => {
  it('gives what merging the histogram built from it gives, for the same marks, other marks and none', async () => {
    const { Histogram: H, LATENCY_MARKS_US: M } = await import('../../src/stats/index.js');
    const rand = makeRng(11);
    const filled = (marks: readonly number[], n: number): InstanceType<typeof H> => {
      const h = new H('us', marks);
      for (let i = 0; i < n; i++) h.record(Math.floor(rand() * 12_000_000));
      return h;
    };
    for (const [mine, theirs] of [[M, M], [M, [...M, 3_000_000]], [[], []], [M, []]] as Array<[readonly number[], readonly number[]]>) {
      for (const n of [0, 1, 500]) {
        const base = filled(mine, 300);
        const other = filled(theirs, n);
        const viaMerge = H.fromJSON(base.toJSON()).merge(H.fromJSON(other.toJSON()));
        const viaSnapshot = H.fromJSON(base.toJSON()).mergeSnapshot(other.toJSON());
        expect(viaSnapshot.toJSON(), `${mine.length}/${theirs.length} marks, ${n} values`).toEqual(viaMerge.toJSON());
        expect(viaSnapshot.droppedMarks).toEqual(viaMerge.droppedMarks);
        // And the counts are those of the values themselves, where the marks are exact.
        expect(viaSnapshot.count).toBe(300 + n);
      }
    }
  });
});
