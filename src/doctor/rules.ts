/**
 * From probes to causes: one ordered table of rules. Each rule names the nearest cause its evidence supports and no
 * further, rests on a minimum count and a test of chance (./evidence.ts), and says when its pattern shows but is not
 * decisive: then doctor probes more in the modes that decide, and, with the budget spent, says inconclusive. The
 * table's order is the verdict's order; rules that come from resolv or conntrack only hold their place in it.
 * Pure: the probes' numbers in, findings out.
 */
import type { Finding, FindingCode } from '../findings.js';
import { sumRecords } from '../stats/index.js';
import { ALPHA, lossy, pool, show, stalls, worseThan } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { errorRemedy } from '../remedies.js';
import { decisive, failures, lookupsOf, lossNamed, suggestive, udpLoss } from './rule-kit.js';
import type { Attribution, AttributionInput, Evidence, Pending, Rule } from './rule-kit.js';
import { NEAR_RULES } from './rules-near.js';
import { PATH_RULES } from './rules-path.js';
import { COUNTER_RULES } from './rules-counters.js';
import { finding } from '../findings.js';

export type { Attribution, AttributionInput, Evidence, MoreProbes, Rule } from './rule-kit.js';

/**
 * The search list costs the workload measurably from this many extra milliseconds per lookup (median): a DNS server
 * that answers in under a millisecond costs a few through three search-list names; one that takes 20 ms a query, 60.
 */
export const NDOTS_COST_MS = 50;

/** The rules, in the verdict's order: nearer and more specific causes first. */
export const RULES: readonly Rule[] = [
  ...NEAR_RULES,
  ...PATH_RULES,
  ...COUNTER_RULES,
  { codes: ['TABLE_PRESSURE'], from: 'conntrack' },
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
      // The cost of the search list is its extra queries and the time the answered ones take (the median). It needs
      // answers to measure: lookups that all failed or went unanswered cost nothing measurable here.
      if (a.ndots === undefined || par === undefined || dot === undefined || par.answered === 0 || dot.answered === 0) return undefined;
      if (par.medianMs === null || dot.medianMs === null || par.queriesPerUnit <= dot.queriesPerUnit) return undefined;
      const bare = a.name.replace(/\.$/, '');
      // Each name of the search list costs an A and an AAAA query (NXDOMAIN): what they add, per name.
      const searchNames = Math.max(1, Math.round((par.queriesPerUnit - dot.queriesPerUnit) / 2));
      // The median is a stall's when half the lookups stalled: no time of the search list's own to measure then.
      const timed = par.over1s * 2 < par.units && dot.over1s * 2 < dot.units;
      const extra = timed ? Math.max(0, par.medianMs - dot.medianMs) : 0;
      const perName = extra / searchNames;
      // More datagrams per lookup are more to lose: through the search list lookups fail more often than with a dot.
      const fails = worseThan(failures(par), failures(dot));
      const costly = extra >= NDOTS_COST_MS || decisive(fails);
      return {
        findings: [finding({
          code: 'NDOTS_COST', severity: costly ? 'warning' : 'info', subject: { kind: 'name', name: a.name },
          message:
            `${a.name} costs ${par.queriesPerUnit.toFixed(1)} queries and ${par.medianMs.toFixed(1)} ms (median) per lookup through the search list; ` +
            `${dot.queriesPerUnit.toFixed(1)} queries and ${dot.medianMs.toFixed(1)} ms as "${bare}.": about ${perName.toFixed(1)} ms for each of ${searchNames} search-list name(s) answered NXDOMAIN` +
            (decisive(fails) ? `; and lookups through the search list fail or stall more often (${fails.said})` : '') +
            (costly ? '' : ` (under ${NDOTS_COST_MS} ms a lookup, and no more failures: a note, not a problem)`),
          evidence: {
            queriesPerLookup: Number(par.queriesPerUnit.toFixed(2)), queriesWithTrailingDot: Number(dot.queriesPerUnit.toFixed(2)), medianMs: par.medianMs, medianMsWithTrailingDot: dot.medianMs, searchNames, msPerSearchName: Number(perName.toFixed(2)),
            extraMsPerLookup: Number(extra.toFixed(2)), failedThroughSearch: failures(par).n, failedWithTrailingDot: failures(dot).n,
          },
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
    ns: a.probes.find((p) => p.kind === 'raw')?.target ?? par?.target ?? a.nameservers?.[0] ?? 'the nameserver',
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
      // Loss beyond chance that no rule placed is said as such (STALLS_UNEXPLAINED), whatever is still pending; a
      // pattern still pending on the last round is INCONCLUSIVE, a warning when nothing else names a cause and a note
      // beside one that does.
      const f = unexplained(e, pending);
      // Loss that shows but is not decisive, and nothing else pending to probe more for: the cheap raw probes decide it.
      // On the last round it is not said: loss that more probes did not make decisive is what chance gives (the
      // verdict counts what went unanswered).
      if (!a.final && f === undefined && pending.length === 0 && !lossNamed(e.named)) {
        const pooled = udpLoss(e);
        if (suggestive(pooled)) pending.push({ candidates: 'loss beyond the background, or chance', tellApart: `more queries (now ${pooled.said})`, more: ['raw', 'endpoints'] });
      }
      const causeNamed = lossNamed(e.named) || f !== undefined;
      if (a.final) {
        for (const p of pending) {
          findings.push(finding({
            code: 'INCONCLUSIVE', severity: causeNamed ? 'info' : 'warning', subject: { kind: 'nameserver', address: e.ns },
            message: `a pattern shows but is not decisive (${ALPHA} is the bar for chance): ${p.candidates}; what would tell them apart: ${p.tellApart}`,
            evidence: { candidates: p.candidates, tellApart: p.tellApart },
            remedy: 'rerun with a larger --budget, so doctor can probe more in the modes that decide',
          }));
          if (!causeNamed) e.named.add('INCONCLUSIVE');
        }
      }
      if (f) {
        findings.push(f);
        e.named.add('STALLS_UNEXPLAINED');
      }
      continue;
    }
    if (rule.codes[0] === 'STALLS_UNEXPLAINED') continue; // said above, beside INCONCLUSIVE
    const d = rule.decide?.(e);
    if (d?.findings) {
      findings.push(...d.findings);
      // A note (info) is said, never a cause that makes another rule stand aside.
      for (const f of d.findings) if (f.severity !== 'info') e.named.add(f.code);
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

/**
 * Loss beyond chance that no rule explains or places: every UDP probe pooled against the background of the datagrams
 * each carried, or any one probe alone (TCP's included). Said as loss, with what was ruled out and what is still open;
 * never "every probe was answered in time".
 */
function unexplained(e: Evidence, pending: readonly Pending[]): Finding | undefined {
  if (lossNamed(e.named) || pending.some((p) => p.decided === true)) return undefined;
  const pooled = udpLoss(e);
  const stalled = e.a.probes.filter((p) => decisive(lossy(p)));
  if (!decisive(pooled) && stalled.length === 0) return undefined;
  const missing = (['parallel', 'single-request-reopen', 'tcp'] as const).filter((m) => lookupsOf(e.a, m) === undefined);
  const lost = pool(e.a.probes.filter((p) => p.mode !== 'tcp').map(stalls));
  return finding({
    code: 'STALLS_UNEXPLAINED', severity: 'warning', subject: { kind: 'nameserver', address: e.ns },
    message:
      `queries are lost beyond chance (every UDP probe together: ${pooled.said}${stalled.length > 0 ? `; ${stalled.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')}` : ''}), ` +
      (pending.length > 0
        ? `and no mechanism is decided: patterns short of decisive: ${pending.map((p) => p.candidates).join('; ')}`
        : 'with no mechanism that the probes show: not one record type, one endpoint, the query rate, the upstream, nor two queries sent at once, and not placed on the path or at the server') +
      (missing.length > 0 ? `; not probed: lookups ${missing.join(', ')}` : ''),
    evidence: { stalledProbes: stalled.length, stalled: lost.n, notProbed: missing.join(' ') },
    remedy: missing.length > 0
      ? 'rerun with a larger --budget so that every probe runs'
      : '`k8sdiag dnsbench` against the nameserver and each endpoint measures each alone; `k8sdiag conntrack --watch 30` on the node while it runs',
  });
}
