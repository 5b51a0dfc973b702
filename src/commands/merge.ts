/**
 * `k8sdiag merge`: the JSON documents of many runs and nodes, combined exactly.
 *
 * Input: documents one per file, NDJSON, concatenated (pretty-printed or
 * not), or every line prefixed as `kubectl logs --prefix` prints them. They are
 * grouped by schema (name and version); counters add, histograms merge exactly
 * (the merged percentiles are those of one histogram of all the samples),
 * rates and derived figures are recomputed from the merged counts, never
 * averaged; findings are grouped by code with the nodes they came from.
 */
import type { QueryStats } from '../engine/engine.js';
import { InputError } from '../errors.js';
import { SEVERITY_ORDER } from '../findings.js';
import type { Finding, Severity } from '../findings.js';
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

/** Strip `kubectl logs --prefix` prefixes (`[pod/name/container] `) from every line. */
function stripPrefixes(text: string): string {
  return text.replace(/^\[[^\]\n]*\] ?/gm, '');
}

/** Objects that never close each cost a scan to the end of the text: after this many, no more are tried. */
const MAX_UNCLOSED = 8;

/**
 * Every top-level JSON object in the text, in order: one per file, NDJSON, or concatenated, pretty-printed or not. An
 * object starts with `{` at the start of a line (after any `kubectl logs --prefix`); it ends at its matching brace,
 * strings honoured. Any other line is junk, reported by its first 80 characters. A line that starts like an object but
 * does not parse (a truncated document, a log line) is junk too, and the scan goes on from the next line, so one stray
 * brace never swallows the documents after it.
 */
export function splitDocuments(text: string): { docs: unknown[]; garbage: string[] } {
  const docs: unknown[] = [];
  const garbage: string[] = [];
  const t = stripPrefixes(text);
  // Lines of junk one after another are one entry (a document cut short is one warning, not one per line).
  let run: { first: string; more: number; endsAt: number } | undefined;
  const flush = (): void => {
    if (run === undefined) return;
    garbage.push(`"${run.first}"${run.more > 0 ? ` and the ${run.more} line${run.more === 1 ? '' : 's'} after it (a document cut short?)` : ''}`);
    run = undefined;
  };
  const junk = (from: number, to: number): void => {
    const line = t.slice(from, to).trim();
    if (line === '') return;
    if (run !== undefined && run.endsAt === from) {
      run.more++;
      run.endsAt = to + 1;
      return;
    }
    flush();
    run = { first: line.slice(0, 80), more: 0, endsAt: to + 1 };
  };
  const prefix = /\[[^\]\n]*\] ?/y;
  /** Where an object starts at `p` (spaces, and after a document a `kubectl logs --prefix`, skipped), or -1. */
  const objectAt = (p: number): number => {
    while (t[p] === ' ' || t[p] === '\t' || t[p] === '\r') p++;
    prefix.lastIndex = p;
    if (t[p] === '[' && prefix.test(t)) p = prefix.lastIndex;
    while (t[p] === ' ' || t[p] === '\t') p++;
    return t[p] === '{' ? p : -1;
  };
  let unclosed = 0;
  let i = 0;
  while (i < t.length) {
    let eol = t.indexOf('\n', i);
    if (eol < 0) eol = t.length;
    const start = unclosed < MAX_UNCLOSED ? objectAt(i) : -1;
    if (start < 0 || start > eol) {
      junk(i, eol);
      i = eol + 1;
      continue;
    }
    // The matching brace, honouring strings.
    let depth = 0;
    let inString = false;
    let j = start;
    for (; j < t.length; j++) {
      const ch = t.charCodeAt(j);
      if (inString) {
        if (ch === 92 /* backslash */) j++;
        else if (ch === 34 /* " */) inString = false;
      } else if (ch === 34) inString = true;
      else if (ch === 123 /* { */) depth++;
      else if (ch === 125 /* } */ && --depth === 0) break;
    }
    // An object that parses is never undefined: undefined is a line of junk.
    let doc: unknown;
    if (j < t.length) {
      try {
        doc = JSON.parse(t.slice(start, j + 1));
      } catch {
        // not JSON after all
      }
    } else if (++unclosed === MAX_UNCLOSED) {
      flush();
      garbage.push(`${MAX_UNCLOSED} objects that never close: the rest is read as junk`);
    }
    if (doc === undefined) {
      junk(i, eol);
      i = eol + 1;
      continue;
    }
    flush();
    docs.push(doc);
    // What follows the object on its last line (another object, concatenated) is read from there.
    i = j + 1;
  }
  flush();
  return { docs, garbage };
}

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

function mergeDnsbench(docs: Doc[]): MergedDnsbench {
  const sums = Object.fromEntries(SUMMED.map((k) => [k, 0])) as Record<(typeof SUMMED)[number], number>;
  const errors = new Counters();
  const rcodes = new Counters();
  let hist: Histogram | undefined;
  let lookupHist: Histogram | undefined;
  let lookups: number | null = null;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let latestStart = Number.NEGATIVE_INFINITY;
  let earliestEnd = Number.POSITIVE_INFINITY;
  const rates: number[] = [];
  for (const d of docs) {
    for (const k of SUMMED) sums[k] += num(d[k]);
    errors.merge(Counters.from(record(d.errors)));
    rcodes.merge(Counters.from(record(d.rcodes)));
    const h = Histogram.fromJSON(d.histogram as HistogramSnapshot);
    hist = hist === undefined ? h : hist.merge(h);
    const resolver = d.resolver as { histogram?: HistogramSnapshot } | null | undefined;
    if (typeof d.lookups === 'number' && resolver?.histogram) {
      lookups = (lookups ?? 0) + d.lookups;
      const lh = Histogram.fromJSON(resolver.histogram);
      lookupHist = lookupHist === undefined ? lh : lookupHist.merge(lh);
    }
    const start = Date.parse(String(d.startedAt));
    if (Number.isFinite(start)) {
      first = Math.min(first, start);
      last = Math.max(last, start + num(d.durationMs));
      latestStart = Math.max(latestStart, start);
      earliestEnd = Math.min(earliestEnd, start + num(d.durationMs));
    }
    if (num(d.durationMs) > 0) rates.push((num(d.answered) * 1000) / num(d.durationMs));
  }
  const h = hist ?? new Histogram('us');
  const spanMs = Number.isFinite(first) ? Math.max(0, last - first) : 0;
  rates.sort((a, b) => a - b);
  const median = rates.length === 0 ? 0 : rates.length % 2 === 1 ? rates[(rates.length - 1) / 2]! : (rates[rates.length / 2 - 1]! + rates[rates.length / 2]!) / 2;
  const concurrent = latestStart <= earliestEnd;
  const round1 = (v: number): number => Number(v.toFixed(1));
  return {
    ...sums,
    errors: errors.toJSON(),
    rcodes: rcodes.toJSON(),
    latencyMs: h.count > 0 ? h.summaryIn(1000) : null,
    stalls: { over1s: h.countAtOrAbove(1_000_000), over5s: h.countAtOrAbove(5_000_000), over10s: h.countAtOrAbove(10_000_000) },
    histogram: h.toJSON(),
    lookups,
    lookupLatencyMs: lookupHist && lookupHist.count > 0 ? lookupHist.summaryIn(1000) : null,
    lookupStalls: lookupHist ? { over1s: lookupHist.countAtOrAbove(1_000_000), over5s: lookupHist.countAtOrAbove(5_000_000) } : null,
    lookupHistogram: lookupHist?.toJSON() ?? null,
    qps: round1(concurrent ? rates.reduce((a, b) => a + b, 0) : median),
    qpsOf: concurrent ? 'sum' : 'median',
    qpsPerRun: rates.length > 0 ? { min: round1(rates[0]!), median: round1(median), max: round1(rates[rates.length - 1]!) } : null,
    spanMs,
    inexactMarksS: { latency: h.droppedMarks.map((m) => m / 1e6), lookups: (lookupHist?.droppedMarks ?? []).map((m) => m / 1e6) },
  };
}

function mergeConntrack(docs: Doc[]): MergedConntrack {
  const counters = new Counters();
  let maxUsage: number | null = null;
  // Counters since boot: a node's later document already counts what its earlier ones did.
  const latest = new Map<string, Doc>();
  for (const d of docs) {
    const had = latest.get(String(d.host));
    if (had === undefined || String(d.startedAt) > String(had.startedAt)) latest.set(String(d.host), d);
  }
  for (const d of latest.values()) counters.merge(Counters.from(record(d.counters)));
  for (const d of docs) {
    const usage = (d.table as { usage?: unknown } | undefined)?.usage;
    if (typeof usage === 'number') maxUsage = Math.max(maxUsage ?? 0, usage);
  }
  return { counters: counters.toJSON(), maxTableUsage: maxUsage };
}


function groupFindings(docs: Doc[], nodes: string[]): FindingGroup[] {
  const by = new Map<string, FindingGroup>();
  for (const d of docs) {
    const host = String(d.host);
    for (const f of Array.isArray(d.findings) ? (d.findings as Finding[]) : []) {
      if (typeof f?.code !== 'string') continue;
      let g = by.get(f.code);
      if (!g) {
        g = { code: f.code, severity: f.severity, nodes: [], of: nodes.length, example: String(f.message) };
        by.set(f.code, g);
      }
      if (SEVERITY_ORDER[f.severity] < SEVERITY_ORDER[g.severity]) g.severity = f.severity;
      if (!g.nodes.includes(host)) g.nodes.push(host);
    }
  }
  return [...by.values()].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || b.nodes.length - a.nodes.length);
}

function nodeSummaries(docs: Doc[]): NodeSummary[] {
  const by = new Map<string, Doc[]>();
  for (const d of docs) {
    const list = by.get(String(d.host));
    if (list === undefined) by.set(String(d.host), [d]);
    else list.push(d);
  }
  const out: NodeSummary[] = [];
  for (const [host, ds] of by) {
    const sent = ds.reduce((n, d) => n + num(d.sent), 0);
    const timeouts = ds.reduce((n, d) => n + num(d.timeouts), 0);
    const over5 = ds.map((d) => (d.lookupStalls as { over5s?: number } | null | undefined)?.over5s).filter((x): x is number => typeof x === 'number');
    const problems = new Set<string>();
    for (const d of ds) for (const f of Array.isArray(d.findings) ? (d.findings as Finding[]) : []) if (f.severity !== 'info') problems.add(f.code);
    out.push({
      host,
      documents: ds.length,
      stallRate: sent > 0 ? Number((timeouts / sent).toFixed(6)) : null,
      lookupsOver5s: over5.length > 0 ? over5.reduce((a, b) => a + b, 0) : null,
      problems: [...problems].sort(),
    });
  }
  // Worst first: by stall rate, then lookups over 5 s.
  return out.sort((a, b) => (b.stallRate ?? -1) - (a.stallRate ?? -1) || (b.lookupsOver5s ?? -1) - (a.lookupsOver5s ?? -1) || a.host.localeCompare(b.host));
}

export interface MergeInput {
  /** The texts to read, each with where it came from. */
  texts: Array<{ text: string; origin: string }>;
}

export function runMerge(input: MergeInput): MergeResult {
  const header = startHeader('merge');
  const skipped: string[] = [];
  const bySchema = new Map<string, Doc[]>();
  const seen = new Set<string>();
  for (const { text, origin } of input.texts) {
    const { docs, garbage } = splitDocuments(text);
    for (const g of garbage) skipped.push(`${origin}: not JSON: ${g}`);
    for (const d of docs) {
      if (d === null || typeof d !== 'object' || Array.isArray(d)) {
        skipped.push(`${origin}: not a k8sdiag document`);
        continue;
      }
      const doc = d as Doc;
      if ((doc as { event?: unknown }).event === 'slow') continue; // dnsbench's slow-query lines: events, not reports
      if (typeof doc.schema !== 'string' || !/^k8sdiag\.[a-z]+\/\d+$/.test(doc.schema)) {
        skipped.push(`${origin}: a document without a k8sdiag schema${typeof doc.command === 'string' ? ` (command ${doc.command}, from a k8sdiag older than the schema header)` : ''}`);
        continue;
      }
      const problem = problemOf(doc.schema, doc);
      if (problem !== undefined) {
        skipped.push(`${origin}: a ${doc.schema} document${typeof doc.host === 'string' && doc.host !== '' ? ` from ${doc.host}` : ''} that cannot be merged: ${problem}`);
        continue;
      }
      // The same document twice (a log read twice, a file given twice): counted once.
      const key = `${doc.schema}\0${String(doc.host)}\0${String(doc.startedAt)}\0${String(doc.durationMs)}`;
      if (seen.has(key)) {
        skipped.push(`${origin}: the ${doc.schema} document from ${String(doc.host)} started at ${String(doc.startedAt)} is in the input more than once: counted once`);
        continue;
      }
      seen.add(key);
      const list = bySchema.get(doc.schema);
      if (list === undefined) bySchema.set(doc.schema, [doc]);
      else list.push(doc);
    }
  }
  if (bySchema.size === 0) {
    throw new InputError(`no k8sdiag JSON documents to merge${skipped.length ? ` (${skipped.length} skipped: ${skipped[0]})` : ''}`, 'pipe `kubectl logs -l app.kubernetes.io/name=k8sdiag --prefix` or give files of `-o json` output');
  }
  const names = [...bySchema.keys()].map((s) => s.split('/')[0]);
  for (const [schema] of bySchema) {
    const name = schema.split('/')[0]!;
    if (names.filter((n) => n === name).length > 1) skipped.push(`${schema}: another version of ${name} is in the input too: each version is merged apart`);
  }
  const groups: MergeGroup[] = [];
  for (const [schema, docs] of [...bySchema].sort(([a], [b]) => a.localeCompare(b))) {
    const nodes = nodeSummaries(docs);
    let dnsbench: MergedDnsbench | null = null;
    let conntrack: MergedConntrack | null = null;
    // Only the versions this k8sdiag writes have their figures merged: another's fields may mean something else.
    if (schema === SCHEMAS.dnsbench) dnsbench = mergeDnsbench(docs);
    else if (schema === SCHEMAS.conntrack) conntrack = mergeConntrack(docs);
    else if (/^k8sdiag\.(dnsbench|conntrack)\//.test(schema)) {
      skipped.push(`${schema}: a version this k8sdiag (${SCHEMAS.dnsbench}, ${SCHEMAS.conntrack}) does not know: its nodes and findings are listed, its figures not merged`);
    }
    groups.push({ schema, documents: docs.length, nodes, dnsbench, conntrack, findings: groupFindings(docs, nodes.map((n) => n.host)) });
  }
  return {
    ...header.finish(),
    command: 'merge',
    sources: input.texts.map((t) => t.origin),
    groups,
    skipped,
    findings: groups.flatMap((g) => g.findings.map((f) => ({ severity: f.severity }))),
  };
}
