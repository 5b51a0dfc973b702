/**
 * The race signature (A+AAAA from one socket stall where single-request-reopen does not) and what it is: the
 * conntrack insert race, or something else that drops the second of two queries sent at once from one port
 * (PARALLEL_QUERY_LOSS), or, while the evidence cannot tell them apart, inconclusive. The verdict is the same
 * whatever the order the evidence comes in, and more evidence never weakens it:
 *
 * | evidence | verdict |
 * | --- | --- |
 * | the nameserver is NodeLocalDNS (reached untracked: NOTRACK) | not the race |
 * | lookups straight to the endpoints (no DNAT) show the signature too, kernel with the 4.19 fix | not the race |
 * | the same, kernel without the 4.19 fix (un-NATed clashes drop too) | the race |
 * | the direct lookups are clean where the Service IP's stall, insert_failed did not move here | not the race (a DNAT that is not netfilter's) |
 * | the direct lookups are clean where the Service IP's stall | the race (on a 5.6+ kernel: on the NAT's kernel, if not this one) |
 * | no direct lookups, insert_failed rose beyond its background here | the race |
 * | no direct lookups, insert_failed did not move here | not the race |
 * | no direct lookups, insert_failed not readable | inconclusive |
 */
import type { Finding, RaceEvidence } from '../findings.js';
import type { Libc } from '../host/libc.js';
import { pool, show, stalls, tally, worseThan } from './evidence.js';
import { readCounter } from './background.js';
import type { CounterVerdict } from './background.js';
import type { Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { RACE_ELSEWHERE, RACE_LIBC } from '../remedies.js';
import { finding } from '../findings.js';

/** insert_failed where the probes are NATed (the node's namespace, netfilter's rules), per CPU, with its background. */
export interface InsertFailedEvidence {
  /** The rise during the probes, and how long they took. */
  during: number;
  seconds: number;
  /** The rise during an interval just before them, and its length. */
  baseline: number;
  baselineSeconds: number;
  /** The baseline's rise per step (about 1 s), where sampled. */
  baselineSteps?: readonly number[];
}

export type { CounterVerdict } from './background.js';

/** insert_failed where the probes are NATed, read against its own background (./background.ts). */
export function readInsertFailed(e: InsertFailedEvidence | null): { verdict: CounterVerdict; said: string } {
  if (e === null) return { verdict: 'unknown', said: 'insert_failed not readable where the probes are NATed' };
  const r = readCounter({ name: 'insert_failed', ...e });
  return { verdict: r.verdict, said: r.said };
}

export interface RaceInput {
  par: ProbeSummary;
  reopen: ProbeSummary;
  /** The glibc-default lookups sent straight to each endpoint (no DNAT), those that got answers or stalled. */
  direct: ProbeSummary[];
  ns: string;
  libc: Libc;
  clashFixes: readonly string[];
  insertFailed: InsertFailedEvidence | null;
  nodeLocalDNS: boolean;
  /** The signature, already tested: its tallies and what was said. */
  signature: string;
}

export type RaceOutcome =
  | { kind: 'finding'; finding: Finding }
  | { kind: 'pending'; candidates: string; tellApart: string; more: Array<'direct'> };

const RACE_WHO =
  'glibc falls back to single-request after its first half-answered pair, so a long-lived process stalls once while ' +
  'short-lived ones (probes, cron jobs, CLI tools, one process per request) stall every time; musl has no such option';

/** The libc's own remedy for lookups that lose their second query. */
function libcRemedy(libc: Libc): string {
  return libc === 'glibc' || libc === 'musl' ? RACE_LIBC[libc] : RACE_LIBC.unknown;
}

/** The race findings' numbers: the two UDP modes' failures, the direct lookups' (none probed: null of 0), the counter. */
function raceEvidence(r: Pick<RaceInput, 'insertFailed' | 'libc' | 'clashFixes'>, par: Tally, reopen: Tally, direct: Tally): RaceEvidence {
  return {
    parallelStalled: par.n, parallelLookups: par.of, reopenStalled: reopen.n, reopenLookups: reopen.of,
    directStalled: direct.of > 0 ? direct.n : null, directLookups: direct.of,
    insertFailedDuringProbes: r.insertFailed?.during ?? null, insertFailedBaseline: r.insertFailed?.baseline ?? null,
    libc: r.libc, kernelClashFixes: r.clashFixes.join(' ') || 'none',
  };
}

/**
 * From the node, where the probes are NATed on their way out, a lost insert fails the send itself (EPERM) instead of
 * a timeout. Sends failing with A+AAAA from one socket only, with insert_failed rising beyond its background, is the
 * race there.
 */
export function raceFromSendErrors(r: Omit<RaceInput, 'signature' | 'direct' | 'nodeLocalDNS'> & { said: string }): Finding | undefined {
  const counter = readInsertFailed(r.insertFailed);
  if (counter.verdict !== 'rose') return undefined;
  const codes = Object.entries(r.par.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ');
  return finding({
    code: 'CONNTRACK_RACE',
    severity: 'critical',
    subject: { kind: 'nameserver', address: r.ns },
    message: `lookups fail at once when A and AAAA leave one socket together (${r.par.failed}/${r.par.units} lookups: ${codes}), not with single-request-reopen (${r.said}), and ${counter.said}: the conntrack insert race on this node's own traffic, where a lost insert fails the send. ${RACE_WHO}.`,
    evidence: { ...raceEvidence(r, tally(r.par.failed, r.par.units), tally(r.reopen.failed, r.reopen.units), tally(0, 0)), singleRequestSwitches: r.par.singleRequestSwitches },
    remedy: `${libcRemedy(r.libc)}; a kernel with the clash fixes (5.0+ for NATed UDP, 5.6 IPS_NAT_CLASH); hostNetwork pods: NodeLocalDNS`,
  });
}

export function raceOrNot(r: RaceInput): RaceOutcome {
  const fixes = new Set(r.clashFixes);
  const reopenT = stalls(r.reopen);
  const parT = stalls(r.par);
  const directT: Tally = pool(r.direct.map(stalls));
  const each = (ps: ProbeSummary[]): string => ps.map((p) => `${p.target} ${show(stalls(p))}`).join(', ');
  const directStalls = directT.of > 0 ? worseThan(directT, reopenT) : undefined;
  const directClean = directT.of > 0 ? worseThan(parT, directT) : undefined;
  const direct: 'stalls' | 'clean' | 'undecided' | 'none' =
    directT.of === 0 ? 'none' : directStalls!.strength === 'decisive' ? 'stalls' : directClean!.strength === 'decisive' ? 'clean' : 'undecided';
  const counter = readInsertFailed(r.insertFailed);
  const evidence = raceEvidence(r, parT, reopenT, directT);
  const notRace = (why: string, where: string): RaceOutcome => ({
    kind: 'finding',
    finding: finding({
      code: 'PARALLEL_QUERY_LOSS',
      severity: 'critical',
      subject: { kind: 'nameserver', address: r.ns },
      message: `${r.signature}: the signature of the conntrack insert race, which it is not: ${why}. Something drops the second of two queries sent at once from one port: ${where}`,
      evidence,
      remedy: `${libcRemedy(r.libc)} avoids it; then ` + (r.nodeLocalDNS
        ? "look at this node's node-local-dns pod (its logs, its memory and CPU limits) and what it forwards to"
        : `find what drops the second query: the server behind ${r.ns} (its logs, a rate limit, its version), and anything between that tracks UDP flows`),
    }),
  });
  const race = (because: string, caveat = ''): RaceOutcome => ({
    kind: 'finding',
    finding: finding({
      code: 'CONNTRACK_RACE',
      severity: 'critical',
      subject: { kind: 'nameserver', address: r.ns },
      message: `${r.signature}; ${because}: the conntrack insert race. ${RACE_WHO}${r.libc === 'unknown' ? ' (the workload\'s libc is not known: the remedies for both are given)' : ` (the workload is ${r.libc})`}.${caveat}`,
      evidence: { ...evidence, singleRequestSwitches: r.par.singleRequestSwitches },
      remedy: `${libcRemedy(r.libc)}; ${RACE_ELSEWHERE}`,
    }),
  });

  // NodeLocalDNS's address is reached untracked (its NOTRACK rules): no conntrack entry, so no insert to lose.
  if (r.nodeLocalDNS) return notRace(`the nameserver is NodeLocalDNS (${r.ns}), whose traffic conntrack does not track`, 'the node-local cache or what it forwards to');
  if (direct === 'stalls') {
    const seen = `the same lookups sent straight to ${each(r.direct.filter((p) => p.stalled > 0))}, with no DNAT on the way, stall too (${directStalls!.said})`;
    if (fixes.has('4.19')) {
      const also = counter.verdict === 'rose' ? `; ${counter.said}, from other traffic or a race beside this loss` : '';
      return notRace(`${seen}, and this kernel resolves clashes of un-NATed flows (4.19)${also}`, 'the DNS server, a proxy or firewall in front of it');
    }
    return race(`${seen}, which this kernel (no 4.19 clash fix) drops too`);
  }
  if (direct === 'clean') {
    const seen = `sent straight to the endpoints with no DNAT on the way they do not (${each(r.direct)}; ${directClean!.said})`;
    if (counter.verdict === 'flat') return notRace(`${seen}, but ${counter.said} in this namespace, which NATs them and where the race counts every packet it drops`, "the Service's DNAT, which is not netfilter's here (an eBPF service load balancer), or a hop that tracks flows");
    const caveat = counter.verdict !== 'rose' && fixes.has('5.6') ? " This kernel resolves that clash (5.6): the NAT that drops them runs on another kernel (a pod in its own VM, whose kernel is not the node's) or is not netfilter's." : '';
    return race(`${seen}${counter.verdict === 'rose' ? `, and ${counter.said}` : ''}`, caveat);
  }
  if (direct === 'undecided') {
    return {
      kind: 'pending',
      candidates: 'the conntrack race on the DNAT path, or a server or hop that drops the second of two queries (PARALLEL_QUERY_LOSS)',
      tellApart: `lookups straight to the endpoints, past the DNAT, stalling as often as through the Service IP or not (now ${show(directT)} direct, ${show(parT)} through ${r.ns})`,
      more: ['direct'],
    };
  }
  if (counter.verdict === 'rose') return race(counter.said);
  if (counter.verdict === 'flat') return notRace(`${counter.said} in this namespace, which NATs them and where the race counts every packet it drops`, 'the DNS server, a proxy or firewall in front of it');
  return {
    kind: 'pending',
    candidates: 'the conntrack race, or a server or hop that drops the second of two queries sent at once (PARALLEL_QUERY_LOSS)',
    tellApart:
      "the same lookups sent straight to the endpoints, past the DNAT (give --endpoints), or insert_failed read on the node during the probes (run doctor on the node)",
    more: [],
  };
}
