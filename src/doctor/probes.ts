/**
 * doctor's probes reduced to what attribution needs, and the sum of two rounds of the same probe. A probe is one
 * dnsbench run: raw queries (to the nameserver or an endpoint) or lookups as a libc makes them.
 */
import type { DnsbenchResult } from '../commands/dnsbench.js';
import { recordTotal, sumRecords } from '../stats/index.js';

export type ProbeKind = 'raw' | 'lookups' | 'endpoint';
/**
 * How lookups were sent. parallel: A+AAAA from one socket, the libc's default; parallel-direct: the same, straight to
 * one endpoint (no DNAT on the way); parallel-musl: as musl makes them, beside glibc's when the workload's libc is not
 * known; in-cluster: the default mode, for a name the cluster's DNS answers itself.
 */
export type ProbeMode = 'parallel' | 'parallel-musl' | 'parallel-direct' | 'single-request-reopen' | 'tcp' | 'trailing-dot' | 'in-cluster';

/** One probe's outcome. */
export interface ProbeSummary {
  /** What was probed, as shown: "lookups, A+AAAA from one socket", "raw A queries", ... */
  label: string;
  kind: ProbeKind;
  /** For lookups: how the resolver sent them. */
  mode: ProbeMode | null;
  /** For raw and endpoint probes: the record type asked. */
  qtype: 'A' | 'AAAA' | null;
  /** The server or endpoint, host:port. */
  target: string;
  /** Queries (datagrams or TCP messages) sent. */
  sent: number;
  /** Queries answered. */
  answered: number;
  /** Queries that got no answer within the timeout. */
  timeouts: number;
  /** Queries that failed at once (refused, unreachable, EPERM): not stalls. */
  errors: number;
  /** The errors by code (EPERM, ECONNREFUSED, ...). */
  errorCodes: Record<string, number>;
  /** Answers by rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...). */
  rcodes: Record<string, number>;
  /** Answers that came after their query had timed out: a slow server, not a lost packet. */
  late: number;
  /** Lookups done (lookup probes), or queries (raw and endpoint probes). */
  units: number;
  /** Lookups that took the resolver timeout or longer (however they ended), or queries that timed out. */
  stalled: number;
  /** Lookups that failed with an error before the timeout (not stalls); for queries, errors. Never counted in both. */
  failed: number;
  over1s: number;
  over5s: number;
  /** Replies this machine dropped itself (full receive buffers). */
  localDrops: number;
  /** Mean per unit, ms (null when nothing completed). */
  meanMs: number | null;
  /** Median per unit, ms: what a lookup costs without the stalls (null when nothing completed). */
  medianMs: number | null;
  /** Datagrams (queries) sent per lookup, resends included. */
  queriesPerUnit: number;
  /**
   * Datagrams, both ways, that one unit carries when nothing is lost: what chance loss has to hit to stall it. A raw
   * query 2; a lookup 2 per query it sends until its answer (4 for an absolute name, 16 for google.com through a
   * three-domain search list), as planned, or as measured where fewer were sent.
   */
  datagramsPerUnit: number;
  /** glibc's fallback to single-request during the probe. */
  singleRequestSwitches: number;
  /** Lookups that ended in SERVFAIL (lookup probes), or SERVFAIL answers (raw and endpoint probes). */
  servfailed: number;
  /** Queries sent per second on average over the probe, the wait for its timeouts included; null for an empty probe. */
  rate: number | null;
  /** Paced: sent at a fixed low rate, to tell a rate limit from loss. */
  paced: boolean;
  /** Rounds this probe ran (more are added when a first round is suggestive but not decisive). */
  rounds: number;
  /** Each round's own units and stalls, in order: a pattern that must show again in a round of its own reads them. */
  byRound: Array<{ units: number; stalled: number }>;
}

export function summarise(label: string, kind: ProbeKind, mode: ProbeMode | null, qtype: ProbeSummary['qtype'], r: DnsbenchResult, paced = false, plannedDatagrams = 2): ProbeSummary {
  const errors = recordTotal(r.errors);
  const lookups = r.lookups ?? 0;
  const isLookup = kind === 'lookups';
  const lat = isLookup ? r.lookupLatencyMs : r.latencyMs;
  return {
    label,
    kind,
    mode,
    qtype,
    target: r.servers.join(', '),
    sent: r.sent,
    answered: r.answered,
    timeouts: r.timeouts,
    errors,
    errorCodes: { ...r.errors },
    rcodes: { ...r.rcodes },
    late: r.late,
    units: isLookup ? lookups : r.sent,
    stalled: isLookup ? (r.lookupStalls?.overTimeout ?? 0) : r.timeouts,
    // A lookup refused (ECONNREFUSED, or REFUSED from the server) failed at once too: never "failed 0" beside 64 errors.
    failed: isLookup ? (r.resolver?.outcomes['error'] ?? 0) - (r.resolver?.erroredAfterTimeout ?? 0) + (r.resolver?.outcomes['refused'] ?? 0) : errors,
    over1s: isLookup ? (r.lookupStalls?.over1s ?? 0) : r.stalls.over1s,
    over5s: isLookup ? (r.lookupStalls?.over5s ?? 0) : r.stalls.over5s,
    localDrops: r.localDrops.ownSockets ?? 0,
    meanMs: lat?.mean ?? null,
    medianMs: lat?.p50 ?? null,
    queriesPerUnit: isLookup ? (lookups > 0 ? r.sent / lookups : 0) : 1,
    datagramsPerUnit: isLookup && lookups > 0 ? Math.max(2, Math.min(plannedDatagrams, Math.round((2 * r.sent) / lookups))) : isLookup ? plannedDatagrams : 2,
    singleRequestSwitches: r.resolver?.modeSwitches.singleRequest ?? 0,
    servfailed: isLookup ? (r.resolver?.outcomes['servfail'] ?? 0) : (r.rcodes['SERVFAIL'] ?? 0),
    rate: r.durationMs > 0 && r.sent > 0 ? Number(((r.sent * 1000) / r.durationMs).toFixed(1)) : null,
    paced,
    rounds: 1,
    byRound: [{ units: isLookup ? lookups : r.sent, stalled: isLookup ? (r.lookupStalls?.overTimeout ?? 0) : r.timeouts }],
  };
}

/** Weighted mean of two means; null only when both are. */
function meanOf(a: number | null, na: number, b: number | null, nb: number): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return na + nb > 0 ? (a * na + b * nb) / (na + nb) : a;
}

/** Two rounds of the same probe as one: counts added, means weighted by units. The median is the larger round's. */
export function mergeProbes(a: ProbeSummary, b: ProbeSummary): ProbeSummary {
  return {
    ...a,
    sent: a.sent + b.sent,
    answered: a.answered + b.answered,
    timeouts: a.timeouts + b.timeouts,
    errors: a.errors + b.errors,
    errorCodes: sumRecords([a.errorCodes, b.errorCodes]),
    rcodes: sumRecords([a.rcodes, b.rcodes]),
    late: a.late + b.late,
    units: a.units + b.units,
    stalled: a.stalled + b.stalled,
    failed: a.failed + b.failed,
    over1s: a.over1s + b.over1s,
    over5s: a.over5s + b.over5s,
    localDrops: a.localDrops + b.localDrops,
    meanMs: meanOf(a.meanMs, a.units, b.meanMs, b.units),
    medianMs: b.units > a.units ? b.medianMs : a.medianMs,
    queriesPerUnit: a.units + b.units > 0 ? (a.queriesPerUnit * a.units + b.queriesPerUnit * b.units) / (a.units + b.units) : a.queriesPerUnit,
    singleRequestSwitches: a.singleRequestSwitches + b.singleRequestSwitches,
    servfailed: a.servfailed + b.servfailed,
    rate: b.units > a.units ? b.rate : a.rate,
    rounds: a.rounds + b.rounds,
    byRound: [...a.byRound, ...b.byRound],
  };
}
