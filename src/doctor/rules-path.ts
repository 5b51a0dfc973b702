/**
 * doctor's rules, second part: the server and the path (CoreDNS's upstream, the conntrack race, late answers, the
 * server losing, DNAT, UDP, TCP fallback, server failures). In the verdict's order; rules.ts puts the parts together.
 */
import { formatP } from '../stats/index.js';
import { BACKGROUND_LOSS, MIN_COUNT, aboveBackground, lossy, lossyPool, pool, show, stalls, tally, worseThan } from './evidence.js';
import type { ProbeSummary } from './probes.js';
import { raceFromSendErrors, raceOrNot } from './race.js';
import { decisive, explained, failures, pct, suggestive } from './rule-kit.js';
import type { CorednsEvidence, Pending, Rule } from './rule-kit.js';
import { corednsReading, probesAffected, serviceTarget } from './rule-kit.js';
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { SERVER_REFUSED, SERVER_SERVFAIL, TCP_BLOCKED } from '../remedies.js';

export const PATH_RULES: readonly Rule[] = [
  {
    codes: ['COREDNS_UPSTREAM'],
    from: 'doctor',
    decide: (e) => {
      const { a, ns, named } = e;
      const affected = probesAffected(e) || a.probes.some((p) => p.servfailed >= MIN_COUNT || (p.kind === 'lookups' && p.over1s >= MIN_COUNT));
      // The upstream's SERVFAILs count every client's queries: read against the page's background. A slow upstream
      // (3 or more forwarded at 500 ms or more on average) is a latency measured, not a count to test.
      const slow = (d: CorednsEvidence): boolean => d.forwarded >= MIN_COUNT && (d.forwardMeanSeconds ?? 0) >= 0.5;
      const read = (a.coredns ?? []).map((d) => ({ d, r: corednsReading(d, 'forwardServfail', 'SERVFAIL from upstream') }));
      const hit = affected ? read.filter(({ d, r }) => r.verdict === 'rose' || slow(d)) : [];
      const moved = read.filter(({ d }) => (d.forwardServfail >= MIN_COUNT || slow(d)) && !hit.some((h) => h.d === d));
      if (hit.length === 0 && moved.length === 0) return undefined;
      const list = hit.length > 0 ? hit : moved;
      const failing = list.reduce((n, { d }) => n + d.forwardServfail, 0);
      const forwarded = list.reduce((n, { d }) => n + d.forwarded, 0);
      const failed = hit.some(({ r }) => r.verdict === 'rose');
      return {
        findings: [finding({
          code: 'COREDNS_UPSTREAM', severity: hit.length === 0 ? 'info' : named.has('UPSTREAM_FAILURE') || (failed && failing * 2 >= forwarded) ? 'critical' : 'warning', subject: { kind: 'nameserver', address: ns },
          message: `CoreDNS's forward plugin, during the probes: ${list.map(({ d, r }) => `${d.url}: ${d.forwarded} forwarded, ${d.forwardServfail} SERVFAIL from upstream (${r.said}), ${d.forwardMeanSeconds === null ? 'n/a' : `${(d.forwardMeanSeconds * 1000).toFixed(0)} ms`} mean`).join('; ')}` +
            (hit.length === 0 ? (affected ? ': within its own background, not named as a cause' : ": doctor's probes were answered in time, so it names no cause of theirs") : `: the upstream resolvers are ${failed ? 'failing' : 'slow'}, not CoreDNS itself`),
          evidence: { pages: list.length, forwarded, forwardServfail: failing, forwardMeanMs: Math.max(...list.map(({ d }) => Math.round((d.forwardMeanSeconds ?? 0) * 1000))) },
          remedy: "CoreDNS's upstreams (forward . /etc/resolv.conf: the node's resolvers): their reachability, latency and limits; the cache plugin (serve_stale) hides a slow upstream",
        })],
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
      return { pending: { candidates: r.candidates, tellApart: r.tellApart, more: r.more, decided: true } };
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
      // Loss never answers late: late answers are a slow server. They explain the stalls when a quarter or more of the
      // timeouts were answered late (answers later than a probe listens, after its last timeout, are not seen).
      if (late < MIN_COUNT || late * 4 < timeouts) return undefined;
      return {
        findings: [finding({
          code: 'LATE_ANSWERS', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `${late} of ${timeouts} queries that timed out were answered after their timeout: the server is slow, not losing packets; a client resends or gives up before the answer comes`,
          evidence: { late, timeouts, sent },
          remedy: 'CoreDNS: its CPU (throttling, limits), its replicas, its upstream (forward) latency; the cache (cache plugin) for repeated names',
        })],
      };
    },
  },
  {
    codes: ['SERVER_LOSS'],
    from: 'doctor',
    decide: ({ ns, par, reopen, tcp, endpoints, named, pending }) => {
      if (reopen === undefined || tcp === undefined || pending.has('CONNTRACK_RACE') || explained(named, ['LATE_ANSWERS', 'NIC_ALLOWANCE_EXCEEDED'])) return undefined;
      const u = lossy(reopen);
      const t = lossy(tcp);
      const losing = endpoints.filter((p) => decisive(lossy(p)));
      const allEndpointsLose = endpoints.length > 0 && losing.length === endpoints.length;
      if (!(decisive(u) && decisive(t) && (endpoints.length === 0 || allEndpointsLose))) {
        if ((suggestive(u) || decisive(u)) && (suggestive(t) || decisive(t))) return { pending: { candidates: 'the DNS server losing queries, or chance loss', tellApart: `more lookups in every mode (now ${u.said}; TCP ${t.said})`, more: ['lookup-modes'] } };
        return undefined;
      }
      return {
        findings: [finding({
          code: 'SERVER_LOSS', severity: 'critical', subject: { kind: 'nameserver', address: ns },
          message:
            `lookups stall in every mode, TCP included (${par ? show(stalls(par)) : 'n/a'} A+AAAA from one socket, ${show(stalls(reopen))} with single-request-reopen, ${show(stalls(tcp))} over TCP; ` +
            `each beyond a ${BACKGROUND_LOSS * 100}% datagram background: ${formatP(u.p)}, ${formatP(t.p)})` +
            (allEndpointsLose ? ' and every endpoint loses when probed directly' : '') +
            ': the DNS server or its upstream, not the conntrack race' +
            (endpoints.length === 0 ? ' (its endpoints could not be probed apart: the path between is not ruled out)' : ''),
          evidence: { parallelStalled: par?.stalled ?? 0, reopenStalled: reopen.stalled, tcpStalled: tcp.stalled, endpointsProbed: endpoints.length, endpointsLosing: losing.length },
          remedy: 'CoreDNS: its load (CPU throttling, replicas), its logs, its upstream resolvers (forward . /etc/resolv.conf) and their loss',
        })],
      };
    },
  },
  {
    codes: ['DNAT_PATH_LOSS'],
    from: 'doctor',
    decide: ({ a, raw, endpoints, named }) => {
      if (raw.length === 0 || endpoints.length === 0 || explained(named)) return undefined;
      // Each nameserver its own subject, and only a nameserver that is the Service whose endpoints were probed: its
      // queries go through the DNAT to them; another nameserver's losses say nothing of that path.
      const targets = [...new Set(raw.map((p) => p.target))].filter((t) => a.service === null || serviceTarget(t, a.service.clusterIP));
      const eps = pool(endpoints.map(stalls));
      const out: Finding[] = [];
      let pending: Pending | undefined;
      for (const target of targets) {
        const svc = pool(raw.filter((p) => p.target === target).map(stalls));
        if (svc.of > 0 && svc.n === svc.of) continue; // answers nothing: NAMESERVER_UNREACHABLE says so
        const c = worseThan(svc, eps);
        if (suggestive(c)) pending = { candidates: `the DNAT/conntrack path to ${target}, or chance loss`, tellApart: `more queries to the Service IP and to each endpoint (now ${c.said})`, more: ['raw', 'endpoints'] };
        if (!decisive(c) || endpoints.some((p) => decisive(lossy(p)))) continue;
        out.push(finding({
          code: 'DNAT_PATH_LOSS', severity: 'critical', subject: { kind: 'nameserver', address: target },
          message: `queries to the Service IP ${target} are lost (${show(svc)}) while the endpoints probed directly lose ${show(eps)} (${c.said}): the DNAT/conntrack path`,
          evidence: { lost: svc.n, sent: svc.of, endpointsLost: eps.n, endpointsSent: eps.of, endpointsProbed: endpoints.length },
          remedy: 'check `k8sdiag conntrack` (insert_failed, drop) and `k8sdiag svc --live` (fall-through, missing chains) on the node',
        }));
      }
      return out.length > 0 ? { findings: out } : pending ? { pending } : undefined;
    },
  },
  {
    codes: ['UDP_PATH_LOSS'],
    from: 'doctor',
    decide: ({ ns, par, reopen, tcp, endpoints, named, pending }) => {
      if (tcp === undefined || pending.has('CONNTRACK_RACE') || explained(named, ['CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS', 'SERVER_LOSS', 'LATE_ANSWERS', 'NIC_ALLOWANCE_EXCEEDED'])) return undefined;
      const udpProbes = [par, reopen].filter((p): p is ProbeSummary => p !== undefined);
      if (udpProbes.length === 0) return undefined;
      const udp = pool(udpProbes.map(stalls));
      // Each lookup against the background of the datagrams it carried (16 for a search-list lookup, 4 for an absolute name).
      const bg = lossyPool(udpProbes);
      const c = worseThan(udp, stalls(tcp));
      if (!(decisive(bg) && decisive(c))) {
        if ((suggestive(bg) || decisive(bg)) && !decisive(lossy(tcp))) return { pending: { candidates: 'the UDP path losing packets, or chance loss', tellApart: `more lookups over UDP and TCP (now ${c.said})`, more: ['lookup-modes'] } };
        return undefined;
      }
      const allEndpointsLose = endpoints.length > 0 && endpoints.every((p) => decisive(lossy(p)));
      return {
        findings: [finding({
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
        })],
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
        findings: [finding({
          code: 'TCP_FALLBACK_BLOCKED', severity: 'warning', subject: { kind: 'nameserver', address: ns },
          message: `lookups over TCP fail (${show(failures(tcp))}: ${tcp.stalled} timed out, ${tcp.failed} failed at once${codes ? `, ${codes}` : ''}) while the same over UDP succeed (${show(failures(reopen))}; ${c.said}): answers too large for UDP (truncated, TC) will fail, since the resolver retries them over TCP`,
          evidence: { tcpFailed: tcp.stalled + tcp.failed, tcpLookups: tcp.units, udpFailed: reopen.stalled + reopen.failed, udpLookups: reopen.units },
          remedy: TCP_BLOCKED,
        })],
      };
    },
  },
  {
    codes: ['SERVER_FAILURES'],
    from: 'doctor',
    decide: ({ raw, endpoints, ns }) => {
      // The raw queries to the nameservers and to each endpoint: the same question, each answer one datagram.
      const asked = [...raw, ...endpoints];
      const answered = asked.reduce((n, p) => n + p.answered, 0);
      const servfail = asked.reduce((n, p) => n + (p.rcodes['SERVFAIL'] ?? 0), 0);
      const refused = asked.reduce((n, p) => n + (p.rcodes['REFUSED'] ?? 0), 0);
      const c = aboveBackground(tally(servfail + refused, answered), 1);
      if (suggestive(c)) return { pending: { candidates: 'the server answering with failures, or chance', tellApart: `more queries (now ${c.said})`, more: ['raw', 'endpoints'] } };
      if (!decisive(c)) return undefined;
      const share = (servfail + refused) / answered;
      return {
        findings: [finding({
          code: 'SERVER_FAILURES', severity: share >= 0.5 ? 'critical' : 'warning', subject: { kind: 'nameserver', address: ns },
          message: `${pct(servfail + refused, answered)} of the answers are failures (SERVFAIL ${servfail}, REFUSED ${refused} of ${answered} answers): the server answers, but cannot resolve; failures, not stalls`,
          evidence: { servfail, refused, answered, share: Number(share.toFixed(4)) },
          remedy: refused > servfail ? SERVER_REFUSED : SERVER_SERVFAIL,
        })],
      };
    },
  },
];
