/**
 * doctor's rules, first part: the causes nearest the client, which explain every probe's losses they touch (a
 * nameserver that answers nothing, local drops, the NIC's allowances, a rate limit, CoreDNS overloaded, one record type,
 * one endpoint, the upstream). In the verdict's order; rules.ts puts the parts together.
 */
import type { Finding } from '../findings.js';
import { sumRecords } from '../stats/index.js';
import { MIN_COUNT, lossy, pool, show, stalls, tally, worseThan } from './evidence.js';
import type { Tally } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { decisive, explained, pct, suggestive } from './rule-kit.js';
import type { Pending, Rule } from './rule-kit.js';
import { finding, localDropsFinding } from '../findings.js';
import { endpointLoss } from '../remedies.js';

export const NEAR_RULES: readonly Rule[] = [
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
        findings: [finding({
          code: 'NAMESERVER_UNREACHABLE', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `none of ${total} queries to ${ns} was answered (${timeouts} timed out, ${errors} failed at once${codeList ? `: ${codeList}` : ''}), over UDP and TCP, in every probe`,
          evidence: { sent: total, timeouts, errors, codes: Object.keys(codes).sort().join(' ') },
          remedy: codes['ECONNREFUSED'] !== undefined
            ? `nothing listens on ${ns}: is the DNS Service's cluster IP right, and has it endpoints (kubectl -n kube-system get endpointslices -l k8s-app=kube-dns)?`
            : `the nameserver does not answer: its pods (kubectl -n kube-system get pods -l k8s-app=kube-dns), a NetworkPolicy that blocks port 53, the route to ${ns}`,
        })],
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
        findings: [finding({
          code: 'NIC_ALLOWANCE_EXCEEDED', severity: losing.length > 0 ? 'critical' : 'warning', subject: { kind: 'machine' },
          message:
            `the cloud network interface shaped or dropped packets during the probes: ${rose.map((d) => `${d.iface} ${d.counter} +${d.delta} (${what[d.counter] ?? d.counter})`).join('; ')}` +
            (losing.length > 0 ? `, while the probes lost queries (${losing.map((p) => `${p.label}: ${show(stalls(p))}`).join('; ')}): the instance's network limits, not DNS itself` : '; the probes lost nothing beyond chance, but the pods\' traffic may'),
          evidence: { counters: rose.map((d) => `${d.iface}:${d.counter}+${d.delta}`).join(' '), linklocal: rose.filter((d) => d.counter === 'linklocal_allowance_exceeded').reduce((n, d) => n + d.delta, 0), losingProbes: losing.length },
          remedy: rose.some((d) => d.counter === 'linklocal_allowance_exceeded')
            ? 'spread DNS off the VPC resolver: NodeLocalDNS (a cache on every node), CoreDNS cache plugin with a longer TTL, fewer queries per lookup (ndots); or an instance type with more network allowance'
            : 'an instance type with a larger network allowance (ENA: pps, conntrack, bandwidth), or less traffic on this node',
        })],
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
        findings: [finding({
          code: 'RATE_LIMITED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `queries sent in bursts of 20 at once (${fastRate.toFixed(0)} queries/s on average, timeouts included) are lost (${show(f)}) and not at a steady ${slowRate.toFixed(0)}/s (${show(slow)}; ${c.said}): loss that grows with the rate is a limit (the server's rate limiting, a cloud resolver's per-interface packet limit) or an overloaded server; doctor's own bursts are above it, so its other figures overstate the loss your pods see at their own rate` +
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
    decide: ({ a, ns }) => {
      const hit = (a.coredns ?? []).filter((d) => d.maxConcurrentRejects >= MIN_COUNT || d.panics > 0);
      if (hit.length === 0) return undefined;
      return {
        findings: [finding({
          code: 'COREDNS_OVERLOADED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `CoreDNS counted during the probes: ${hit.map((d) => `${d.url}: ${d.maxConcurrentRejects} queries refused at forward's max_concurrent, ${d.panics} panics, of ${d.requests} requests`).join('; ')}: CoreDNS itself is overloaded (it answers REFUSED or nothing when its forward plugin is at max_concurrent)`,
          evidence: { pages: hit.length, maxConcurrentRejects: hit.reduce((n, d) => n + d.maxConcurrentRejects, 0), panics: hit.reduce((n, d) => n + d.panics, 0), requests: hit.reduce((n, d) => n + d.requests, 0) },
          remedy: 'CoreDNS: more replicas or CPU (its limits, throttling), a larger max_concurrent in forward only if the upstream keeps up, the cache plugin; NodeLocalDNS spreads the load',
        })],
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
            findings: [finding({
              code: 'TYPE_UNANSWERED', severity: 'critical', subject: { kind: 'nameserver', address: ns },
              message: `${lost} queries go unanswered (${show(l)}) while ${other} queries are answered (${show(o)}; ${c.said}): every lookup that asks for both waits for the ${lost} answer, a timeout each time; not the conntrack race, which loses either type`,
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
        const c = worseThan(stalls(p), rest);
        if (decisive(c)) {
          out.push(finding({
            code: 'ENDPOINT_LOSS', severity: 'critical', subject: { kind: 'endpoint', address: p.target, service: a.service?.id ?? null },
            message: `endpoint ${p.target} loses queries when probed directly (${show(stalls(p))}, ${pct(p.stalled, p.units)}) while ${others.map((o) => o.target).join(', ')} lose ${show(rest)} (${c.said}): that endpoint, not the path`,
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
        findings: [finding({
          code: 'UPSTREAM_FAILURE', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message: `lookups of ${a.name} fail (${show(ext)}: ${stalled} stalled, ${servfail} SERVFAIL, in every mode) while the in-cluster ${inCluster.label.replace(/^lookups of the in-cluster name /, '')} is answered (${show(own)}; ${c.said}): the upstream resolvers the DNS server forwards to, not the server itself nor the path to it`,
          evidence: { externalFailed: ext.n, externalLookups: ext.of, servfail, stalled, inClusterFailed: own.n, inClusterLookups: own.of },
          remedy: 'CoreDNS: its forward plugin\'s upstreams (forward . /etc/resolv.conf: the node\'s resolvers), their reachability and latency (coredns_forward_request_duration_seconds, coredns_forward_responses_total{rcode}), a cloud resolver\'s limits',
        })],
      };
    },
  },
];
