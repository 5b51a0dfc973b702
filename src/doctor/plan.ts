/**
 * doctor's probes: what it will send (said before sending), and the rounds that send it. A first round runs every
 * probe; while the budget lasts, further rounds run more of the probes that would decide a pattern the rules found
 * suggestive but not decisive. New probes start only within the budget; a lookup in flight then still finishes, as an
 * application's would, so the whole run is bounded by the budget plus the longest lookup.
 */
import { runDnsbench } from '../commands/dnsbench.js';
import type { DnsbenchInput } from '../commands/dnsbench.js';
import { formatHostPort } from '../dns/wire.js';
import { glibcTryBudgetMs } from '../engine/resolver/glibc.js';
import { UserError } from '../errors.js';
import { expandName } from '../resolv/expand.js';
import type { ResolvConf } from '../resolv/parse.js';
import { mergeProbes, summarise } from './probes.js';
import type { ProbeKind, ProbeMode, ProbeSummary } from './probes.js';
import type { MoreProbes } from './rules.js';

/** First-round sizes; a further round sends ROUND_GROWTH times as many of the probes it repeats. */
export const RAW_QUERIES = 100;
export const ENDPOINT_QUERIES = 100;
export const LOOKUPS = 8;
export const ROUND_GROWTH = 3;
/** The paced probe: a rate far under any server's or network's limit (AWS's VPC resolver allows 1024 packets/s). */
export const PACED_QPS = 20;
export const PACED_QUERIES = 40;
/** Rounds after the first, at most, in each phase. */
export const EXTRA_ROUNDS = 2;

/**
 * The order the probes run in: two phases, each of waves. A wave's probes run at once (their queries interleaved in
 * time, so a burst of loss hits each alike); a wave starts when the one before ends and has its share of what is
 * left of its phase. The short raw probes that decide the most come first, with their own further rounds, within the
 * first 40% of the budget, so no budget spent on stalling lookups can leave them out: the nameservers' A and AAAA and
 * each endpoint directly, side by side; then the paced probe alone (a burst beside it would reach the same limit and
 * hide it). Then the lookups, with theirs, until the budget's end: every mode, the external name absolute and the
 * in-cluster name side by side (what the search list costs is measured against the absolute name under the same
 * load); then the lookups straight to each endpoint. Keyed by the probes' groups (what a
 * further round repeats them for); `until`: the phase ends at this share of the budget.
 */
export const PHASES: ReadonlyArray<{ waves: ReadonlyArray<readonly MoreProbes[]>; until: number }> = [
  { waves: [['raw', 'endpoints'], ['rate']], until: 0.4 },
  { waves: [['lookup-modes', 'upstream'], ['direct']], until: 1 },
];

interface ProbeSpec {
  label: string;
  /** Sent at a fixed low rate (queries per second), to tell a rate limit from loss. */
  qps?: number;
  kind: ProbeKind;
  mode: ProbeMode | null;
  qtype: ProbeSummary['qtype'];
  /** The pattern a further round repeats it for; null: the first round only. */
  group: MoreProbes | null;
  /** Units (queries or lookups) in the first round. */
  units: number;
  /** Datagrams, both ways, one unit carries when nothing is lost (ProbeSummary.datagramsPerUnit). */
  datagrams: number;
  input: DnsbenchInput;
}

export interface ProbePlan {
  specs: ProbeSpec[];
  budgetMs: number;
  /** The longest a lookup in flight can take once the budget is spent. */
  lingerMs: number;
  /** What will be sent, in one sentence. */
  said: string;
}

/**
 * The longest one lookup of `name` can take with this resolv.conf, as glibc sends it: every candidate name answered
 * just before its last try runs out, and after a timeout the name as written once more. An upper bound, for the plan.
 */
function worstLookupMs(conf: ResolvConf, name: string, nscount: number): number {
  let resSend = 0;
  for (let ns = 0; ns < nscount; ns++) resSend += glibcTryBudgetMs(conf.options.timeout, ns, nscount);
  resSend *= conf.options.attempts;
  const sent = expandName(name, conf).candidates.filter((c) => c.sent).length;
  return (sent + 1) * resSend;
}

/**
 * Datagrams, both ways, that one lookup carries when nothing is lost: two per query it sends until its answer, each
 * name of the search list expected NXDOMAIN (the mean over the names looked up).
 */
function carried(conf: ResolvConf, names: readonly string[]): number {
  const each = names.map((n) => 2 * expandName(n, conf).queriesToAnswer);
  return Math.max(2, Math.round(each.reduce((a, b) => a + b, 0) / Math.max(1, each.length)));
}

export function planProbes(o: {
  conf: ResolvConf;
  names: string[];
  nameservers: string[];
  port: number;
  endpoints: Array<{ host: string; port: number }>;
  budgetMs: number;
  baselineS: number;
  /** The cluster's domain (cluster.local), from the search list; null when it shows none. */
  clusterDomain: string | null;
  /** The workload's libc is not known: musl's lookups too, with the resolv.conf as musl reads it. */
  muslConf?: ResolvConf;
}): ProbePlan {
  const { conf, names } = o;
  const servers = o.nameservers.map((host) => ({ host, port: o.port }));
  const absolute = names.map((n) => (n.endsWith('.') ? n : `${n}.`));
  // Raw queries wait as long as the resolver would (its timeout, 1 to 5 s): an answer after 2.5 s is slow, not lost.
  const rawTimeoutMs = Math.min(5000, Math.max(1000, conf.options.timeout * 1000));
  const rawQueries = (host: string, p: number, types: Array<'A' | 'AAAA'>): DnsbenchInput => ({
    server: host, port: p, queries: absolute.flatMap((n) => types.map((type) => ({ name: n, type }))), concurrency: 20, timeoutMs: rawTimeoutMs, slowMs: 3_600_000, tcpRetry: true,
  });
  const lookups = (c: ResolvConf, extra: Partial<NonNullable<DnsbenchInput['resolver']>>, queryNames: string[], to = servers): DnsbenchInput => ({
    server: to[0]!.host, port: to[0]!.port, queries: queryNames.map((n) => ({ name: n, type: 'A' as const })), concurrency: LOOKUPS, timeoutMs: c.options.timeout * 1000, slowMs: 3_600_000, tcpRetry: false,
    resolver: { conf: c, nameservers: to, longLived: false, ...extra },
  });
  const defaultLabel = conf.libc === 'musl' ? 'lookups, A+AAAA at once (musl)' : 'lookups, A+AAAA from one socket (glibc default)';
  const specs: ProbeSpec[] = [];
  for (const s of servers) {
    for (const t of ['A', 'AAAA'] as const) {
      specs.push({ label: `raw ${t} queries to ${formatHostPort(s.host, s.port)}`, kind: 'raw', mode: null, qtype: t, group: 'raw', units: RAW_QUERIES, datagrams: 2, input: rawQueries(s.host, s.port, [t]) });
    }
  }
  // The same A queries at a low, fixed rate: loss that the fast probe shows and this one does not is a rate limit.
  for (const s of servers) {
    specs.push({ label: `raw A queries to ${formatHostPort(s.host, s.port)} at ${PACED_QPS}/s`, qps: PACED_QPS, kind: 'raw', mode: null, qtype: 'A', group: 'rate', units: PACED_QUERIES, datagrams: 2, input: { ...rawQueries(s.host, s.port, ['A']), concurrency: 2 } });
  }
  // The comparison modes are glibc's whatever the workload's libc: they are instruments, not emulations.
  const glibc: ResolvConf = { ...conf, libc: 'glibc' };
  specs.push({ label: defaultLabel, kind: 'lookups', mode: 'parallel', qtype: null, group: 'lookup-modes', units: LOOKUPS, datagrams: carried(conf, names), input: lookups(conf, {}, names) });
  // musl sends nothing at timeout:0 and divides by zero at attempts:0 (LOOKUPS_DISABLED says so): no lookups to emulate.
  if (o.muslConf !== undefined && o.muslConf.options.attempts > 0 && o.muslConf.options.timeout > 0) {
    specs.push({ label: 'lookups, A+AAAA at once (musl)', kind: 'lookups', mode: 'parallel-musl', qtype: null, group: 'lookup-modes', units: LOOKUPS, datagrams: carried(o.muslConf, names), input: lookups(o.muslConf, {}, names) });
  }
  specs.push({ label: 'lookups with single-request-reopen', kind: 'lookups', mode: 'single-request-reopen', qtype: null, group: 'lookup-modes', units: LOOKUPS, datagrams: carried(glibc, names), input: lookups(glibc, { singleRequest: true, singleRequestReopen: true }, names) });
  specs.push({ label: 'lookups over TCP (use-vc)', kind: 'lookups', mode: 'tcp', qtype: null, group: 'lookup-modes', units: LOOKUPS, datagrams: carried(glibc, names), input: lookups({ ...glibc, options: { ...glibc.options, useVc: true } }, {}, names) });
  specs.push({ label: `lookups of "${absolute[0]}"${names.length > 1 ? ' (and the others)' : ''} with a trailing dot: no search list`, kind: 'lookups', mode: 'trailing-dot', qtype: null, group: 'upstream', units: LOOKUPS, datagrams: carried(conf, absolute), input: lookups(conf, {}, absolute) });
  // A name the cluster's DNS answers itself, beside the external one: what fails for one and not the other is upstream.
  if (o.clusterDomain !== null) {
    const inCluster = `kubernetes.default.svc.${o.clusterDomain}.`;
    specs.push({ label: `lookups of the in-cluster name "${inCluster}"`, kind: 'lookups', mode: 'in-cluster', qtype: null, group: 'upstream', units: LOOKUPS, datagrams: carried(conf, [inCluster]), input: lookups(conf, {}, [inCluster]) });
  }
  for (const e of o.endpoints) {
    specs.push({ label: `endpoint ${formatHostPort(e.host, e.port)} directly, A and AAAA`, kind: 'endpoint', mode: null, qtype: null, group: 'endpoints', units: ENDPOINT_QUERIES, datagrams: 2, input: rawQueries(e.host, e.port, ['A', 'AAAA']) });
  }
  // The libc-default lookups again, each endpoint as the only nameserver: no DNAT on the way, so no NAT clash.
  for (const e of o.endpoints) {
    specs.push({ label: `lookups, A+AAAA from one socket, to ${formatHostPort(e.host, e.port)} directly`, kind: 'lookups', mode: 'parallel-direct', qtype: null, group: 'direct', units: LOOKUPS, datagrams: carried(conf, names), input: lookups(conf, {}, names, [e]) });
  }
  const lingerMs = Math.max(rawTimeoutMs, ...names.map((n) => worstLookupMs(conf, n, servers.length)));
  const eps = o.endpoints.map((e) => formatHostPort(e.host, e.port)).join(', ');
  const said =
    `first, within ${Math.round(PHASES[0]!.until * 100)}% of the budget: ${RAW_QUERIES} raw A and ${RAW_QUERIES} raw AAAA queries to each of ${servers.length} nameserver(s) (${servers.map((s) => formatHostPort(s.host, s.port)).join(', ')})` +
    (o.endpoints.length > 0 ? ` and ${ENDPOINT_QUERIES} to each of ${o.endpoints.length} endpoint(s) directly (${eps}), side by side` : '') +
    `, then ${PACED_QUERIES} A at ${PACED_QPS}/s alone, and up to ${EXTRA_ROUNDS} rounds of ${ROUND_GROWTH}x more of those that would decide a pattern; ` +
    `then, side by side, ${LOOKUPS} lookups of ${names.join(', ')} in each of 3 modes${o.muslConf !== undefined ? ' (and as musl makes them: the libc is not known)' : ''}, ` +
    `${LOOKUPS} with a trailing dot${o.clusterDomain !== null ? ` and ${LOOKUPS} of kubernetes.default.svc.${o.clusterDomain}` : ''}` +
    (o.endpoints.length > 0 ? `, ${LOOKUPS} to each endpoint directly` : '') +
    `, and up to ${EXTRA_ROUNDS} rounds of ${ROUND_GROWTH}x more of those that would decide a pattern; ` +
    (o.baselineS > 0 ? `the counters (conntrack, the network interface, CoreDNS) read over ${o.baselineS.toFixed(0)} s before the probes (their background); ` : '') +
    `new probes for at most ${Math.round(o.budgetMs / 1000)} s, then up to ${(lingerMs / 1000).toFixed(0)} s for lookups in flight (this resolv.conf's longest lookup)`;
  return { specs, budgetMs: o.budgetMs, lingerMs, said };
}

export interface ProbeRun {
  probes: ProbeSummary[];
  /** Probes the budget left out. */
  notRun: string[];
  steps: Array<{ step: 'probes'; ok: boolean; note: string }>;
  sent: { queries: number; lookups: number; probes: number; rounds: number };
  interrupted: boolean;
}

/**
 * Run the plan: its phases (PHASES), each a first round of its waves and further rounds of the groups `decide` asks
 * for, while the phase's share of the budget lasts. Each wave has its share of what is left of its phase; its probes
 * start no query past it. Each probe's failure is its own.
 */
export async function runProbes(
  plan: ProbePlan,
  o: { signal?: AbortSignal; say: (m: string) => void; decide: (probes: ProbeSummary[], final: boolean) => MoreProbes[] },
): Promise<ProbeRun> {
  const start = performance.now();
  const byLabel = new Map<string, ProbeSummary>();
  const steps: ProbeRun['steps'] = [];
  const notRun: string[] = [];
  const failed: string[] = [];
  const sent = { queries: 0, lookups: 0, probes: 0, rounds: 0 };
  let interrupted = false;

  const one = async (s: ProbeSpec, scale: number, cut: number): Promise<void> => {
    const left = cut - performance.now();
    if (o.signal?.aborted) {
      interrupted = true;
      return;
    }
    if (left < 1) {
      notRun.push(s.label);
      return;
    }
    try {
      const r = await runDnsbench({ ...s.input, total: s.units * scale, durationMs: left, ...(s.qps !== undefined ? { qps: s.qps } : {}), ...(o.signal ? { signal: o.signal } : {}) });
      if (r.interrupted) interrupted = true;
      const p = summarise(s.label, s.kind, s.mode, s.qtype, r, s.qps !== undefined, s.datagrams);
      sent.probes++;
      sent.queries += p.sent;
      if (p.kind === 'lookups') sent.lookups += p.units;
      const had = byLabel.get(s.label);
      byLabel.set(s.label, had === undefined ? p : mergeProbes(had, p));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      failed.push(`${s.label}: ${err.message}`);
    }
  };
  /** One round of `specs` through the phase's waves, each wave's probes at once. */
  const round = async (specs: readonly ProbeSpec[], scale: number, waves: ReadonlyArray<readonly MoreProbes[]>, end: number): Promise<void> => {
    const todo = waves.map((w) => specs.filter((s) => s.group !== null && w.includes(s.group))).filter((x) => x.length > 0);
    for (let i = 0; i < todo.length && !interrupted; i++) {
      const cut = performance.now() + (end - performance.now()) / (todo.length - i);
      await Promise.all(todo[i]!.map((s) => one(s, scale, cut)));
    }
  };

  for (const phase of PHASES) {
    if (interrupted || o.signal?.aborted) break;
    const end = start + plan.budgetMs * phase.until;
    const groups = new Set(phase.waves.flat());
    await round(plan.specs, 1, phase.waves, end);
    let rounds = 1;
    for (let i = 0; i < EXTRA_ROUNDS && !interrupted; i++) {
      const more = new Set(o.decide(ordered(plan, byLabel), false).filter((g) => groups.has(g)));
      if (more.size === 0 || end - performance.now() < 1000) break;
      o.say(`doctor: a pattern is suggestive, not decisive: probing more (${[...more].join(', ')})`);
      await round(plan.specs.filter((s) => s.group !== null && more.has(s.group)), ROUND_GROWTH, phase.waves, end);
      rounds++;
    }
    sent.rounds = Math.max(sent.rounds, rounds);
  }
  if (failed.length > 0) steps.push({ step: 'probes', ok: false, note: `failed: ${failed.join('; ')}` });
  if (notRun.length > 0) steps.push({ step: 'probes', ok: false, note: `not run, the budget (${Math.round(plan.budgetMs / 1000)} s) spent: ${[...new Set(notRun)].join('; ')}` });
  const probes = ordered(plan, byLabel);
  steps.unshift({ step: 'probes', ok: !interrupted, note: `${probes.length} probes in ${sent.rounds} round(s): ${sent.queries} queries sent, ${sent.lookups} of them in lookups${interrupted ? '; interrupted' : ''}` });
  return { probes, notRun: [...new Set(notRun)], steps, sent, interrupted };
}

/** The probes in the plan's order. */
function ordered(plan: ProbePlan, byLabel: Map<string, ProbeSummary>): ProbeSummary[] {
  return plan.specs.map((s) => byLabel.get(s.label)).filter((p): p is ProbeSummary => p !== undefined);
}
