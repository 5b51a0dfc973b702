/**
 * `k8sdiag doctor`: one command that probes, correlates and names the cause of
 * DNS stalls with its remedy. It composes the other commands: resolv (the
 * pod's resolv.conf and the names it sends), svc (the DNS Service's endpoints,
 * where the node's rules are readable), conntrack (counters before and after),
 * and dnsbench (raw queries, lookups as glibc makes them in three modes, the
 * endpoints one by one). Bounded: it says what it will send before sending.
 */
import pLimit from 'p-limit';
import { conntrackFindings } from '../conntrack/analyse.js';
import type { TableState } from '../conntrack/analyse.js';
import { hasPodNetworkInterfaces, readInterfaces } from '../conntrack/live.js';
import { readContext } from '../doctor/context.js';
import type { Context } from '../doctor/context.js';
import { attribute } from '../doctor/attribute.js';
import type { ProbeSummary } from '../doctor/attribute.js';
import { formatHostPort } from '../dns/wire.js';
import { UserError } from '../errors.js';
import { CATALOGUE, sortFindings } from '../findings.js';
import type { Finding } from '../findings.js';
import { startHeader } from '../header.js';
import type { ResultHeader } from '../header.js';
import { loadResolvConf } from '../input.js';
import type { RunContext, Source } from '../input.js';
import { glibcTryBudgetMs } from '../engine/resolver/glibc.js';
import { expandName } from '../resolv/expand.js';
import { NODELOCALDNS_IP } from '../resolv/findings.js';
import { parseResolvConf } from '../resolv/parse.js';
import type { ResolvConf } from '../resolv/parse.js';
import { deltaRecords, recordTotal } from '../stats/index.js';
import type { CounterDelta, CounterRecord } from '../stats/index.js';
import { parseServer, runDnsbench } from './dnsbench.js';
import { runConntrack } from './conntrack.js';
import type { ConntrackResult } from './conntrack.js';
import type { DnsbenchInput, DnsbenchResult } from './dnsbench.js';
import { runResolv } from './resolv.js';
import { runSvc } from './svc.js';

export interface DoctorInput extends RunContext {
  /** The pod's resolv.conf (default /etc/resolv.conf). */
  resolv?: Source;
  /** Names to look up (default google.com: an external name through the search list). */
  names?: string[];
  /** Upper bound on the probes' time, seconds (default 30). */
  budgetSeconds?: number;
  /** The DNS Service's endpoints, host[:port], where the node's rules cannot be read. */
  endpoints?: string[];
  /** The DNS port (53; tests use others). */
  port?: number;
}

export interface DoctorStep {
  step: 'context' | 'resolv' | 'path' | 'conntrack' | 'probes';
  ok: boolean;
  /** What it found, or what it could not do and why. */
  note: string;
}

export interface DoctorResult extends ResultHeader {
  command: 'doctor';
  /** One to three lines: the cause and its remedy, or that nothing is wrong. */
  verdict: string[];
  context: Context & {
    /**
     * Whose network namespace doctor ran in: a node's (kube-proxy's rules are there), a pod's (no rules, the
     * nameserver is a Service IP), or unknown (no rules, and no Service IP in the resolv.conf).
     */
    view: 'node' | 'pod' | 'unknown';
    resolvFile: string;
    nameservers: string[];
    search: string[];
    ndots: number;
    timeoutS: number;
    nodeLocalDNS: boolean;
  };
  /** The DNS Service behind the nameserver, with its endpoints and shares, and how it was found. */
  path: { found: 'rules' | '--endpoints' | null; service: string | null; clusterIP: string | null; endpoints: Array<{ address: string; share: number | null }> };
  conntrack: { before: CounterRecord | null; after: CounterRecord | null; deltas: Record<string, CounterDelta>; table: TableState | null } | null;
  /** What doctor said it would send, before sending. */
  plan: string;
  probes: ProbeSummary[];
  steps: DoctorStep[];
  findings: Finding[];
  /** Set when nothing could be probed at all (exit 2). */
  couldNotRun: string | null;
}

const RAW_QUERIES = 200;
const ENDPOINT_QUERIES = 100;
const LOOKUPS = 8;

function summarise(label: string, kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], r: DnsbenchResult): ProbeSummary {
  const errors = recordTotal(r.errors);
  const lookups = r.lookups ?? 0;
  const isLookup = kind === 'lookups';
  return {
    label,
    kind,
    mode,
    target: r.servers.join(', '),
    sent: r.sent,
    answered: r.answered,
    timeouts: r.timeouts,
    errors,
    errorCodes: { ...r.errors },
    units: isLookup ? lookups : r.sent,
    stalled: isLookup ? (r.lookupStalls?.overTimeout ?? 0) : r.timeouts + errors,
    over1s: isLookup ? (r.lookupStalls?.over1s ?? 0) : r.stalls.over1s,
    over5s: isLookup ? (r.lookupStalls?.over5s ?? 0) : r.stalls.over5s,
    localDrops: r.localDrops.ownSockets ?? 0,
    meanMs: isLookup ? (r.lookupLatencyMs?.mean ?? null) : (r.latencyMs?.mean ?? null),
    queriesPerUnit: isLookup ? (lookups > 0 ? r.sent / lookups : 0) : 1,
    singleRequestSwitches: r.resolver?.modeSwitches.singleRequest ?? 0,
  };
}

/** This machine's conntrack counters and table, as `k8sdiag conntrack --live` reads them, or why it could not. */
async function conntrackSample(): Promise<ConntrackResult | { error: string }> {
  try {
    return await runConntrack({ source: { kind: 'live' } });
  } catch (err) {
    if (err instanceof UserError) return { error: err.message };
    throw err;
  }
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

export async function runDoctor(input: DoctorInput): Promise<DoctorResult> {
  const header = startHeader('doctor');
  const steps: DoctorStep[] = [];
  const say = (m: string): void => input.onProgress?.(m);
  const names = input.names && input.names.length > 0 ? input.names : ['google.com'];
  const name = names[0]!;
  const budgetMs = (input.budgetSeconds ?? 30) * 1000;
  const port = input.port ?? 53;

  // 1. Context.
  const ctx = readContext();
  steps.push({
    step: 'context',
    ok: true,
    note: `kernel ${ctx.kernel.release} (clash fixes: ${ctx.kernel.clashFixes.join(', ') || 'none'}); libc ${ctx.libc}; ` +
      `network namespace ${ctx.netns.sameAsPid1 === null ? 'unknown' : ctx.netns.sameAsPid1 ? "the same as PID 1's" : "not PID 1's"}`,
  });

  // 2. resolv.conf.
  const source = input.resolv ?? { kind: 'file', path: '/etc/resolv.conf' };
  const loaded = await loadResolvConf(source);
  const libc = ctx.libc === 'musl' ? 'musl' : 'glibc';
  const resolv = await runResolv({ source: { kind: 'text', ...loaded }, libc, name });
  const conf: ResolvConf = parseResolvConf(loaded.text, { libc: 'glibc' });
  const nameservers = conf.nameservers.slice(0, 3);
  steps.push({ step: 'resolv', ok: true, note: `${loaded.origin}: nameservers ${nameservers.join(', ')}; search ${conf.search.join(' ') || '(none)'}; ndots:${conf.options.ndots} timeout:${conf.options.timeout}` });

  // 3. The path: the DNS Service (by its cluster IP) in the node's rules, else --endpoints.
  let path: DoctorResult['path'] = { found: null, service: null, clusterIP: null, endpoints: [] };
  // The node's rules, where readable: the DNS Service behind the nameserver, and whose namespace this is.
  let rules: Awaited<ReturnType<typeof runSvc>> | undefined;
  let rulesError: string | undefined;
  try {
    rules = await runSvc({ source: { kind: 'live' } });
  } catch (err) {
    rulesError = err instanceof UserError ? err.message : String(err);
  }
  const rulesVisible = rules !== undefined && rules.modes.length > 0;
  // A node shows kube-proxy's rules, or, without them (an eBPF kube-proxy replacement), the host side of its pods'
  // network (CNI veths, bridges, overlay devices); a pod's own namespace neither. Dumps refused (no permission, no
  // iptables) tell nothing.
  const interfaces = await readInterfaces();
  const view: DoctorResult['context']['view'] =
    rulesVisible || (interfaces !== undefined && hasPodNetworkInterfaces(interfaces))
      ? 'node'
      : rulesError !== undefined && /permission|not permitted|iptables-save is not installed/i.test(rulesError)
        ? 'unknown'
        : 'pod';
  if (input.endpoints && input.endpoints.length > 0) {
    path = { found: '--endpoints', service: null, clusterIP: nameservers[0] ?? null, endpoints: input.endpoints.map((address) => ({ address, share: null })) };
    steps.push({ step: 'path', ok: true, note: `endpoints given: ${input.endpoints.join(', ')}` });
  } else if (rules !== undefined) {
    const dns = rules.services.find((s) => s.clusterIP !== null && nameservers.includes(s.clusterIP) && (s.protocol === 'udp' || s.protocol === null) && (s.port === port || s.port === null));
    if (dns) {
      path = { found: 'rules', service: dns.id, clusterIP: dns.clusterIP, endpoints: dns.endpoints.map((e) => ({ address: e.address, share: e.share })) };
      steps.push({ step: 'path', ok: true, note: `${dns.id} at ${dns.clusterIP}: ${dns.endpoints.map((e) => `${e.address} ${(e.share * 100).toFixed(1)}%`).join(', ')}` });
    } else {
      steps.push({ step: 'path', ok: false, note: `no Service with cluster IP ${nameservers.join(' or ')} in this node's rules (a pod's network namespace, NodeLocalDNS, or not a Service): give --endpoints to probe them directly` });
    }
  } else {
    steps.push({ step: 'path', ok: false, note: `the node's rules could not be read (${rulesError ?? 'unknown'}): give --endpoints to probe them directly` });
  }

  // 4. Conntrack before.
  const before = await conntrackSample();
  const t0 = performance.now();
  if ('error' in before) steps.push({ step: 'conntrack', ok: false, note: `conntrack not readable: ${before.error}` });

  // 5. The probes, said before sent.
  const lookupModes: Array<[string, ProbeSummary['mode'], (c: ResolvConf) => ResolvConf, Partial<NonNullable<DnsbenchInput['resolver']>>]> = [
    ['lookups, A+AAAA from one socket (glibc default)', 'parallel', (c) => c, {}],
    ['lookups with single-request-reopen', 'single-request-reopen', (c) => c, { singleRequest: true, singleRequestReopen: true }],
    ['lookups over TCP (use-vc)', 'tcp', (c) => ({ ...c, options: { ...c.options, useVc: true } }), {}],
  ];
  const endpoints = path.endpoints.map((e) => {
    const s = parseServer(e.address);
    return { host: s.host, port: s.port ?? port };
  });
  // New probes start within the budget; a lookup in flight then still finishes, as an application's would.
  const lingerMs = Math.max(1000, ...names.map((n) => worstLookupMs(conf, n, nameservers.length)));
  const plan =
    `${RAW_QUERIES} raw queries to each of ${nameservers.length} nameserver(s); ${LOOKUPS} lookups of ${names.join(', ')} in each of 3 modes and with a trailing dot; ` +
    `${endpoints.length > 0 ? `${ENDPOINT_QUERIES} queries and ${LOOKUPS} A+AAAA lookups to each of ${endpoints.length} endpoint(s); ` : ''}` +
    `new probes for at most ${Math.round(budgetMs / 1000)} s, then up to ${(lingerMs / 1000).toFixed(0)} s for lookups in flight (this resolv.conf's longest lookup)`;
  say(`doctor: will send ${plan}`);
  const servers = nameservers.map((host) => ({ host, port }));
  const fqdn = name.endsWith('.') ? name : `${name}.`;
  const per = Math.max(1000, budgetMs / 3);
  const absolute = names.map((n) => (n.endsWith('.') ? n : `${n}.`));
  const raw = (host: string, p: number, total: number): DnsbenchInput => ({
    server: host, port: p, queries: absolute.map((n) => ({ name: n, type: 'A' as const })), concurrency: 20, total, timeoutMs: 1000, slowMs: 3_600_000, tcpRetry: true,
  });
  const lookupInput = (c: ResolvConf, extra: Partial<NonNullable<DnsbenchInput['resolver']>>, queryNames: string[], to = servers): DnsbenchInput => ({
    server: to[0]!.host, port: to[0]!.port, queries: queryNames.map((n) => ({ name: n, type: 'A' as const })), concurrency: LOOKUPS, total: LOOKUPS, timeoutMs: c.options.timeout * 1000, slowMs: 3_600_000, tcpRetry: false,
    resolver: { conf: c, nameservers: to, longLived: false, ...extra },
  });
  const limit = pLimit(2);
  const probeDeadline = performance.now() + budgetMs;
  const notRun: string[] = [];
  const jobs: Array<Promise<ProbeSummary | undefined>> = [];
  /** A probe, started only while the budget lasts, sending for at most a third of it and never past its end. */
  const probe = (label: string, kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], what: DnsbenchInput): void => {
    jobs.push(
      limit(async () => {
        const left = probeDeadline - performance.now();
        if (left < 1) {
          notRun.push(label);
          return undefined;
        }
        return summarise(label, kind, mode, await runDnsbench({ ...what, durationMs: Math.min(per, left) }));
      }),
    );
  };
  for (const s of servers) probe(`raw queries to ${formatHostPort(s.host, s.port)}`, 'raw', null, raw(s.host, s.port, RAW_QUERIES));
  for (const [label, mode, shape, extra] of lookupModes) probe(label, 'lookups', mode, lookupInput(shape(conf), extra, names));
  probe(`lookups of "${fqdn}"${names.length > 1 ? ' (and the others)' : ''} with a trailing dot: no search list`, 'lookups', 'trailing-dot', lookupInput(conf, {}, absolute));
  for (const e of endpoints) probe(`endpoint ${formatHostPort(e.host, e.port)} directly`, 'endpoint', null, raw(e.host, e.port, ENDPOINT_QUERIES));
  // The glibc-default lookups again, each endpoint as the only nameserver: no DNAT on the way, so no NAT clash.
  for (const e of endpoints) probe(`lookups, A+AAAA from one socket, to ${formatHostPort(e.host, e.port)} directly`, 'lookups', 'parallel-direct', lookupInput(conf, {}, names, [e]));
  let probes: ProbeSummary[] = [];
  let couldNotRun: string | null = null;
  try {
    probes = (await Promise.all(jobs)).filter((p): p is ProbeSummary => p !== undefined);
    steps.push({ step: 'probes', ok: true, note: `${probes.length} probes, ${probes.reduce((n, p) => n + p.sent, 0)} queries sent` });
    if (notRun.length > 0) steps.push({ step: 'probes', ok: false, note: `not run, the budget (${Math.round(budgetMs / 1000)} s) spent: ${notRun.join('; ')}` });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    couldNotRun = err.message;
    steps.push({ step: 'probes', ok: false, note: err.message });
  }
  if (couldNotRun === null && probes.length > 0 && probes.every((p) => p.answered === 0)) {
    couldNotRun = `no probe got an answer from ${nameservers.join(', ')}: ${probes.map((p) => `${p.label}: ${p.timeouts} timeouts, ${p.errors} errors`).slice(0, 2).join('; ')}`;
  }

  // 6. Conntrack after, and what moved.
  const after = await conntrackSample();
  let conntrack: DoctorResult['conntrack'] = null;
  const findings: Finding[] = [];
  if (!('error' in before) && !('error' in after)) {
    const seconds = (performance.now() - t0) / 1000;
    const { deltas } = deltaRecords(before.counters, after.counters, seconds);
    conntrack = { before: before.counters, after: after.counters, deltas, table: after.table };
    // The kernel log is left out: its lines are history unless dated, and doctor reports what moved during its probes.
    const view = { counters: after.counters, table: after.table, cpus: after.cpus, perCpu: after.perCpu, kernelLog: { tableFull: [], netns: [], suppressed: 0 } };
    // Counters since boot are history; what rose during the probes, and the table now, are evidence.
    for (const f of conntrackFindings(view, { origin: 'watch', seconds: Number(seconds.toFixed(3)), deltas, newTableFullLines: 0 })) {
      if (f.code === 'TABLE_PRESSURE' || f.severity === 'critical') findings.push(f);
    }
  }

  // 7. Attribution, with resolv's own findings about the file.
  const ndots = resolv.findings.find((f) => f.code === 'NDOTS_AMPLIFICATION');
  findings.push(...resolv.findings.filter((f) => f.code !== 'NDOTS_AMPLIFICATION'));
  if (couldNotRun === null) {
    findings.push(
      ...attribute({
        probes,
        service: path.endpoints.length > 0 ? { id: path.service, clusterIP: path.clusterIP ?? '', endpoints: path.endpoints.map((e) => e.address) } : null,
        libc: ctx.libc,
        clashFixes: ctx.kernel.clashFixes,
        // Where kube-proxy's iptables or nftables rules are (the node's namespace), the probes are NATed here by
        // netfilter, and the race would count each packet it drops in insert_failed; IPVS drops its own way.
        insertFailedDuringProbes:
          conntrack !== null && rules !== undefined && !rules.modes.includes('ipvs') && rules.modes.some((m) => m === 'iptables' || m === 'nftables')
            ? (conntrack.deltas['insert_failed']?.delta ?? null)
            : null,
        nodeLocalDNS: nameservers[0] === NODELOCALDNS_IP,
        name,
        ndots,
      }),
    );
  }
  const sorted = sortFindings(findings);
  return {
    ...header.finish(),
    command: 'doctor',
    verdict: verdictOf(sorted, couldNotRun),
    context: { ...ctx, view, resolvFile: loaded.origin, nameservers, search: conf.search, ndots: conf.options.ndots, timeoutS: conf.options.timeout, nodeLocalDNS: nameservers.includes(NODELOCALDNS_IP) },
    path,
    conntrack,
    plan,
    probes,
    steps,
    findings: sorted,
    couldNotRun,
  };
}

const CAUSES = ['LOOKUPS_DISABLED', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'SERVER_LOSS', 'DNAT_PATH_LOSS', 'UDP_PATH_LOSS', 'LOCAL_DROPS', 'INSERT_FAILED', 'DROP', 'EARLY_DROP', 'TABLE_PRESSURE', 'STALLS_UNEXPLAINED', 'PROBE_ERRORS', 'NDOTS_COST'];

/** One to three lines: the causes found, most specific first, with the first remedy; or that nothing is wrong. */
export function verdictOf(findings: readonly Finding[], couldNotRun: string | null): string[] {
  if (couldNotRun !== null) return [`Could not probe DNS: ${couldNotRun}`];
  const causes = findings.filter((f) => f.severity !== 'info' && CAUSES.includes(f.code)).sort((a, b) => CAUSES.indexOf(a.code) - CAUSES.indexOf(b.code));
  if (causes.length === 0) {
    const other = findings.filter((f) => f.severity !== 'info');
    return other.length === 0 ? ['No cause of DNS stalls found: every probe was answered in time.'] : [`No stalls measured; ${other.length} configuration finding(s) below.`];
  }
  return causes.slice(0, 3).map((f) => `${f.code}: ${CATALOGUE[f.code].means}${subjectLabel(f)}${f.remedy ? ` -> ${f.remedy.split(';')[0]}` : ''}`);
}

function subjectLabel(f: Finding): string {
  const s = f.subject;
  if (s.kind === 'endpoint') return ` (${s.address}${s.service ? `, ${s.service}` : ''})`;
  if (s.kind === 'nameserver') return ` (${s.address})`;
  if (s.kind === 'name') return ` (${s.name})`;
  if (s.kind === 'counter') return ` (${s.name})`;
  return '';
}
