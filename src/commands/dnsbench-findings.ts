/** dnsbench's findings: what a run's numbers say, each with its evidence and remedy. */
import type { Finding } from '../findings.js';
import { percentOf, recordTotal } from '../stats/index.js';
import { RACE_ELSEWHERE, RACE_LIBC, errorRemedy } from '../remedies.js';
import type { DnsbenchResult } from './dnsbench.js';
import { finding, localDropsFinding } from '../findings.js';

export function findingsFor(r: Omit<DnsbenchResult, 'findings'>): Finding[] {
  const f: Finding[] = [];
  const pct = (n: number, of: number): string => percentOf(n, of, 2);
  const drops = r.localDrops.ownSockets ?? r.localDrops.namespace?.rcvbufErrors ?? 0;
  const dropsWhere = r.localDrops.ownSockets !== null ? 'on its own sockets' : 'in this network namespace (RcvbufErrors; other programs count too)';
  if (drops > 0) {
    f.push(
      localDropsFinding(
        drops,
        { ownSockets: r.localDrops.ownSockets, rcvbufErrors: r.localDrops.namespace?.rcvbufErrors ?? null, inErrors: r.localDrops.namespace?.inErrors ?? null, recvBufferBytes: r.localDrops.recvBufferBytes, concurrency: r.concurrency, sourcePorts: r.sourcePorts },
        dropsWhere,
        'before k8sdiag could read them',
        'fewer queries in flight (-c), more sockets (--sockets)',
      ),
    );
  }
  if (r.timeouts > 0) {
    const explained = drops >= r.timeouts;
    f.push(finding({
      code: 'TIMEOUTS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message:
        `${r.timeouts} of ${r.sent} queries (${pct(r.timeouts, r.sent)}) got no reply within ${r.timeoutMs / 1000} s` +
        (explained ? ': as many replies were dropped by this machine\'s receive buffers (LOCAL_DROPS), not by the network' : drops > 0 ? `; up to ${drops} of them were dropped locally (LOCAL_DROPS)` : ''),
      evidence: { timeouts: r.timeouts, sent: r.sent, timeoutMs: r.timeoutMs, late: r.late, localDrops: drops, sourcePorts: r.sourcePorts },
      remedy: explained
        ? 'see LOCAL_DROPS: rerun with fewer in flight before looking at the network'
        : 'check `k8sdiag conntrack` on the node for insert_failed and drops; compare with a run against the node-local cache or a pod IP to find the hop that loses packets',
    }));
  }
  if (r.slow > 0 && r.latencyMs !== null) {
    f.push(finding({
      code: 'SLOW',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: `${r.slow} answered queries were slower than ${r.slowMs / 1000} s (max ${r.latencyMs.max} ms)`,
      evidence: { slow: r.slow, slowMs: r.slowMs, maxMs: r.latencyMs.max },
      remedy: 'a reply after several seconds usually means a lost packet and a resend; see the latency histogram for the 1 s / 5 s marks',
    }));
  }
  // A timeout of 0 (musl's timeout:0: no query sent) makes every lookup "take the timeout": no stall to report.
  if (r.lookups !== null && r.lookupStalls !== null && r.resolver !== null && r.resolver.timeoutMs > 0 && r.lookupStalls.overTimeout > 0) {
    const t = r.resolver.timeoutMs / 1000;
    f.push(finding({
      code: 'LOOKUP_STALLS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message:
        `${r.lookupStalls.overTimeout} of ${r.lookups} lookups took ${t} s or more: the resolver's timeout and resend, the signature of a lost A or AAAA packet` +
        (r.resolver.modeSwitches.singleRequest > 0 ? ` (glibc fell back to single-request ${r.resolver.modeSwitches.singleRequest} times)` : '') +
        (drops > 0 ? `; ${drops} replies were dropped by this machine's receive buffers meanwhile (LOCAL_DROPS), so some of the lost packets may be local` : ''),
      evidence: { overTimeout: r.lookupStalls.overTimeout, over1s: r.lookupStalls.over1s, over5s: r.lookupStalls.over5s, lookups: r.lookups, resolverTimeoutS: t, singleRequestSwitches: r.resolver.modeSwitches.singleRequest, localDrops: drops },
      remedy: (drops > 0 ? 'see LOCAL_DROPS first: rerun with fewer lookups in flight; then ' : '') + `${RACE_LIBC[r.resolver.libc]}; ${RACE_ELSEWHERE}; check \`k8sdiag conntrack\` on the node for insert_failed`,
    }));
  }
  const errTotal = recordTotal(r.errors);
  if (errTotal > 0) {
    f.push(finding({
      code: 'ERRORS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: `${errTotal} queries ended in an error: ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      evidence: r.errors,
      remedy: errorRemedy(r.errors),
    }));
  }
  const bogus = r.wrongId + r.wrongQuestion + r.malformed;
  if (bogus > 0) {
    f.push(finding({
      code: 'BOGUS_REPLIES',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: `${bogus} replies were ignored: ${r.wrongId} with an unknown ID, ${r.wrongQuestion} with the wrong question, ${r.malformed} malformed`,
      evidence: { wrongId: r.wrongId, wrongQuestion: r.wrongQuestion, malformed: r.malformed },
      remedy: 'something between client and server rewrites or forges replies, or the server is broken',
    }));
  }
  // Every answer a failure: the name does not resolve there at all.
  const failed = (r.rcodes.NXDOMAIN ?? 0) + (r.rcodes.SERVFAIL ?? 0);
  const lookupFailed = r.resolver !== null && r.lookups !== null && r.lookups > 0 && (r.resolver.outcomes.answer ?? 0) === 0 && (r.resolver.outcomes.nodata ?? 0) === 0;
  if (r.resolver === null ? r.answered > 0 && failed === r.answered : lookupFailed) {
    const what = r.resolver === null ? `every one of ${r.answered} answers was ${Object.keys(r.rcodes).join(' or ')}` : `none of ${r.lookups ?? 0} lookups found an address (${Object.entries(r.resolver.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')})`;
    // Lookups that sent nothing were stopped by the resolv.conf itself (attempts:0, musl's timeout:0): name the option.
    const option = r.sent === 0 ? /options ((?:attempts|timeout):0): (.*)$/.exec(r.warnings.find((w) => /options (?:attempts|timeout):0: /.test(w)) ?? '') : null;
    f.push(finding({
      code: 'NO_ANSWERS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: option ? `${what}: not one query was sent, because of options ${option[1]}: ${option[2]}` : `${what}: the name does not resolve through ${r.servers.join(', ')}, so latency here is the cost of a failure`,
      evidence: { answered: r.answered, NXDOMAIN: r.rcodes.NXDOMAIN ?? 0, SERVFAIL: r.rcodes.SERVFAIL ?? 0, lookups: r.lookups },
      remedy: option ? `remove options ${option[1]} from the resolv.conf (the pod's dnsConfig.options)` : 'check the name (-d) and the server; SERVFAIL points at the server\'s upstreams',
    }));
  }
  const servfail = r.rcodes.SERVFAIL ?? 0;
  if (servfail > 0) {
    f.push(finding({
      code: 'SERVFAIL',
      severity: 'info',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: `${servfail} answers were SERVFAIL (${pct(servfail, r.answered)} of answers)`,
      evidence: { SERVFAIL: servfail },
      remedy: 'the server could not resolve: check its upstreams and logs',
    }));
  }
  if (r.truncated > 0) {
    f.push(finding({
      code: 'TRUNCATED',
      severity: 'info',
      subject: { kind: 'nameserver', address: r.servers.join(', ') },
      message: `${r.truncated} replies were truncated (TC)${r.tcpRetries > 0 ? `; ${r.tcpRetries} retried over TCP` : '; rerun with --tcp to retry them over TCP'}`,
      evidence: { truncated: r.truncated, tcpRetries: r.tcpRetries },
      remedy: '',
    }));
  }
  const unattributed = recordTotal(r.unattributedErrors);
  if (unattributed > 0) {
    f.push(finding({
      code: 'SOCKET_ERRORS',
      severity: 'info',
      subject: { kind: 'machine' },
      message: `${unattributed} socket errors came when no query was in flight on that socket: ${Object.entries(r.unattributedErrors).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      evidence: r.unattributedErrors,
      remedy: '',
    }));
  }
  return f;
}
