/** The faults `k8sdiag serve` injects, and their spec (`KIND[:ARG][@every=N|fraction=F|type=T|...]`). */
import type { RecordType } from 'dns-packet';
import { UsageError } from '../errors.js';
import { parseType } from './wire.js';

export type FaultKind = 'delay' | 'drop' | 'servfail' | 'refused' | 'nxdomain' | 'wrong-id' | 'wrong-question' | 'truncate';

export interface FaultRule {
  kind: FaultKind;
  /** delay: milliseconds. */
  ms?: number;
  /** nxdomain: the suffix whose names do not exist. */
  suffix?: string;
  /**
   * Apply to every Nth matching query (the Nth, 2Nth, ...), counted apart over UDP and over TCP: which queries a
   * fault hits does not depend on how concurrent clients of the two protocols happen to interleave.
   */
  every?: number;
  /** Apply to this fraction of matching queries (seeded). */
  fraction?: number;
  /** Only queries of this type match. */
  type?: RecordType;
  /** Apply at most this many times (e.g. drop only the first AAAA: drop@type=AAAA,count=1). */
  count?: number;
  /** Only names under this suffix match (e.g. servfail@name=google.com: an upstream failing, the cluster's own names not). */
  name?: string;
  /** The original text, for reports. */
  spec: string;
}

const FAULT_KINDS: readonly FaultKind[] = ['delay', 'drop', 'servfail', 'refused', 'nxdomain', 'wrong-id', 'wrong-question', 'truncate'];

/** Parse `KIND[:ARG][@every=N|fraction=F|type=T[,...]]`. */
export function parseFault(spec: string): FaultRule {
  const [head = '', sel] = spec.split('@', 2);
  const [kindRaw = '', arg] = head.split(':', 2);
  const kind = kindRaw as FaultKind;
  if (!FAULT_KINDS.includes(kind)) throw new UsageError(`--fault ${spec}: unknown fault "${kindRaw}"`, `one of ${FAULT_KINDS.join(', ')}`);
  const rule: FaultRule = { kind, spec };
  if (kind === 'delay') {
    const ms = Number(arg);
    if (arg === undefined || arg === '' || !Number.isFinite(ms) || ms < 0) throw new UsageError(`--fault ${spec}: delay needs milliseconds, e.g. delay:5000`);
    if (ms > 600_000) throw new UsageError(`--fault ${spec}: a delay is at most 600000 ms (10 minutes)`);
    rule.ms = ms;
  } else if (kind === 'nxdomain') {
    if (!arg) throw new UsageError(`--fault ${spec}: nxdomain needs a suffix, e.g. nxdomain:cluster.local`);
    rule.suffix = arg.toLowerCase().replace(/\.$/, '');
  } else if (arg !== undefined) {
    throw new UsageError(`--fault ${spec}: ${kind} takes no argument`);
  }
  const given = new Set<string>();
  for (const part of (sel ?? '').split(',').filter((p) => p !== '')) {
    const [k = '', v = ''] = part.split('=', 2);
    if (given.has(k)) throw new UsageError(`--fault ${spec}: ${k} given twice`);
    given.add(k);
    if (k === 'name') {
      if (v === '') throw new UsageError(`--fault ${spec}: name needs a suffix, e.g. name=google.com`);
      rule.name = v.toLowerCase().replace(/\.$/, '');
    } else if (k === 'every') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--fault ${spec}: every needs a whole number >= 1`);
      rule.every = n;
    } else if (k === 'fraction') {
      const f = Number(v);
      if (!Number.isFinite(f) || f < 0 || f > 1) throw new UsageError(`--fault ${spec}: fraction needs a number from 0 to 1`);
      rule.fraction = f;
    } else if (k === 'count') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`--fault ${spec}: count needs a whole number >= 1`);
      rule.count = n;
    } else if (k === 'type') {
      const t = parseType(v);
      if (t === undefined) throw new UsageError(`--fault ${spec}: unknown type "${v}"`);
      rule.type = t;
    } else {
      throw new UsageError(`--fault ${spec}: unknown selector "${k}"`, 'selectors: every=N, fraction=F, type=T, count=K, name=SUFFIX');
    }
  }
  return rule;
}
