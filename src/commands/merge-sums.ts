/**
 * merge's sums: the documents of one schema folded in one at a time (counters added, histograms merged in place,
 * each run's rate kept as one number, conntrack's since-boot counters of each node's latest document), and what a
 * document must hold before any of its figures is used.
 */
import { QUERY_COUNTERS } from '../engine/accounting.js';
import { SEVERITY_ORDER } from '../findings.js';
import type { Finding } from '../findings.js';
import { SCHEMAS } from '../header.js';
import { Counters, Histogram, isWholeCount } from '../stats/index.js';
import type { HistogramSnapshot } from '../stats/index.js';
import type { FindingGroup, MergeGroup, MergedConntrack, MergedDnsbench, NodeSummary } from './merge.js';
import { WatchSum, watchProblem } from './merge-watch.js';
import { DropsSum, dropsProblem } from './merge-drops.js';
import { isRecord, num, record } from './merge-fields.js';

export type Doc = Record<string, unknown> & { schema?: unknown; host?: unknown; findings?: unknown };

/** The counters of QueryStats that add across runs: the list beside the type, checked against it there. */
const SUMMED = QUERY_COUNTERS;

/**
 * Why a document of `schema` cannot be merged, or undefined when it can: every field the merge reads is checked here,
 * before any is used, so one broken document is skipped with its reason and the rest still merge.
 */
export function problemOf(schema: string, d: Doc): string | undefined {
  if (typeof d.host !== 'string' || d.host === '') return 'no host';
  if (d.findings !== undefined) {
    if (!Array.isArray(d.findings)) return 'findings is not a list';
    for (const f of d.findings as unknown[]) {
      if (!isRecord(f) || typeof f['code'] !== 'string' || typeof f['severity'] !== 'string' || !Object.hasOwn(SEVERITY_ORDER, f['severity'])) {
        return 'a finding without a code or a known severity';
      }
    }
  }
  if (schema === SCHEMAS.dnsbench) {
    for (const k of SUMMED) {
      // sent, answered and timeouts in every dnsbench/1 document; the others may be absent (0), not anything else.
      if (d[k] === undefined && k !== 'sent' && k !== 'answered' && k !== 'timeouts') continue;
      if (!isWholeCount(d[k])) return `${k} is not a count (a whole number from 0 to 2^53)`;
    }
    if (!Histogram.isSnapshot(d.histogram)) return 'its histogram is missing or does not add up';
    if (d.lookups !== undefined && d.lookups !== null) {
      if (!isWholeCount(d.lookups)) return 'lookups is not a count (a whole number from 0 to 2^53)';
      if (!isRecord(d.resolver) || !Histogram.isSnapshot(d.resolver['histogram'])) return "its resolver's histogram is missing or does not add up";
    }
  }
  if (schema === SCHEMAS.watch) return watchProblem(d);
  if (schema === SCHEMAS.drops) return dropsProblem(d);
  if (schema === SCHEMAS.conntrack) {
    if (!isRecord(d.counters) || !Object.values(d.counters).every(isWholeCount)) return 'counters are missing or not counts (whole numbers from 0 to 2^53)';
  }
  return undefined;
}

const round1 = (v: number): number => Number(v.toFixed(1));

/** dnsbench documents folded in one at a time: what they add up to, in memory that does not grow with them. */
class DnsbenchSum {
  private readonly sums = Object.fromEntries(SUMMED.map((k) => [k, 0])) as Record<(typeof SUMMED)[number], number>;
  private readonly errors = new Counters();
  private readonly rcodes = new Counters();
  private hist: Histogram | undefined;
  private lookupHist: Histogram | undefined;
  private lookups: number | null = null;
  private first = Number.POSITIVE_INFINITY;
  private last = 0;
  private latestStart = Number.NEGATIVE_INFINITY;
  private earliestEnd = Number.POSITIVE_INFINITY;
  /** Each run's own rate: one number per document. */
  private readonly rates: number[] = [];

  add(d: Doc): void {
    for (const k of SUMMED) this.sums[k] += num(d[k]);
    this.errors.merge(Counters.from(record(d.errors)));
    this.rcodes.merge(Counters.from(record(d.rcodes)));
    const snap = d.histogram as HistogramSnapshot;
    this.hist = this.hist === undefined ? Histogram.fromJSON(snap) : this.hist.mergeSnapshot(snap);
    const resolver = d.resolver as { histogram?: HistogramSnapshot } | null | undefined;
    if (typeof d.lookups === 'number' && resolver?.histogram) {
      this.lookups = (this.lookups ?? 0) + d.lookups;
      this.lookupHist = this.lookupHist === undefined ? Histogram.fromJSON(resolver.histogram) : this.lookupHist.mergeSnapshot(resolver.histogram);
    }
    const start = Date.parse(String(d.startedAt));
    if (Number.isFinite(start)) {
      this.first = Math.min(this.first, start);
      this.last = Math.max(this.last, start + num(d.durationMs));
      this.latestStart = Math.max(this.latestStart, start);
      this.earliestEnd = Math.min(this.earliestEnd, start + num(d.durationMs));
    }
    if (num(d.durationMs) > 0) this.rates.push((num(d.answered) * 1000) / num(d.durationMs));
  }

  result(): MergedDnsbench {
    const h = this.hist ?? new Histogram('us');
    const lookupHist = this.lookupHist;
    const rates = this.rates.sort((a, b) => a - b);
    const median = rates.length === 0 ? 0 : rates.length % 2 === 1 ? rates[(rates.length - 1) / 2]! : (rates[rates.length / 2 - 1]! + rates[rates.length / 2]!) / 2;
    const concurrent = this.latestStart <= this.earliestEnd;
    return {
      ...this.sums,
      errors: this.errors.toJSON(),
      rcodes: this.rcodes.toJSON(),
      latencyMs: h.count > 0 ? h.summaryIn(1000) : null,
      stalls: { over1s: h.countAtOrAbove(1_000_000), over5s: h.countAtOrAbove(5_000_000), over10s: h.countAtOrAbove(10_000_000) },
      histogram: h.toJSON(),
      lookups: this.lookups,
      lookupLatencyMs: lookupHist && lookupHist.count > 0 ? lookupHist.summaryIn(1000) : null,
      lookupStalls: lookupHist ? { over1s: lookupHist.countAtOrAbove(1_000_000), over5s: lookupHist.countAtOrAbove(5_000_000) } : null,
      lookupHistogram: lookupHist?.toJSON() ?? null,
      qps: round1(concurrent ? rates.reduce((a, b) => a + b, 0) : median),
      qpsOf: concurrent ? 'sum' : 'median',
      qpsPerRun: rates.length > 0 ? { min: round1(rates[0]!), median: round1(median), max: round1(rates[rates.length - 1]!) } : null,
      spanMs: Number.isFinite(this.first) ? Math.max(0, this.last - this.first) : 0,
      inexactMarksS: { latency: h.droppedMarks.map((m) => m / 1e6), lookups: (lookupHist?.droppedMarks ?? []).map((m) => m / 1e6) },
    };
  }
}

/** conntrack documents folded in: counters since boot, so of each node only its latest document counts. */
class ConntrackSum {
  private readonly latest = new Map<string, { startedAt: string; counters: Record<string, number> }>();
  private maxUsage: number | null = null;

  add(d: Doc): void {
    const host = String(d.host);
    const had = this.latest.get(host);
    if (had === undefined || String(d.startedAt) > had.startedAt) this.latest.set(host, { startedAt: String(d.startedAt), counters: record(d.counters) });
    const usage = (d.table as { usage?: unknown } | undefined)?.usage;
    if (typeof usage === 'number') this.maxUsage = Math.max(this.maxUsage ?? 0, usage);
  }

  result(): MergedConntrack {
    const counters = new Counters();
    for (const { counters: c } of this.latest.values()) counters.merge(Counters.from(c));
    return { counters: counters.toJSON(), maxTableUsage: this.maxUsage };
  }
}

/** One node's documents folded in. */
interface NodeSum {
  documents: number;
  sent: number;
  timeouts: number;
  over5s: number | null;
  problems: Set<string>;
}

/** The documents of one schema folded in. */
export class SchemaSum {
  documents = 0;
  readonly dnsbench: DnsbenchSum | undefined;
  readonly conntrack: ConntrackSum | undefined;
  readonly watch: WatchSum | undefined;
  readonly drops: DropsSum | undefined;
  private readonly nodes = new Map<string, NodeSum>();
  private readonly findings = new Map<string, { group: Omit<FindingGroup, 'nodes' | 'of'>; nodes: Set<string> }>();

  constructor(readonly schema: string) {
    // Only the versions this k8sdiag writes have their figures merged: another's fields may mean something else.
    this.dnsbench = schema === SCHEMAS.dnsbench ? new DnsbenchSum() : undefined;
    this.conntrack = schema === SCHEMAS.conntrack ? new ConntrackSum() : undefined;
    this.watch = schema === SCHEMAS.watch ? new WatchSum() : undefined;
    this.drops = schema === SCHEMAS.drops ? new DropsSum() : undefined;
  }

  add(d: Doc): void {
    this.documents++;
    this.dnsbench?.add(d);
    this.conntrack?.add(d);
    this.watch?.add(d);
    this.drops?.add(d);
    const host = String(d.host);
    let node = this.nodes.get(host);
    if (node === undefined) {
      node = { documents: 0, sent: 0, timeouts: 0, over5s: null, problems: new Set() };
      this.nodes.set(host, node);
    }
    node.documents++;
    if (this.watch !== undefined) {
      // The real pods' queries, and those that waited the timeout: unanswered, or answered only after a resend.
      node.sent += num(d['queries']);
      node.timeouts += num(d['unanswered']) + num(d['answeredAfterResend']);
    } else {
      node.sent += num(d.sent);
      node.timeouts += num(d.timeouts);
    }
    const over5 = (d.lookupStalls as { over5s?: number } | null | undefined)?.over5s;
    if (typeof over5 === 'number') node.over5s = (node.over5s ?? 0) + over5;
    for (const f of Array.isArray(d.findings) ? (d.findings as Finding[]) : []) {
      if (f.severity !== 'info') node.problems.add(f.code);
      let g = this.findings.get(f.code);
      if (g === undefined) {
        g = { group: { code: f.code, severity: f.severity, example: String(f.message) }, nodes: new Set() };
        this.findings.set(f.code, g);
      }
      if (SEVERITY_ORDER[f.severity] < SEVERITY_ORDER[g.group.severity]) g.group.severity = f.severity;
      g.nodes.add(host);
    }
  }

  result(): MergeGroup {
    const nodes: NodeSummary[] = [...this.nodes].map(([host, n]) => ({
      host,
      documents: n.documents,
      stallRate: n.sent > 0 ? Number((n.timeouts / n.sent).toFixed(6)) : null,
      lookupsOver5s: n.over5s,
      problems: [...n.problems].sort(),
    }));
    // Worst first: by stall rate, then lookups over 5 s.
    nodes.sort((a, b) => (b.stallRate ?? -1) - (a.stallRate ?? -1) || (b.lookupsOver5s ?? -1) - (a.lookupsOver5s ?? -1) || a.host.localeCompare(b.host));
    const findings = [...this.findings.values()]
      .map(({ group, nodes: on }) => ({ ...group, nodes: [...on], of: nodes.length }))
      .sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || b.nodes.length - a.nodes.length);
    return {
      schema: this.schema,
      documents: this.documents,
      nodes,
      dnsbench: this.dnsbench?.result() ?? null,
      conntrack: this.conntrack?.result() ?? null,
      watch: this.watch?.result() ?? null,
      drops: this.drops?.result() ?? null,
      findings,
    };
  }
}
