/**
 * From parsed conntrack inputs to one view of the node and its findings.
 * Pure: no I/O, no printing.
 */
import type { Finding } from '../findings.js';
import { percent } from '../stats/index.js';
import type { CounterDelta, CounterRecord } from '../stats/index.js';
import type { ConntrackInput, KernelLog, StatsKind, StatsSource } from './parse.js';
import { RACE, TABLE_FULL } from '../remedies.js';
import { finding } from '../findings.js';

export interface TableState {
  count?: number;
  max?: number;
  buckets?: number;
  /** count / max, 0..1 (can exceed 1 briefly). */
  usage?: number;
  udpTimeout?: number;
  udpTimeoutStream?: number;
  /** Where `count` came from. */
  countSource?: 'sysctl' | 'stats-entries';
}

export interface ConntrackView {
  /** Totals over all CPUs, normalised counter names. */
  counters: CounterRecord;
  countersSource?: StatsKind;
  generation?: string;
  cpus: number;
  perCpu: CounterRecord[];
  table: TableState;
  kernelLog: KernelLog;
}

export interface WatchDeltas {
  /** Where the two samples came from: --watch, or two snapshots in one input (interval unknown). */
  origin: 'watch' | 'snapshots';
  /** Seconds between the samples; null for pasted snapshots. */
  seconds: number | null;
  deltas: Record<string, CounterDelta>;
  /** "table full" kernel log lines that appeared between the two samples. */
  newTableFullLines: number;
}

export const PRESSURE_WARNING = 0.8;
export const PRESSURE_CRITICAL = 0.95;
/** A "table full" kernel line older than this is history (warning), not an emergency. */
export const TABLE_FULL_RECENT_SECONDS = 3600;

function formatAge(s: number): string {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

const KIND_PREFERENCE: Record<StatsKind, number> = { 'conntrack-S': 0, 'conntrack-S-fallback': 1, 'proc-stat': 2 };

function preferredSource(stats: readonly StatsSource[]): StatsSource | undefined {
  return [...stats].sort((a, b) => KIND_PREFERENCE[a.kind] - KIND_PREFERENCE[b.kind])[0];
}

export function buildView(input: ConntrackInput): ConntrackView {
  const src = preferredSource(input.stats);
  const table: TableState = {};
  const s = input.sysctl;
  if (s.nf_conntrack_count !== undefined) {
    table.count = s.nf_conntrack_count;
    table.countSource = 'sysctl';
  } else {
    const withEntries = input.stats.find((x) => x.entries !== undefined);
    if (withEntries?.entries !== undefined) {
      table.count = withEntries.entries;
      table.countSource = 'stats-entries';
    }
  }
  if (s.nf_conntrack_max !== undefined) table.max = s.nf_conntrack_max;
  if (s.nf_conntrack_buckets !== undefined) table.buckets = s.nf_conntrack_buckets;
  if (s.nf_conntrack_udp_timeout !== undefined) table.udpTimeout = s.nf_conntrack_udp_timeout;
  if (s.nf_conntrack_udp_timeout_stream !== undefined) table.udpTimeoutStream = s.nf_conntrack_udp_timeout_stream;
  if (table.count !== undefined && table.max !== undefined && table.max > 0) table.usage = table.count / table.max;
  const view: ConntrackView = {
    counters: src?.totals ?? {},
    cpus: src?.perCpu.length ?? 0,
    perCpu: src?.perCpu ?? [],
    table,
    kernelLog: input.kernelLog,
  };
  if (src) {
    view.countersSource = src.kind;
    view.generation = src.generation;
  }
  return view;
}


const pct = (x: number): string => percent(x);

function perCpuMax(view: ConntrackView, key: string): number {
  let m = 0;
  for (const row of view.perCpu) m = Math.max(m, row[key] ?? 0);
  return m;
}

export function conntrackFindings(view: ConntrackView, watch?: WatchDeltas): Finding[] {
  const findings: Finding[] = [];
  const c = view.counters;
  const rising = (key: string): CounterDelta | undefined => {
    const d = watch?.deltas[key];
    return d !== undefined && d.delta > 0 ? d : undefined;
  };
  const watchEvidence = (key: string): Record<string, number | null> => {
    const d = watch?.deltas[key];
    return d === undefined ? {} : { [`${key}PerSecond`]: d.perSecond === null ? null : Number(d.perSecond.toFixed(3)), [`${key}Delta`]: d.delta, watchSeconds: watch?.seconds ?? null };
  };
  /** "in 10s" for --watch, "between the two snapshots" for pasted ones. */
  const during = (): string => (watch?.seconds != null ? `in ${watch.seconds}s` : 'between the two snapshots');
  const rateOf = (d: CounterDelta): string => (d.perSecond === null ? '' : ` (${d.perSecond.toFixed(2)}/s)`);

  const insertFailed = c.insert_failed ?? 0;
  if (insertFailed > 0) {
    const now = rising('insert_failed');
    const hasClash = c.clash_resolve !== undefined;
    findings.push(finding({
      code: 'INSERT_FAILED',
      severity: now ? 'critical' : 'warning',
      subject: { kind: 'counter', name: 'insert_failed' },
      message:
        (now
          ? `insert_failed is rising: ${now.delta} ${during()}${rateOf(now)}: `
          : watch
            ? `insert_failed = ${insertFailed} since boot, not rising ${watch.seconds !== null ? `during the ${watch.seconds}s watch` : 'between the two snapshots'}: `
            : `insert_failed = ${insertFailed} since boot: `) +
        'packets lost the conntrack insert race: two packets of one new flow (any protocol) racing to create its entry; ' +
        'for DNS, glibc\'s A and AAAA queries sent at once from one socket, behind 5 s lookups' +
        (hasClash ? `; this kernel already resolved ${c.clash_resolve ?? 0} clashes, these are the ones it could not` : ''),
      evidence: { insert_failed: insertFailed, ...(hasClash ? { clash_resolve: c.clash_resolve ?? 0 } : {}), worstCpu: perCpuMax(view, 'insert_failed'), ...watchEvidence('insert_failed') },
      remedy: RACE,
    }));
  }

  const drop = c.drop ?? 0;
  if (drop > 0) {
    const now = rising('drop');
    findings.push(finding({
      code: 'DROP',
      severity: now ? 'critical' : 'warning',
      subject: { kind: 'counter', name: 'drop' },
      message: now
        ? `conntrack is dropping packets now: ${now.delta} ${during()}`
        : `drop = ${drop}: packets dropped because no conntrack entry could be created (table full or allocation failure)`,
      evidence: { drop, ...watchEvidence('drop') },
      remedy: TABLE_FULL,
    }));
  }

  const early = c.early_drop ?? 0;
  if (early > 0) {
    const now = rising('early_drop');
    findings.push(finding({
      code: 'EARLY_DROP',
      severity: now ? 'critical' : 'warning',
      subject: { kind: 'counter', name: 'early_drop' },
      message: now
        ? `the table is evicting entries now: early_drop rose by ${now.delta} ${during()}`
        : `early_drop = ${early}: the table was full and unassured entries were evicted to make room`,
      evidence: { early_drop: early, ...watchEvidence('early_drop') },
      remedy: 'raise net.netfilter.nf_conntrack_max; UDP DNS entries live nf_conntrack_udp_timeout (30 s) each, so bursts of lookups fill the table: shorten it or use NodeLocalDNS',
    }));
  }

  const t = view.table;
  if (t.usage !== undefined && t.count !== undefined && t.max !== undefined && t.usage >= PRESSURE_WARNING) {
    findings.push(finding({
      code: 'TABLE_PRESSURE',
      severity: t.usage >= PRESSURE_CRITICAL ? 'critical' : 'warning',
      subject: { kind: 'conntrack-table' },
      message: `conntrack table ${pct(t.usage)} full (${t.count} of ${t.max})`,
      evidence: { count: t.count, max: t.max, usage: Number(t.usage.toFixed(4)), ...(t.udpTimeout !== undefined ? { nf_conntrack_udp_timeout: t.udpTimeout } : {}) },
      remedy:
        `raise net.netfilter.nf_conntrack_max (now ${t.max}) and nf_conntrack_buckets with it; ` +
        `shorten net.netfilter.nf_conntrack_udp_timeout${t.udpTimeout !== undefined ? ` (now ${t.udpTimeout} s)` : ''}; NodeLocalDNS keeps DNS out of the table`,
    }));
  }

  if (view.kernelLog.tableFullLines > 0) {
    const age = view.kernelLog.ageSeconds;
    const fresh = (watch?.newTableFullLines ?? 0) > 0;
    const old = !fresh && age !== undefined && age > TABLE_FULL_RECENT_SECONDS;
    // Critical only when the line is known to be recent: new during the watch, or dated within the hour.
    const recent = fresh || (age !== undefined && age <= TABLE_FULL_RECENT_SECONDS);
    findings.push(finding({
      code: 'TABLE_FULL',
      severity: recent && !old ? 'critical' : 'warning',
      subject: { kind: 'conntrack-table' },
      message:
        `the kernel logged "table full, dropping packet" ${view.kernelLog.tableFullLines} time${view.kernelLog.tableFullLines === 1 ? '' : 's'}` +
        (view.kernelLog.suppressed > 0 ? ` (+${view.kernelLog.suppressed} suppressed by the rate limiter)` : '') +
        (view.kernelLog.netns.length > 0 ? ` in netns ${view.kernelLog.netns.join(', ')}` : '') +
        (age !== undefined
          ? `, the last ${formatAge(age)} ago${view.kernelLog.lastDate !== undefined ? ` (${view.kernelLog.lastDate})` : ''}`
          : '; its age is unknown (the lines carry no date: pipe `journalctl -k -o short-iso` or `dmesg -T`, or use --live)') +
        (fresh ? `; ${watch?.newTableFullLines} new ${watch?.seconds != null ? `during the ${watch.seconds} s watch` : 'between the two snapshots'}` : ''),
      evidence: {
        lines: view.kernelLog.tableFullLines,
        suppressed: view.kernelLog.suppressed,
        lastSecondsAgo: age !== undefined ? Math.round(age) : null,
        lastDate: view.kernelLog.lastDate ?? null,
        last: view.kernelLog.tableFull[view.kernelLog.tableFull.length - 1] ?? null,
      },
      remedy: TABLE_FULL,
    }));
  }

  const clash = c.clash_resolve ?? 0;
  if (clash > 0) {
    const d = watch?.deltas.clash_resolve;
    findings.push(finding({
      code: 'CLASH_RESOLVE',
      severity: 'info',
      subject: { kind: 'counter', name: 'clash_resolve' },
      message: `the kernel resolved ${clash} insert races (clash_resolve, Linux 5.10+) that older kernels would have dropped`,
      evidence: { clash_resolve: clash, ...watchEvidence('clash_resolve') },
      remedy: d !== undefined && d.delta > 0 ? 'races are happening now; they cost no packets on this kernel' : '',
    }));
  }
  return findings;
}
