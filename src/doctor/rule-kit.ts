/** What doctor's rules are made of: their input, the evidence each reads, and the helpers they share. */
import type { Finding, FindingCode } from '../findings.js';
import type { Libc } from '../host/libc.js';
import { percentOf } from '../stats/index.js';
import { lossy, lossyPool, tally } from './evidence.js';
import type { Comparison, Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import type { InsertFailedEvidence } from './race.js';
import type { CorednsDelta } from '../host/coredns.js';
import type { CounterEvidence, CounterReading } from './background.js';
import { readCounter } from './background.js';

/** What one CoreDNS counted during the probes, and over the interval before them (its background; null: not read). */
export interface CorednsEvidence extends CorednsDelta {
  seconds: number;
  baseline: CorednsDelta | null;
  baselineSeconds: number;
}

export interface AttributionInput {
  probes: ProbeSummary[];
  /** The Service behind the nameserver, when found in the rules or given with --endpoints. */
  service: { id: string | null; clusterIP: string; endpoints: string[] } | null;
  /** The workload's libc (the target's, not doctor's own). */
  libc: Libc;
  /** The kernel's clash fixes (4.19, 5.0, 5.6, 5.10). */
  clashFixes: string[];
  /** insert_failed where the probes are NATed by netfilter (the node's namespace), with its background; null elsewhere. */
  insertFailed: InsertFailedEvidence | null;
  /**
   * conntrack's insert_failed, drop and early_drop in doctor's namespace during the probes, each with its background
   * where one was read (the node's namespace); null where conntrack could not be read.
   */
  conntrack: CounterEvidence[] | null;
  /** The nameserver is NodeLocalDNS (169.254.20.10): a node-local cache reached untracked. */
  nodeLocalDNS: boolean;
  /** The nameservers probed, host:port, in the resolv.conf's order: a finding's subject when no probe names one. */
  nameservers?: string[];
  /** The name looked up, and resolv's amplification finding for it, if any. */
  name: string;
  ndots: Finding | undefined;
  /** The node's cloud network interface counters that rose during the probes (ENA allowances), with their background; null where not read. */
  nic: Array<CounterEvidence & { iface: string; counter: string }> | null;
  /** What CoreDNS itself counted during the probes, per /metrics page read, with its background; null where none was read. */
  coredns: CorednsEvidence[] | null;
  /** The last round: a pattern still only suggestive is said as inconclusive. Before it, more probes are asked for. */
  final: boolean;
}

/** Probes that would decide a suggestive pattern. */
export type MoreProbes = 'lookup-modes' | 'direct' | 'endpoints' | 'raw' | 'rate' | 'upstream';

export interface Attribution {
  findings: Finding[];
  /** Suggestive patterns to probe more for (empty on the final round, or when nothing is pending). */
  more: MoreProbes[];
}

/** A pattern that shows but does not decide: the two candidates, and what would tell them apart. */
export interface Pending {
  candidates: string;
  tellApart: string;
  more: MoreProbes[];
  /** The pattern itself is decisive, only its cause is open (the race signature, the race or a server): loss is not unexplained. */
  decided?: boolean;
}

/** The probes, grouped once for every rule. */
export interface Evidence {
  a: AttributionInput;
  ns: string;
  par?: ProbeSummary;
  reopen?: ProbeSummary;
  tcp?: ProbeSummary;
  dot?: ProbeSummary;
  inCluster?: ProbeSummary;
  /** Raw probes at full speed (the paced ones apart). */
  raw: ProbeSummary[];
  paced: ProbeSummary[];
  endpoints: ProbeSummary[];
  direct: ProbeSummary[];
  /** Codes named so far, by the rules above. */
  named: Set<FindingCode>;
  /** Codes whose pattern shows but does not decide yet, by the rules above. */
  pending: Set<FindingCode>;
}

export interface Rule {
  /** The codes it may name, the first its own. */
  codes: readonly FindingCode[];
  /** Where the finding comes from: doctor's rules decide here; resolv's and conntrack's only take their place. */
  from: 'doctor' | 'resolv' | 'conntrack';
  decide?: (e: Evidence) => { findings?: Finding[]; pending?: Pending } | undefined;
}

export const lookupsOf = (a: AttributionInput, mode: ProbeSummary['mode']): ProbeSummary | undefined => a.probes.find((p) => p.kind === 'lookups' && p.mode === mode);
export const failures = (p: ProbeSummary): Tally => tally(p.stalled + p.failed, p.units);
export const decisive = (c: Comparison | undefined): boolean => c?.strength === 'decisive';
export const suggestive = (c: Comparison | undefined): boolean => c?.strength === 'suggestive';
export const pct = (n: number, of: number): string => percentOf(n, of);

/**
 * Causes that explain the stalls of every probe they touch: a rule further down that reads the same stalls (the race,
 * the server, the path) stands aside once one of these is named. The network interface's allowances are not among
 * them: a node counter explains only loss that hits every probe alike (SERVER_LOSS, UDP_PATH_LOSS and
 * STALLS_UNEXPLAINED stand aside for it), never a pattern between probes.
 */
export const NEARER: readonly FindingCode[] = ['NAMESERVER_UNREACHABLE', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'UPSTREAM_FAILURE'];
export const explained = (named: ReadonlySet<FindingCode>, also: readonly FindingCode[] = []): boolean => [...NEARER, ...also].some((c) => named.has(c));

export const LOSS_CAUSES: ReadonlySet<FindingCode> = new Set<FindingCode>([
  'NAMESERVER_UNREACHABLE', 'LOCAL_DROPS', 'NIC_ALLOWANCE_EXCEEDED', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'COREDNS_UPSTREAM', 'UPSTREAM_FAILURE', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'LATE_ANSWERS', 'SERVER_LOSS',
  'DNAT_PATH_LOSS', 'UDP_PATH_LOSS', 'TCP_FALLBACK_BLOCKED', 'INCONCLUSIVE',
]);

/** A probe's target ("10.96.0.10:53", "[fd00::a]:53") is this address. */
export const serviceTarget = (target: string, address: string): boolean => target === address || target.startsWith(`${address}:`) || target.startsWith(`[${address}]:`);

/**
 * Every UDP probe's losses together, each unit against the background of the datagrams it carried: the most
 * powerful test that anything is lost at all, whatever the pattern (raw queries, endpoints, lookups in every UDP mode).
 */
export function udpLoss(e: Pick<Evidence, 'a'>): Comparison {
  let c = pooled.get(e.a);
  if (c === undefined) {
    c = lossyPool(e.a.probes.filter((p) => p.mode !== 'tcp'));
    pooled.set(e.a, c);
  }
  return c;
}
/** One pooled test per input: several rules read it. */
const pooled = new WeakMap<AttributionInput, Comparison>();

/**
 * The probes were touched by something: they lost beyond chance (over UDP, or over TCP). A node's or CoreDNS's counter
 * that rose is a cause of doctor's findings only then; with the probes clean it is a note about other traffic.
 */
export function probesAffected(e: Pick<Evidence, 'a' | 'tcp'>): boolean {
  return decisive(udpLoss(e)) || (e.tcp !== undefined && decisive(lossy(e.tcp)));
}

/** One counter of a CoreDNS page read against the same page's background. */
export function corednsReading(d: CorednsEvidence, key: 'maxConcurrentRejects' | 'forwardServfail', what: string): CounterReading {
  return readCounter({ name: `${d.url} ${what}`, during: d[key], seconds: d.seconds, baseline: d.baseline?.[key] ?? null, baselineSeconds: d.baselineSeconds });
}

/** A cause of loss, or loss itself, is named so far. */
export const lossNamed = (named: ReadonlySet<FindingCode>): boolean => [...named].some((c) => LOSS_CAUSES.has(c));
