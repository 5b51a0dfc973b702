/**
 * Tests of chance for small counts: how likely a count at least this extreme is when nothing but chance is at work.
 * doctor names a cause only when its pattern is unlikely by chance (a p-value under the rule's threshold) and rests
 * on a minimum count; these give the p-values. Exact tails, summed in log space so counts in the thousands neither
 * overflow nor lose the tail to rounding.
 */

const logFact: number[] = [0];

/** ln(n!), exact to double precision: a running sum of logs, kept between calls. */
function lnFactorial(n: number): number {
  for (let i = logFact.length; i <= n; i++) logFact.push(logFact[i - 1]! + Math.log(i));
  return logFact[n]!;
}

function lnChoose(n: number, k: number): number {
  return lnFactorial(n) - lnFactorial(k) - lnFactorial(n - k);
}

function checkCounts(...v: number[]): void {
  for (const x of v) if (!Number.isInteger(x) || x < 0) throw new RangeError(`a count must be a whole number >= 0, got ${x}`);
}

/** Sum of exp(terms), computed around the largest term so small tails survive. */
function sumExp(terms: number[]): number {
  if (terms.length === 0) return 0;
  let top = -Infinity;
  for (const t of terms) if (t > top) top = t;
  if (top === -Infinity) return 0;
  let s = 0;
  for (const t of terms) s += Math.exp(t - top);
  return Math.min(1, s * Math.exp(top));
}

/**
 * Fisher's exact test, one-sided: the chance that group A shows `a` or more of the `a + b` failures when A (`n`
 * trials) and B (`m` trials) fail at the same rate. Small: A fails more often than chance allows.
 */
export function fisherGreater(a: number, n: number, b: number, m: number): number {
  checkCounts(a, n, b, m);
  if (a > n || b > m) throw new RangeError(`more failures than trials: ${a}/${n}, ${b}/${m}`);
  const k = a + b;
  const total = n + m;
  const hi = Math.min(k, n);
  const terms: number[] = [];
  const denom = lnChoose(total, k);
  for (let x = a; x <= hi; x++) terms.push(lnChoose(n, x) + lnChoose(m, k - x) - denom);
  return sumExp(terms);
}

/** The binomial upper tail: the chance of `k` or more failures in `n` trials that each fail with chance `p`. */
export function binomialGreater(k: number, n: number, p: number): number {
  checkCounts(k, n);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`a chance must be within 0..1, got ${p}`);
  if (k === 0) return 1;
  if (k > n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  const terms: number[] = [];
  for (let x = k; x <= n; x++) terms.push(lnChoose(n, x) + x * lp + (n - x) * lq);
  return sumExp(terms);
}

/** The Poisson upper tail: the chance of `k` or more events when `lambda` are expected. */
export function poissonGreater(k: number, lambda: number): number {
  checkCounts(k);
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new RangeError(`an expected count must be finite and >= 0, got ${lambda}`);
  if (k === 0) return 1;
  if (lambda === 0) return 0;
  // The tail's terms fall fast past max(k, lambda): stop once they no longer move the sum.
  const terms: number[] = [];
  const ll = Math.log(lambda);
  for (let x = k; ; x++) {
    const t = x * ll - lambda - lnFactorial(x);
    terms.push(t);
    if (x > lambda && t < terms[0]! - 40) break;
  }
  return sumExp(terms);
}

/** A p-value as said in a finding: two significant digits, or "< 1e-6". */
export function formatP(p: number): string {
  if (p < 1e-6) return 'p < 1e-6';
  return `p = ${p < 0.001 ? p.toExponential(1) : p.toPrecision(2)}`;
}

/** Below this, poissonBinomialGreater gives the Chernoff bound instead of the exact tail. */
export const CHERNOFF_BELOW = 1e-9;

/**
 * The upper tail of a sum of independent trials that each fail with a chance of its own (the Poisson binomial): the
 * chance of `k` or more failures. Probes that carry different numbers of datagrams per unit are pooled this way,
 * each unit with its own background. Exact, by the distribution's recurrence over the trials (O(n * k)), except far
 * in the tail: where the Chernoff bound (e^-mu (e mu / k)^k, for k above the mean mu) is already under CHERNOFF_BELOW,
 * that bound is returned: an upper bound, far under every threshold and said alike ("p < 1e-6").
 */
export function poissonBinomialGreater(k: number, ps: ArrayLike<number>): number {
  checkCounts(k);
  let mu = 0;
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    if (!(p >= 0 && p <= 1)) throw new RangeError(`a chance must be within 0..1, got ${p}`);
    mu += p;
  }
  if (k === 0) return 1;
  if (k > ps.length) return 0;
  if (k > mu && mu > 0) {
    const bound = Math.exp(-mu + k * (1 + Math.log(mu / k)));
    if (bound < CHERNOFF_BELOW) return bound;
  }
  // dist[j]: the chance of exactly j failures so far, for j < k; `tail` holds the chance of k or more.
  const dist = new Float64Array(k);
  dist[0] = 1;
  let tail = 0;
  // After i trials no more than i failures are possible: the recurrence runs up to there only.
  let hi = 0;
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    tail += dist[k - 1]! * p;
    if (hi < k - 1) hi++;
    for (let j = hi; j >= 1; j--) dist[j] = dist[j]! * (1 - p) + dist[j - 1]! * p;
    dist[0] = dist[0]! * (1 - p);
  }
  return Math.min(1, tail);
}
