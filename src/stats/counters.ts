/**
 * Named counters, rates and deltas between two snapshots of counters.
 * Shared by every command: dnsbench counts rcodes and errors with it, conntrack
 * diffs kernel counters sampled N seconds apart with it.
 */

export type CounterRecord = Record<string, number>;

export class Counters {
  private readonly values = new Map<string, number>();

  add(name: string, by = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  get total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v;
    return t;
  }

  merge(other: Counters): this {
    for (const [k, v] of other.values) this.add(k, v);
    return this;
  }

  /** A plain object, keys sorted by descending count then name, for stable output. */
  toJSON(): CounterRecord {
    const entries = [...this.values].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return Object.fromEntries(entries);
  }

  static from(record: CounterRecord): Counters {
    const c = new Counters();
    for (const [k, v] of Object.entries(record)) c.add(k, v);
    return c;
  }
}

/** Events per second; 0 when the interval is empty. */
export function rate(count: number, durationMs: number): number {
  return durationMs > 0 ? (count * 1000) / durationMs : 0;
}

/** Sum of several counter records, key by key. */
export function sumRecords(records: Iterable<CounterRecord>): CounterRecord {
  const out: CounterRecord = {};
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

/** The sum of a record's counts (errors by code, rcodes, ...). */
export function recordTotal(r: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(r)) n += v;
  return n;
}

export interface CounterDelta {
  before: number;
  after: number;
  delta: number;
  /** Null when the interval is unknown (two snapshots pasted together). */
  perSecond: number | null;
  /** The counter went down: it was reset (reboot, module reload, netns change) or wrapped. */
  reset: boolean;
  /** Per-CPU deltas only: a CPU's counter passed 2^32 and started again, and the delta counts across the wrap. */
  wrapped?: boolean;
}

/** The kernel's per-CPU conntrack counters are 32-bit (unsigned int in struct ip_conntrack_stat). */
export const PER_CPU_COUNTER_RANGE = 2 ** 32;

/**
 * Per-key change between two snapshots of per-CPU counters, taken CPU by CPU and then summed: a CPU's counter that
 * went down passed 2^32 (a wrap, counted across it) when the wrap gives less than half the range, and was reset
 * otherwise (then its new value is the delta). Summing first would turn one CPU's wrap into a fall of 2^32 in the
 * total. With a different number of CPUs (hot-plug) the rows do not line up: null, and the caller falls back to
 * the totals.
 */
export function deltaPerCpu(
  before: readonly CounterRecord[],
  after: readonly CounterRecord[],
  seconds: number | null,
): { deltas: Record<string, CounterDelta>; missing: string[] } | null {
  if (before.length === 0 || before.length !== after.length) return null;
  const deltas: Record<string, CounterDelta> = {};
  const missing = new Set<string>();
  const keys = new Set<string>();
  for (const r of [...before, ...after]) for (const k of Object.keys(r)) keys.add(k);
  for (const k of keys) {
    let b = 0;
    let a = 0;
    let delta = 0;
    let reset = false;
    let wrapped = false;
    let complete = true;
    for (let cpu = 0; cpu < before.length; cpu++) {
      const vb = before[cpu]![k];
      const va = after[cpu]![k];
      if (vb === undefined || va === undefined) {
        complete = false;
        break;
      }
      b += vb;
      a += va;
      if (va >= vb) delta += va - vb;
      else if (va + PER_CPU_COUNTER_RANGE - vb < PER_CPU_COUNTER_RANGE / 2) {
        delta += va + PER_CPU_COUNTER_RANGE - vb;
        wrapped = true;
      } else {
        delta += va;
        reset = true;
      }
    }
    if (!complete) {
      missing.add(k);
      continue;
    }
    deltas[k] = { before: b, after: a, delta, perSecond: seconds === null ? null : seconds > 0 ? delta / seconds : 0, reset, ...(wrapped ? { wrapped } : {}) };
  }
  return { deltas, missing: [...missing] };
}

/**
 * Per-key change between two snapshots taken `seconds` apart. Keys present in
 * only one snapshot are reported from the one they are in (before or after = 0
 * is not assumed: such keys are left out and listed in `missing`).
 */
export function deltaRecords(
  before: CounterRecord,
  after: CounterRecord,
  seconds: number | null,
): { deltas: Record<string, CounterDelta>; missing: string[] } {
  const deltas: Record<string, CounterDelta> = {};
  const missing: string[] = [];
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const k of keys) {
    const b = before[k];
    const a = after[k];
    if (b === undefined || a === undefined) {
      missing.push(k);
      continue;
    }
    const reset = a < b;
    const delta = reset ? a : a - b;
    deltas[k] = { before: b, after: a, delta, perSecond: seconds === null ? null : seconds > 0 ? delta / seconds : 0, reset };
  }
  return { deltas, missing };
}

/** A count as a document read from elsewhere must hold it: a finite number, not negative. */
export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** A count of events, as a document must hold it to be added: a whole number, not negative, exact in a double. */
export function isWholeCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
