/**
 * Results in the Prometheus text exposition format (version 0.0.4), for
 * node-exporter's textfile collector and for node-problem-detector: base units
 * (seconds, ratios), `_total` counters, HELP and TYPE lines, labels for node,
 * nameserver, rcode and code, latency as histograms with cumulative `le`
 * buckets (the exact counts between the latency marks, so the 1 s and 5 s
 * buckets hold exactly what they say), and `k8sdiag_finding` counting the findings per code and severity.
 */
import type { ConntrackResult } from '../commands/conntrack.js';
import type { DnsbenchResult } from '../commands/dnsbench.js';
import type { DoctorResult } from '../commands/doctor.js';
import type { SvcResult } from '../commands/svc.js';
import type { WatchResult } from '../commands/watch.js';
import type { Finding } from '../findings.js';
import type { ResultHeader } from '../header.js';
import { failures } from '../capture/groups.js';
import { Histogram } from '../stats/index.js';
import type { HistogramSnapshot } from '../stats/index.js';

type Labels = Record<string, string | number>;

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(String(v))}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
}

/** Builds one exposition: each family's HELP and TYPE once, then its samples. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly declared = new Set<string>();

  constructor(private readonly base: Labels) {}

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    if (this.declared.has(name)) return this;
    this.declared.add(name);
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels: Labels = {}): this {
    this.lines.push(`${name}${labelText({ ...this.base, ...labels })} ${num(value)}`);
    return this;
  }

  /**
   * A latency histogram in seconds from a microsecond snapshot: exact cumulative buckets at its marks. A bucket counts
   * the values at or below its `le`, as Prometheus defines it. A snapshot that does not say how many values lie
   * exactly on a mark (an older version's, through merge) gets its buckets at 1 us below each mark instead, which are
   * as exact for whole microseconds.
   */
  histogram(name: string, help: string, snap: HistogramSnapshot, labels: Labels = {}): this {
    this.family(name, 'histogram', help);
    const h = Histogram.fromJSON(snap);
    const atOrBelow = h.atOrBelowMarks();
    if (atOrBelow !== undefined) {
      for (const [mark, count] of atOrBelow) this.sample(`${name}_bucket`, count, { ...labels, le: num(mark / 1e6) });
    } else {
      let below = 0;
      for (const [, high, count] of h.markRows()) {
        below += count;
        if (Number.isFinite(high)) this.sample(`${name}_bucket`, below, { ...labels, le: num((high - 1) / 1e6) });
      }
    }
    this.sample(`${name}_bucket`, snap.count, { ...labels, le: '+Inf' });
    this.sample(`${name}_sum`, snap.sum / 1e6, labels);
    this.sample(`${name}_count`, snap.count, labels);
    return this;
  }

  findings(findings: readonly Finding[], command: string): this {
    // One series per label set, as Prometheus requires: findings of one code and severity (two Services' LOCAL_POLICY,
    // two endpoints' ENDPOINT_LOSS) are counted in one sample, not written twice.
    this.family('k8sdiag_finding', 'gauge', 'Findings of the run, counted per code and severity (see the findings catalogue).');
    const counts = new Map<string, { code: string; severity: string; n: number }>();
    for (const f of findings) {
      const key = `${f.code}\0${f.severity}`;
      const c = counts.get(key) ?? { code: f.code, severity: f.severity, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    for (const c of counts.values()) this.sample('k8sdiag_finding', c.n, { command, code: c.code, severity: c.severity });
    return this;
  }

  info(h: ResultHeader, command: string): this {
    this.family('k8sdiag_run_info', 'gauge', 'The run: schema, tool version and start time as labels.');
    this.sample('k8sdiag_run_info', 1, { command, schema: h.schema, tool: h.tool, started_at: h.startedAt });
    this.family('k8sdiag_run_duration_seconds', 'gauge', 'How long the run took.');
    this.sample('k8sdiag_run_duration_seconds', h.durationMs / 1000, { command });
    return this;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export function promDnsbench(r: DnsbenchResult): string {
  const e = new Exposition({ node: r.host });
  const ns = { nameserver: r.servers.join(',') };
  e.info(r, 'dnsbench');
  e.family('k8sdiag_dns_queries_sent_total', 'counter', 'DNS queries sent.').sample('k8sdiag_dns_queries_sent_total', r.sent, ns);
  e.family('k8sdiag_dns_answers_total', 'counter', 'Answers, by rcode.');
  for (const [rcode, n] of Object.entries(r.rcodes)) e.sample('k8sdiag_dns_answers_total', n, { ...ns, rcode });
  e.family('k8sdiag_dns_timeouts_total', 'counter', 'Queries without a reply within the timeout.').sample('k8sdiag_dns_timeouts_total', r.timeouts, ns);
  e.family('k8sdiag_dns_errors_total', 'counter', 'Queries that ended in an error, by code.');
  for (const [code, n] of Object.entries(r.errors)) e.sample('k8sdiag_dns_errors_total', n, { ...ns, code });
  e.family('k8sdiag_dns_local_drops_total', 'counter', 'Replies this machine dropped before k8sdiag read them.').sample('k8sdiag_dns_local_drops_total', r.localDrops.ownSockets ?? 0, ns);
  e.histogram('k8sdiag_dns_query_duration_seconds', 'Latency of answered queries.', r.histogram, ns);
  if (r.resolver !== null && r.lookups !== null) {
    e.family('k8sdiag_dns_lookups_total', 'counter', 'Lookups done as the libc does them, by outcome.');
    for (const [outcome, n] of Object.entries(r.resolver.outcomes)) e.sample('k8sdiag_dns_lookups_total', n, { ...ns, outcome, libc: r.resolver.libc });
    e.histogram('k8sdiag_dns_lookup_duration_seconds', 'Latency of lookups: what the application waits.', r.resolver.histogram, ns);
  }
  return e.findings(r.findings, 'dnsbench').toString();
}

export function promConntrack(r: ConntrackResult): string {
  const e = new Exposition({ node: r.host });
  e.info(r, 'conntrack');
  // One series per CPU where the input has them: each CPU's counter is 32-bit and wraps on its own, which Prometheus
  // reads as that series' reset; a sum over CPUs would fall by 2^32 and read as a spike of the whole total.
  for (const [k, v] of Object.entries(r.counters)) {
    const name = `k8sdiag_conntrack_${k}_total`;
    const rows = r.perCpu.filter((row) => row[k] !== undefined);
    if (rows.length === r.perCpu.length && rows.length > 0) {
      e.family(name, 'counter', `conntrack's ${k} counter, per CPU, since boot (sum by (node) for the node).`);
      r.perCpu.forEach((row, cpu) => e.sample(name, row[k]!, { cpu: String(cpu) }));
    } else e.family(name, 'counter', `conntrack's ${k} counter, summed over CPUs, since boot.`).sample(name, v);
  }
  const t = r.table;
  if (t.count !== undefined) e.family('k8sdiag_conntrack_entries', 'gauge', 'Entries in the conntrack table.').sample('k8sdiag_conntrack_entries', t.count);
  if (t.max !== undefined) e.family('k8sdiag_conntrack_entries_max', 'gauge', 'nf_conntrack_max.').sample('k8sdiag_conntrack_entries_max', t.max);
  if (t.usage !== undefined) e.family('k8sdiag_conntrack_usage_ratio', 'gauge', 'Table usage, count / max.').sample('k8sdiag_conntrack_usage_ratio', t.usage);
  e.family('k8sdiag_conntrack_table_full_log_lines', 'gauge', 'Kernel log lines saying the conntrack table was full (table full, dropping packet).').sample('k8sdiag_conntrack_table_full_log_lines', r.kernelLog.tableFullLines);
  return e.findings(r.findings, 'conntrack').toString();
}

export function promSvc(r: SvcResult): string {
  const e = new Exposition({ node: r.host });
  e.info(r, 'svc');
  e.family('k8sdiag_svc_service_ports', 'gauge', 'Service ports in kube-proxy\'s rules.').sample('k8sdiag_svc_service_ports', r.services.length);
  e.family('k8sdiag_svc_endpoint_share_ratio', 'gauge', 'Share of new connections each endpoint gets, by path.');
  for (const s of r.services) {
    // A split that depends on load (IPVS least-connection schedulers) has no share to export.
    if (s.cluster?.shares?.known !== false) for (const ep of s.endpoints) e.sample('k8sdiag_svc_endpoint_share_ratio', ep.share, { service: s.id, endpoint: ep.address, path: 'cluster' });
    for (const ep of s.externalEndpoints ?? []) e.sample('k8sdiag_svc_endpoint_share_ratio', ep.share, { service: s.id, endpoint: ep.address, path: 'external' });
  }
  return e.findings(r.findings, 'svc').toString();
}

export function promDoctor(r: DoctorResult): string {
  const e = new Exposition({ node: r.host });
  e.info(r, 'doctor');
  e.family('k8sdiag_doctor_probe_units', 'gauge', 'Queries or lookups each probe made.');
  e.family('k8sdiag_doctor_probe_stalled', 'gauge', 'Lookups that took the resolver timeout, or queries lost, per probe.');
  e.family('k8sdiag_doctor_probe_over_5s', 'gauge', 'Lookups or queries of 5 s or more, per probe.');
  for (const p of r.probes) {
    const l = { probe: p.mode ?? `${p.kind}${p.qtype !== null ? `-${p.qtype}` : ''}${p.paced ? '-paced' : ''}`, target: p.target };
    e.sample('k8sdiag_doctor_probe_units', p.units, l);
    e.sample('k8sdiag_doctor_probe_stalled', p.stalled, l);
    e.sample('k8sdiag_doctor_probe_over_5s', p.over5s, l);
  }
  if (r.watched !== null) {
    e.family('k8sdiag_doctor_watched_queries', 'gauge', "The real pods' DNS queries seen while doctor watched, per endpoint.");
    for (const [endpoint, g] of Object.entries(r.watched.byEndpoint)) e.sample('k8sdiag_doctor_watched_queries', g.queries, { endpoint });
    e.family('k8sdiag_doctor_watched_stalled', 'gauge', "The real pods' queries that waited the timeout (unanswered, or answered only after a resend), per endpoint.");
    for (const [endpoint, g] of Object.entries(r.watched.byEndpoint)) e.sample('k8sdiag_doctor_watched_stalled', g.unanswered + g.answeredAfterResend, { endpoint });
  }
  return e.findings(r.findings, 'doctor').toString();
}

/**
 * watch: per endpoint (where each query was DNATed to, or the server asked) and in total, what the real pods' queries
 * came to during the capture; per client only in JSON (a node's pods would make one series each).
 */
export function promWatch(r: WatchResult): string {
  const e = new Exposition({ node: r.host });
  e.info(r, 'watch');
  const per = (name: string, help: string, pick: (g: WatchResult['total']) => number): void => {
    e.family(name, 'gauge', help);
    for (const [endpoint, g] of Object.entries(r.byEndpoint)) e.sample(name, pick(g), { endpoint });
  };
  per('k8sdiag_watch_queries', 'Queries seen during the capture, per endpoint.', (g) => g.queries);
  per('k8sdiag_watch_answered', 'Queries answered, per endpoint.', (g) => g.answered);
  per('k8sdiag_watch_unanswered', 'Queries never answered within the timeout, per endpoint.', (g) => g.unanswered);
  per('k8sdiag_watch_answered_after_resend', 'Queries answered only after the client sent them again (it waited its timeout), per endpoint.', (g) => g.answeredAfterResend);
  per('k8sdiag_watch_late_answers', 'Answers that came after the client had given up, per endpoint.', (g) => g.late);
  per('k8sdiag_watch_failures', 'Answers SERVFAIL or REFUSED, per endpoint.', (g) => failures(g.rcodes));
  per('k8sdiag_watch_search_queries', 'Queries answered NXDOMAIN for a search-list name of the name the client asked next, per endpoint.', (g) => g.searchQueries);
  per('k8sdiag_watch_truncated_not_retried', 'Truncated answers no TCP query of the same client and name followed within the timeout, per endpoint.', (g) => g.truncatedNoTcp);
  per('k8sdiag_watch_truncated_tcp_failed', 'Truncated answers after which the client opened a TCP connection to a DNS port that never carried the query, per endpoint.', (g) => g.truncatedTcpFailed);
  per('k8sdiag_watch_tcp_unanswered', 'Queries over TCP never answered within the timeout, per endpoint.', (g) => g.tcpUnanswered);
  per('k8sdiag_watch_race_signature', 'Queries of an A/AAAA pair from one port that went unanswered while the other was answered, per endpoint.', (g) => g.raceSignature);
  e.histogram('k8sdiag_watch_query_duration_seconds', 'Latency of answered queries, from the first send: what the application waited.', r.histogram);
  e.family('k8sdiag_watch_capture_packets', 'gauge', 'Packets read from the capture.').sample('k8sdiag_watch_capture_packets', r.capture.packets);
  e.family('k8sdiag_watch_capture_dropped', 'gauge', 'Packets tcpdump reports it lost, by where.');
  if (r.capture.kernelDrops !== null) e.sample('k8sdiag_watch_capture_dropped', r.capture.kernelDrops, { by: 'kernel' });
  if (r.capture.ifDrops !== null) e.sample('k8sdiag_watch_capture_dropped', r.capture.ifDrops, { by: 'interface' });
  return e.findings(r.findings, 'watch').toString();
}
