/**
 * A counter that rose during the probes, read against its own background: the same counter over an interval just
 * before them, on the same machine, with everything else that machine was doing. A node's counters (conntrack's
 * insert_failed, drop and early_drop, the network interface's allowances, CoreDNS's rejects and upstream failures)
 * count every pod's traffic, so a rise means something only where the background does not explain it: at least
 * MIN_COUNT events, and the two intervals' counts compared as two Poisson rates below ALPHA. The comparison is the
 * exact conditional test: of the events of both intervals together, the probes' share is binomial with the probes'
 * share of the time when the rate did not change. It carries the baseline's own uncertainty (a Poisson test against
 * the baseline's rate taken as exact does not: 12 events in 10 s are a rate known to about 30%).
 */
import { binomialGreater, formatP } from '../stats/index.js';
import { ALPHA, MIN_COUNT } from './evidence.js';

export interface CounterEvidence {
  /** What it counts, as said: "insert_failed", "eth0 pps_allowance_exceeded", "CoreDNS max_concurrent rejects". */
  name: string;
  /** The rise during the probes, and how long they took. */
  during: number;
  seconds: number;
  /** The rise over the interval before them, and its length; null where no baseline was read. */
  baseline: number | null;
  baselineSeconds: number;
  /** The baseline's rise in each of its equal steps (about 1 s each), where it was sampled: its burstiness. */
  baselineSteps?: readonly number[];
}

export type CounterVerdict = 'rose' | 'flat' | 'unclear' | 'unknown';

export interface CounterReading {
  verdict: CounterVerdict;
  /** The Poisson test's p, where one was made. */
  p: number | null;
  said: string;
  /** The background came in bursts (its steps' variance well above their mean): a Poisson test understates chance. */
  bursty: boolean;
}

/** Variance over mean of the steps' counts above which the background is said to be bursty. */
export const BURSTY_DISPERSION = 3;

/** The steps' index of dispersion (variance / mean), null with fewer than 3 steps or no events. */
export function dispersion(steps: readonly number[] | undefined): number | null {
  if (steps === undefined || steps.length < 3) return null;
  const mean = steps.reduce((a, b) => a + b, 0) / steps.length;
  if (mean === 0) return null;
  const variance = steps.reduce((a, b) => a + (b - mean) ** 2, 0) / (steps.length - 1);
  return variance / mean;
}

/**
 * Rose: at least MIN_COUNT during the probes, and the conditional test of the two rates below ALPHA. Flat: it did not
 * move. Unknown: it rose, and there is no baseline to test it against (said, never named as a cause).
 */
export function readCounter(e: CounterEvidence): CounterReading {
  if (e.during === 0) return { verdict: 'flat', p: null, said: `${e.name} did not move during the probes (${e.seconds.toFixed(1)} s)`, bursty: false };
  if (e.baseline === null || e.baselineSeconds <= 0) {
    return { verdict: 'unknown', p: null, said: `${e.name} rose by ${e.during} in ${e.seconds.toFixed(1)} s of probes, with no interval before them read to tell it from the machine's own background`, bursty: false };
  }
  const p = binomialGreater(e.during, e.during + e.baseline, e.seconds / (e.seconds + e.baselineSeconds));
  const d = dispersion(e.baselineSteps);
  const bursty = d !== null && d >= BURSTY_DISPERSION;
  const said =
    `${e.name} rose by ${e.during} in ${e.seconds.toFixed(1)} s of probes against ${e.baseline} in ${e.baselineSeconds.toFixed(1)} s before them (${formatP(p)})` +
    (bursty ? `; the background came in bursts (variance ${d!.toFixed(1)}x its mean, per second), so the test of rates understates chance` : '');
  return { verdict: e.during >= MIN_COUNT && p < ALPHA ? 'rose' : 'unclear', p, said, bursty };
}
