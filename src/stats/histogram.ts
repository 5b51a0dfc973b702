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
import { isCount } from './counters.js';
import { BUCKETS, SUB, boundsOf, indexOf, regroup, sameMarks } from './layout.js';

export { LATENCY_MARKS_US, bucketMidpoint, nearestRank } from './layout.js';
import { nearestRank } from './layout.js';

/** A snapshot's buckets as `[low0, count0, low1, count1, ...]` in one array; written out as the pairs again. */
export class PackedBuckets {
  constructor(readonly pairs: Float64Array) {}

  get length(): number {
    return this.pairs.length / 2;
  }

  toJSON(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let k = 0; k < this.pairs.length; k += 2) out.push([this.pairs[k]!, this.pairs[k + 1]!]);
    return out;
  }
}

/** Every bucket of a snapshot, packed or not, as [lower bound, count]. */
export function bucketPairs(b: HistogramSnapshot['buckets']): ReadonlyArray<readonly [number, number]> {
  return b instanceof PackedBuckets ? b.toJSON() : b;
}

export interface HistogramSnapshot {
  /** The layout, so a reader can refuse to merge incompatible histograms. */
  readonly layout: 'log-linear-v1';
  readonly unit: string;
  readonly subBuckets: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  /**
   * Sparse buckets: [lower bound of the bucket (inclusive), count]; as read by merge, the same pairs packed in one
   * array (PackedBuckets), so a fleet's documents do not cost an array per bucket.
   */
  readonly buckets: ReadonlyArray<readonly [number, number]> | PackedBuckets;
  /**
   * Exact counts between fixed marks (e.g. 1 s, 5 s): `marks` ascending, and
   * `markCounts[k]` the number of values in [marks[k-1], marks[k]) (k = 0: below
   * the first mark; the last: at or above the last mark). Buckets straddle
   * round numbers; these do not.
   */
  readonly marks?: readonly number[];
  readonly markCounts?: readonly number[];
  /**
   * `atMarks[k]`: how many of the values equal `marks[k]` exactly. With them a reader can count the values at or
   * below a mark (Prometheus's `le`) as well as below it. Absent in snapshots written before they were kept (an older k8sdiag).
   */
  readonly atMarks?: readonly number[];
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

export class Histogram {
  readonly unit: string;
  private readonly counts = new Float64Array(BUCKETS);
  private marks: readonly number[];
  /** Marks a merge could not keep exactly (one side had them, the other not): counts at them are approximate. */
  private readonly dropped: number[] = [];
  private markCounts: Float64Array;
  /** Values exactly at each mark; undefined when not known (merged from a snapshot without them). */
  private atMarks: Float64Array | undefined;
  private n = 0;
  private lo = Number.POSITIVE_INFINITY;
  private hi = 0;
  private total = 0;

  /** `marks`: thresholds (in `unit`) below and above which values are counted exactly. */
  constructor(unit = 'us', marks: readonly number[] = []) {
    this.unit = unit;
    this.marks = [...new Set(marks.map((m) => Math.round(m)))].sort((a, b) => a - b);
    this.markCounts = new Float64Array(this.marks.length + 1);
    this.atMarks = new Float64Array(this.marks.length);
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
    const m = this.marks;
    let k = 0;
    while (k < m.length && v >= m[k]!) k++;
    this.markCounts[k] = (this.markCounts[k] ?? 0) + times;
    if (k > 0 && v === m[k - 1] && this.atMarks !== undefined) this.atMarks[k - 1] = (this.atMarks[k - 1] ?? 0) + times;
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
    const rank = nearestRank(q, this.n);
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

  /**
   * Count of recorded values >= threshold: exact when the threshold is one of
   * the marks (or below 2*SUB); otherwise the count of buckets whose lower
   * bound is at or above it, which may miss values in the bucket straddling it.
   */
  countAtOrAbove(threshold: number): number {
    const t = Math.max(0, Math.round(threshold));
    const k = this.marks.indexOf(t);
    if (k >= 0) {
      let c = 0;
      for (let j = k + 1; j < this.markCounts.length; j++) c += this.markCounts[j] ?? 0;
      return c;
    }
    let start = indexOf(t);
    if (boundsOf(start)[0] < t) start++;
    let c = 0;
    for (let i = start; i < BUCKETS; i++) c += this.counts[i] ?? 0;
    return c;
  }

  /** The marks a merge of histograms with different marks dropped: a count at or above one of them is approximate. */
  get droppedMarks(): readonly number[] {
    return this.dropped;
  }

  /** Exact counts between the marks: [low (inclusive), high (exclusive), count], from 0 to infinity. */
  markRows(): Array<[number, number, number]> {
    const rows: Array<[number, number, number]> = [];
    for (let k = 0; k < this.markCounts.length; k++) {
      rows.push([k === 0 ? 0 : this.marks[k - 1]!, k < this.marks.length ? this.marks[k]! : Number.POSITIVE_INFINITY, this.markCounts[k] ?? 0]);
    }
    return rows;
  }

  /**
   * [mark, count of values at or below it] for each mark, as Prometheus's `le` buckets count; undefined when the
   * values exactly at the marks are not known (a snapshot from before they were kept).
   */
  atOrBelowMarks(): Array<[number, number]> | undefined {
    const at = this.atMarks;
    if (at === undefined) return undefined;
    const out: Array<[number, number]> = [];
    let below = 0;
    for (let k = 0; k < this.marks.length; k++) {
      below += this.markCounts[k] ?? 0;
      out.push([this.marks[k]!, below + (at[k] ?? 0)]);
    }
    return out;
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
    if (sameMarks(this.marks, other.marks)) {
      for (let k = 0; k < this.markCounts.length; k++) this.markCounts[k] = (this.markCounts[k] ?? 0) + (other.markCounts[k] ?? 0);
      const at = this.atMarks;
      const otherAt = other.atMarks;
      if (at !== undefined && otherAt !== undefined) for (let k = 0; k < at.length; k++) at[k] = (at[k] ?? 0) + (otherAt[k] ?? 0);
      else this.atMarks = undefined;
    } else {
      // Different marks (a lookup histogram carries its resolver's timeout as a mark): the marks both have keep exact
      // counts, each side's counts regrouped between them; a mark only one side has cannot be kept exactly, and is
      // named in droppedMarks.
      const common = this.marks.filter((m) => other.marks.includes(m));
      for (const m of [...this.marks, ...other.marks]) if (!common.includes(m) && !this.dropped.includes(m)) this.dropped.push(m);
      this.dropped.sort((a, b) => a - b);
      const mine = regroup(this.marks, this.markCounts, this.atMarks, common);
      const theirs = regroup(other.marks, other.markCounts, other.atMarks, common);
      this.marks = common;
      this.markCounts = mine.counts.map((c, k) => c + (theirs.counts[k] ?? 0));
      this.atMarks = mine.at !== undefined && theirs.at !== undefined ? mine.at.map((c, k) => c + (theirs.at![k] ?? 0)) : undefined;
    }
    for (const m of other.dropped) if (!this.dropped.includes(m)) this.dropped.push(m);
    if (other.n > 0) {
      this.n += other.n;
      this.total += other.total;
      if (other.lo < this.lo) this.lo = other.lo;
      if (other.hi > this.hi) this.hi = other.hi;
    }
    return this;
  }

  /**
   * `merge(Histogram.fromJSON(snap))`, without building the second histogram when the marks are the same (merge folds
   * in one snapshot per document: building each would allocate every bucket).
   */
  mergeSnapshot(snap: HistogramSnapshot): this {
    const marks = snap.marks ?? [];
    const same =
      snap.unit === this.unit && snap.layout === 'log-linear-v1' && snap.subBuckets === SUB && sameMarks(this.marks, marks) &&
      (marks.length === 0 || snap.markCounts?.length === this.markCounts.length);
    if (!same) return this.merge(Histogram.fromJSON(snap));
    this.addBuckets(snap.buckets);
    if (marks.length === 0) this.markCounts[0] = (this.markCounts[0] ?? 0) + snap.count;
    else {
      snap.markCounts!.forEach((c, k) => (this.markCounts[k] = (this.markCounts[k] ?? 0) + c));
      const at = this.atMarks;
      if (at !== undefined && snap.atMarks !== undefined && snap.atMarks.length === at.length) snap.atMarks.forEach((c, k) => (at[k] = (at[k] ?? 0) + c));
      else this.atMarks = undefined;
    }
    if (snap.count > 0) {
      this.n += snap.count;
      this.total += snap.sum;
      if (snap.min < this.lo) this.lo = snap.min;
      if (snap.max > this.hi) this.hi = snap.max;
    }
    return this;
  }

  /** A snapshot's bucket counts added in (n, sum, min and max are the caller's). */
  private addBuckets(b: HistogramSnapshot['buckets']): void {
    if (b instanceof PackedBuckets) {
      const p = b.pairs;
      for (let k = 0; k < p.length; k += 2) {
        const i = indexOf(p[k]!);
        this.counts[i] = (this.counts[i] ?? 0) + p[k + 1]!;
      }
      return;
    }
    for (const [low, c] of b) {
      const i = indexOf(low);
      this.counts[i] = (this.counts[i] ?? 0) + c;
    }
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
      ...(this.marks.length > 0 ? { marks: [...this.marks], markCounts: Array.from(this.markCounts) } : {}),
      ...(this.marks.length > 0 && this.atMarks !== undefined ? { atMarks: Array.from(this.atMarks) } : {}),
    };
  }

  /**
   * Whether `x` is a snapshot this version can read and merge exactly: the layout, finite non-negative figures, and
   * buckets (and mark counts, where present) that add up to `count`. A document read from elsewhere (merge) is checked
   * with this before any of its figures is used.
   */
  static isSnapshot(x: unknown): x is HistogramSnapshot {
    if (x === null || typeof x !== 'object') return false;
    const s = x as Record<string, unknown>;
    const counts = (v: unknown): v is number[] => Array.isArray(v) && v.every(isCount);
    const total = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0);
    if (s['layout'] !== 'log-linear-v1' || s['subBuckets'] !== SUB || typeof s['unit'] !== 'string') return false;
    if (!isCount(s['count']) || !isCount(s['min']) || !isCount(s['max']) || !isCount(s['sum'])) return false;
    const buckets = s['buckets'];
    let inBuckets = 0;
    if (buckets instanceof PackedBuckets) {
      const p = buckets.pairs;
      if (p.length % 2 !== 0) return false;
      for (let k = 0; k < p.length; k += 2) {
        if (!isCount(p[k]) || !isCount(p[k + 1])) return false;
        inBuckets += p[k + 1]!;
      }
    } else {
      if (!Array.isArray(buckets) || !buckets.every((b) => Array.isArray(b) && b.length === 2 && isCount(b[0]) && isCount(b[1]))) return false;
      inBuckets = total(buckets.map((b: number[]) => b[1] ?? 0));
    }
    if (inBuckets !== s['count']) return false;
    const marks = s['marks'];
    const markCounts = s['markCounts'];
    const atMarks = s['atMarks'];
    if (marks !== undefined || markCounts !== undefined) {
      if (!counts(marks) || !counts(markCounts) || markCounts.length !== marks.length + 1 || total(markCounts) !== s['count']) return false;
      if (atMarks !== undefined && (!counts(atMarks) || atMarks.length !== marks.length)) return false;
    } else if (atMarks !== undefined) return false;
    return true;
  }

  static fromJSON(snap: HistogramSnapshot): Histogram {
    if (snap.layout !== 'log-linear-v1' || snap.subBuckets !== SUB) {
      throw new Error(`unsupported histogram layout ${String(snap.layout)}/${String(snap.subBuckets)}`);
    }
    const marks = snap.marks ?? [];
    const h = new Histogram(snap.unit, marks);
    if (snap.markCounts !== undefined && snap.markCounts.length === h.markCounts.length && sameMarks(h.marks, marks)) {
      snap.markCounts.forEach((c, k) => (h.markCounts[k] = c));
      const at = snap.atMarks;
      const hat = h.atMarks;
      if (at !== undefined && hat !== undefined && at.length === hat.length) at.forEach((c, k) => (hat[k] = c));
      else h.atMarks = undefined;
    } else {
      h.marks = [];
      h.markCounts = new Float64Array([snap.count]);
      h.atMarks = new Float64Array(0);
    }
    h.addBuckets(snap.buckets);
    h.n = snap.count;
    h.total = snap.sum;
    h.lo = snap.count === 0 ? Number.POSITIVE_INFINITY : snap.min;
    h.hi = snap.max;
    return h;
  }
}
