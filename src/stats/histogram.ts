/**
 * A fixed-memory, mergeable latency histogram in the spirit of HdrHistogram.
 *
 * Values are non-negative integers in a caller-chosen unit (k8sdiag records
 * microseconds). Values below 2*SUB are kept exactly; above that, every power
 * of two is split into SUB linear sub-buckets, so a bucket is never wider than
 * 1/SUB of its lower bound. With SUB = 128 a reported percentile is within
 * 0.4% of the true sample (the bucket midpoint is returned, clamped to the exact
 * min and max). min, max, count and sum are tracked exactly.
 *
 * Memory is one Float64Array of BUCKETS counts (about 36 KiB), whatever the
 * number of values recorded.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128 sub-buckets per power of two
const EXACT_LIMIT = 2 * SUB; // values below this are counted exactly
const MAX_SHIFT = 40; // values up to 2^(40+8) units: far beyond any latency
const BUCKETS = EXACT_LIMIT + MAX_SHIFT * SUB;

export interface HistogramSnapshot {
  /** The layout, so a reader can refuse to merge incompatible histograms. */
  readonly layout: 'log-linear-v1';
  readonly unit: string;
  readonly subBuckets: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  /** Sparse buckets: [lower bound of the bucket (inclusive), count]. */
  readonly buckets: ReadonlyArray<readonly [number, number]>;
}

export interface PercentileSummary {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

function indexOf(value: number): number {
  if (value < EXACT_LIMIT) return value;
  // floor(log2(value)) via Math.clz32 would overflow at 2^32; use Math.log2 on
  // the integer, then correct for floating-point rounding at exact powers.
  let msb = Math.floor(Math.log2(value));
  if (2 ** msb > value) msb -= 1;
  else if (2 ** (msb + 1) <= value) msb += 1;
  const shift = msb - SUB_BITS; // >= 1 here
  const top = Math.floor(value / 2 ** shift); // in [SUB, 2*SUB)
  const index = EXACT_LIMIT + (shift - 1) * SUB + (top - SUB);
  return Math.min(index, BUCKETS - 1);
}

/** Lower bound (inclusive) and width of bucket `index`. */
function boundsOf(index: number): [number, number] {
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

export class Histogram {
  readonly unit: string;
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = 0;
  private total = 0;

  constructor(unit = 'us') {
    this.unit = unit;
  }

  /** Record one value (rounded to an integer, negatives clamped to 0). */
  record(value: number): void {
    this.recordMany(value, 1);
  }

  recordMany(value: number, times: number): void {
    if (!(times > 0)) return;
    const v = value > 0 ? Math.round(value) : 0;
    const i = indexOf(v);
    this.counts[i] = (this.counts[i] ?? 0) + times;
    this.n += times;
    this.total += v * times;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  get count(): number {
    return this.n;
  }
  get min(): number {
    return this.n === 0 ? 0 : this.lo;
  }
  get max(): number {
    return this.hi;
  }
  get sum(): number {
    return this.total;
  }
  get mean(): number {
    return this.n === 0 ? 0 : this.total / this.n;
  }

  /**
   * The value at percentile q (0..100), nearest-rank: the smallest recorded
   * value such that at least q% of the values are <= it.
   */
  percentile(q: number): number {
    if (this.n === 0) return 0;
    if (q <= 0) return this.min;
    if (q >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((q / 100) * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.counts[i] ?? 0;
      if (c === 0) continue;
      seen += c;
      if (seen >= rank) {
        const [low, width] = boundsOf(i);
        const mid = width === 1 ? low : low + (width - 1) / 2;
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  summary(): PercentileSummary {
    return {
      min: this.min,
      mean: this.mean,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.max,
    };
  }

  /** The summary in another unit: e.g. summaryIn(1000) turns microseconds into milliseconds. */
  summaryIn(divisor: number, digits = 3): PercentileSummary {
    const s = this.summary();
    const f = (v: number): number => Number((v / divisor).toFixed(digits));
    return { min: f(s.min), mean: f(s.mean), p50: f(s.p50), p90: f(s.p90), p99: f(s.p99), p999: f(s.p999), max: f(s.max) };
  }

  /** Count of recorded values >= threshold (bucket-exact below EXACT_LIMIT). */
  countAtOrAbove(threshold: number): number {
    const start = indexOf(Math.max(0, Math.round(threshold)));
    let c = 0;
    for (let i = start; i < BUCKETS; i++) c += this.counts[i] ?? 0;
    return c;
  }

  /** Non-empty buckets in ascending order: [lowerBound, width, count]. */
  *buckets(): Generator<[number, number, number]> {
    for (let i = 0; i < BUCKETS; i++) {
      const c = this.counts[i] ?? 0;
      if (c !== 0) {
        const [low, width] = boundsOf(i);
        yield [low, width, c];
      }
    }
  }

  merge(other: Histogram): this {
    if (other.unit !== this.unit) {
      throw new Error(`cannot merge a histogram in ${other.unit} into one in ${this.unit}`);
    }
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i] ?? 0;
      if (c !== 0) this.counts[i] = (this.counts[i] ?? 0) + c;
    }
    if (other.n > 0) {
      this.n += other.n;
      this.total += other.total;
      if (other.lo < this.lo) this.lo = other.lo;
      if (other.hi > this.hi) this.hi = other.hi;
    }
    return this;
  }

  toJSON(): HistogramSnapshot {
    const buckets: Array<[number, number]> = [];
    for (const [low, , c] of this.buckets()) buckets.push([low, c]);
    return {
      layout: 'log-linear-v1',
      unit: this.unit,
      subBuckets: SUB,
      count: this.n,
      min: this.min,
      max: this.max,
      sum: this.total,
      buckets,
    };
  }

  static fromJSON(snap: HistogramSnapshot): Histogram {
    if (snap.layout !== 'log-linear-v1' || snap.subBuckets !== SUB) {
      throw new Error(`unsupported histogram layout ${String(snap.layout)}/${String(snap.subBuckets)}`);
    }
    const h = new Histogram(snap.unit);
    for (const [low, c] of snap.buckets) {
      const i = indexOf(low);
      h.counts[i] = (h.counts[i] ?? 0) + c;
    }
    h.n = snap.count;
    h.total = snap.sum;
    h.lo = snap.count === 0 ? Number.POSITIVE_INFINITY : snap.min;
    h.hi = snap.max;
    return h;
  }
}
