/**
 * `k8sdiag merge`: the JSON documents of many runs and nodes, combined exactly.
 *
 * Input: documents one per file, NDJSON, concatenated (pretty-printed or
 * not), or every line prefixed as `kubectl logs --prefix` prints them. They are
 * grouped by schema (name and version); counters add, histograms merge exactly
 * (the merged percentiles are those of one histogram of all the samples),
 * rates and derived figures are recomputed from the merged counts, never
 * averaged; findings are grouped by code with the nodes they came from. Documents are folded in as they are read:
 * memory grows with the number of nodes, not with the input.
 */
import type { QueryStats } from '../engine/engine.js';
import { InputError } from '../errors.js';
import { SEVERITY_ORDER } from '../findings.js';
import type { Finding, Severity } from '../findings.js';

export { splitDocuments } from '../documents.js';
import { DocumentSplitter } from '../documents.js';
import { SCHEMAS, startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { Counters, Histogram, isWholeCount } from '../stats/index.js';
import type { HistogramSnapshot, PercentileSummary } from '../stats/index.js';

/** What the documents of one schema add up to. */
export interface MergedDnsbench extends Omit<QueryStats, 'unattributedErrors'> {
  latencyMs: PercentileSummary | null;
  stalls: { over1s: number; over5s: number; over10s: number };
  histogram: HistogramSnapshot;
  lookups: number | null;
  lookupLatencyMs: PercentileSummary | null;
  lookupStalls: { over1s: number; over5s: number } | null;
  lookupHistogram: HistogramSnapshot | null;
  /**
   * Answers per second: each run's own rate (answered / its duration), summed when the runs ran at once (one fleet
   * sweep: every run started before any ended), else their median (runs apart in time, a CronJob's).
   */
  qps: number;
  /** How qps combines the runs: 'sum' (concurrent) or 'median' (apart in time). */
  qpsOf: 'sum' | 'median';
  /** Each run's own rate: lowest, median, highest. */
  qpsPerRun: { min: number; median: number; max: number } | null;
  /** From the first start to the last end. */
  spanMs: number;
  /**
   * Marks (seconds) some runs had and others not (a lookup histogram carries its resolver's timeout): the counts at
   * or above them are approximate; every other mark's are exact.
   */
  inexactMarksS: { latency: number[]; lookups: number[] };
}

export interface MergedConntrack {
  /**
   * Counters since boot, summed over nodes: of each node its latest document only (an hourly DaemonSet's logs hold
   * one document per hour, each counting from boot).
   */
  counters: Record<string, number>;
  /** The fullest table among the nodes. */
  maxTableUsage: number | null;
}

export interface NodeSummary {
  host: string;
  documents: number;
  /** Timeouts / sent (dnsbench), or null. */
  stallRate: number | null;
  /** Lookups of 5 s or more (dnsbench --resolv), or null. */
  lookupsOver5s: number | null;
  /** Codes of its warning and critical findings. */
  problems: string[];
}

export interface FindingGroup {
  code: string;
  severity: Severity;
  nodes: string[];
  /** Of how many nodes in the group. */
  of: number;
  /** One message as an example, from the first node. */
  example: string;
}

export interface MergeGroup {
  schema: string;
  documents: number;
  nodes: NodeSummary[];
  dnsbench: MergedDnsbench | null;
  conntrack: MergedConntrack | null;
  findings: FindingGroup[];
}

export interface MergeResult extends ResultHeader {
  command: 'merge';
  /** Where the documents came from. */
  sources: string[];
  groups: MergeGroup[];
  /** Documents that could not be merged, each with why. */
  skipped: string[];
  /** The groups' findings, for the exit code: the worst severity of each code. */
  findings: Array<{ severity: Severity }>;
}

type Doc = Record<string, unknown> & { schema?: unknown; host?: unknown; findings?: unknown };

/** The counters of QueryStats that add across runs. */
const SUMMED = ['sent', 'answered', 'timeouts', 'slow', 'late', 'wrongId', 'wrongQuestion', 'malformed', 'truncated', 'tcpRetries'] as const satisfies ReadonlyArray<keyof QueryStats>;

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function record(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'number') out[k] = x;
  return out;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Why a document of `schema` cannot be merged, or undefined when it can: every field the merge reads is checked here,
 * before any is used, so one broken document is skipped with its reason and the rest still merge.
 */
function problemOf(schema: string, d: Doc): string | undefined {
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
class SchemaSum {
  documents = 0;
  readonly dnsbench: DnsbenchSum | undefined;
  readonly conntrack: ConntrackSum | undefined;
  private readonly nodes = new Map<string, NodeSum>();
  private readonly findings = new Map<string, { group: Omit<FindingGroup, 'nodes' | 'of'>; nodes: Set<string> }>();

  constructor(readonly schema: string) {
    // Only the versions this k8sdiag writes have their figures merged: another's fields may mean something else.
    this.dnsbench = schema === SCHEMAS.dnsbench ? new DnsbenchSum() : undefined;
    this.conntrack = schema === SCHEMAS.conntrack ? new ConntrackSum() : undefined;
  }

  add(d: Doc): void {
    this.documents++;
    this.dnsbench?.add(d);
    this.conntrack?.add(d);
    const host = String(d.host);
    let node = this.nodes.get(host);
    if (node === undefined) {
      node = { documents: 0, sent: 0, timeouts: 0, over5s: null, problems: new Set() };
      this.nodes.set(host, node);
    }
    node.documents++;
    node.sent += num(d.sent);
    node.timeouts += num(d.timeouts);
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
      findings,
    };
  }
}

/**
 * Documents folded in as they are read (`add`), from any number of sources; `result()` at the end. Memory grows with
 * the nodes and the documents' count (a few numbers each), never with the documents' text.
 */
export class Merger {
  private readonly header = startHeader('merge');
  private readonly skipped: string[] = [];
  private readonly bySchema = new Map<string, SchemaSum>();
  /** Per schema and node, the documents read: start (ms) -> duration; others (an unreadable start) by their text. */
  private readonly seen = new Map<string, Map<number, unknown>>();
  private readonly seenOdd = new Set<string>();
  private readonly sources: string[] = [];

  /** A splitter for one source's text: feed it chunks, then end it. */
  source(origin: string, maxDocument?: number): DocumentSplitter {
    this.sources.push(origin);
    return new DocumentSplitter({ onDocument: (d) => this.add(d, origin), onJunk: (g) => this.skipped.push(`${origin}: not JSON: ${g}`), maxDocument });
  }

  add(d: unknown, origin: string): void {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) {
      this.skipped.push(`${origin}: not a k8sdiag document`);
      return;
    }
    const doc = d as Doc;
    if ((doc as { event?: unknown }).event === 'slow') return; // dnsbench's slow-query lines: events, not reports
    if (typeof doc.schema !== 'string' || !/^k8sdiag\.[a-z]+\/\d+$/.test(doc.schema)) {
      this.skipped.push(`${origin}: a document without a k8sdiag schema${typeof doc.command === 'string' ? ` (command ${doc.command}, from a k8sdiag older than the schema header)` : ''}`);
      return;
    }
    const problem = problemOf(doc.schema, doc);
    if (problem !== undefined) {
      this.skipped.push(`${origin}: a ${doc.schema} document${typeof doc.host === 'string' && doc.host !== '' ? ` from ${doc.host}` : ''} that cannot be merged: ${problem}`);
      return;
    }
    // The same document twice (a log read twice, a file given twice): counted once.
    if (this.seenBefore(doc)) {
      this.skipped.push(`${origin}: the ${doc.schema} document from ${String(doc.host)} started at ${String(doc.startedAt)} is in the input more than once: counted once`);
      return;
    }
    let sum = this.bySchema.get(doc.schema);
    if (sum === undefined) {
      sum = new SchemaSum(doc.schema);
      this.bySchema.set(doc.schema, sum);
    }
    sum.add(doc);
  }

  /**
   * Whether a document of the same schema, node, start and duration was read before. A few numbers per document, not
   * its text: a fleet's million documents fit.
   */
  private seenBefore(doc: Doc): boolean {
    const node = `${String(doc.schema)}\0${String(doc.host)}`;
    const start = typeof doc.startedAt === 'string' ? Date.parse(doc.startedAt) : Number.NaN;
    if (!Number.isFinite(start) || new Date(start).toISOString() !== doc.startedAt) {
      const key = `${node}\0${String(doc.startedAt)}\0${String(doc.durationMs)}`;
      if (this.seenOdd.has(key)) return true;
      this.seenOdd.add(key);
      return false;
    }
    let starts = this.seen.get(node);
    if (starts === undefined) {
      starts = new Map();
      this.seen.set(node, starts);
    }
    const had = starts.get(start);
    if (had === undefined && !starts.has(start)) {
      starts.set(start, doc.durationMs);
      return false;
    }
    if (Object.is(had, doc.durationMs)) return true;
    // Two runs of one node that started in the same millisecond: told apart by their durations, by text.
    const key = `${node}\0${String(doc.startedAt)}\0${String(doc.durationMs)}`;
    if (this.seenOdd.has(key)) return true;
    this.seenOdd.add(key);
    return false;
  }

  result(): MergeResult {
    const skipped = this.skipped;
    if (this.bySchema.size === 0) {
      throw new InputError(`no k8sdiag JSON documents to merge${skipped.length ? ` (${skipped.length} skipped: ${skipped[0]})` : ''}`, 'pipe `kubectl logs -l app.kubernetes.io/name=k8sdiag --prefix` or give files of `-o json` output');
    }
    const schemas = [...this.bySchema.keys()].sort((a, b) => a.localeCompare(b));
    const names = schemas.map((s) => s.split('/')[0]);
    for (const schema of schemas) {
      const name = schema.split('/')[0]!;
      if (names.filter((n) => n === name).length > 1) skipped.push(`${schema}: another version of ${name} is in the input too: each version is merged apart`);
    }
    const groups: MergeGroup[] = [];
    for (const schema of schemas) {
      if (schema !== SCHEMAS.dnsbench && schema !== SCHEMAS.conntrack && /^k8sdiag\.(dnsbench|conntrack)\//.test(schema)) {
        skipped.push(`${schema}: a version this k8sdiag (${SCHEMAS.dnsbench}, ${SCHEMAS.conntrack}) does not know: its nodes and findings are listed, its figures not merged`);
      }
      groups.push(this.bySchema.get(schema)!.result());
    }
    return {
      ...this.header.finish(),
      command: 'merge',
      sources: this.sources,
      groups,
      skipped,
      findings: groups.flatMap((g) => g.findings.map((f) => ({ severity: f.severity }))),
    };
  }
}

export interface MergeInput {
  /** The texts to read, each with where it came from. */
  texts: Array<{ text: string; origin: string }>;
}

/** Whole texts merged (the library's and the tests' door; the CLI streams its files through a Merger). */
export function runMerge(input: MergeInput): MergeResult {
  const merger = new Merger();
  for (const { text, origin } of input.texts) {
    const split = merger.source(origin);
    split.feed(text);
    split.end();
  }
  return merger.result();
}
