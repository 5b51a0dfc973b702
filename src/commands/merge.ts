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
import type { Severity } from '../findings.js';

import { DocumentSplitter } from '../documents.js';
import { parseWithPackedBuckets } from '../stats/snapshot-json.js';
import { SchemaSum, problemOf } from './merge-sums.js';
import type { Doc } from './merge-sums.js';
import { SCHEMAS, startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import type { HistogramSnapshot, PercentileSummary } from '../stats/index.js';
import type { MergedWatch } from './merge-watch.js';
import type { MergedDrops } from './merge-drops.js';

export { splitDocuments } from '../documents.js';

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
  /** Timeouts / sent (dnsbench); queries unanswered or answered only after a resend / queries (watch); or null. */
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
  watch: MergedWatch | null;
  drops: MergedDrops | null;
  findings: FindingGroup[];
}

export interface MergeResult extends ResultHeader {
  command: 'merge';
  /** Where the documents came from. */
  sources: string[];
  groups: MergeGroup[];
  /** Documents that could not be merged, each with why. */
  skipped: string[];
  /** The groups' findings, for the exit code and `-o line`: each code at its worst severity, on how many nodes, and one example. */
  findings: Array<{ code: string; severity: Severity; message: string }>;
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

  /** A splitter for one source's text: feed it chunks, then end it. Each document is folded in before the next is read. */
  source(origin: string, maxDocument?: number): DocumentSplitter {
    this.sources.push(origin);
    return new DocumentSplitter({ onDocument: (d) => this.add(d, origin), onJunk: (g) => this.skipped.push(`${origin}: not JSON: ${g}`), maxDocument, parse: (text) => parseWithPackedBuckets(text, true) });
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
      if (schema !== SCHEMAS.dnsbench && schema !== SCHEMAS.conntrack && schema !== SCHEMAS.watch && /^k8sdiag\.(dnsbench|conntrack|watch)\//.test(schema)) {
        skipped.push(`${schema}: a version this k8sdiag (${SCHEMAS.dnsbench}, ${SCHEMAS.conntrack}, ${SCHEMAS.watch}) does not know: its nodes and findings are listed, its figures not merged`);
      }
      groups.push(this.bySchema.get(schema)!.result());
    }
    return {
      ...this.header.finish(),
      command: 'merge',
      sources: this.sources,
      groups,
      skipped,
      findings: groups.flatMap((g) => g.findings.map((f) => ({ code: f.code, severity: f.severity, message: `${f.nodes.length} of ${f.of} node(s) (${f.nodes.slice(0, 3).join(', ')}${f.nodes.length > 3 ? ', ...' : ''}): ${f.example}` }))),
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
