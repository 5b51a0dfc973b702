/**
 * What counts as evidence for doctor's rules: the thresholds every rule states (a minimum count and a test of chance)
 * and the comparisons between probes that the rules read. One lost query of 100 is not a cause; a pattern that
 * chance alone would give once in a thousand runs is.
 */
import { binomialGreater, fisherGreater, formatP } from '../stats/index.js';
import type { ProbeSummary } from './probes.js';
import { percent } from '../stats/index.js';

/** A rule names a cause when its test of chance gives less than this. */
export const ALPHA = 0.001;
/** Below this (and not below ALPHA) a pattern is suggestive: doctor probes more, then says inconclusive. */
export const SUGGESTIVE = 0.05;
/** The fewest stalls, losses or failures a named cause rests on. */
export const MIN_COUNT = 3;
/** Datagram loss that any network shows now and then, and no cause is named for: the null of the tests against "nothing". */
export const BACKGROUND_LOSS = 0.01;

/** Failures out of trials. */
export interface Tally {
  n: number;
  of: number;
}

export const tally = (n: number, of: number): Tally => ({ n, of });
export const stalls = (p: ProbeSummary): Tally => ({ n: p.stalled, of: p.units });
export const show = (t: Tally): string => `${t.n}/${t.of}`;

/** Several probes' tallies added. */
export function pool(ts: readonly Tally[]): Tally {
  return ts.reduce((a, t) => ({ n: a.n + t.n, of: a.of + t.of }), { n: 0, of: 0 });
}

/** How strongly a comparison supports its pattern. */
export type Strength = 'decisive' | 'suggestive' | 'none';

export interface Comparison {
  strength: Strength;
  p: number;
  /** "31/64 vs 0/64, p = 2.1e-12" */
  said: string;
}

function strengthOf(count: number, p: number): Strength {
  if (count >= MIN_COUNT && p < ALPHA) return 'decisive';
  return count > 0 && p < SUGGESTIVE ? 'suggestive' : 'none';
}

/** `a` fails more often than `b` beyond chance (Fisher's exact test, one-sided). */
export function worseThan(a: Tally, b: Tally): Comparison {
  if (a.of === 0 || b.of === 0) return { strength: 'none', p: 1, said: `${show(a)} vs ${show(b)}` };
  const p = fisherGreater(a.n, a.of, b.n, b.of);
  return { strength: strengthOf(a.n, p), p, said: `${show(a)} vs ${show(b)}, ${formatP(p)}` };
}

/**
 * `a` fails more often than the background allows: each unit fails when any of its `datagrams` datagrams (both ways
 * counted) is lost, each with the background's chance (binomial test, one-sided).
 */
export function aboveBackground(a: Tally, datagrams: number): Comparison {
  if (a.of === 0) return { strength: 'none', p: 1, said: show(a) };
  const p0 = 1 - (1 - BACKGROUND_LOSS) ** Math.max(1, datagrams);
  const p = binomialGreater(a.n, a.of, p0);
  return { strength: strengthOf(a.n, p), p, said: `${show(a)} against a background of ${percent(p0)}, ${formatP(p)}` };
}

/** A probe's losses above the background: a query and its answer for a raw query; every query of a lookup, each way. */
export function lossy(p: ProbeSummary): Comparison {
  return aboveBackground(stalls(p), p.kind === 'lookups' ? 2 * Math.max(1, Math.round(p.queriesPerUnit)) : 2);
}
