/** What a simulated world holds, and how one run of doctor's decision in it reads against that (./simulate.ts). */
import type { Finding, FindingCode } from '../../src/findings.js';

/**
 * What a world holds: a named cause (any of these codes is right), loss with no mechanism, nothing, loss no more
 * than the background doctor allows (1% a datagram: right is no cause), or a cause the probes cannot tell from
 * another by design (right: INCONCLUSIVE naming both; `codes` may be named where the evidence allows).
 */
export type Truth =
  | { kind: 'cause'; codes: FindingCode[] }
  | { kind: 'loss' }
  | { kind: 'none' }
  | { kind: 'background' }
  | { kind: 'ambiguous'; codes: FindingCode[] };

/** Causes that name a mechanism; the loss codes name loss placed on a path or a server, or unplaced. */
export const LOSS_CODES: readonly FindingCode[] = ['SERVER_LOSS', 'UDP_PATH_LOSS', 'DNAT_PATH_LOSS', 'STALLS_UNEXPLAINED'];

/** The causes a run names: every non-info finding of the verdict's table but the notes that name no cause. */
export function namedCauses(findings: readonly Finding[]): FindingCode[] {
  return findings.filter((f) => f.severity !== 'info' && f.code !== 'NDOTS_COST' && f.code !== 'PROBE_ERRORS').map((f) => f.code);
}

export type Outcome = 'right' | 'wrong' | 'loss' | 'inconclusive' | 'none';

/**
 * How a run reads against its world's truth. wrong: it names a mechanism the world does not have (whatever else it
 * names); right: it names the world's cause; loss: it names loss with no mechanism (placed or not); inconclusive;
 * none: no cause at all.
 */
export function outcomeOf(truth: Truth, findings: readonly Finding[]): Outcome {
  const named = namedCauses(findings);
  const mechanisms = named.filter((c) => !LOSS_CODES.includes(c) && c !== 'INCONCLUSIVE');
  const allowed = truth.kind === 'cause' || truth.kind === 'ambiguous' ? truth.codes : [];
  if (mechanisms.some((c) => !allowed.includes(c))) return 'wrong';
  if (mechanisms.length > 0) return 'right';
  if (truth.kind === 'ambiguous' && named.includes('INCONCLUSIVE') && !named.some((c) => LOSS_CODES.includes(c))) return 'right';
  if (named.some((c) => LOSS_CODES.includes(c))) return truth.kind === 'cause' && truth.codes.some((c) => LOSS_CODES.includes(c)) ? 'right' : 'loss';
  if (named.includes('INCONCLUSIVE')) return 'inconclusive';
  return 'none';
}
