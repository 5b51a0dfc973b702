/**
 * The histogram's bucket layout: log-linear, SUB linear sub-buckets per power of two above 2*SUB, values below it
 * exact; the marks' regrouping; the nearest rank. Numbers only: the Histogram class (histogram.ts) keeps the counts.
 */

export const SUB_BITS = 7;
export const SUB = 1 << SUB_BITS; // 128 sub-buckets per power of two
export const EXACT_LIMIT = 2 * SUB; // values below this are counted exactly
export const MAX_SHIFT = 40; // values up to 2^(40+8) units: far beyond any latency
export const BUCKETS = EXACT_LIMIT + MAX_SHIFT * SUB;

/**
 * The nearest rank of percentile q among n values: ceil(q/100 * n), in integer
 * arithmetic. In floating point it is off by one at round counts
 * (0.999 * 1000 = 999.0000000000001, whose ceiling is 1000), which made p99.9
 * of 1000 values the maximum. q is taken in steps of 1e-9 percent.
 */
export function nearestRank(q: number, n: number): number {
  const scale = 100_000_000_000n; // 100% in steps of 1e-9 percent
  const qs = BigInt(Math.round(q * 1_000_000_000));
  const rank = (qs * BigInt(Math.round(n)) + scale - 1n) / scale;
  return Math.max(1, Number(rank));
}

export function indexOf(value: number): number {
  if (value < EXACT_LIMIT) return value;
  let msb: number;
  let top: number;
  if (value < 0x100000000) {
    // Every latency in microseconds (up to 71 minutes): integer bit operations, no floating point.
    msb = 31 - Math.clz32(value);
    top = (value >>> (msb - SUB_BITS)) | 0;
  } else {
    // Beyond 2^32: Math.log2 on the integer, corrected for rounding at exact powers.
    msb = Math.floor(Math.log2(value));
    if (2 ** msb > value) msb -= 1;
    else if (2 ** (msb + 1) <= value) msb += 1;
    top = Math.floor(value / 2 ** (msb - SUB_BITS));
  }
  const shift = msb - SUB_BITS; // >= 1 here; top is in [SUB, 2*SUB)
  const index = EXACT_LIMIT + (shift - 1) * SUB + (top - SUB);
  return Math.min(index, BUCKETS - 1);
}

/** Lower bound (inclusive) and width of bucket `index`. */
export function boundsOf(index: number): [number, number] {
  if (index < EXACT_LIMIT) return [index, 1];
  const rel = index - EXACT_LIMIT;
  const shift = Math.floor(rel / SUB) + 1;
  const top = (rel % SUB) + SUB;
  return [top * 2 ** shift, 2 ** shift];
}

/** The midpoint of the bucket whose lower bound is `low` (for charts of a snapshot). */
export function bucketMidpoint(low: number): number {
  const [start, width] = boundsOf(indexOf(low));
  return width === 1 ? start : start + (width - 1) / 2;
}

/**
 * Latency marks in microseconds where DNS behaviour changes: the terminal
 * chart's row edges, and 1 s / 5 s / 10 s where resolver resends land.
 */
export const LATENCY_MARKS_US: readonly number[] = [1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7];

/** Counts between `marks` regrouped between `common` (a subset of them), with the counts exactly at the common marks. */
export function regroup(marks: readonly number[], counts: Float64Array, at: Float64Array | undefined, common: readonly number[]): { counts: Float64Array; at: Float64Array | undefined } {
  const out = new Float64Array(common.length + 1);
  for (let k = 0; k < counts.length; k++) {
    // Interval k is [marks[k-1], marks[k]): it lies in the common interval that starts at the last common mark <= its start.
    const low = k === 0 ? Number.NEGATIVE_INFINITY : marks[k - 1]!;
    let j = 0;
    while (j < common.length && common[j]! <= low) j++;
    out[j] = (out[j] ?? 0) + (counts[k] ?? 0);
  }
  return { counts: out, at: at === undefined ? undefined : Float64Array.from(common, (c) => at[marks.indexOf(c)] ?? 0) };
}

export function sameMarks(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
