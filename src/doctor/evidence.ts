/**
 * What counts as evidence for doctor's rules: the thresholds every rule states (a minimum count and a test of chance)
 * and the comparisons between probes that the rules read. One lost query of 100 is not a cause; a pattern that
 * chance alone would give once in a thousand runs is.
 */
import { binomialGreater, fisherGreater, formatP, poissonBinomialGreater } from '../stats/index.js';
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

/**
 * `a` fails more often than `b` beyond chance (Fisher's exact test, one-sided). `comparisons`: how many such tests
 * the rule makes at once (each endpoint against the others, each record type against the other); the p-value is
 * multiplied by it (Bonferroni), so that a rule that looks in k places is not k times as likely to find chance.
 */
export function worseThan(a: Tally, b: Tally, comparisons = 1): Comparison {
  if (a.of === 0 || b.of === 0) return { strength: 'none', p: 1, said: `${show(a)} vs ${show(b)}` };
  const p = Math.min(1, fisherGreater(a.n, a.of, b.n, b.of) * comparisons);
  return { strength: strengthOf(a.n, p), p, said: `${show(a)} vs ${show(b)}, ${formatP(p)}${comparisons > 1 ? ` over ${comparisons} comparisons` : ''}` };
}

/**
 * `a` fails more often than the background allows: each unit fails when any of its `datagrams` datagrams (both ways
 * counted) is lost, each with the background's chance (binomial test, one-sided).
 */
export function aboveBackground(a: Tally, datagrams: number): Comparison {
  if (a.of === 0) return { strength: 'none', p: 1, said: show(a) };
  const p0 = backgroundOf(datagrams);
  const p = binomialGreater(a.n, a.of, p0);
  return { strength: strengthOf(a.n, p), p, said: `${show(a)} against a background of ${percent(p0)}, ${formatP(p)}` };
}

/** The chance that chance loss alone stalls one unit that carries `datagrams` datagrams. */
export const backgroundOf = (datagrams: number): number => 1 - (1 - BACKGROUND_LOSS) ** Math.max(1, datagrams);

/** A probe's losses above the background, each unit with the datagrams it carries as sent (ProbeSummary.datagramsPerUnit). */
export function lossy(p: ProbeSummary): Comparison {
  return aboveBackground(stalls(p), p.datagramsPerUnit);
}

/**
 * Several probes' losses together above the background: each unit with its own probe's datagrams (a search-list
 * lookup carries 16, an absolute name's 4), so pooling never borrows a lighter probe's background (Poisson binomial).
 */
export function lossyPool(ps: readonly ProbeSummary[]): Comparison {
  const t = pool(ps.map(stalls));
  if (t.of === 0) return { strength: 'none', p: 1, said: show(t) };
  const chances = new Float64Array(t.of);
  let at = 0;
  for (const p of ps) {
    chances.fill(backgroundOf(p.datagramsPerUnit), at, at + p.units);
    at += p.units;
  }
  const p = poissonBinomialGreater(t.n, chances);
  const expected = chances.reduce((n, c) => n + c, 0);
  return { strength: strengthOf(t.n, p), p, said: `${show(t)} against ${expected.toFixed(1)} expected from a ${BACKGROUND_LOSS * 100}% datagram background, ${formatP(p)}` };
}
