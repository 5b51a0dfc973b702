/** doctor for a human: the verdict first, then the evidence (findings), then the probes and the steps. */
import type { DoctorResult } from '../commands/doctor.js';
import { renderFindings } from './findings.js';
import type { Style } from './style.js';
import { num, table } from './style.js';
import { percent } from '../stats/index.js';
import { terminalSafe } from './terminal.js';

export function renderDoctor(style: Style, r: DoctorResult): string {
  const { c } = style;
  const out: string[] = [];
  const bad = r.findings.some((f) => f.severity !== 'info') || r.couldNotRun !== null;
  for (const line of r.verdict) out.push(bad ? c.bold.red(line) : c.bold.green(line));
  out.push('');
  out.push(renderFindings(style, r.findings).trimEnd());
  out.push('');
  const t = table(style, ['probe', 'target', 'units', 'stalled', 'failed', 'late', 'over 5 s', 'median ms', 'queries/unit'], { align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] });
  for (const p of r.probes) {
    t.push([p.label, p.target, num(p.units), p.stalled ? c.red(num(p.stalled)) : '0', p.failed ? c.red(num(p.failed)) : '0', num(p.late), num(p.over5s), p.medianMs === null ? 'n/a' : p.medianMs.toFixed(1), p.queriesPerUnit.toFixed(1)]);
  }
  out.push(t.toString());
  if (r.path.endpoints.length > 0) {
    out.push(`path: ${r.path.service ?? 'DNS Service'} ${r.path.clusterIP ?? ''} -> ${r.path.endpoints.map((e) => `${e.address}${e.share !== null ? ` ${percent(e.share)}` : ''}`).join(', ')} (from ${r.path.found})`);
  }
  if (r.conntrack) {
    const rising = Object.entries(r.conntrack.deltas).filter(([k, d]) => d.delta > 0 && ['insert_failed', 'drop', 'early_drop', 'clash_resolve'].includes(k));
    // The counters are this namespace's: in a pod's, its own, not the node's where its Service traffic is NATed.
    const whose = r.context.view === 'node' ? '' : r.context.view === 'pod' ? " (this pod's namespace: not the node's, where its Service traffic is NATed)" : ' (this namespace)';
    out.push(`conntrack during the probes${whose}: ${rising.length === 0 ? 'insert_failed, drop, early_drop unchanged' : rising.map(([k, d]) => `${k} +${d.delta}`).join(', ')}` +
      (r.conntrack.table?.usage !== undefined ? `; table ${percent(r.conntrack.table.usage)} full` : ''));
  }
  const w = r.watched;
  if (w !== null) {
    const eps = Object.entries(w.byEndpoint).sort((a, b) => b[1].unanswered + b[1].answeredAfterResend - (a[1].unanswered + a[1].answeredAfterResend)).slice(0, 5);
    out.push(`the pods' DNS (${w.mode === 'before' ? `${w.seconds} s before the probes` : `${w.seconds} s during the probes`}): ${num(w.queries)} queries of ${num(w.clients)} clients, ` +
      `${num(w.unanswered)} unanswered, ${num(w.answeredAfterResend)} answered only after a resend, race signature ${num(w.raceSignature)} of ${num(w.pairs)} pairs` +
      (eps.length > 0 ? `; by endpoint: ${eps.map(([e, g]) => `${terminalSafe(e)} ${num(g.unanswered + g.answeredAfterResend)}/${num(g.queries)}`).join(', ')}` : ''));
  }
  out.push(c.dim(`plan: ${r.plan}`));
  out.push(c.dim(`sent: ${num(r.sent.queries)} queries (${num(r.sent.lookups)} lookups) in ${r.sent.probes} probe runs over ${r.sent.rounds} round(s)${r.interrupted ? ', interrupted' : ''}`));
  for (const s of r.steps) if (!s.ok) out.push(c.yellow(`could not: ${s.step}: ${s.note}`));
  out.push(c.dim(`context: ${r.context.view === 'unknown' ? 'namespace unknown' : `a ${r.context.view}'s network namespace`}, kernel ${r.context.kernel.release} (clash fixes ${r.context.kernel.clashFixes.join(', ') || 'none'}), libc ${r.context.workloadLibc.libc}${r.context.workloadLibc.version ? ` ${r.context.workloadLibc.version}` : ''}${r.context.workloadLibc.libc !== 'unknown' ? ` (${r.context.workloadLibc.from})` : ''}, resolv.conf ${r.context.resolvFile}, NodeLocalDNS ${r.context.nodeLocalDNS ? 'yes' : 'no'}`));
  return `${out.join('\n')}\n`;
}
