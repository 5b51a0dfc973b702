/**
 * From probes to causes: one ordered table of rules. Each rule names the nearest cause its evidence supports and no
 * further, rests on a minimum count and a test of chance (./evidence.ts), and says when its pattern shows but is not
 * decisive: then doctor probes more in the modes that decide, and, with the budget spent, says inconclusive. The
 * table's order is the verdict's order; rules that come from resolv or conntrack only hold their place in it.
 * Pure: the probes' numbers in, findings out.
 */
import type { Finding, FindingCode } from '../findings.js';
import type { Libc } from '../host/libc.js';
import { formatP, percentOf, sumRecords } from '../stats/index.js';
import { ALPHA, BACKGROUND_LOSS, MIN_COUNT, aboveBackground, lossy, pool, show, stalls, tally, worseThan } from './evidence.js';
import type { Comparison, Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { raceFromSendErrors, raceOrNot } from './race.js';
import type { InsertFailedEvidence } from './race.js';
import type { CorednsDelta } from '../host/coredns.js';
import { errorRemedy } from '../remedies.js';

export interface AttributionInput {
  probes: ProbeSummary[];
  /** The Service behind the nameserver, when found in the rules or given with --endpoints. */
  service: { id: string | null; clusterIP: string; endpoints: string[] } | null;
  /** The workload's libc (the target's, not doctor's own). */
  libc: Libc;
  /** The kernel's clash fixes (4.19, 5.0, 5.6, 5.10). */
  clashFixes: string[];
  /** insert_failed where the probes are NATed by netfilter (the node's namespace), with its background; null elsewhere. */
  insertFailed: InsertFailedEvidence | null;
  /** The nameserver is NodeLocalDNS (169.254.20.10): a node-local cache reached untracked. */
  nodeLocalDNS: boolean;
  /** The name looked up, and resolv's amplification finding for it, if any. */
  name: string;
  ndots: Finding | undefined;
  /** The node's cloud network interface counters that rose during the probes (ENA allowances); null where not read. */
  nic: Array<{ iface: string; counter: string; delta: number }> | null;
  /** What CoreDNS itself counted during the probes, per /metrics page read; null where none was read. */
  coredns: CorednsDelta[] | null;
  /** The last round: a pattern still only suggestive is said as inconclusive. Before it, more probes are asked for. */
  final: boolean;
}

/** Probes that would decide a suggestive pattern. */
export type MoreProbes = 'lookup-modes' | 'direct' | 'endpoints' | 'raw' | 'rate' | 'upstream';

export interface Attribution {
  findings: Finding[];
  /** Suggestive patterns to probe more for (empty on the final round, or when nothing is pending). */
  more: MoreProbes[];
}

/** A pattern that shows but does not decide: the two candidates, and what would tell them apart. */
interface Pending {
  candidates: string;
  tellApart: string;
  more: MoreProbes[];
}

/** The probes, grouped once for every rule. */
export interface Evidence {
  a: AttributionInput;
  ns: string;
  par?: ProbeSummary;
  reopen?: ProbeSummary;
  tcp?: ProbeSummary;
  dot?: ProbeSummary;
  inCluster?: ProbeSummary;
  /** Raw probes at full speed (the paced ones apart). */
  raw: ProbeSummary[];
  paced: ProbeSummary[];
  endpoints: ProbeSummary[];
  direct: ProbeSummary[];
  /** Codes named so far, by the rules above. */
  named: Set<FindingCode>;
  /** Codes whose pattern shows but does not decide yet, by the rules above. */
  pending: Set<FindingCode>;
}

export interface Rule {
  /** The codes it may name, the first its own. */
  codes: readonly FindingCode[];
  /** Where the finding comes from: doctor's rules decide here; resolv's and conntrack's only take their place. */
  from: 'doctor' | 'resolv' | 'conntrack';
  decide?: (e: Evidence) => { findings?: Finding[]; pending?: Pending } | undefined;
}

const lookupsOf = (a: AttributionInput, mode: ProbeSummary['mode']): ProbeSummary | undefined => a.probes.find((p) => p.kind === 'lookups' && p.mode === mode);
const failures = (p: ProbeSummary): Tally => tally(p.stalled + p.failed, p.units);
const decisive = (c: Comparison | undefined): boolean => c?.strength === 'decisive';
const suggestive = (c: Comparison | undefined): boolean => c?.strength === 'suggestive';
const pct = (n: number, of: number): string => percentOf(n, of);

/** The names of the losses' causes: without one, measured stalls are said as unexplained. */
/**
 * Causes that explain the stalls of every probe they touch: a rule further down that reads the same stalls (the race,
 * the server, the path) stands aside once one of these is named.
 */
const NEARER: readonly FindingCode[] = ['NIC_ALLOWANCE_EXCEEDED', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'UPSTREAM_FAILURE'];
const explained = (named: ReadonlySet<FindingCode>, also: readonly FindingCode[] = []): boolean => [...NEARER, ...also].some((c) => named.has(c));

const LOSS_CAUSES: ReadonlySet<FindingCode> = new Set<FindingCode>([
  'NAMESERVER_UNREACHABLE', 'LOCAL_DROPS', 'NIC_ALLOWANCE_EXCEEDED', 'RATE_LIMITED', 'COREDNS_OVERLOADED', 'COREDNS_UPSTREAM', 'UPSTREAM_FAILURE', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'LATE_ANSWERS', 'SERVER_LOSS',
  'DNAT_PATH_LOSS', 'UDP_PATH_LOSS', 'TCP_FALLBACK_BLOCKED', 'INCONCLUSIVE',
]);

/** The rules, in the verdict's order: nearer and more specific causes first. */
export const RULES: readonly Rule[] = [
  { codes: ['LOOKUPS_DISABLED'], from: 'resolv' },
  {
    codes: ['NAMESERVER_UNREACHABLE'],
    from: 'doctor',
    decide: ({ a, ns }) => {
      const sent = a.probes.filter((p) => p.kind !== 'endpoint' && p.mode !== 'parallel-direct');
      const total = sent.reduce((n, p) => n + p.sent, 0);
      // An answer that came after its timeout is an answer: a slow server (LATE_ANSWERS), not one that answers nothing.
      if (total < MIN_COUNT || sent.some((p) => p.answered > 0 || p.late > 0)) return undefined;
      const timeouts = sent.reduce((n, p) => n + p.timeouts, 0);
      const errors = sent.reduce((n, p) => n + p.errors, 0);
      const codes = sumRecords(sent.map((p) => p.errorCodes));
      const codeList = Object.entries(codes).map(([k, v]) => `${k} ${v}`).join(', ');
      return {
        findings: [{
          code: 'NAMESERVER_UNREACHABLE', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `none of ${total} queries to ${ns} was answered (${timeouts} timed out, ${errors} failed at once${codeList ? `: ${codeList}` : ''}), over UDP and TCP, in every probe`,
          evidence: { sent: total, timeouts, errors, codes: Object.keys(codes).sort().join(' ') },
          remedy: codes['ECONNREFUSED'] !== undefined
            ? `nothing listens on ${ns}: is the DNS Service's cluster IP right, and has it endpoints (kubectl -n kube-system get endpointslices -l k8s-app=kube-dns)?`
            : `the nameserver does not answer: its pods (kubectl -n kube-system get pods -l k8s-app=kube-dns), a NetworkPolicy that blocks port 53, the route to ${ns}`,
        }],
      };
    },
  },
  {
    codes: ['LOCAL_DROPS'],
    from: 'doctor',
    decide: ({ a }) => {
      const localDrops = a.probes.reduce((n, p) => n + p.localDrops, 0);
      if (localDrops === 0) return undefined;
      return {
        findings: [{
          code: 'LOCAL_DROPS', severity: 'warning', subject: { kind: 'machine' },
          message: `${localDrops} replies were dropped by this machine's own receive buffers during the probes: the losses below may be partly local`,
          evidence: { ownSocketDrops: localDrops, namespaceRcvbufErrors: null, namespaceInErrors: null, recvBufferBytes: null, concurrency: 0, sourcePorts: 0 },
          remedy: 'rerun with a smaller --budget, or raise net.core.rmem_max',
        }],
      };
    },
  },
  {
    codes: ['NIC_ALLOWANCE_EXCEEDED'],
    from: 'doctor',
    decide: ({ a }) => {
      const rose = (a.nic ?? []).filter((d) => d.delta >= MIN_COUNT);
      if (rose.length === 0) return undefined;
      const losing = a.probes.filter((p) => decisive(lossy(p)));
      const what: Record<string, string> = {
        linklocal_allowance_exceeded: "packets to the VPC's link-local services, its DNS resolver among them, over 1024/s per interface",
        pps_allowance_exceeded: "packets over the instance's packets-per-second allowance",
        conntrack_allowance_exceeded: "new flows over the instance's connection-tracking allowance",
        bw_in_allowance_exceeded: 'inbound traffic over the instance\'s bandwidth allowance',
        bw_out_allowance_exceeded: 'outbound traffic over the instance\'s bandwidth allowance',
      };
      return {
        findings: [{
          code: 'NIC_ALLOWANCE_EXCEEDED', severity: losing.length > 0 ? 'critical' : 'warning', subject: { kind: 'machine' },
          message:
            `the cloud network interface shaped or dropped packets during the probes: ${rose.map((d) => `${d.iface} ${d.counter} +${d.delta} (${what[d.counter] ?? d.counter})`).join('; ')}` +
            (losing.length > 0 ? `, while the probes lost queries (${losing.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')}): the instance's network limits, not DNS itself` : '; the probes lost nothing beyond chance, but the pods\' traffic may'),
          evidence: { counters: rose.map((d) => `${d.iface}:${d.counter}+${d.delta}`).join(' '), linklocal: rose.filter((d) => d.counter === 'linklocal_allowance_exceeded').reduce((n, d) => n + d.delta, 0), losingProbes: losing.length },
          remedy: rose.some((d) => d.counter === 'linklocal_allowance_exceeded')
            ? 'spread DNS off the VPC resolver: NodeLocalDNS (a cache on every node), CoreDNS cache plugin with a longer TTL, fewer queries per lookup (ndots); or an instance type with more network allowance'
            : 'an instance type with a larger network allowance (ENA: pps, conntrack, bandwidth), or less traffic on this node',
        }],
      };
    },
  },
  {
    codes: ['RATE_LIMITED'],
    from: 'doctor',
    decide: ({ raw, paced, ns, endpoints }) => {
      const fast = raw.filter((p) => p.qtype === 'A');
      if (fast.length === 0 || paced.length === 0) return undefined;
      const f = pool(fast.map(stalls));
      const slow = pool(paced.map(stalls));
      const c = worseThan(f, slow);
      const fastRate = fast.reduce((n, p) => n + (p.rate ?? 0), 0);
      const slowRate = paced.reduce((n, p) => n + (p.rate ?? 0), 0);
      if (suggestive(c)) return { pending: { candidates: 'a rate limit, or chance loss', tellApart: `more queries at both rates (now ${c.said})`, more: ['rate', 'raw'] } };
      if (!decisive(c)) return undefined;
      return {
        findings: [{
          code: 'RATE_LIMITED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `queries sent in bursts of 20 at once (${fastRate.toFixed(0)} queries/s on average, timeouts included) are lost (${show(f)}) and not at a steady ${slowRate.toFixed(0)}/s (${show(slow)}; ${c.said}): loss that grows with the rate is a limit (the server's rate limiting, a cloud resolver's per-interface packet limit) or an overloaded server; doctor's own bursts are above it, so its other figures overstate the loss your pods see at their own rate` +
            (endpoints.length > 0 ? ` (endpoints probed at full speed: ${endpoints.map((p) => `${p.target} ${show(stalls(p))} at ${(p.rate ?? 0).toFixed(0)}/s`).join(', ')})` : ''),
          evidence: { fastLost: f.n, fastSent: f.of, fastRate: Number(fastRate.toFixed(1)), slowLost: slow.n, slowSent: slow.of, slowRate: Number(slowRate.toFixed(1)) },
          remedy: 'find the limit: CoreDNS (its CPU, max_concurrent in forward, replicas), the node\'s cloud network interface (ethtool -S: linklocal_allowance_exceeded, pps_allowance_exceeded), a ratelimit plugin; NodeLocalDNS caches and spreads the load',
        }],
      };
    },
  },
  {
    codes: ['COREDNS_OVERLOADED'],
    from: 'doctor',
    decide: ({ a, ns }) => {
      const hit = (a.coredns ?? []).filter((d) => d.maxConcurrentRejects >= MIN_COUNT || d.panics > 0);
      if (hit.length === 0) return undefined;
      return {
        findings: [{
          code: 'COREDNS_OVERLOADED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `CoreDNS counted during the probes: ${hit.map((d) => `${d.url}: ${d.maxConcurrentRejects} queries refused at forward's max_concurrent, ${d.panics} panics, of ${d.requests} requests`).join('; ')}: CoreDNS itself is overloaded (it answers REFUSED or nothing when its forward plugin is at max_concurrent)`,
          evidence: { pages: hit.length, maxConcurrentRejects: hit.reduce((n, d) => n + d.maxConcurrentRejects, 0), panics: hit.reduce((n, d) => n + d.panics, 0), requests: hit.reduce((n, d) => n + d.requests, 0) },
          remedy: 'CoreDNS: more replicas or CPU (its limits, throttling), a larger max_concurrent in forward only if the upstream keeps up, the cache plugin; NodeLocalDNS spreads the load',
        }],
      };
    },
  },
  {
    codes: ['TYPE_UNANSWERED'],
    from: 'doctor',
    decide: ({ raw, ns, named }) => {
      if (named.has('RATE_LIMITED')) return undefined;
      const byType = (t: 'A' | 'AAAA') => pool(raw.filter((p) => p.qtype === t).map(stalls));
      for (const [lost, other] of [['AAAA', 'A'], ['A', 'AAAA']] as const) {
        const c = worseThan(byType(lost), byType(other));
        if (decisive(c)) {
          const l = byType(lost);
          const o = byType(other);
          return {
            findings: [{
              code: 'TYPE_UNANSWERED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
              message: `${lost} queries go unanswered (${show(l)}) while ${other} queries are answered (${show(o)}; ${c.said}): every lookup that asks for both waits for the ${lost} answer, a timeout each time; not the conntrack race, which loses either type`,
              evidence: { type: lost, lost: l.n, sent: l.of, otherType: other, otherLost: o.n, otherSent: o.of },
              remedy: `find what drops ${lost} queries: the DNS server's configuration (a plugin or policy that ignores ${lost}), a firewall that filters by query type; CoreDNS answers ${lost} for names without one with NOERROR and no records`,
            }],
          };
        }
        if (suggestive(c)) return { pending: { candidates: `${lost} queries lost by the server or chance`, tellApart: `more raw ${lost} and ${other} queries (now ${c.said})`, more: ['raw'] } };
      }
      return undefined;
    },
  },
  {
    codes: ['ENDPOINT_LOSS'],
    from: 'doctor',
    decide: ({ a, endpoints, named }) => {
      // Under a rate limit, which endpoint loses more depends on which one doctor's bursts reached first.
      if (named.has('RATE_LIMITED')) return undefined;
      const out: Finding[] = [];
      let pending: Pending | undefined;
      for (const p of endpoints) {
        const others = endpoints.filter((o) => o !== p && o.answered > 0);
        if (others.length === 0) continue;
        const rest = pool(others.map(stalls));
        const c = worseThan(stalls(p), rest);
        if (decisive(c)) {
          out.push({
            code: 'ENDPOINT_LOSS', severity: 'critical', subject: { kind: 'endpoint', address: p.target, service: a.service?.id ?? null },
            message: `endpoint ${p.target} loses queries when probed directly (${show(stalls(p))}, ${pct(p.stalled, p.units)}) while ${others.map((o) => o.target).join(', ')} lose ${show(rest)} (${c.said}): that endpoint, not the path`,
            evidence: { endpoint: p.target, lost: p.stalled, sent: p.units, otherLost: rest.n, otherSent: rest.of, p: Number(c.p.toPrecision(3)), cleanEndpoints: others.filter((o) => o.stalled === 0).map((o) => o.target).join(' ') },
            remedy: `look at the DNS pod behind ${p.target}: its logs, CPU throttling, its node; delete it to have it rescheduled`,
          });
        } else if (suggestive(c)) {
          pending = { candidates: `endpoint ${p.target}, or chance loss on the way to it`, tellApart: `more queries to each endpoint (now ${c.said})`, more: ['endpoints'] };
        }
      }
      return out.length > 0 ? { findings: out } : pending ? { pending } : undefined;
    },
  },
  {
    codes: ['UPSTREAM_FAILURE'],
    from: 'doctor',
    decide: ({ a, ns, par, reopen, tcp, inCluster, named }) => {
      if (explained(named)) return undefined;
      if (inCluster === undefined) return undefined;
      const external = [par, reopen, tcp].filter((p): p is ProbeSummary => p !== undefined);
      if (external.length === 0) return undefined;
      const fails = (p: ProbeSummary): Tally => tally(p.stalled + p.servfailed, p.units);
      const ext = pool(external.map(fails));
      const own = fails(inCluster);
      const c = worseThan(ext, own);
      if (suggestive(c)) return { pending: { candidates: 'the upstream resolvers, or chance loss', tellApart: `more lookups of the external and the in-cluster name (now ${c.said})`, more: ['upstream', 'lookup-modes'] } };
      if (!decisive(c)) return undefined;
      const servfail = external.reduce((n, p) => n + p.servfailed, 0);
      const stalled = external.reduce((n, p) => n + p.stalled, 0);
      return {
        findings: [{
          code: 'UPSTREAM_FAILURE', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `lookups of ${a.name} fail (${show(ext)}: ${stalled} stalled, ${servfail} SERVFAIL, in every mode) while the in-cluster ${inCluster.label.replace(/^lookups of the in-cluster name /, '')} is answered (${show(own)}; ${c.said}): the upstream resolvers the DNS server forwards to, not the server itself nor the path to it`,
          evidence: { externalFailed: ext.n, externalLookups: ext.of, servfail, stalled, inClusterFailed: own.n, inClusterLookups: own.of },
          remedy: 'CoreDNS: its forward plugin\'s upstreams (forward . /etc/resolv.conf: the node\'s resolvers), their reachability and latency (coredns_forward_request_duration_seconds, coredns_forward_responses_total{rcode}), a cloud resolver\'s limits',
        }],
      };
    },
  },
  {
    codes: ['COREDNS_UPSTREAM'],
    from: 'doctor',
    decide: ({ a, ns, named }) => {
      const slow = (d: CorednsDelta): boolean => d.forwarded >= MIN_COUNT && (d.forwardMeanSeconds ?? 0) >= 0.5;
      const hit = (a.coredns ?? []).filter((d) => d.forwardServfail >= MIN_COUNT || slow(d));
      if (hit.length === 0) return undefined;
      const failing = hit.reduce((n, d) => n + d.forwardServfail, 0);
      const forwarded = hit.reduce((n, d) => n + d.forwarded, 0);
      return {
        findings: [{
          code: 'COREDNS_UPSTREAM', severity: named.has('UPSTREAM_FAILURE') || failing * 2 >= forwarded ? 'critical' : 'warning', subject: { kind: 'nameserver', address: ns },
          message: `CoreDNS's forward plugin, during the probes: ${hit.map((d) => `${d.url}: ${d.forwarded} forwarded, ${d.forwardServfail} SERVFAIL from upstream, ${d.forwardMeanSeconds === null ? 'n/a' : `${(d.forwardMeanSeconds * 1000).toFixed(0)} ms`} mean`).join('; ')}: the upstream resolvers are ${failing >= MIN_COUNT ? 'failing' : 'slow'}, not CoreDNS itself`,
          evidence: { pages: hit.length, forwarded, forwardServfail: failing, forwardMeanMs: Math.max(...hit.map((d) => Math.round((d.forwardMeanSeconds ?? 0) * 1000))) },
          remedy: "CoreDNS's upstreams (forward . /etc/resolv.conf: the node's resolvers): their reachability, latency and limits; the cache plugin (serve_stale) hides a slow upstream",
        }],
      };
    },
  },
  {
    codes: ['CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS'],
    from: 'doctor',
    decide: ({ a, ns, par, reopen, tcp, direct, named }) => {
      if (par === undefined || reopen === undefined || explained(named)) return undefined;
      const sig = worseThan(stalls(par), stalls(reopen));
      // TCP losing as much is no race signature: the server or the path loses everything.
      if (tcp !== undefined && decisive(lossy(tcp))) return undefined;
      const sends = worseThan(tally(par.failed, par.units), tally(reopen.failed, reopen.units));
      if (decisive(sends)) {
        const f = raceFromSendErrors({ par, reopen, ns, libc: a.libc, clashFixes: a.clashFixes, insertFailed: a.insertFailed, said: sends.said });
        if (f) return { findings: [f] };
      }
      if (suggestive(sig)) {
        return { pending: { candidates: 'the race signature (A+AAAA from one socket) or chance loss', tellApart: `more lookups with A+AAAA from one socket and with single-request-reopen (now ${sig.said})`, more: ['lookup-modes', 'direct'] } };
      }
      if (!decisive(sig)) return undefined;
      const signature = `lookups stall when A and AAAA leave one socket together (${show(stalls(par))} lookups), not with single-request-reopen (${show(stalls(reopen))}; ${sig.said})` +
        (tcp !== undefined ? ` nor over TCP (${show(stalls(tcp))})` : '');
      const r = raceOrNot({ par, reopen, direct, ns, libc: a.libc, clashFixes: a.clashFixes, insertFailed: a.insertFailed, nodeLocalDNS: a.nodeLocalDNS, signature });
      if (r.kind === 'finding') return { findings: [r.finding] };
      return { pending: { candidates: r.candidates, tellApart: r.tellApart, more: r.more } };
    },
  },
  {
    codes: ['LATE_ANSWERS'],
    from: 'doctor',
    decide: ({ a, ns, named }) => {
      if (explained(named)) return undefined;
      const queries = a.probes.filter((p) => p.kind !== 'lookups');
      const late = queries.reduce((n, p) => n + p.late, 0);
      const timeouts = queries.reduce((n, p) => n + p.timeouts, 0);
      const sent = queries.reduce((n, p) => n + p.sent, 0);
      if (late < MIN_COUNT || late * 2 < timeouts) return undefined;
      return {
        findings: [{
          code: 'LATE_ANSWERS', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `${late} of ${timeouts} queries that timed out were answered after their timeout: the server is slow, not losing packets; a client resends or gives up before the answer comes`,
          evidence: { late, timeouts, sent },
          remedy: 'CoreDNS: its CPU (throttling, limits), its replicas, its upstream (forward) latency; the cache (cache plugin) for repeated names',
        }],
      };
    },
  },
  {
    codes: ['SERVER_LOSS'],
    from: 'doctor',
    decide: ({ ns, par, reopen, tcp, endpoints, named, pending }) => {
      if (reopen === undefined || tcp === undefined || pending.has('CONNTRACK_RACE') || explained(named, ['LATE_ANSWERS'])) return undefined;
      const u = lossy(reopen);
      const t = lossy(tcp);
      const losing = endpoints.filter((p) => decisive(lossy(p)));
      const allEndpointsLose = endpoints.length > 0 && losing.length === endpoints.length;
      if (!(decisive(u) && decisive(t) && (endpoints.length === 0 || allEndpointsLose))) {
        if ((suggestive(u) || decisive(u)) && (suggestive(t) || decisive(t))) return { pending: { candidates: 'the DNS server losing queries, or chance loss', tellApart: `more lookups in every mode (now ${u.said}; TCP ${t.said})`, more: ['lookup-modes'] } };
        return undefined;
      }
      return {
        findings: [{
          code: 'SERVER_LOSS', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message:
            `lookups stall in every mode, TCP included (${par ? show(stalls(par)) : 'n/a'} A+AAAA from one socket, ${show(stalls(reopen))} with single-request-reopen, ${show(stalls(tcp))} over TCP; ` +
            `each beyond a ${BACKGROUND_LOSS * 100}% datagram background: ${formatP(u.p)}, ${formatP(t.p)})` +
            (allEndpointsLose ? ' and every endpoint loses when probed directly' : '') +
            ': the DNS server or its upstream, not the conntrack race' +
            (endpoints.length === 0 ? ' (its endpoints could not be probed apart: the path between is not ruled out)' : ''),
          evidence: { parallelStalled: par?.stalled ?? 0, reopenStalled: reopen.stalled, tcpStalled: tcp.stalled, endpointsProbed: endpoints.length, endpointsLosing: losing.length },
          remedy: 'CoreDNS: its load (CPU throttling, replicas), its logs, its upstream resolvers (forward . /etc/resolv.conf) and their loss',
        }],
      };
    },
  },
  {
    codes: ['DNAT_PATH_LOSS'],
    from: 'doctor',
    decide: ({ raw, endpoints, named }) => {
      if (raw.length === 0 || endpoints.length === 0 || explained(named)) return undefined;
      const svc = pool(raw.map(stalls));
      const eps = pool(endpoints.map(stalls));
      const c = worseThan(svc, eps);
      if (suggestive(c)) return { pending: { candidates: 'the DNAT/conntrack path, or chance loss', tellApart: `more queries to the Service IP and to each endpoint (now ${c.said})`, more: ['raw', 'endpoints'] } };
      if (!decisive(c) || endpoints.some((p) => decisive(lossy(p)))) return undefined;
      const target = raw[0]!.target;
      return {
        findings: [{
          code: 'DNAT_PATH_LOSS', severity: 'critical', subject: { kind: 'nameserver', address: target },
          message: `queries to the Service IP ${target} are lost (${show(svc)}) while the endpoints probed directly lose ${show(eps)} (${c.said}): the DNAT/conntrack path`,
          evidence: { lost: svc.n, sent: svc.of, endpointsLost: eps.n, endpointsSent: eps.of, endpointsProbed: endpoints.length },
          remedy: 'check `k8sdiag conntrack` (insert_failed, drop) and `k8sdiag svc --live` (fall-through, missing chains) on the node',
        }],
      };
    },
  },
  {
    codes: ['UDP_PATH_LOSS'],
    from: 'doctor',
    decide: ({ ns, par, reopen, tcp, endpoints, named, pending }) => {
      if (tcp === undefined || pending.has('CONNTRACK_RACE') || explained(named, ['CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'SERVER_LOSS', 'LATE_ANSWERS'])) return undefined;
      const udpProbes = [par, reopen].filter((p): p is ProbeSummary => p !== undefined);
      if (udpProbes.length === 0) return undefined;
      const udp = pool(udpProbes.map(stalls));
      const bg = aboveBackground(udp, 4);
      const c = worseThan(udp, stalls(tcp));
      if (!(decisive(bg) && decisive(c))) {
        if ((suggestive(bg) || decisive(bg)) && !decisive(lossy(tcp))) return { pending: { candidates: 'the UDP path losing packets, or chance loss', tellApart: `more lookups over UDP and TCP (now ${c.said})`, more: ['lookup-modes'] } };
        return undefined;
      }
      const allEndpointsLose = endpoints.length > 0 && endpoints.every((p) => decisive(lossy(p)));
      return {
        findings: [{
          code: 'UDP_PATH_LOSS', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message:
            `lookups stall over UDP (${par ? show(stalls(par)) : 'n/a'} A+AAAA from one socket, ${reopen ? show(stalls(reopen)) : 'n/a'} with single-request-reopen) but not over TCP (${show(stalls(tcp))}; ${c.said}): ` +
            (endpoints.length === 0
              ? "the UDP path (conntrack, the network) loses packets, or the server's own UDP side (its endpoints were not probed apart: give --endpoints)"
              : allEndpointsLose
                ? "every endpoint loses UDP queries when probed directly too: the servers' UDP side, or the network up to them, not the DNAT"
                : 'the UDP path (conntrack, the network) loses packets'),
          evidence: { parallelStalled: par?.stalled ?? 0, reopenStalled: reopen?.stalled ?? 0, tcpStalled: tcp.stalled },
          remedy: 'check `k8sdiag conntrack` on the node for drops and table pressure; NodeLocalDNS takes DNS out of conntrack',
        }],
      };
    },
  },
  {
    codes: ['TCP_FALLBACK_BLOCKED'],
    from: 'doctor',
    decide: ({ ns, reopen, tcp }) => {
      if (tcp === undefined || reopen === undefined) return undefined;
      const c = worseThan(failures(tcp), failures(reopen));
      if (!decisive(c) || decisive(lossy(reopen))) return undefined;
      const codes = Object.entries(tcp.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ');
      return {
        findings: [{
          code: 'TCP_FALLBACK_BLOCKED', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `lookups over TCP fail (${show(failures(tcp))}: ${tcp.stalled} timed out, ${tcp.failed} failed at once${codes ? `, ${codes}` : ''}) while the same over UDP succeed (${show(failures(reopen))}; ${c.said}): answers too large for UDP (truncated, TC) will fail, since the resolver retries them over TCP`,
          evidence: { tcpFailed: tcp.stalled + tcp.failed, tcpLookups: tcp.units, udpFailed: reopen.stalled + reopen.failed, udpLookups: reopen.units },
          remedy: 'allow TCP port 53 to the DNS pods wherever UDP 53 is allowed: NetworkPolicies (egress to kube-dns), security groups, host firewalls',
        }],
      };
    },
  },
  {
    codes: ['SERVER_FAILURES'],
    from: 'doctor',
    decide: ({ raw, ns }) => {
      const answered = raw.reduce((n, p) => n + p.answered, 0);
      const servfail = raw.reduce((n, p) => n + (p.rcodes['SERVFAIL'] ?? 0), 0);
      const refused = raw.reduce((n, p) => n + (p.rcodes['REFUSED'] ?? 0), 0);
      // One datagram each: the answer that came back SERVFAIL or REFUSED.
      const c = aboveBackground(tally(servfail + refused, answered), 1);
      if (!decisive(c)) return undefined;
      const share = (servfail + refused) / answered;
      return {
        findings: [{
          code: 'SERVER_FAILURES', severity: share >= 0.5 ? 'critical' : 'warning', subject: { kind: 'nameserver', address: ns },
          message: `${pct(servfail + refused, answered)} of the answers are failures (SERVFAIL ${servfail}, REFUSED ${refused} of ${answered} answers): the server answers, but cannot resolve; failures, not stalls`,
          evidence: { servfail, refused, answered, share: Number(share.toFixed(4)) },
          remedy: refused > servfail
            ? 'REFUSED: the server will not serve this client or zone (its ACL, a policy plugin, a view)'
            : 'SERVFAIL: the server could not get an answer from upstream (CoreDNS: its forward plugin\'s upstreams, their reachability and latency; DNSSEC validation failures)',
        }],
      };
    },
  },
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
        findings: [{
          code: 'PROBE_ERRORS', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `queries failed at once with an error instead of an answer or a timeout: ${erred.map((p) => `${p.label}: ${Object.entries(p.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ')}`,
          evidence: { probes: erred.length, errors: erred.reduce((n, p) => n + p.errors, 0), codes: Object.keys(codes).sort().join(' ') },
          remedy: errorRemedy(codes),
        }],
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
        findings: [{
          code: 'NDOTS_COST', severity: 'warning', subject: { kind: 'name', name: a.name },
          message:
            `${a.name} costs ${par.queriesPerUnit.toFixed(1)} queries and ${par.medianMs.toFixed(1)} ms (median) per lookup through the search list; ` +
            `${dot.queriesPerUnit.toFixed(1)} queries and ${dot.medianMs.toFixed(1)} ms as "${bare}.": about ${perName.toFixed(1)} ms for each of ${searchNames} search-list name(s) answered NXDOMAIN`,
          evidence: { queriesPerLookup: Number(par.queriesPerUnit.toFixed(2)), queriesWithTrailingDot: Number(dot.queriesPerUnit.toFixed(2)), medianMs: par.medianMs, medianMsWithTrailingDot: dot.medianMs, searchNames, msPerSearchName: Number(perName.toFixed(2)) },
          remedy: a.ndots.remedy,
        }],
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
        findings.push({
          code: 'INCONCLUSIVE', severity: 'warning', subject: { kind: 'nameserver', address: e.ns },
          message: `a pattern shows but is not decisive (${ALPHA} is the bar for chance): ${p.candidates}; what would tell them apart: ${p.tellApart}`,
          evidence: { candidates: p.candidates, tellApart: p.tellApart },
          remedy: 'rerun with a larger --budget, so doctor can probe more in the modes that decide',
        });
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
  return {
    code: 'STALLS_UNEXPLAINED', severity: 'warning', subject: { kind: 'nameserver', address: e.ns },
    message:
      `stalls beyond chance were measured (${stalled.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')}) but fit none of the patterns that name a cause` +
      (missing.length > 0 ? `; not probed: lookups ${missing.join(', ')}` : ''),
    evidence: { stalledProbes: stalled.length, stalled: stalled.reduce((n, p) => n + p.stalled, 0), notProbed: missing.join(' ') },
    remedy: missing.length > 0
      ? 'rerun with a larger --budget so that every probe runs'
      : '`k8sdiag dnsbench` against the nameserver and each endpoint measures each alone; `k8sdiag conntrack --watch 30` on the node while it runs',
  };
}
