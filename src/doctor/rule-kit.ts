/** What doctor's rules are made of: their input, the evidence each reads, and the helpers they share. */
import type { Finding, FindingCode } from '../findings.js';
import type { Libc } from '../host/libc.js';
import { percentOf } from '../stats/index.js';
import { tally } from './evidence.js';
import type { Comparison, Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import type { InsertFailedEvidence } from './race.js';
import type { CorednsDelta } from '../host/coredns.js';

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
  /** The nameserver is NodeLocalDNS (169.254.20.10): a node-local cache reached untracked. */
  nodeLocalDNS: boolean;
  /** The name looked up, and resolv's amplification finding for it, if any. */
  name: string;
  ndots: Finding | undefined;
  /** The node's cloud network interface counters that rose during the probes (ENA allowances); null where not read. */
  nic: Array<{ iface: string; counter: string; delta: number }> | null;
  /** What CoreDNS itself counted during the probes, per /metrics page read; null where none was read. */
  coredns: CorednsDelta[] | null;
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

/** The names of the losses' causes: without one, measured stalls are said as unexplained. */
/**
 * Causes that explain the stalls of every probe they touch: a rule further down that reads the same stalls (the race,
 * the server, the path) stands aside once one of these is named.
 */
export const NEARER: readonly FindingCode[] = ['NIC_ALLOWANCE_EXCEEDED', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'UPSTREAM_FAILURE'];
export const explained = (named: ReadonlySet<FindingCode>, also: readonly FindingCode[] = []): boolean => [...NEARER, ...also].some((c) => named.has(c));

export const LOSS_CAUSES: ReadonlySet<FindingCode> = new Set<FindingCode>([
  'NAMESERVER_UNREACHABLE', 'LOCAL_DROPS', 'NIC_ALLOWANCE_EXCEEDED', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'COREDNS_UPSTREAM', 'UPSTREAM_FAILURE', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'LATE_ANSWERS', 'SERVER_LOSS',
  'DNAT_PATH_LOSS', 'UDP_PATH_LOSS', 'TCP_FALLBACK_BLOCKED', 'INCONCLUSIVE',
]);
