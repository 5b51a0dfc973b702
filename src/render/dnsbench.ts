import type { SlowEvent } from '../engine/engine.js';
import type { DnsbenchResult } from '../commands/dnsbench.js';
import { recordTotal } from '../stats/index.js';
import type { PercentileSummary } from '../stats/index.js';
import { renderFindings } from './findings.js';
import { renderHistogram } from './histogram.js';
import type { Style } from './style.js';
import { num, table } from './style.js';

export function slowLine(e: SlowEvent): string {
  if (e.kind === 'lookup') return `${e.time} SLOW LOOKUP ${e.name} via ${e.server} ${e.rcode} ${e.latencyMs.toFixed(1)} ms`;
  return `${e.time} SLOW ${e.name} ${e.type} ${e.server} sport=${e.sourcePort} ${e.rcode} ${e.latencyMs.toFixed(1)} ms`;
}

const fmt = (x: number): string => x.toFixed(3);

function latencyRow(label: string, l: PercentileSummary | null): string[] {
  if (l === null) return [label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
  return [label, fmt(l.min), fmt(l.mean), fmt(l.p50), fmt(l.p90), fmt(l.p99), fmt(l.p999), fmt(l.max)];
}

export function renderDnsbench(style: Style, r: DnsbenchResult): string {
  const { c } = style;
  const out: string[] = [];
  const errTotal = recordTotal(r.errors);
  out.push(c.bold(`dnsbench ${r.mode === 'lookups' ? 'lookups' : 'queries'} -> ${r.servers.join(', ')}`) +
    ` (${r.concurrency} in flight${r.qpsLimit !== null ? `, ${r.qpsLimit} qps limit` : ''}, timeout ${r.timeoutMs / 1000} s, slow > ${r.slowMs / 1000} s, ` +
    `${r.sourcePorts} source port${r.sourcePorts === 1 ? '' : 's'})` +
    (r.interrupted ? c.yellow('  [interrupted]') : ''));
  const t = table(style, ['sent', 'answered', 'timeouts', 'slow', 'errors', 'late', 'bogus', 'qps', 'duration'], { align: Array(9).fill('right') });
  t.push([num(r.sent), num(r.answered), r.timeouts ? c.red(num(r.timeouts)) : '0', r.slow ? c.yellow(num(r.slow)) : '0', errTotal ? c.red(num(errTotal)) : '0', num(r.late),
    num(r.wrongId + r.wrongQuestion + r.malformed), num(Math.round(r.qps)), `${(r.durationMs / 1000).toFixed(2)} s`]);
  out.push(t.toString());
  if (r.qpsToLastAnswer !== null && r.qpsToLastAnswer > r.qps * 1.1) {
    const waited = (r.durationMs - (r.answered * 1000) / r.qpsToLastAnswer) / 1000;
    out.push(`qps to the last answer: ${num(Math.round(r.qpsToLastAnswer))}; the run then waited ${waited.toFixed(2)} s for queries that got no answer`);
  }
  const rc = Object.entries(r.rcodes).map(([k, v]) => `${k} ${num(v)}`).join(', ');
  out.push(`rcodes: ${rc || '(none)'}${errTotal ? `   errors: ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}`);
  if (r.truncated) out.push(`truncated: ${r.truncated}${r.tcpRetries ? `, retried over TCP: ${r.tcpRetries}` : ''}`);
  const d = r.localDrops;
  if ((d.ownSockets ?? 0) > 0 || (d.namespace?.rcvbufErrors ?? 0) > 0) {
    out.push(c.red(`dropped by this machine: ${d.ownSockets !== null ? `${num(d.ownSockets)} on k8sdiag's sockets` : 'n/a on its own sockets'}` +
      `${d.namespace ? `, RcvbufErrors +${num(d.namespace.rcvbufErrors)} in this network namespace` : ''}` +
      `${d.recvBufferBytes !== null ? ` (receive buffer ${num(d.recvBufferBytes)} bytes per socket)` : ''}`));
  }
  const lt = table(style, ['latency ms', 'min', 'mean', 'p50', 'p90', 'p99', 'p99.9', 'max'], { align: ['left', ...Array(7).fill('right')] });
  lt.push(latencyRow('per query', r.latencyMs));
  if (r.mode === 'lookups') lt.push(latencyRow('per lookup', r.lookupLatencyMs));
  out.push(lt.toString());
  const rv = r.resolver;
  if (rv && r.lookups !== null && r.lookupStalls) {
    out.push(`lookups (${rv.libc}, timeout ${rv.timeoutMs / 1000} s): ${num(r.lookups)}, ${rv.lookupsPerSecond}/s; ${Object.entries(rv.outcomes).map(([k, v]) => `${k} ${num(v)}`).join(', ')}; ` +
      `over 1 s: ${r.lookupStalls.over1s}, over 5 s: ${r.lookupStalls.over5s}` +
      (rv.modeSwitches.singleRequest || rv.modeSwitches.singleRequestReopen
        ? `; glibc switched to single-request ${rv.modeSwitches.singleRequest}x, to single-request-reopen ${rv.modeSwitches.singleRequestReopen}x`
        : '') +
      (rv.cancelled ? `; ${rv.cancelled} parallel copies cancelled` : ''));
  }
  out.push('');
  out.push(renderHistogram(style, r.histogram, 'per query').trimEnd());
  if (rv) out.push(renderHistogram(style, rv.histogram, 'per lookup: what the application waits').trimEnd());
  out.push('');
  out.push(renderFindings(style, r.findings).trimEnd());
  return `${out.join('\n')}\n`;
}
