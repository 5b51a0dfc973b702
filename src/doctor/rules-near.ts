/**
 * doctor's rules, first part: the causes nearest the client, which explain every probe's losses they touch (a
 * nameserver that answers nothing, local drops, the NIC's allowances, a rate limit, CoreDNS overloaded, one record type,
 * one endpoint, the upstream). In the verdict's order; rules.ts puts the parts together.
 */
import type { Finding } from '../findings.js';
import { sumRecords } from '../stats/index.js';
import { ALPHA, MIN_COUNT, lossy, pool, show, stalls, tally, worseThan } from './evidence.js';
import type { Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { corednsReading, decisive, explained, pct, probesAffected, suggestive } from './rule-kit.js';
import { readCounter } from './background.js';
import type { Pending, Rule } from './rule-kit.js';
import { finding, localDropsFinding } from '../findings.js';
import { endpointLoss } from '../remedies.js';

function unreachable(ns: string, sent: readonly ProbeSummary[], severity: 'critical' | 'warning', how: string): Finding {
  const total = sent.reduce((n, p) => n + p.sent, 0);
  const timeouts = sent.reduce((n, p) => n + p.timeouts, 0);
  const errors = sent.reduce((n, p) => n + p.errors, 0);
  const codes = sumRecords(sent.map((p) => p.errorCodes));
  const codeList = Object.entries(codes).map(([k, v]) => `${k} ${v}`).join(', ');
  return finding({
    code: 'NAMESERVER_UNREACHABLE', severity, subject: { kind: 'nameserver', address: ns },
    message: `none of ${total} queries to ${ns} was answered (${timeouts} timed out, ${errors} failed at once${codeList ? `: ${codeList}` : ''}), ${how}`,
    evidence: { sent: total, timeouts, errors, codes: Object.keys(codes).sort().join(' ') },
    remedy: codes['ECONNREFUSED'] !== undefined
      ? `nothing listens on ${ns}: is the DNS Service's cluster IP right, and has it endpoints (kubectl -n kube-system get endpointslices -l k8s-app=kube-dns)?`
      : `the nameserver ${ns} does not answer: its pods (kubectl -n kube-system get pods -l k8s-app=kube-dns), a NetworkPolicy that blocks port 53, the route to it`,
  });
}

/** A pattern seen again in a round of its own, at this p or less, is replicated. */
const REPLICATED = 0.01;
/** A pattern the budget left no second round for is named only below this p (a tenth of ALPHA). */
const UNREPEATED = ALPHA / 10;

/**
 * The last round alone, one side against the other: 'yes' (p < REPLICATED), 'no', or 'not yet' (one round so far).
 * Probes compared side by side share their time only roughly (each keeps its own 20 queries in flight): loss that
 * comes in bursts, a server starved of CPU for a second, can hit one side more by chance. A pattern named between
 * probes is seen again in a round of its own, where the budget allows one.
 */
function replicated(fast: readonly ProbeSummary[], paced: readonly ProbeSummary[]): 'yes' | 'no' | 'not yet' {
  const last = (ps: readonly ProbeSummary[]): Tally | undefined => {
    if (ps.some((p) => p.byRound.length < 2)) return undefined;
    return pool(ps.map((p) => tally(p.byRound[p.byRound.length - 1]!.stalled, p.byRound[p.byRound.length - 1]!.units)));
  };
  const f = last(fast);
  const s = last(paced);
  if (f === undefined || s === undefined) return 'not yet';
  return worseThan(f, s).p < REPLICATED ? 'yes' : 'no';
}

/** Named: decisive and repeated, or, with no second round, far beyond the bar. */
const holds = (c: { p: number }, again: 'yes' | 'no' | 'not yet'): boolean => again === 'yes' || (again === 'not yet' && c.p < UNREPEATED);

/** What a named pattern's message says of its second round. */
const repeatedSaid = (again: 'yes' | 'no' | 'not yet'): string =>
  again === 'yes' ? ', and again in a round of its own' : `; not repeated, the budget allowed one round, but far beyond chance (p < ${UNREPEATED.toExponential(0)})`;

export const NEAR_RULES: readonly Rule[] = [
  { codes: ['LOOKUPS_DISABLED'], from: 'resolv' },
  {
    codes: ['NAMESERVER_UNREACHABLE'],
    from: 'doctor',
    decide: ({ a, ns, raw, paced }) => {
      const sent = a.probes.filter((p) => p.kind !== 'endpoint' && p.mode !== 'parallel-direct');
      const total = sent.reduce((n, p) => n + p.sent, 0);
      // An answer that came after its timeout is an answer: a slow server (LATE_ANSWERS), not one that answers nothing.
      if (total >= MIN_COUNT && !sent.some((p) => p.answered > 0 || p.late > 0)) return { findings: [unreachable(ns, sent, 'critical', 'over UDP and TCP, in every probe')] };
      // Several nameservers: each is its own subject. One that answers none of its raw queries while another answers
      // is said as such, and its losses are not pooled into another rule's tally.
      const targets = [...new Set([...raw, ...paced].map((p) => p.target))];
      if (targets.length < 2) return undefined;
      const out: Finding[] = [];
      targets.forEach((t, i) => {
        const to = [...raw, ...paced].filter((p) => p.target === t);
        if (to.reduce((n, p) => n + p.sent, 0) < MIN_COUNT || to.some((p) => p.answered > 0 || p.late > 0)) return;
        out.push(unreachable(t, to, i === 0 ? 'critical' : 'warning', i === 0
          ? 'while the other nameservers answer: every lookup waits its timeout on it before it tries the next'
          : 'while the first nameserver answers: lookups that fall over to it (when the first times out) get nothing'));
      });
      return out.length > 0 ? { findings: out } : undefined;
    },
  },
  {
    codes: ['LOCAL_DROPS'],
    from: 'doctor',
    decide: ({ a }) => {
      const localDrops = a.probes.reduce((n, p) => n + p.localDrops, 0);
      // Replies this machine dropped itself: seen, not inferred; still, one or two are not a cause.
      if (localDrops < MIN_COUNT) return undefined;
      return {
        findings: [
          localDropsFinding(
            localDrops,
            { ownSockets: localDrops, rcvbufErrors: null, inErrors: null, recvBufferBytes: null, concurrency: null, sourcePorts: null },
            'on its own sockets',
            'during the probes (the losses below may be partly local)',
            'rerun doctor when the machine is less busy',
          ),
        ],
      };
    },
  },
  {
    codes: ['NIC_ALLOWANCE_EXCEEDED'],
    from: 'doctor',
    decide: (e) => {
      const { a } = e;
      // A node's interface counts every pod's traffic: a rise is read against the node's own background before the probes.
      const read = (a.nic ?? []).filter((d) => d.during > 0).map((d) => ({ d, r: readCounter(d) }));
      if (read.length === 0) return undefined;
      const rose = read.filter((x) => x.r.verdict === 'rose');
      const losing = a.probes.filter((p) => decisive(lossy(p)));
      const affected = probesAffected(e);
      const what: Record<string, string> = {
        linklocal_allowance_exceeded: "packets to the VPC's link-local services, its DNS resolver among them, over 1024/s per interface",
        pps_allowance_exceeded: "packets over the instance's packets-per-second allowance",
        conntrack_allowance_exceeded: "new flows over the instance's connection-tracking allowance",
        bw_in_allowance_exceeded: 'inbound traffic over the instance\'s bandwidth allowance',
        bw_out_allowance_exceeded: 'outbound traffic over the instance\'s bandwidth allowance',
      };
      const shown = (xs: typeof read): string => xs.map(({ d, r }) => `${d.iface} ${d.counter} +${d.during} (${what[d.counter] ?? d.counter}): ${r.said}`).join('; ');
      // Named only beyond its background, and a cause of the probes' losses only where they lost beyond chance; it
      // explains loss that hits every probe alike, never a pattern between probes (./rule-kit.ts, NEARER).
      const severity = rose.length > 0 && affected ? 'critical' : 'info';
      return {
        findings: [finding({
          code: 'NIC_ALLOWANCE_EXCEEDED', severity, subject: { kind: 'machine' },
          message: rose.length === 0
            ? `the cloud network interface's allowance counters moved during the probes, within the node's own background: ${shown(read)}`
            : `the cloud network interface shaped or dropped packets during the probes, beyond the node's own background: ${shown(rose)}` +
              (affected ? `, while the probes lost queries beyond chance${losing.length > 0 ? ` (${losing.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')})` : ''}: the instance's network limits, not DNS itself` : "; doctor's probes lost nothing beyond chance, so it names no cause of theirs, but the pods' traffic may suffer it"),
          evidence: { counters: read.map(({ d }) => `${d.iface}:${d.counter}+${d.during}`).join(' '), linklocal: rose.filter(({ d }) => d.counter === 'linklocal_allowance_exceeded').reduce((n, { d }) => n + d.during, 0), losingProbes: losing.length },
          remedy: rose.some(({ d }) => d.counter === 'linklocal_allowance_exceeded')
            ? 'spread DNS off the VPC resolver: NodeLocalDNS (a cache on every node), CoreDNS cache plugin with a longer TTL, fewer queries per lookup (ndots); or an instance type with more network allowance'
            : 'an instance type with a larger network allowance (ENA: pps, conntrack, bandwidth), or less traffic on this node',
        })],
      };
    },
  },
  {
    codes: ['RATE_LIMITED'],
    from: 'doctor',
    decide: ({ a, raw, paced, ns, endpoints }) => {
      const fast = raw.filter((p) => p.qtype === 'A');
      if (fast.length === 0 || paced.length === 0) return undefined;
      const f = pool(fast.map(stalls));
      const slow = pool(paced.map(stalls));
      const c = worseThan(f, slow);
      const fastRate = fast.reduce((n, p) => n + (p.rate ?? 0), 0);
      const slowRate = paced.reduce((n, p) => n + (p.rate ?? 0), 0);
      if (suggestive(c)) return { pending: { candidates: 'a rate limit, or chance loss', tellApart: `more queries at both rates (now ${c.said})`, more: ['rate', 'raw'] } };
      if (!decisive(c)) return undefined;
      // The paced probe runs alone, at another time than the burst it is compared with: loss that comes in bursts can
      // spare it by chance. While the budget allows, a second round at both rates must show the pattern again on its
      // own (p < 0.01) before a limit is named; with no time for one, the finding says it was not repeated.
      const again = replicated(fast, paced);
      if (again === 'not yet' && !a.final) return { pending: { candidates: 'a rate limit, or loss in bursts that spared the paced queries', tellApart: `a second round at both rates (now ${c.said})`, more: ['rate', 'raw'] } };
      if (!holds(c, again)) return undefined;
      return {
        findings: [finding({
          code: 'RATE_LIMITED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `queries sent in bursts of 20 at once (${fastRate.toFixed(0)} queries/s on average, timeouts included) are lost (${show(f)}) and not at a steady ${slowRate.toFixed(0)}/s (${show(slow)}; ${c.said}${repeatedSaid(again)}): loss that grows with the rate is a limit (the server's rate limiting, a cloud resolver's per-interface packet limit) or an overloaded server; doctor's own bursts are above it, so its other figures overstate the loss your pods see at their own rate` +
            (endpoints.length > 0 ? ` (endpoints probed at full speed: ${endpoints.map((p) => `${p.target} ${show(stalls(p))} at ${(p.rate ?? 0).toFixed(0)}/s`).join(', ')})` : ''),
          evidence: { fastLost: f.n, fastSent: f.of, fastRate: Number(fastRate.toFixed(1)), slowLost: slow.n, slowSent: slow.of, slowRate: Number(slowRate.toFixed(1)) },
          remedy: 'find the limit: CoreDNS (its CPU, max_concurrent in forward, replicas), the node\'s cloud network interface (ethtool -S: linklocal_allowance_exceeded, pps_allowance_exceeded), a ratelimit plugin; NodeLocalDNS caches and spreads the load',
        })],
      };
    },
  },
  {
    codes: ['COREDNS_OVERLOADED'],
    from: 'doctor',
    decide: (e) => {
      const { a, ns } = e;
      const refused = a.probes.reduce((n, p) => n + (p.rcodes['REFUSED'] ?? 0), 0);
      const affected = probesAffected(e) || refused >= MIN_COUNT;
      // Rejects count every client's queries: read against the same page's background; a panic is a crash, seen.
      const read = (a.coredns ?? []).map((d) => ({ d, r: corednsReading(d, 'maxConcurrentRejects', 'max_concurrent rejects') }));
      const hit = affected ? read.filter(({ d, r }) => r.verdict === 'rose' || d.panics > 0) : [];
      const moved = read.filter(({ d }) => (d.maxConcurrentRejects > 0 || d.panics > 0) && !hit.some((h) => h.d === d));
      if (hit.length === 0 && moved.length === 0) return undefined;
      const list = hit.length > 0 ? hit : moved;
      return {
        findings: [finding({
          code: 'COREDNS_OVERLOADED', severity: hit.length > 0 ? 'critical' : 'info', subject: { kind: 'nameserver', address: ns },
          message: `CoreDNS counted during the probes: ${list.map(({ d, r }) => `${d.url}: ${d.maxConcurrentRejects} queries refused at forward's max_concurrent, ${d.panics} panics, of ${d.requests} requests (${r.said})`).join('; ')}` +
            (hit.length > 0 ? ": CoreDNS itself is overloaded (it answers REFUSED or nothing when its forward plugin is at max_concurrent)" : affected ? ': within its own background, not named as a cause' : ": doctor's probes lost nothing beyond chance and got no REFUSED, so it names no cause of theirs"),
          evidence: { pages: list.length, maxConcurrentRejects: list.reduce((n, { d }) => n + d.maxConcurrentRejects, 0), panics: list.reduce((n, { d }) => n + d.panics, 0), requests: list.reduce((n, { d }) => n + d.requests, 0) },
          remedy: 'CoreDNS: more replicas or CPU (its limits, throttling), a larger max_concurrent in forward only if the upstream keeps up, the cache plugin; NodeLocalDNS spreads the load',
        })],
      };
    },
  },
  {
    codes: ['TYPE_UNANSWERED'],
    from: 'doctor',
    decide: ({ a, raw, ns, named }) => {
      if (named.has('RATE_LIMITED')) return undefined;
      const byType = (t: 'A' | 'AAAA') => pool(raw.filter((p) => p.qtype === t).map(stalls));
      for (const [lost, other] of [['AAAA', 'A'], ['A', 'AAAA']] as const) {
        // Two comparisons: AAAA against A, and A against AAAA.
        const c = worseThan(byType(lost), byType(other), 2);
        const again = decisive(c) ? replicated(raw.filter((p) => p.qtype === lost), raw.filter((p) => p.qtype === other)) : 'no';
        if (again === 'not yet' && !a.final) return { pending: { candidates: `${lost} queries lost by the server, or loss in bursts that hit them more`, tellApart: `a second round of raw ${lost} and ${other} queries (now ${c.said})`, more: ['raw'] } };
        if (decisive(c) && holds(c, again)) {
          const l = byType(lost);
          const o = byType(other);
          return {
            findings: [finding({
              code: 'TYPE_UNANSWERED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
              message: `${lost} queries go unanswered (${show(l)}) while ${other} queries are answered (${show(o)}; ${c.said}${repeatedSaid(again)}): every lookup that asks for both waits for the ${lost} answer, a timeout each time; not the conntrack race, which loses either type`,
              evidence: { type: lost, lost: l.n, sent: l.of, otherType: other, otherLost: o.n, otherSent: o.of },
              remedy: `find what drops ${lost} queries: the DNS server's configuration (a plugin or policy that ignores ${lost}), a firewall that filters by query type; CoreDNS answers ${lost} for names without one with NOERROR and no records`,
            })],
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
        // One comparison per endpoint: each against the others together.
        const c = worseThan(stalls(p), rest, endpoints.length);
        const again = decisive(c) ? replicated([p], others) : 'no';
        if (again === 'not yet' && !a.final) {
          pending = { candidates: `endpoint ${p.target}, or loss in bursts that hit it more`, tellApart: `a second round of queries to each endpoint (now ${c.said})`, more: ['endpoints'] };
          continue;
        }
        if (decisive(c) && holds(c, again)) {
          out.push(finding({
            code: 'ENDPOINT_LOSS', severity: 'critical', subject: { kind: 'endpoint', address: p.target, service: a.service?.id ?? null },
            message: `endpoint ${p.target} loses queries when probed directly (${show(stalls(p))}, ${pct(p.stalled, p.units)}) while ${others.map((o) => o.target).join(', ')} lose ${show(rest)} (${c.said}${repeatedSaid(again)}): that endpoint, not the path`,
            evidence: { endpoint: p.target, lost: p.stalled, sent: p.units, otherLost: rest.n, otherSent: rest.of, p: Number(c.p.toPrecision(3)), cleanEndpoints: others.filter((o) => o.stalled === 0).map((o) => o.target).join(' ') },
            remedy: endpointLoss(p.target),
          }));
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
    decide: ({ dot, inCluster, named }) => {
      if (explained(named) || inCluster === undefined || dot === undefined) return undefined;
      // Like with like: the external name with a trailing dot and the in-cluster name, both absolute, so each lookup
      // carries the same queries (an A and an AAAA) and chance loss hits both alike. What differs is the name's zone.
      // A lookup counts against its name when it stalled, ended in SERVFAIL, or took over 1 s: a slow upstream is
      // decisive from its latency, not only from its losses.
      const bad = (p: ProbeSummary): Tally => tally(Math.min(p.units, Math.max(p.over1s, p.stalled) + p.servfailed), p.units);
      const ext = bad(dot);
      const own = bad(inCluster);
      const c = worseThan(ext, own);
      if (suggestive(c)) return { pending: { candidates: 'the upstream resolvers, or chance loss', tellApart: `more lookups of the external and the in-cluster name, both absolute (now ${c.said})`, more: ['upstream'] } };
      if (!decisive(c)) return undefined;
      const inName = inCluster.label.replace(/^lookups of the in-cluster name /, '');
      return {
        findings: [finding({
          code: 'UPSTREAM_FAILURE', severity: 'critical', subject: { kind: 'nameserver', address: dot.target },
          message: `lookups of ${dot.label.replace(/^lookups of /, '').replace(/ with a trailing dot: no search list$/, '')} fail or are slow (${show(ext)}: ${dot.stalled} stalled, ${dot.servfailed} SERVFAIL, ${dot.over1s} over 1 s; median ${dot.medianMs === null ? 'n/a' : `${dot.medianMs.toFixed(1)} ms`}) while the in-cluster ${inName}, as many queries per lookup, is answered (${show(own)}; median ${inCluster.medianMs === null ? 'n/a' : `${inCluster.medianMs.toFixed(1)} ms`}; ${c.said}): the upstream resolvers the DNS server forwards to, not the server itself nor the path to it`,
          evidence: { externalFailed: ext.n, externalLookups: ext.of, servfail: dot.servfailed, stalled: dot.stalled, inClusterFailed: own.n, inClusterLookups: own.of },
          remedy: 'CoreDNS: its forward plugin\'s upstreams (forward . /etc/resolv.conf: the node\'s resolvers), their reachability and latency (coredns_forward_request_duration_seconds, coredns_forward_responses_total{rcode}), a cloud resolver\'s limits',
        })],
      };
    },
  },
];
