/**
 * watch's findings: what the real pods' queries show, each resting on a minimum count and, where it blames one place
 * over another, a test of chance. A capture that missed packets is said first: an answer it did not see looks lost.
 */
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { CAPTURE_LOSS, NO_DNS_SEEN, RACE, SEARCH_LIST_WASTE, SERVER_REFUSED, SERVER_SERVFAIL, TCP_BLOCKED, TRUNCATED_NOT_RETRIED, UNANSWERED_WATCHED, endpointLoss } from '../remedies.js';
import { binomialGreater, fisherGreater, formatP, percentOf } from '../stats/index.js';
import { failures, queriesPerName } from '../capture/groups.js';
import type { WatchResult } from './watch.js';

const MIN = 3;
const P = 0.001;
/** Lone queries needed to bound their loss rate at all. */
const MIN_LONE = 10;
/** Failures (SERVFAIL, REFUSED) a server may give as a matter of course: names whose own servers fail. */
const FAILURE_BACKGROUND = 0.01;
/** Search-list queries a client must send, and their share of its queries, before the waste is called out. */
const MIN_SEARCH = 20;
const SEARCH_SHARE = 0.5;

/**
 * The 95% one-sided upper bound (Clopper-Pearson) of a loss rate seen as `k` of `n`: the highest rate at which seeing
 * `k` or fewer still has a 5% chance. Testing against it, not against k/n, keeps a small sample's luck from deciding.
 */
export function lossUpperBound(k: number, n: number): number {
  if (n === 0 || k >= n) return 1;
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (1 - binomialGreater(k + 1, n, mid) > 0.05) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function watchFindings(r: Omit<WatchResult, 'findings'>): Finding[] {
  const out: Finding[] = [];
  const c = r.capture;
  const gaps = c.skipped['tcp-gap'] ?? 0;
  const missed = (c.kernelDrops ?? 0) + (c.ifDrops ?? 0) > 0 || c.damaged !== null || gaps > 0;
  if (missed) {
    out.push(finding({
      code: 'CAPTURE_LOSS',
      severity: 'warning',
      subject: { kind: 'machine' },
      message:
        `the capture missed packets (${c.kernelDrops ?? 0} dropped by the kernel, ${c.ifDrops ?? 0} by the interface` +
        `${gaps > 0 ? `, ${gaps} gap${gaps === 1 ? '' : 's'} in DNS-over-TCP streams` : ''}${c.damaged !== null ? `; ${c.damaged}` : ''}): some unanswered queries may have had answers it did not see`,
      evidence: { kernelDrops: c.kernelDrops, ifDrops: c.ifDrops, tcpGaps: gaps, damaged: c.damaged ?? '' },
      remedy: CAPTURE_LOSS,
    }));
  }
  if (r.messages === 0) {
    out.push(finding({
      code: 'NO_DNS_SEEN',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `no DNS message was seen (${c.packets} packets over ${c.spanS} s from ${c.source}): nothing was judged; this may be the wrong interface or network namespace, or a quiet one`,
      evidence: { packets: c.packets, spanS: c.spanS },
      remedy: NO_DNS_SEEN,
    }));
  }
  for (const [server, g] of Object.entries(r.byServer)) {
    const stalled = g.unanswered + g.answeredAfterResend;
    // A server that answered nothing: its sends count, since one query asked again and again is an outage too.
    const silent = g.answered === 0 && g.late === 0 && g.unanswered > 0 && g.unanswered + g.resends >= MIN;
    if (stalled < MIN && !silent) continue;
    out.push(finding({
      code: 'QUERY_STALLS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: server },
      message: silent
        ? `none of the ${g.queries} queries to ${server} was answered: sent ${g.queries + g.resends} times in all, each left to wait its ${r.timeoutS} s timeout`
        : `${stalled} of ${g.queries} queries to ${server} (${percentOf(stalled, g.queries, 2)}) waited the ${r.timeoutS} s timeout: ` +
          `${g.answeredAfterResend} answered only after the client sent them again, ${g.unanswered} never answered${g.late > 0 ? ` (${g.late} of those late, after the client gave up)` : ''}`,
      evidence: { stalled, unanswered: g.unanswered, answeredAfterResend: g.answeredAfterResend, queries: g.queries, late: g.late, timeoutS: r.timeoutS },
      remedy: UNANSWERED_WATCHED,
    }));
  }
  // Queries still waiting at the end, longer than any answer took: under the null that they are merely slow, each has
  // at most a 1 in (answers + 1) chance of outwaiting every answer.
  const w = r.inFlightWaitsMs;
  if (w !== null && w.longerThanAnyAnswer >= MIN) {
    const answered = r.total.answered;
    const p = binomialGreater(w.longerThanAnyAnswer, r.inFlightAtEnd, 1 / (answered + 1));
    if (p < P) {
      const longest = r.total.latencyMs?.max;
      out.push(finding({
        code: 'WAITING_AT_END',
        severity: 'warning',
        subject: { kind: 'machine' },
        message:
          `${r.inFlightAtEnd} queries were still unanswered when the capture ended, within the ${r.timeoutS} s timeout; ${w.longerThanAnyAnswer} of them had waited longer than ` +
          `${longest === undefined ? 'any answer took' : `any of the ${answered} answers took (at most ${longest} ms)`}: they waited ${w.min}-${w.max} ms, ` +
          `so answers were not coming (${formatP(p)}), not merely slow`,
        evidence: { waiting: r.inFlightAtEnd, longerThanAnyAnswer: w.longerThanAnyAnswer, answered, longestAnswerMs: longest ?? null, waitedMinMs: w.min, waitedMaxMs: w.max, p: Number(p.toPrecision(3)) },
        remedy: UNANSWERED_WATCHED,
      }));
    }
  }
  // Endpoints: the addresses queries were DNATed to (not servers asked directly), each against the others together.
  const endpoints = Object.entries(r.byEndpoint).filter(([e]) => r.byServer[e] === undefined);
  if (endpoints.length >= 2) {
    for (const [e, g] of endpoints) {
      if (g.unanswered < MIN) continue;
      const others = endpoints.filter(([o]) => o !== e);
      const otherLost = others.reduce((n, [, o]) => n + o.unanswered, 0);
      const otherSent = others.reduce((n, [, o]) => n + o.queries, 0);
      const p = fisherGreater(g.unanswered, g.queries, otherLost, otherSent);
      if (p >= P) continue;
      out.push(finding({
        code: 'WATCHED_ENDPOINT_LOSS',
        severity: 'critical',
        subject: { kind: 'endpoint', address: e, service: null },
        message: `endpoint ${e} left ${g.unanswered} of the ${g.queries} real queries DNATed to it unanswered (${percentOf(g.unanswered, g.queries, 2)}) while ${others.map(([o]) => o).join(', ')} left ${otherLost} of ${otherSent} (${formatP(p)}): that endpoint, not the path to the Service`,
        evidence: { endpoint: e, lost: g.unanswered, sent: g.queries, otherLost, otherSent, p: Number(p.toPrecision(3)), cleanEndpoints: others.filter(([, o]) => o.unanswered === 0).map(([o]) => o).join(' ') },
        remedy: endpointLoss(e),
      }));
    }
  }
  // One at a time: a capture of a large cluster can name more clients than a call has room for arguments.
  for (const more of [serverFailures(r), tcpFindings(r), searchWaste(r)]) for (const f of more) out.push(f);
  const sig = r.total.raceSignature;
  if (sig >= MIN) {
    // Independent loss at rate q loses exactly one of a pair with chance 2q(1-q), at most 1/2.
    const q = lossUpperBound(r.loneFirstLost, r.lone);
    const p = r.lone >= MIN_LONE ? binomialGreater(Math.min(sig, r.pairs), r.pairs, q >= 0.5 ? 0.5 : 2 * q * (1 - q)) : null;
    const dnated = r.raceSignatureDnated;
    const decisive = p !== null && p < P && !missed && dnated >= MIN;
    const clients = Object.entries(r.byClient).filter(([, g]) => g.raceSignature > 0).sort((a, b) => b[1].raceSignature - a[1].raceSignature);
    const who = clients.slice(0, 3).map(([ip, g]) => `${r.pods[ip] ?? ip} (${g.raceSignature})`).join(', ');
    const servers = Object.entries(r.byServer).filter(([, g]) => g.raceSignature > 0).map(([s]) => s);
    const against = p === null ? '' : `independent loss at the rate of queries sent alone (${r.loneFirstLost} of ${r.lone} first sends unanswered: at most ${percentOf(q, 1, 1)}) ${p < P ? 'does not explain them' : 'may explain them'} (${formatP(p)})`;
    const why = decisive
      ? `${against}, and ${dnated} of them were DNATed: the conntrack race`
      : missed
        ? 'the capture missed packets: not tested further'
        : p === null
          ? `the race's signature, not tested against chance (${r.lone} queries sent alone, fewer than ${MIN_LONE} to measure plain loss by)`
          : dnated < MIN
            ? `${against}; but ${dnated === 0 ? 'none' : `only ${dnated}`} of them were seen DNATed, and the race needs NAT: a server or path dropping some queries shows this too`
            : against;
    out.push(finding({
      code: 'RACE_SIGNATURE',
      severity: decisive ? 'critical' : 'warning',
      subject: { kind: 'nameserver', address: servers.join(', ') },
      message: `${sig} of ${r.pairs} lookups that sent A and AAAA together from one port got one answered and the other not (${who}): ${why}`,
      evidence: { signature: sig, dnated, pairs: r.pairs, loneFirstLost: r.loneFirstLost, lone: r.lone, p: p === null ? null : Number(p.toPrecision(3)), client: clients[0]?.[0] ?? '' },
      remedy: RACE,
    }));
  }
  return out;
}

/** Each endpoint (or server asked directly) answering with failures beyond the background, against the others. */
function serverFailures(r: Omit<WatchResult, 'findings'>): Finding[] {
  const out: Finding[] = [];
  const all = Object.entries(r.byEndpoint);
  for (const [e, g] of all) {
    const f = failures(g.rcodes);
    if (f < MIN) continue;
    const p = binomialGreater(f, g.answered, FAILURE_BACKGROUND);
    if (p >= P) continue;
    const others = all.filter(([o]) => o !== e);
    const otherFailed = others.length > 0 ? others.reduce((n, [, o]) => n + failures(o.rcodes), 0) : null;
    const otherAnswered = others.length > 0 ? others.reduce((n, [, o]) => n + o.answered, 0) : null;
    const servfail = g.rcodes['SERVFAIL'] ?? 0;
    const refused = g.rcodes['REFUSED'] ?? 0;
    const share = f / g.answered;
    const beside =
      otherFailed === null || otherAnswered === null
        ? ''
        : otherAnswered === 0
          ? '; the other servers answered nothing to compare'
          : `; the others answered ${otherFailed} of ${otherAnswered} so (${percentOf(otherFailed, otherAnswered, 2)})${otherFailed / otherAnswered >= share / 2 ? ': all alike, what they ask upstream, not one pod' : ''}`;
    out.push(finding({
      code: 'WATCHED_SERVER_FAILURES',
      severity: share >= 0.5 ? 'critical' : 'warning',
      subject: { kind: 'endpoint', address: e, service: null },
      message: `${e} answered ${f} of the ${g.answered} real queries it answered with failures (${percentOf(f, g.answered, 2)}: SERVFAIL ${servfail}, REFUSED ${refused}; ${formatP(p)} against ${percentOf(FAILURE_BACKGROUND, 1, 0)})${beside}`,
      evidence: { servfail, refused, answered: g.answered, share: Number(share.toFixed(4)), p: Number(p.toPrecision(3)), otherFailed, otherAnswered },
      remedy: refused > servfail ? SERVER_REFUSED : SERVER_SERVFAIL,
    }));
  }
  return out;
}

const who = (r: Omit<WatchResult, 'findings'>, ip: string): string => r.pods[ip] ?? ip;

/** Truncated answers nobody retried over TCP; TCP queries lost more often than UDP ones. */
function tcpFindings(r: Omit<WatchResult, 'findings'>): Finding[] {
  const out: Finding[] = [];
  const t = r.total;
  if (t.truncatedNoTcp >= MIN) {
    const clients = Object.entries(r.byClient).filter(([, g]) => g.truncatedNoTcp > 0).sort((a, b) => b[1].truncatedNoTcp - a[1].truncatedNoTcp);
    const top = clients[0]!;
    out.push(finding({
      code: 'TRUNCATED_NOT_RETRIED',
      severity: 'warning',
      subject: { kind: 'client', address: top[0], pod: r.pods[top[0]] ?? null },
      message:
        `${t.truncatedNoTcp} of ${t.truncated} truncated answers were not followed by a TCP query for the same name within ${r.timeoutS} s ` +
        `(${clients.slice(0, 3).map(([ip, g]) => `${who(r, ip)} ${g.truncatedNoTcp}`).join(', ')}): those clients used a partial answer or none`,
      evidence: { truncated: t.truncated, notRetried: t.truncatedNoTcp, tcpAfterTruncated: r.tcpAfterTruncated, clients: clients.map(([ip]) => ip).join(' ') },
      remedy: TRUNCATED_NOT_RETRIED,
    }));
  }
  const udpLost = t.unanswered - t.tcpUnanswered;
  const udpQueries = t.queries - t.tcp;
  const p = t.tcpUnanswered >= MIN ? fisherGreater(t.tcpUnanswered, t.tcp, udpLost, udpQueries) : null;
  const lost = p !== null && p < P;
  if (t.truncatedTcpFailed >= MIN || lost) {
    const servers = Object.entries(r.byServer).filter(([, g]) => g.tcpUnanswered + g.truncatedTcpFailed > 0).map(([s]) => s);
    const parts = [
      ...(t.truncatedTcpFailed > 0 ? [`${t.truncatedTcpFailed} truncated answers were followed by a TCP connection attempt to port 53 that never carried the query`] : []),
      ...(p !== null ? [`${t.tcpUnanswered} of ${t.tcp} real queries over TCP went unanswered (${percentOf(t.tcpUnanswered, t.tcp, 2)}) against ${udpLost} of ${udpQueries} over UDP (${formatP(p)})`] : []),
    ];
    out.push(finding({
      code: 'TCP_FALLBACK_FAILING',
      severity: 'warning',
      subject: { kind: 'nameserver', address: servers.join(', ') },
      message: `${parts.join('; ')}: DNS over TCP fails on this path, and answers too large for UDP cannot be had`,
      evidence: { retriesFailed: t.truncatedTcpFailed, tcpLost: t.tcpUnanswered, tcpQueries: t.tcp, udpLost, udpQueries, p: p === null ? null : Number(p.toPrecision(3)) },
      remedy: TCP_BLOCKED,
    }));
  }
  return out;
}

/** Clients most of whose queries are search-list names that do not exist: the ndots cost, in real traffic. */
function searchWaste(r: Omit<WatchResult, 'findings'>): Finding[] {
  const clients = Object.entries(r.byClient)
    .filter(([, g]) => g.searchQueries >= MIN_SEARCH && g.searchQueries >= SEARCH_SHARE * g.queries)
    .sort((a, b) => b[1].searchQueries - a[1].searchQueries);
  if (clients.length === 0) return [];
  const search = clients.reduce((n, [, g]) => n + g.searchQueries, 0);
  const queries = clients.reduce((n, [, g]) => n + g.queries, 0);
  const perName = queriesPerName(queries, search);
  const top = clients[0]!;
  const list = clients.slice(0, 3).map(([ip, g]) => `${who(r, ip)} ${g.searchQueries} of ${g.queries}`).join(', ');
  return [finding({
    code: 'SEARCH_LIST_WASTE',
    severity: 'warning',
    subject: { kind: 'client', address: top[0], pod: r.pods[top[0]] ?? null },
    message:
      `${search} of ${queries} queries (${percentOf(search, queries, 1)}) from ${clients.length === 1 ? 'one client' : `${clients.length} clients`} were search-list names answered NXDOMAIN before the name itself ` +
      `(${list}${clients.length > 3 ? ', ...' : ''}): ${perName.toFixed(1)} queries per name asked`,
    evidence: { searchQueries: search, queries, share: Number((search / queries).toFixed(4)), queriesPerName: Number(perName.toFixed(2)) },
    remedy: SEARCH_LIST_WASTE,
  })];
}
