/**
 * From probes to causes. Pure: the probes' numbers in, findings out. Each
 * rule blames the nearest cause the evidence supports and no further: local
 * drops before the network, one endpoint before the server, the server
 * before the path, and the conntrack race only when A+AAAA from one socket
 * stalls while the same lookups with single-request-reopen and over TCP do not,
 * and nothing rules it out (raceOrNot). Stalls no rule explains, and probes
 * that failed at once, are said as such, never as health.
 */
import type { Finding } from '../findings.js';

/** One probe's outcome, reduced to what attribution needs. */
export interface ProbeSummary {
  /** What was probed, as shown: "lookups, A+AAAA from one socket", "raw queries", ... */
  label: string;
  kind: 'raw' | 'lookups' | 'endpoint';
  /** For lookups: how the resolver sent them. */
  /** parallel-direct: A+AAAA from one socket, sent straight to one endpoint (no DNAT on the way). */
  mode: 'parallel' | 'parallel-direct' | 'single-request-reopen' | 'tcp' | 'trailing-dot' | null;
  /** The server or endpoint, host:port. */
  target: string;
  sent: number;
  answered: number;
  timeouts: number;
  errors: number;
  /** The errors by code (EPERM, ECONNREFUSED, ...). */
  errorCodes: Record<string, number>;
  /** Lookups done (lookup probes), or queries (raw and endpoint probes). */
  units: number;
  /** Lookups that took the resolver timeout or longer, or queries that timed out. */
  stalled: number;
  over1s: number;
  over5s: number;
  /** Replies this machine dropped itself (full receive buffers). */
  localDrops: number;
  /** Mean per unit, ms (null when nothing completed). */
  meanMs: number | null;
  /** Datagrams (queries) sent per lookup. */
  queriesPerUnit: number;
  /** glibc's fallback to single-request during the probe. */
  singleRequestSwitches: number;
}

export interface AttributionInput {
  probes: ProbeSummary[];
  /** The Service behind the nameserver, when found in the rules or given with --endpoints. */
  service: { id: string | null; clusterIP: string; endpoints: string[] } | null;
  libc: 'glibc' | 'musl' | 'unknown';
  /** The kernel's clash fixes (4.19, 5.0, 5.6, 5.10). */
  clashFixes: string[];
  /**
   * How much insert_failed rose during the probes in the network namespace that NATs them (the node's, where the race
   * counts every packet it drops); null where that is not known (a pod's namespace, or counters not readable).
   */
  insertFailedDuringProbes: number | null;
  /** The nameserver is NodeLocalDNS (169.254.20.10): a node-local cache reached with no DNAT on the way. */
  nodeLocalDNS: boolean;
  /** The name looked up, and resolv's amplification finding for it, if any. */
  name: string;
  ndots: Finding | undefined;
}

const stalls = (p: ProbeSummary | undefined): boolean => p !== undefined && p.stalled > 0;
const pct = (n: number, of: number): string => (of > 0 ? `${((n / of) * 100).toFixed(1)}%` : '0%');

function lossEvidence(p: ProbeSummary): string {
  return `${p.stalled}/${p.units}`;
}

/** The findings above that name a cause of lost queries: without one, stalls measured are said as unexplained. */
const LOSS_CAUSES = new Set(['LOCAL_DROPS', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'SERVER_LOSS', 'UDP_PATH_LOSS', 'DNAT_PATH_LOSS']);

const RACE_WHO =
  'glibc falls back to single-request after its first half-answered pair, so a long-lived process stalls once while ' +
  'short-lived ones (probes, cron jobs, CLI tools, one process per request) stall every time; musl has no such option';

export function attribute(a: AttributionInput): Finding[] {
  const out: Finding[] = [];
  const lookups = (mode: ProbeSummary['mode']): ProbeSummary | undefined => a.probes.find((p) => p.kind === 'lookups' && p.mode === mode);
  const par = lookups('parallel');
  const reopen = lookups('single-request-reopen');
  const tcp = lookups('tcp');
  const raw = a.probes.find((p) => p.kind === 'raw');
  const endpoints = a.probes.filter((p) => p.kind === 'endpoint');
  const ns = raw?.target ?? par?.target ?? 'the nameserver';

  // 1. The probe's own receive buffers: never the network's fault.
  const localDrops = a.probes.reduce((n, p) => n + p.localDrops, 0);
  if (localDrops > 0) {
    out.push({
      code: 'LOCAL_DROPS',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `${localDrops} replies were dropped by this machine's own receive buffers during the probes: the losses below may be partly local`,
      evidence: { ownSocketDrops: localDrops, namespaceRcvbufErrors: null, namespaceInErrors: null, recvBufferBytes: null, concurrency: 0, sourcePorts: 0 },
      remedy: 'rerun with a smaller --budget, or raise net.core.rmem_max',
    });
  }

  // 2. Endpoints probed directly: one losing while others are clean names that endpoint.
  const bad = endpoints.filter((p) => p.stalled > 0);
  const clean = endpoints.filter((p) => p.stalled === 0 && p.answered > 0);
  let blamedEndpoints = false;
  if (bad.length > 0 && clean.length > 0) {
    blamedEndpoints = true;
    for (const p of bad) {
      out.push({
        code: 'ENDPOINT_LOSS',
        severity: 'critical',
        subject: { kind: 'endpoint', address: p.target, service: a.service?.id ?? null },
        message: `endpoint ${p.target} loses queries when probed directly (${lossEvidence(p)}, ${pct(p.stalled, p.units)}) while ${clean.map((c) => c.target).join(', ')} ${clean.length === 1 ? 'is' : 'are'} clean: that endpoint, not the path`,
        evidence: { endpoint: p.target, lost: p.stalled, sent: p.units, cleanEndpoints: clean.map((c) => c.target).join(' ') },
        remedy: `look at the DNS pod behind ${p.target}: its logs, CPU throttling, its node; delete it to have it rescheduled`,
      });
    }
  }
  const allEndpointsLose = endpoints.length > 0 && bad.length === endpoints.length;

  // 3. The lookups in three modes.
  const udpOnly = (stalls(par) || stalls(reopen)) && tcp !== undefined && !stalls(tcp);
  if (!blamedEndpoints) {
    if (par !== undefined && reopen !== undefined && tcp !== undefined && par.stalled > 0 && reopen.stalled === 0 && tcp.stalled === 0) {
      // Only direct probes that got answers or stalled are evidence: one whose every lookup failed at once tells nothing.
      const direct = a.probes.filter((p) => p.kind === 'lookups' && p.mode === 'parallel-direct' && (p.answered > 0 || p.stalled > 0));
      out.push(raceOrNot(a, ns, { par, reopen, tcp }, direct));
    } else if (stalls(par) && stalls(reopen) && stalls(tcp) && (allEndpointsLose || endpoints.length === 0)) {
      out.push({
        code: 'SERVER_LOSS',
        severity: 'critical',
        subject: { kind: 'nameserver', address: ns },
        message:
          `lookups stall in every mode, TCP included (${lossEvidence(par!)}, ${lossEvidence(reopen!)}, ${lossEvidence(tcp!)})` +
          (allEndpointsLose ? ` and every endpoint loses when probed directly` : '') +
          ': the DNS server or its upstream, not the conntrack race' +
          (endpoints.length === 0 ? ' (its endpoints could not be probed apart: the path between is not ruled out)' : ''),
        evidence: { parallelStalled: par!.stalled, reopenStalled: reopen!.stalled, tcpStalled: tcp!.stalled, endpointsProbed: endpoints.length, endpointsLosing: bad.length },
        remedy: 'CoreDNS: its load (CPU throttling, replicas), its logs, its upstream resolvers (forward . /etc/resolv.conf) and their loss',
      });
    } else if (udpOnly) {
      out.push({
        code: 'UDP_PATH_LOSS',
        severity: 'warning',
        subject: { kind: 'nameserver', address: ns },
        message:
          `lookups stall over UDP (${par ? lossEvidence(par) : 'n/a'} A+AAAA from one socket, ${reopen ? lossEvidence(reopen) : 'n/a'} with single-request-reopen) but not over TCP: ` +
          (endpoints.length === 0
            ? "the UDP path (conntrack, the network) loses packets, or the server's own UDP side (its endpoints were not probed apart: give --endpoints)"
            : allEndpointsLose
              ? "every endpoint loses UDP queries when probed directly too: the servers' UDP side, or the network up to them, not the DNAT"
              : 'the UDP path (conntrack, the network) loses packets'),
        evidence: { parallelStalled: par?.stalled ?? 0, reopenStalled: reopen?.stalled ?? 0, tcpStalled: tcp.stalled },
        remedy: 'check `k8sdiag conntrack` on the node for drops and table pressure; NodeLocalDNS takes DNS out of conntrack',
      });
    }
  }

  // 4. The Service IP loses while every endpoint probed directly is clean: the DNAT/conntrack path.
  if (raw !== undefined && raw.stalled > 0 && endpoints.length > 0 && bad.length === 0) {
    out.push({
      code: 'DNAT_PATH_LOSS',
      severity: 'critical',
      subject: { kind: 'nameserver', address: raw.target },
      message: `queries to the Service IP ${raw.target} are lost (${lossEvidence(raw)}) while every endpoint probed directly answers all of them: the DNAT/conntrack path`,
      evidence: { lost: raw.stalled, sent: raw.units, endpointsProbed: endpoints.length },
      remedy: 'check `k8sdiag conntrack` (insert_failed, drop) and `k8sdiag svc --live` (fall-through, missing chains) on the node',
    });
  }

  // 5. Stalls measured that no rule above explains (a probe the budget left out, or a pattern none of them fits): said
  // as such, never "every probe was answered in time".
  const stalled = a.probes.filter((p) => p.stalled > 0);
  if (stalled.length > 0 && !out.some((f) => LOSS_CAUSES.has(f.code))) {
    const missing = (['parallel', 'single-request-reopen', 'tcp'] as const).filter((m) => lookups(m) === undefined);
    out.push({
      code: 'STALLS_UNEXPLAINED',
      severity: 'warning',
      subject: { kind: 'nameserver', address: ns },
      message:
        `stalls were measured (${stalled.map((p) => `${p.label}: ${lossEvidence(p)}`).join('; ')}) but fit none of the patterns that name a cause` +
        (missing.length > 0 ? `; not probed: lookups ${missing.join(', ')}` : ''),
      evidence: { stalledProbes: stalled.length, stalled: stalled.reduce((n, p) => n + p.stalled, 0), notProbed: missing.join(' ') },
      remedy: missing.length > 0 ? 'rerun with a larger --budget so that every probe runs' : 'rerun to see whether the pattern holds; `k8sdiag dnsbench` against the nameserver and each endpoint measures each alone',
    });
  }

  // 6. Queries that failed at once: on the sending machine a rule or conntrack that drops a packet as it leaves makes
  // the send fail (EPERM) instead of a timeout.
  const erred = a.probes.filter((p) => p.errors > 0);
  if (erred.length > 0) {
    const codes = new Map<string, number>();
    for (const p of erred) for (const [k, v] of Object.entries(p.errorCodes)) codes.set(k, (codes.get(k) ?? 0) + v);
    const local = codes.has('EPERM');
    out.push({
      code: 'PROBE_ERRORS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: ns },
      message: `queries failed at once with an error instead of an answer or a timeout: ${erred.map((p) => `${p.label}: ${Object.entries(p.errorCodes).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ')}`,
      evidence: { probes: erred.length, errors: erred.reduce((n, p) => n + p.errors, 0), codes: [...codes.keys()].sort().join(' ') },
      remedy: local
        ? 'EPERM: a rule on this machine (iptables or nftables OUTPUT, a network policy agent) or conntrack dropped the packet as it left; on a node, insert_failed rising during the probes is the conntrack race on its own traffic'
        : codes.has('ECONNREFUSED')
          ? 'ECONNREFUSED: nothing listens on that address and port (ICMP port unreachable)'
          : 'see the error codes',
    });
  }

  // 7. What the search list costs, measured.
  const dot = lookups('trailing-dot');
  if (a.ndots !== undefined && par !== undefined && dot !== undefined && par.meanMs !== null && dot.meanMs !== null && par.queriesPerUnit > dot.queriesPerUnit) {
    out.push({
      code: 'NDOTS_COST',
      severity: 'warning',
      subject: { kind: 'name', name: a.name },
      message:
        `${a.name} costs ${par.queriesPerUnit.toFixed(1)} queries and ${par.meanMs.toFixed(1)} ms per lookup through the search list; ` +
        `${dot.queriesPerUnit.toFixed(1)} queries and ${dot.meanMs.toFixed(1)} ms as "${a.name.replace(/\.$/, '')}."`,
      evidence: { queriesPerLookup: Number(par.queriesPerUnit.toFixed(2)), queriesWithTrailingDot: Number(dot.queriesPerUnit.toFixed(2)), meanMs: par.meanMs, meanMsWithTrailingDot: dot.meanMs },
      remedy: a.ndots.remedy,
    });
  }
  return out;
}

/**
 * The race signature (A+AAAA from one socket stall, single-request-reopen and TCP do not) is the conntrack race unless
 * the evidence rules it out: insert_failed not rising during the probes where they are NATed (the node's namespace);
 * the same lookups straight to the endpoints (`direct`, no DNAT on the way) stalling too on a kernel that resolves
 * clashes of un-NATed flows (4.19); or, with no endpoint probed, a kernel that resolves the NAT clash as well (5.6).
 * Then something else drops the second of two queries sent at once: PARALLEL_QUERY_LOSS. insert_failed rising names
 * the race whatever else holds.
 */
function raceOrNot(a: AttributionInput, ns: string, m: { par: ProbeSummary; reopen: ProbeSummary; tcp: ProbeSummary }, direct: ProbeSummary[]): Finding {
  const fixes = new Set(a.clashFixes);
  const stalling = direct.filter((p) => p.stalled > 0);
  const each = (ps: ProbeSummary[]): string => ps.map((p) => `${p.target} ${lossEvidence(p)}`).join(', ');
  const signature =
    `lookups stall when A and AAAA leave one socket together (${lossEvidence(m.par)} lookups), but not with single-request-reopen ` +
    `(${lossEvidence(m.reopen)}) nor over TCP (${lossEvidence(m.tcp)})`;
  const evidence = {
    parallelStalled: m.par.stalled, parallelLookups: m.par.units, reopenStalled: m.reopen.stalled, tcpStalled: m.tcp.stalled,
    directStalled: direct.length > 0 ? stalling.reduce((n, p) => n + p.stalled, 0) : null, directLookups: direct.reduce((n, p) => n + p.units, 0),
    insertFailedDuringProbes: a.insertFailedDuringProbes,
  };
  const kernel = { libc: a.libc, kernelClashFixes: a.clashFixes.join(' ') || 'none' };
  const counted = a.insertFailedDuringProbes;
  const risen = counted !== null && counted > 0;
  // NodeLocalDNS's address is not NATed: its lookups are un-NATed flows, which a 4.19 kernel's clash fix covers.
  const unNated = a.nodeLocalDNS && fixes.has('4.19');
  /** What rules the race out, in the words the finding gives, and who else is suspected; undefined when nothing does. */
  const ruledOut = ((): { why: string; alsoSuspect: string } | undefined => {
    if (counted !== null) {
      if (counted > 0) return undefined;
      return { why: 'it is not: insert_failed did not move during the probes in this network namespace, which NATs them and where the race counts every packet it drops. ', alsoSuspect: '' };
    }
    if (unNated) return { why: `it is not: the nameserver is NodeLocalDNS (${ns}), reached with no DNAT on the way, and this kernel resolves clashes of un-NATed flows (4.19). `, alsoSuspect: '' };
    if (stalling.length > 0) {
      if (!fixes.has('4.19')) return undefined;
      return { why: `it is not: the same lookups sent straight to ${each(stalling)}, with no DNAT on the way, stall too, and this kernel resolves clashes of un-NATed flows (4.19). `, alsoSuspect: '' };
    }
    if (direct.length > 0 || !fixes.has('5.6')) return undefined;
    return {
      why: `this kernel resolves (clash fixes ${a.clashFixes.join(', ')}), so it is not the likely cause. `,
      alsoSuspect: ", or NAT on another kernel (a pod in its own VM, whose kernel is not the node's; its endpoints were not probed past the DNAT: give --endpoints)",
    };
  })();
  if (ruledOut !== undefined) {
    return {
      code: 'PARALLEL_QUERY_LOSS',
      severity: 'critical',
      subject: { kind: 'nameserver', address: ns },
      message:
        `${signature}: the signature of the conntrack insert race, which ${ruledOut.why}` +
        `Something drops the second of two queries sent at once from one port: the DNS server, a proxy or firewall in front of it${ruledOut.alsoSuspect}`,
      evidence: { ...evidence, ...kernel },
      remedy:
        (a.libc === 'musl' ? 'musl always sends A and AAAA at once: TCP or a cache in the pod; ' : "options single-request-reopen in the pod's dnsConfig avoids it; ") +
        (unNated
          ? "then look at this node's node-local-dns pod (its logs, its memory and CPU limits) and what it forwards to"
          : `then find what drops the second query: the server behind ${ns} (its logs, a rate limit, its version), and anything between that tracks UDP flows`),
    };
  }
  const pastDnat =
    (risen ? `, and insert_failed rose by ${counted} during the probes here, where they are NATed` : '') +
    (direct.length === 0
      ? ''
      : stalling.length === 0
        ? `, nor when sent straight to the endpoints with no DNAT on the way (${each(direct)})`
        : `; sent straight to the endpoints they stall too (${each(stalling)}), ${risen ? 'un-NATed ones too' : 'which this kernel (no 4.19 clash fix) also drops'}`);
  let caveat = '';
  if (!risen && direct.length === 0) {
    caveat = ' Its endpoints were not probed past the DNAT (give --endpoints): a server that drops the second of two queries sent at once from one port is not ruled out.';
  } else if (!risen && stalling.length === 0 && fixes.has('5.6')) {
    caveat = " This kernel resolves that clash (5.6): the NAT that drops them runs on another kernel (a pod in its own VM) or is not netfilter's.";
  }
  return {
    code: 'CONNTRACK_RACE',
    severity: 'critical',
    subject: { kind: 'nameserver', address: ns },
    message:
      `${signature}${pastDnat}: the conntrack insert race. ${RACE_WHO}` +
      (a.libc === 'musl' ? ' (this image is musl: NodeLocalDNS or TCP are its remedies)' : a.libc === 'glibc' ? ' (this image is glibc)' : '') +
      `.${caveat}`,
    evidence: { ...evidence, singleRequestSwitches: m.par.singleRequestSwitches, ...kernel },
    remedy:
      (a.libc === 'musl' ? '' : "options single-request-reopen in the pod's dnsConfig; ") +
      'NodeLocalDNS (no conntrack on the way to the cache); a kernel with the clash fixes (5.0+ for NATed UDP, 5.6 IPS_NAT_CLASH)',
  };
}
