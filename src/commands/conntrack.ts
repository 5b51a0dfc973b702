/** `k8sdiag conntrack`: conntrack counters, table use and kernel log -> findings. */
import { setTimeout as sleep } from 'node:timers/promises';
import { buildView, conntrackFindings } from '../conntrack/analyse.js';
import type { ConntrackView, TableState, WatchDeltas } from '../conntrack/analyse.js';
import { readLive } from '../conntrack/live.js';
import type { LiveOptions } from '../conntrack/live.js';
import type { Unavailable } from '../tool.js';
import { EXPECTED_INPUT, parseConntrackInput } from '../conntrack/parse.js';
import type { ConntrackInput, KernelLog, StatsKind } from '../conntrack/parse.js';
import { InputError } from '../errors.js';
import type { Finding } from '../findings.js';
import { sortFindings } from '../findings.js';
import { deltaRecords } from '../stats/index.js';
import type { CounterRecord } from '../stats/index.js';

export type ConntrackSource = { kind: 'text'; text: string; origin: string } | { kind: 'live'; options?: LiveOptions };

export interface ConntrackCommandInput {
  source: ConntrackSource;
  /** Sample twice, this many seconds apart (live only). */
  watchSeconds?: number;
  /** Called between the two samples of --watch, e.g. for a progress line. */
  onWaiting?: (seconds: number) => void;
  /** Aborts the watch wait (SIGINT). */
  signal?: AbortSignal;
}

export interface ConntrackResult {
  command: 'conntrack';
  /** What was read: file names, "stdin", /proc paths, "conntrack -S". */
  sources: string[];
  unavailable: Unavailable[];
  netns: string | null;
  countersSource: StatsKind | null;
  generation: string | null;
  cpus: number;
  counters: CounterRecord;
  perCpu: CounterRecord[];
  table: TableState;
  kernelLog: KernelLog;
  watch: WatchDeltas | null;
  findings: Finding[];
  toolErrors: string[];
  warnings: string[];
}

interface Sample {
  input: ConntrackInput;
  sources: string[];
  unavailable: Unavailable[];
  netns?: string;
}

/** The wall clock; K8SDIAG_NOW (ISO 8601) fixes it, for tests of dated log lines. */
function now(): Date {
  const fixed = process.env.K8SDIAG_NOW;
  const d = fixed !== undefined ? new Date(fixed) : new Date();
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

async function sample(source: ConntrackSource): Promise<Sample> {
  if (source.kind === 'text') {
    return { input: parseConntrackInput(source.text, now()), sources: [source.origin], unavailable: [] };
  }
  const live = await readLive(source.options);
  if (live.text.trim() === '') {
    const why = live.unavailable.map((u) => u.reason).join('; ');
    throw new InputError(`could not read any conntrack state on this machine: ${why}`, `pipe it in instead: conntrack -S | k8sdiag conntrack (${EXPECTED_INPUT})`);
  }
  const input = parseConntrackInput(live.text, now());
  const last = input.kernelLog.lastAtSeconds;
  if (last !== undefined && live.uptimeSeconds !== undefined) input.kernelLog.ageSeconds = Math.max(0, live.uptimeSeconds - last);
  const s: Sample = { input, sources: live.sources, unavailable: live.unavailable };
  if (live.netns !== undefined) s.netns = live.netns;
  return s;
}

export async function runConntrack(cmd: ConntrackCommandInput): Promise<ConntrackResult> {
  const first = await sample(cmd.source);
  let last = first;
  let seconds: number | undefined;
  if (cmd.watchSeconds !== undefined) {
    if (cmd.source.kind !== 'live') throw new InputError('--watch needs live reading: it samples this machine twice');
    cmd.onWaiting?.(cmd.watchSeconds);
    const started = performance.now();
    try {
      await sleep(cmd.watchSeconds * 1000, undefined, cmd.signal ? { signal: cmd.signal } : {});
    } catch {
      // interrupted: use the time that passed
    }
    seconds = (performance.now() - started) / 1000;
    last = await sample(cmd.source);
  }
  const warnings = [...last.input.warnings];
  // Two snapshots of the same source in one input (before and after): compare them, never add them.
  let pasted: { before: CounterRecord; count: number } | undefined;
  if (seconds === undefined) {
    const kind = buildView(last.input).countersSource;
    const same = last.input.stats.filter((x) => x.kind === kind);
    if (same.length >= 2) {
      pasted = { before: same[0]!.totals, count: same.length };
      last = { ...last, input: { ...last.input, stats: [same[same.length - 1]!, ...last.input.stats.filter((x) => x.kind !== kind)] } };
      warnings.push(`${same.length} snapshots of ${kind} in the input: the first is compared with the last (the interval between them is not known)`);
    }
  }
  const view: ConntrackView = buildView(last.input);
  let watch: WatchDeltas | undefined;
  if (seconds !== undefined) {
    watch = {
      origin: 'watch',
      seconds: Number(seconds.toFixed(3)),
      deltas: deltaRecords(buildView(first.input).counters, view.counters, seconds).deltas,
      newTableFullLines: Math.max(0, last.input.kernelLog.tableFull.length - first.input.kernelLog.tableFull.length),
    };
  } else if (pasted !== undefined) {
    watch = { origin: 'snapshots', seconds: null, deltas: deltaRecords(pasted.before, view.counters, null).deltas, newTableFullLines: 0 };
  }
  if (view.countersSource === undefined) warnings.push('no conntrack counters in the input: only table size and kernel log were checked');
  return {
    command: 'conntrack',
    sources: last.sources,
    unavailable: last.unavailable,
    netns: last.netns ?? null,
    countersSource: view.countersSource ?? null,
    generation: view.generation ?? null,
    cpus: view.cpus,
    counters: view.counters,
    perCpu: view.perCpu,
    table: view.table,
    kernelLog: view.kernelLog,
    watch: watch ?? null,
    findings: sortFindings(conntrackFindings(view, watch)),
    toolErrors: last.input.toolErrors,
    warnings,
  };
}
