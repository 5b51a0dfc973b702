/**
 * A terminal latency histogram on a log scale, with the marks where resolver
 * retries land: 1 s (musl/glibc retry with a short timeout), 5 s (the default
 * timeout: the conntrack race signature) and 10 s (two losses).
 */
import { Histogram, LATENCY_MARKS_US, bucketMidpoint, bucketPairs, percentOf } from '../stats/index.js';
import type { HistogramSnapshot } from '../stats/index.js';
import type { Style } from './style.js';

/** Row edges in microseconds: every row holds exactly the values in [edge, next edge). */
const EDGES_US = [0, ...LATENCY_MARKS_US, Number.POSITIVE_INFINITY];

function label(us: number): string {
  if (!Number.isFinite(us)) return 'inf';
  if (us >= 1e6) return `${us / 1e6}s`;
  if (us >= 1e3) return `${us / 1e3}ms`;
  return `${us}us`;
}

function rowOf(us: number): number {
  let i = 0;
  while (i < EDGES_US.length - 2 && us >= EDGES_US[i + 1]!) i++;
  return i;
}

/**
 * Counts per row. Exact from the histogram's marks when they include every row
 * edge; for a snapshot without them (another tool's), each bucket goes by its
 * midpoint and the rows are approximate.
 */
function rowCounts(snap: HistogramSnapshot): { counts: number[]; exact: boolean } {
  const counts = new Array<number>(EDGES_US.length - 1).fill(0);
  const marks = snap.marks ?? [];
  if (snap.markCounts !== undefined && LATENCY_MARKS_US.every((e) => marks.includes(e))) {
    for (const [low, , c] of Histogram.fromJSON(snap).markRows()) counts[rowOf(low)]! += c;
    return { counts, exact: true };
  }
  for (const [low, c] of bucketPairs(snap.buckets)) counts[rowOf(bucketMidpoint(low))]! += c;
  return { counts, exact: false };
}

export function renderHistogram(style: Style, snap: HistogramSnapshot, title = 'per query', width = 40): string {
  if (snap.count === 0) return `latency histogram (${title}): no replies, nothing to show\n`;
  const { counts, exact } = rowCounts(snap);
  // Trim empty buckets at both ends.
  let first = counts.findIndex((c) => c > 0);
  let last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
  if (first < 0) return '';
  // Always show up to the 10 s row when anything stalled past 1 s.
  if (last >= 10) last = Math.max(last, 13);
  first = Math.max(0, first);
  const max = Math.max(...counts);
  const lines: string[] = [`latency histogram (${title})${exact ? '' : ', rows approximate (bucket midpoints)'}:`];
  for (let i = first; i <= last; i++) {
    const c = counts[i] ?? 0;
    const lo = EDGES_US[i]!;
    const hi = EDGES_US[i + 1]!;
    const range = `${label(lo)}-${Number.isFinite(hi) ? label(hi) : ''}`.padStart(12);
    const n = c === 0 ? 0 : Math.max(1, Math.round((c / max) * width));
    const bar = '#'.repeat(n);
    const pct = percentOf(c, snap.count, c / snap.count < 0.001 && c > 0 ? 4 : 1);
    const mark = lo === 1e6 ? '  <- 1 s' : lo === 5e6 ? '  <- 5 s: resolver timeout + resend' : lo === 1e7 ? '  <- 10 s: two resends' : '';
    const colored = lo >= 1e6 && c > 0 ? style.c.red(bar) : bar;
    lines.push(`${range} |${colored}${' '.repeat(width - n)}| ${String(c).padStart(8)} ${pct.padStart(8)}${style.c.dim(mark)}`);
  }
  return `${lines.join('\n')}\n`;
}
