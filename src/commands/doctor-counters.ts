/**
 * The counters doctor reads against their own background: conntrack's (where the probes are NATed here), the node's
 * network interface allowances (ethtool -S) and each CoreDNS /metrics page. Sampled once before a baseline interval,
 * about once a second through it (its burstiness), once just before the probes and once after them. What each
 * counter did in each interval becomes the evidence ../doctor/background.ts reads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CounterEvidence } from '../doctor/background.js';
import type { CorednsEvidence } from '../doctor/rule-kit.js';
import { corednsDelta, fetchCorednsMetrics } from '../host/coredns.js';
import type { CorednsDelta, CorednsFigures } from '../host/coredns.js';
import { nicDeltas, readNicCounters } from '../host/nic.js';
import type { NicReading } from '../host/nic.js';
import { UserError } from '../errors.js';
import { counterDeltas, runConntrack } from './conntrack.js';
import type { ConntrackResult } from './conntrack.js';

export interface CounterSample {
  at: number;
  conntrack: ConntrackResult | { error: string };
  nic: NicReading | undefined;
  coredns: Array<{ figures: CorednsFigures } | { error: string }>;
}

/** This machine's conntrack counters and table, as `k8sdiag conntrack --live` reads them, or why it could not. */
export async function conntrackSample(): Promise<ConntrackResult | { error: string }> {
  try {
    return await runConntrack({ source: { kind: 'live' } });
  } catch (err) {
    if (err instanceof UserError) return { error: err.message };
    throw err;
  }
}

export async function takeSample(o: { nic: boolean; pages: readonly string[] }): Promise<CounterSample> {
  const [conntrack, nic, coredns] = await Promise.all([
    conntrackSample(),
    o.nic ? readNicCounters() : Promise.resolve(undefined),
    Promise.all(o.pages.map((u) => fetchCorednsMetrics(u))),
  ]);
  return { at: performance.now(), conntrack, nic, coredns };
}

/** Something in this sample can be read against a background. */
export const readable = (s: CounterSample, natHere: boolean): boolean =>
  (natHere && !('error' in s.conntrack)) ||
  (s.nic !== undefined && s.nic.samples.some((x) => Object.keys(x.counters).length > 0)) ||
  s.coredns.some((c) => !('error' in c));

/**
 * The baseline: `seconds` of samples about one a second, from `first`; the last sample is the probes' "before".
 * Stopped early by the signal.
 */
export async function sampleBaseline(first: CounterSample, seconds: number, o: { nic: boolean; pages: readonly string[]; signal?: AbortSignal }): Promise<CounterSample[]> {
  const out = [first];
  const steps = Math.max(1, Math.round(seconds));
  for (let i = 0; i < steps && !o.signal?.aborted; i++) {
    const wait = first.at + ((i + 1) * seconds * 1000) / steps - performance.now();
    try {
      if (wait > 0) await sleep(wait, undefined, o.signal ? { signal: o.signal } : {});
    } catch {
      break; // interrupted: the probes see the signal and stop at once
    }
    out.push(await takeSample(o));
  }
  return out;
}

const conntrackDelta = (a: CounterSample, b: CounterSample, name: string): number | null =>
  'error' in a.conntrack || 'error' in b.conntrack ? null : (counterDeltas(a.conntrack, b.conntrack, null)[name]?.delta ?? 0);

/** Each interval's rise, first to last; null when some interval could not be read. */
function stepsOf(samples: readonly CounterSample[], d: (a: CounterSample, b: CounterSample) => number | null): number[] | null {
  const out: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const x = d(samples[i - 1]!, samples[i]!);
    if (x === null) return null;
    out.push(x);
  }
  return out;
}

const secondsBetween = (a: CounterSample, b: CounterSample): number => Math.max(0, (b.at - a.at) / 1000);

/**
 * conntrack's insert_failed, drop and early_drop during the probes (before -> after), each with the baseline's rise
 * (samples[0] -> before) where there was one. null where conntrack could not be read before and after.
 */
export function conntrackEvidence(baseline: readonly CounterSample[], after: CounterSample): CounterEvidence[] | null {
  const before = baseline[baseline.length - 1]!;
  if ('error' in before.conntrack || 'error' in after.conntrack) return null;
  return ['insert_failed', 'drop', 'early_drop'].map((name) => evidence(name, baseline, after, (a, b) => conntrackDelta(a, b, name)));
}

function evidence(name: string, baseline: readonly CounterSample[], after: CounterSample, d: (a: CounterSample, b: CounterSample) => number | null): CounterEvidence {
  const before = baseline[baseline.length - 1]!;
  const steps = baseline.length > 1 ? stepsOf(baseline, d) : null;
  return {
    name,
    during: d(before, after) ?? 0,
    seconds: secondsBetween(before, after),
    baseline: steps === null ? null : steps.reduce((a, b) => a + b, 0),
    baselineSeconds: baseline.length > 1 ? secondsBetween(baseline[0]!, before) : 0,
    ...(steps !== null && steps.length >= 3 ? { baselineSteps: steps } : {}),
  };
}

/** The interface counters that rose during the probes, each with its background. */
export function nicEvidence(baseline: readonly CounterSample[], after: CounterSample): Array<CounterEvidence & { iface: string; counter: string }> | null {
  const before = baseline[baseline.length - 1]!;
  if (before.nic === undefined || after.nic === undefined) return null;
  return nicDeltas(before.nic, after.nic).map(({ iface, counter }) => {
    const d = (a: CounterSample, b: CounterSample): number | null =>
      a.nic === undefined || b.nic === undefined ? null : (nicDeltas(a.nic, b.nic).find((x) => x.iface === iface && x.counter === counter)?.delta ?? 0);
    return { ...evidence(`${iface} ${counter}`, baseline, after, d), iface, counter };
  });
}

/** What each CoreDNS page counted during the probes, with the same page's baseline; and the pages not read, why. */
export function corednsEvidence(pages: readonly string[], baseline: readonly CounterSample[], after: CounterSample): { read: CorednsEvidence[]; errors: string[] } {
  const before = baseline[baseline.length - 1]!;
  const first = baseline[0]!;
  const read: CorednsEvidence[] = [];
  const errors: string[] = [];
  pages.forEach((u, i) => {
    const b = before.coredns[i]!;
    const a = after.coredns[i]!;
    if ('error' in b || 'error' in a) {
      errors.push('error' in b ? b.error : (a as { error: string }).error);
      return;
    }
    const d = corednsDelta(u, b.figures, a.figures);
    if (d === null) {
      errors.push(`${u}: its counters fell (CoreDNS restarted during the probes)`);
      return;
    }
    const f = first.coredns[i]!;
    const bl: CorednsDelta | null = baseline.length > 1 && !('error' in f) ? corednsDelta(u, f.figures, b.figures) : null;
    read.push({ ...d, seconds: secondsBetween(before, after), baseline: bl, baselineSeconds: bl === null ? 0 : secondsBetween(first, before) });
  });
  return { read, errors };
}
