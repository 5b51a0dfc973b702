/** merge for a human: per schema, the merged figures, the nodes worst first, the findings by code with their nodes. */
import type { MergeResult } from '../commands/merge.js';
import { severityLabel, num, table } from './style.js';
import type { Style } from './style.js';
import { formatP, percent, percentOf } from '../stats/index.js';
import type { MergedWatch } from '../commands/merge-watch.js';
import type { MergedDrops } from '../commands/merge-drops.js';
import { terminalSafe } from './terminal.js';

const ms = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(3));

export function renderMerge(style: Style, r: MergeResult): string {
  const { c } = style;
  const out: string[] = [];
  for (const g of r.groups) {
    out.push(c.bold(`${g.schema}: ${g.documents} document${g.documents === 1 ? '' : 's'} from ${g.nodes.length} node${g.nodes.length === 1 ? '' : 's'}`));
    const d = g.dnsbench;
    if (d) {
      const l = d.latencyMs;
      const rate = d.qpsPerRun === null ? 'n/a' : d.qpsOf === 'sum' ? `${num(d.qps)}/s (the runs' rates summed: they ran at once)` : `${num(d.qps)}/s (median of the runs' own rates, ${num(d.qpsPerRun.min)}-${num(d.qpsPerRun.max)}: they ran apart)`;
      out.push(`  queries: sent ${num(d.sent)}, answered ${num(d.answered)}, timeouts ${num(d.timeouts)}, ${rate}; ` +
        `latency ms p50 ${ms(l?.p50)} p99 ${ms(l?.p99)} p99.9 ${ms(l?.p999)} max ${ms(l?.max)}; over 1 s ${d.stalls.over1s}, over 5 s ${d.stalls.over5s}`);
      if (d.lookups !== null) out.push(`  lookups: ${num(d.lookups)}; p50 ${ms(d.lookupLatencyMs?.p50)} ms, max ${ms(d.lookupLatencyMs?.max)} ms; over 1 s ${d.lookupStalls?.over1s ?? 0}, over 5 s ${d.lookupStalls?.over5s ?? 0}`);
      const inexact = [...new Set([...d.inexactMarksS.latency, ...d.inexactMarksS.lookups])];
      if (inexact.length > 0) out.push(c.dim(`  counts at or above ${inexact.map((s) => `${s} s`).join(', ')} are approximate: some runs had that mark (their resolver timeout) and others not`));
    }
    if (g.conntrack) {
      const k = g.conntrack.counters;
      out.push(`  conntrack (since boot, each node's latest document, summed over nodes): insert_failed ${num(k.insert_failed ?? 0)}, drop ${num(k.drop ?? 0)}, early_drop ${num(k.early_drop ?? 0)}` +
        `${g.conntrack.maxTableUsage !== null ? `; fullest table ${percent(g.conntrack.maxTableUsage)}` : ''}`);
    }
    if (g.watch) out.push(...watchLines(style, g.watch));
    if (g.drops) out.push(...dropsLines(style, g.drops));
    const t = table(style, ['node', 'documents', 'stall rate', 'lookups over 5 s', 'problems'], { align: ['left', 'right', 'right', 'right', 'left'] });
    for (const n of g.nodes.slice(0, 20)) {
      t.push([n.host, num(n.documents), n.stallRate === null ? 'n/a' : percent(n.stallRate, 2), n.lookupsOver5s === null ? 'n/a' : num(n.lookupsOver5s), n.problems.join(' ') || '-']);
    }
    out.push(t.toString());
    if (g.nodes.length > 20) out.push(c.dim(`  ... and ${g.nodes.length - 20} more nodes`));
    for (const f of g.findings) {
      out.push(`  ${severityLabel(style, f.severity)} ${f.code} on ${f.nodes.length} of ${f.of} node${f.of === 1 ? '' : 's'}: ${f.nodes.slice(0, 10).join(', ')}${f.nodes.length > 10 ? ', ...' : ''}`);
      out.push(c.dim(`      e.g. ${f.example}`));
    }
    out.push('');
  }
  return `${out.join('\n')}`;
}

/** The real pods' queries of all the nodes together, and the endpoints worst first. */
function watchLines(style: Style, w: MergedWatch): string[] {
  const { c } = style;
  const l = w.latencyMs;
  const stalled = w.unanswered + w.answeredAfterResend;
  const out = [
    `  real queries: ${num(w.queries)}, answered ${num(w.answered)}, waited the timeout ${stalled ? c.red(num(stalled)) : '0'} (${percentOf(stalled, w.queries, 2)}: ${num(w.unanswered)} unanswered, ${num(w.answeredAfterResend)} answered only after a resend); ` +
      `race signature ${num(w.raceSignature)} of ${num(w.pairs)} pairs; search-list NXDOMAIN ${num(w.searchQueries)}; latency ms p50 ${ms(l?.p50)} p99 ${ms(l?.p99)} max ${ms(l?.max)}`,
  ];
  const lost = (w.kernelDrops ?? 0) + (w.ifDrops ?? 0);
  if (lost > 0 || w.damagedCaptures > 0) out.push(c.yellow(`  the captures missed packets: ${num(w.kernelDrops ?? 0)} dropped by the kernel, ${num(w.ifDrops ?? 0)} by the interface, ${w.damagedCaptures} damaged`));
  if (w.endpoints.length > 0) {
    const t = table(style, ['endpoint', 'nodes', 'queries', 'stall rate', 'unanswered', 'after resend', 'failures', 'race', 'p (vs the others)'], { align: ['left', ...Array<'right'>(8).fill('right')] });
    for (const e of w.endpoints.slice(0, 20)) {
      t.push([terminalSafe(e.endpoint), num(e.nodes), num(e.queries), percent(e.stallRate, 2), num(e.unanswered), num(e.answeredAfterResend), num(e.failures), num(e.raceSignature), e.p === null ? '-' : formatP(e.p)]);
    }
    out.push(t.toString());
    const more = w.endpoints.length - 20 + w.endpointsNotListed;
    if (more > 0) out.push(c.dim(`  ... and ${more} more endpoints`));
  }
  return out;
}

/** The kernel's drops of all the nodes together, by place; conntrack's endpoints worst first. */
function dropsLines(style: Style, d: MergedDrops): string[] {
  const { c } = style;
  const out = [`  kernel drops: ${num(d.drops)} DNS packets on ${d.traced} traced run${d.traced === 1 ? '' : 's'}${d.leftOut > 0 ? c.yellow(`, ${num(d.leftOut)} more past the programs' caps`) : ''}`];
  if (d.byPlace.length > 0) {
    const t = table(style, ['reason', 'kernel function', 'endpoint', 'direction', 'drops', 'nodes'], { align: ['left', 'left', 'left', 'left', 'right', 'right'] });
    for (const p of d.byPlace.slice(0, 20)) t.push([p.reason, terminalSafe(p.location), terminalSafe(p.endpoint), p.direction, num(p.count), num(p.nodes)]);
    out.push(t.toString());
  }
  const f = d.flows;
  if (f !== null) {
    out.push(`  conntrack: ${num(f.flows)} DNS flows on ${d.withConntrack} run${d.withConntrack === 1 ? '' : 's'}, ${num(f.replied)} replied, ${f.unreplied > 0 ? c.red(num(f.unreplied)) : '0'} never replied (${percentOf(f.unreplied, f.flows, 2)})`);
    if (f.byEndpoint.length > 0) {
      const t = table(style, ['endpoint', 'nodes', 'flows', 'unreplied', 'share', 'p (vs the others)'], { align: ['left', 'right', 'right', 'right', 'right', 'right'] });
      for (const e of f.byEndpoint.slice(0, 20)) t.push([terminalSafe(e.endpoint), num(e.nodes), num(e.flows), num(e.unreplied), percent(e.unrepliedRate, 2), e.p === null ? '-' : formatP(e.p)]);
      out.push(t.toString());
    }
  }
  if (d.notListed > 0) out.push(c.dim(`  ... and ${d.notListed} more places and endpoints, counted, not listed`));
  return out;
}
