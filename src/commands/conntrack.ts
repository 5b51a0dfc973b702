/** `k8sdiag conntrack`: conntrack counters, table use and kernel log -> findings. */
import { setTimeout as sleep } from 'node:timers/promises';
import { buildView, conntrackFindings } from '../conntrack/analyse.js';
import type { ConntrackView, TableState, WatchDeltas } from '../conntrack/analyse.js';
import { podNamespaceWarning, readLive } from '../host/conntrack.js';
import type { LiveOptions } from '../host/conntrack.js';
import type { Unavailable } from '../tool.js';
import { EXPECTED_INPUT, parseConntrackInput } from '../conntrack/parse.js';
import type { ConntrackInput, KernelLog, StatsKind } from '../conntrack/parse.js';
import { InputError } from '../errors.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { LIMITS, loadSource } from '../input.js';
import type { LoadedSource, RunControl, Source } from '../input.js';
import type { Finding } from '../findings.js';
import { sortFindings } from '../findings.js';
import { deltaPerCpu, deltaRecords } from '../stats/index.js';
import type { CounterDelta, CounterRecord } from '../stats/index.js';

export interface ConntrackCommandInput extends RunControl {
  source: Source;
  /** Sample twice, this many seconds apart (live only). The signal (SIGINT) ends the wait early. */
  watchSeconds?: number;
  /** Live reading: other paths and tools (tests). */
  live?: LiveOptions;
}

export interface ConntrackResult extends ResultHeader {
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
  /** --watch stopped early by a signal: the rates are over the time that passed. */
  interrupted: boolean;
}

interface Sample {
  input: ConntrackInput;
  sources: string[];
  unavailable: Unavailable[];
  netns?: string;
  /** Live: this namespace may be a pod's (podNamespaceWarning). */
  podWarning?: string;
}

/** The wall clock; K8SDIAG_NOW (ISO 8601) fixes it, for tests of dated log lines. */
function now(): Date {
  const fixed = process.env.K8SDIAG_NOW;
  const d = fixed !== undefined ? new Date(fixed) : new Date();
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

async function sample(source: LoadedSource, options: LiveOptions | undefined): Promise<Sample> {
  if (source.kind === 'text') {
    return { input: parseConntrackInput(source.text, now()), sources: [source.origin], unavailable: [] };
  }
  const live = await readLive(options);
  if (live.text.trim() === '') {
    const why = live.unavailable.map((u) => u.reason).join('; ');
    throw new InputError(`could not read any conntrack state on this machine: ${why}`, `pipe it in instead: conntrack -S | k8sdiag conntrack (${EXPECTED_INPUT})`);
  }
  const input = parseConntrackInput(live.text, now());
  const last = input.kernelLog.lastAtSeconds;
  if (last !== undefined && live.uptimeSeconds !== undefined) input.kernelLog.ageSeconds = Math.max(0, live.uptimeSeconds - last);
  const s: Sample = { input, sources: live.sources, unavailable: live.unavailable };
  if (live.netns !== undefined) s.netns = live.netns;
  const pod = podNamespaceWarning(live.interfaces);
  if (pod !== undefined) s.podWarning = pod;
  return s;
}

/** Counters as a view or a result holds them. */
type CounterSnapshot = { counters: CounterRecord; perCpu: CounterRecord[]; countersSource?: StatsKind | null | undefined };

/**
 * What moved between two views of the counters: per CPU (each CPU's 32-bit counter can wrap on its own) where both
 * views have the same rows from the same source, else on the totals.
 */
export function counterDeltas(first: CounterSnapshot, last: CounterSnapshot, seconds: number | null): Record<string, CounterDelta> {
  const perCpu = first.countersSource === last.countersSource ? deltaPerCpu(first.perCpu, last.perCpu, seconds) : null;
  return (perCpu ?? deltaRecords(first.counters, last.counters, seconds)).deltas;
}

export async function runConntrack(cmd: ConntrackCommandInput): Promise<ConntrackResult> {
  const header = startHeader('conntrack');
  const source = await loadSource(cmd.source, LIMITS.conntrack);
  const first = await sample(source, cmd.live);
  let last = first;
  let seconds: number | undefined;
  let interrupted = false;
  if (cmd.watchSeconds !== undefined) {
    if (source.kind !== 'live') throw new InputError('--watch needs live reading: it samples this machine twice');
    cmd.onProgress?.(`sampling again in ${cmd.watchSeconds} s (Ctrl-C to stop early)...`);
    const started = performance.now();
    try {
      await sleep(cmd.watchSeconds * 1000, undefined, cmd.signal ? { signal: cmd.signal } : {});
    } catch {
      // interrupted: use the time that passed
      interrupted = cmd.signal?.aborted === true;
    }
    seconds = (performance.now() - started) / 1000;
    last = await sample(source, cmd.live);
  }
  const warnings = [...last.input.warnings];
  // Two snapshots of the same source in one input (before and after): compare them, never add them.
  let pasted: { before: CounterRecord; beforePerCpu: CounterRecord[]; afterPerCpu: CounterRecord[]; count: number } | undefined;
  if (seconds === undefined) {
    const kind = buildView(last.input).countersSource;
    const same = last.input.stats.filter((x) => x.kind === kind);
    if (same.length >= 2) {
      pasted = { before: same[0]!.totals, beforePerCpu: same[0]!.perCpu, afterPerCpu: same[same.length - 1]!.perCpu, count: same.length };
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
      deltas: counterDeltas(buildView(first.input), view, seconds),
      newTableFullLines: Math.max(0, last.input.kernelLog.tableFullLines - first.input.kernelLog.tableFullLines),
    };
  } else if (pasted !== undefined) {
    // Per CPU, as --watch reads them: each CPU's 32-bit counter wraps on its own, and a reset is every CPU going down.
    const perCpu = deltaPerCpu(pasted.beforePerCpu, pasted.afterPerCpu, null);
    watch = { origin: 'snapshots', seconds: null, deltas: (perCpu ?? deltaRecords(pasted.before, view.counters, null)).deltas, newTableFullLines: 0 };
  }
  if (view.countersSource === undefined) warnings.push('no conntrack counters in the input: only table size and kernel log were checked');
  if (last.podWarning !== undefined) warnings.push(last.podWarning);
  return {
    ...header.finish(),
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
    interrupted,
  };
}
