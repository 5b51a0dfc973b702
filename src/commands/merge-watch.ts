/**
 * merge's sums of `watch` documents: each a capture window of one node, so its counts add (they do not count from
 * boot). Queries, answers and stalls add over nodes; the latency histogram merges exactly; each endpoint's counts add
 * over the nodes whose pods were DNATed to it, and the endpoints are ranked by the share of their queries that stalled,
 * each tested against the others together.
 */
import { Histogram, fisherGreater, isWholeCount } from '../stats/index.js';
import { failures } from '../capture/groups.js';
import { isRecord, num, record } from './merge-fields.js';
import type { HistogramSnapshot, PercentileSummary } from '../stats/index.js';

/** The counts of a watch document that add across documents (its top level). */
export const WATCH_SUMMED = [
  'messages', 'malformed', 'queries', 'answered', 'unanswered', 'resends', 'answeredAfterResend', 'late', 'unmatchedAnswers', 'inFlightAtEnd', 'evicted',
  'truncated', 'truncatedNoTcp', 'truncatedTcpFailed', 'tcp', 'tcpUnanswered', 'tcpAfterTruncated', 'searchQueries', 'raceSignature', 'raceSignatureDnated', 'pairs', 'lone', 'loneFirstLost',
] as const;

/** The counts of each endpoint that add across nodes. */
const ENDPOINT_SUMMED = ['queries', 'answered', 'unanswered', 'answeredAfterResend', 'late', 'raceSignature', 'searchQueries'] as const;

/** Endpoints kept apart; past this, the rest are counted together (a capture that saw every upstream server). */
const MAX_ENDPOINTS = 10_000;

export interface MergedWatchEndpoint extends Record<(typeof ENDPOINT_SUMMED)[number], number> {
  endpoint: string;
  /** SERVFAIL and REFUSED answers. */
  failures: number;
  /** Nodes whose pods' queries reached it. */
  nodes: number;
  /** (unanswered + answeredAfterResend) / queries. */
  stallRate: number;
  /** Fisher's exact test of its stalls against the other endpoints' together (one-sided): small when it alone stalls. */
  p: number | null;
}

export interface MergedWatch extends Record<(typeof WATCH_SUMMED)[number], number> {
  latencyMs: PercentileSummary | null;
  histogram: HistogramSnapshot;
  /** Packets tcpdump reported lost, summed over the documents that reported (null: none did); documents whose capture was damaged. */
  kernelDrops: number | null;
  ifDrops: number | null;
  damagedCaptures: number;
  /** Endpoints (and servers asked directly), worst first. */
  endpoints: MergedWatchEndpoint[];
  /** Endpoints past MAX_ENDPOINTS, not listed. */
  endpointsNotListed: number;
}


/** Why a watch document cannot be merged, or undefined. */
export function watchProblem(d: Record<string, unknown>): string | undefined {
  for (const k of WATCH_SUMMED) {
    // Counts a document of an earlier k8sdiag.watch/1 may lack are 0; anything else must be a count.
    if (d[k] === undefined && k !== 'queries' && k !== 'answered' && k !== 'unanswered') continue;
    if (!isWholeCount(d[k])) return `${k} is not a count (a whole number from 0 to 2^53)`;
  }
  if (!Histogram.isSnapshot(d['histogram'])) return 'its histogram is missing or does not add up';
  const eps = d['byEndpoint'];
  if (!isRecord(eps)) return 'byEndpoint is missing';
  for (const g of Object.values(eps)) {
    if (!isRecord(g)) return 'an endpoint that is not an object';
    for (const k of ENDPOINT_SUMMED) if (g[k] !== undefined && !isWholeCount(g[k])) return `an endpoint's ${k} is not a count`;
    if (g['rcodes'] !== undefined && (!isRecord(g['rcodes']) || !Object.values(g['rcodes']).every(isWholeCount))) return "an endpoint's rcodes are not counts";
  }
  const cap = d['capture'];
  if (cap !== undefined && !isRecord(cap)) return 'capture is not an object';
  return undefined;
}


interface EndpointSum {
  sums: Record<(typeof ENDPOINT_SUMMED)[number], number>;
  failures: number;
  nodes: Set<string>;
}

export class WatchSum {
  private readonly sums = Object.fromEntries(WATCH_SUMMED.map((k) => [k, 0])) as Record<(typeof WATCH_SUMMED)[number], number>;
  private hist: Histogram | undefined;
  private kernelDrops: number | null = null;
  private ifDrops: number | null = null;
  private damaged = 0;
  private readonly endpoints = new Map<string, EndpointSum>();
  private readonly notListed = new Set<string>();

  add(d: Record<string, unknown>): void {
    for (const k of WATCH_SUMMED) this.sums[k] += num(d[k]);
    const snap = d['histogram'] as HistogramSnapshot;
    this.hist = this.hist === undefined ? Histogram.fromJSON(snap) : this.hist.mergeSnapshot(snap);
    const cap = (d['capture'] ?? {}) as Record<string, unknown>;
    if (isWholeCount(cap['kernelDrops'])) this.kernelDrops = (this.kernelDrops ?? 0) + cap['kernelDrops'];
    if (isWholeCount(cap['ifDrops'])) this.ifDrops = (this.ifDrops ?? 0) + cap['ifDrops'];
    if (typeof cap['damaged'] === 'string') this.damaged++;
    const host = String(d['host']);
    for (const [key, raw] of Object.entries(d['byEndpoint'] as Record<string, Record<string, unknown>>)) {
      let e = this.endpoints.get(key);
      if (e === undefined) {
        if (this.endpoints.size >= MAX_ENDPOINTS) {
          if (this.notListed.size < MAX_ENDPOINTS) this.notListed.add(key);
          continue;
        }
        e = { sums: Object.fromEntries(ENDPOINT_SUMMED.map((k) => [k, 0])) as EndpointSum['sums'], failures: 0, nodes: new Set() };
        this.endpoints.set(key, e);
      }
      for (const k of ENDPOINT_SUMMED) e.sums[k] += num(raw[k]);
      e.failures += failures(record(raw['rcodes']));
      e.nodes.add(host);
    }
  }

  result(): MergedWatch {
    const h = this.hist ?? new Histogram('us');
    const stalled = (e: EndpointSum): number => e.sums.unanswered + e.sums.answeredAfterResend;
    const all = [...this.endpoints];
    const totalStalled = all.reduce((n, [, e]) => n + stalled(e), 0);
    const totalQueries = all.reduce((n, [, e]) => n + e.sums.queries, 0);
    const endpoints = all.map(([endpoint, e]): MergedWatchEndpoint => {
      const s = stalled(e);
      const others = totalQueries - e.sums.queries;
      return {
        endpoint,
        ...e.sums,
        failures: e.failures,
        nodes: e.nodes.size,
        stallRate: e.sums.queries > 0 ? Number((s / e.sums.queries).toFixed(6)) : 0,
        p: all.length >= 2 && s > 0 && others > 0 ? Number(fisherGreater(s, e.sums.queries, totalStalled - s, others).toPrecision(3)) : null,
      };
    });
    endpoints.sort((a, b) => b.stallRate - a.stallRate || b.queries - a.queries || a.endpoint.localeCompare(b.endpoint));
    return {
      ...this.sums,
      latencyMs: h.count > 0 ? h.summaryIn(1000) : null,
      histogram: h.toJSON(),
      kernelDrops: this.kernelDrops,
      ifDrops: this.ifDrops,
      damagedCaptures: this.damaged,
      endpoints,
      endpointsNotListed: this.notListed.size,
    };
  }
}
