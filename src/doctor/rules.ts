/**
 * From probes to causes: one ordered table of rules. Each rule names the nearest cause its evidence supports and no
 * further, rests on a minimum count and a test of chance (./evidence.ts), and says when its pattern shows but is not
 * decisive: then doctor probes more in the modes that decide, and, with the budget spent, says inconclusive. The
 * table's order is the verdict's order; rules that come from resolv or conntrack only hold their place in it.
 * Pure: the probes' numbers in, findings out.
 */
import type { Finding, FindingCode } from '../findings.js';
import { sumRecords } from '../stats/index.js';
import { ALPHA, lossy, show, stalls } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { errorRemedy } from '../remedies.js';
import { LOSS_CAUSES, decisive, lookupsOf } from './rule-kit.js';
import type { Attribution, AttributionInput, Evidence, Pending, Rule } from './rule-kit.js';
import { NEAR_RULES } from './rules-near.js';
import { PATH_RULES } from './rules-path.js';
import { finding } from '../findings.js';

export type { Attribution, AttributionInput, Evidence, MoreProbes, Rule } from './rule-kit.js';

/** The rules, in the verdict's order: nearer and more specific causes first. */
export const RULES: readonly Rule[] = [
  ...NEAR_RULES,
  ...PATH_RULES,
  { codes: ['INSERT_FAILED', 'DROP', 'EARLY_DROP', 'TABLE_PRESSURE'], from: 'conntrack' },
  // INCONCLUSIVE and STALLS_UNEXPLAINED are built by attribute() from what the rules above left pending or unnamed.
  { codes: ['INCONCLUSIVE'], from: 'doctor' },
  { codes: ['STALLS_UNEXPLAINED'], from: 'doctor' },
  {
    codes: ['PROBE_ERRORS'],
    from: 'doctor',
    decide: ({ a, ns, named }) => {
      const erred = a.probes.filter((p) => p.errors > 0);
      if (erred.length === 0 || named.has('NAMESERVER_UNREACHABLE')) return undefined;
      const codes = sumRecords(erred.map((p) => p.errorCodes));
      return {
        findings: [finding({
          code: 'PROBE_ERRORS', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `queries failed at once with an error instead of an answer or a timeout: ${erred.map((p) => `${p.label}: ${Object.entries(p.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ')}`,
          evidence: { probes: erred.length, errors: erred.reduce((n, p) => n + p.errors, 0), codes: Object.keys(codes).sort().join(' ') },
          remedy: errorRemedy(codes),
        })],
      };
    },
  },
  {
    codes: ['NDOTS_COST'],
    from: 'doctor',
    decide: ({ a, par, dot }) => {
      // The cost of the search list is its extra queries and the time the answered ones take (the median), never the
      // stalls: a timeout is not the search list's doing, and lowering ndots would not remove it.
      if (a.ndots === undefined || par === undefined || dot === undefined || par.medianMs === null || dot.medianMs === null || par.queriesPerUnit <= dot.queriesPerUnit) return undefined;
      const bare = a.name.replace(/\.$/, '');
      // Each name of the search list costs an A and an AAAA query (NXDOMAIN): what they add, per name.
      const searchNames = Math.max(1, Math.round((par.queriesPerUnit - dot.queriesPerUnit) / 2));
      const perName = Math.max(0, par.medianMs - dot.medianMs) / searchNames;
      return {
        findings: [finding({
          code: 'NDOTS_COST', severity: 'warning', subject: { kind: 'name', name: a.name },
          message:
            `${a.name} costs ${par.queriesPerUnit.toFixed(1)} queries and ${par.medianMs.toFixed(1)} ms (median) per lookup through the search list; ` +
            `${dot.queriesPerUnit.toFixed(1)} queries and ${dot.medianMs.toFixed(1)} ms as "${bare}.": about ${perName.toFixed(1)} ms for each of ${searchNames} search-list name(s) answered NXDOMAIN`,
          evidence: { queriesPerLookup: Number(par.queriesPerUnit.toFixed(2)), queriesWithTrailingDot: Number(dot.queriesPerUnit.toFixed(2)), medianMs: par.medianMs, medianMsWithTrailingDot: dot.medianMs, searchNames, msPerSearchName: Number(perName.toFixed(2)) },
          remedy: a.ndots.remedy,
        })],
      };
    },
  },
];

/** Every code in the table, in the verdict's order. */
export const VERDICT_ORDER: readonly FindingCode[] = RULES.flatMap((r) => r.codes);

export function attribute(a: AttributionInput): Attribution {
  const par = lookupsOf(a, 'parallel');
  const e: Evidence = {
    a,
    ns: a.probes.find((p) => p.kind === 'raw')?.target ?? par?.target ?? 'the nameserver',
    ...optional('par', par),
    ...optional('reopen', lookupsOf(a, 'single-request-reopen')),
    ...optional('tcp', lookupsOf(a, 'tcp')),
    ...optional('dot', lookupsOf(a, 'trailing-dot')),
    ...optional('inCluster', lookupsOf(a, 'in-cluster')),
    raw: a.probes.filter((p) => p.kind === 'raw' && !p.paced),
    paced: a.probes.filter((p) => p.kind === 'raw' && p.paced),
    endpoints: a.probes.filter((p) => p.kind === 'endpoint' && (p.answered > 0 || p.stalled > 0)),
    // Only direct lookups that got answers or stalled are evidence: one whose every lookup failed at once tells nothing.
    direct: a.probes.filter((p) => p.kind === 'lookups' && p.mode === 'parallel-direct' && (p.answered > 0 || p.stalled > 0)),
    named: new Set(),
    pending: new Set(),
  };
  const findings: Finding[] = [];
  const pending: Pending[] = [];
  for (const rule of RULES) {
    if (rule.from !== 'doctor') continue;
    if (rule.codes[0] === 'INCONCLUSIVE') {
      if (!a.final) continue;
      for (const p of pending) {
        findings.push(finding({
          code: 'INCONCLUSIVE', severity: 'warning', subject: { kind: 'nameserver', address: e.ns },
          message: `a pattern shows but is not decisive (${ALPHA} is the bar for chance): ${p.candidates}; what would tell them apart: ${p.tellApart}`,
          evidence: { candidates: p.candidates, tellApart: p.tellApart },
          remedy: 'rerun with a larger --budget, so doctor can probe more in the modes that decide',
        }));
        e.named.add('INCONCLUSIVE');
      }
      continue;
    }
    if (rule.codes[0] === 'STALLS_UNEXPLAINED') {
      // A pattern still pending accounts for its stalls: more probes, or INCONCLUSIVE, say what they are.
      const f = pending.length > 0 ? undefined : unexplained(e);
      if (f) findings.push(f);
      continue;
    }
    const d = rule.decide?.(e);
    if (d?.findings) {
      findings.push(...d.findings);
      for (const f of d.findings) e.named.add(f.code);
    }
    if (d?.pending) {
      pending.push(d.pending);
      e.pending.add(rule.codes[0]!);
    }
  }
  const more = a.final ? [] : [...new Set(pending.flatMap((p) => p.more))];
  return { findings, more };
}

function optional<K extends string>(k: K, v: ProbeSummary | undefined): Partial<Record<K, ProbeSummary>> {
  return v === undefined ? {} : ({ [k]: v } as Record<K, ProbeSummary>);
}

/** Stalls measured that no rule explains, beyond chance: said as such, never "every probe was answered in time". */
function unexplained(e: Evidence): Finding | undefined {
  if ([...e.named].some((c) => LOSS_CAUSES.has(c))) return undefined;
  const stalled = e.a.probes.filter((p) => decisive(lossy(p)));
  if (stalled.length === 0) return undefined;
  const missing = (['parallel', 'single-request-reopen', 'tcp'] as const).filter((m) => lookupsOf(e.a, m) === undefined);
  return finding({
    code: 'STALLS_UNEXPLAINED', severity: 'warning', subject: { kind: 'nameserver', address: e.ns },
    message:
      `stalls beyond chance were measured (${stalled.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')}) but fit none of the patterns that name a cause` +
      (missing.length > 0 ? `; not probed: lookups ${missing.join(', ')}` : ''),
    evidence: { stalledProbes: stalled.length, stalled: stalled.reduce((n, p) => n + p.stalled, 0), notProbed: missing.join(' ') },
    remedy: missing.length > 0
      ? 'rerun with a larger --budget so that every probe runs'
      : '`k8sdiag dnsbench` against the nameserver and each endpoint measures each alone; `k8sdiag conntrack --watch 30` on the node while it runs',
  });
}
