/**
 * watch's findings: what the real pods' queries show, each resting on a minimum count and, where it blames one place
 * over another, a test of chance. A capture that missed packets is said first: an answer it did not see looks lost.
 */
import { finding } from '../findings.js';
import type { Finding } from '../findings.js';
import { CAPTURE_LOSS, RACE, UNANSWERED_WATCHED, endpointLoss } from '../remedies.js';
import { binomialGreater, fisherGreater, formatP, percentOf } from '../stats/index.js';
import type { WatchResult } from './watch.js';

const MIN = 3;
const P = 0.001;
/** Lone queries needed to bound their loss rate at all. */
const MIN_LONE = 10;

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
  const missed = (c.kernelDrops ?? 0) + (c.ifDrops ?? 0) > 0 || c.damaged !== null;
  if (missed) {
    out.push(finding({
      code: 'CAPTURE_LOSS',
      severity: 'warning',
      subject: { kind: 'machine' },
      message: `the capture missed packets (${c.kernelDrops ?? 0} dropped by the kernel, ${c.ifDrops ?? 0} by the interface${c.damaged !== null ? `; ${c.damaged}` : ''}): some unanswered queries may have had answers it did not see`,
      evidence: { kernelDrops: c.kernelDrops, ifDrops: c.ifDrops, damaged: c.damaged ?? '' },
      remedy: CAPTURE_LOSS,
    }));
  }
  for (const [server, g] of Object.entries(r.byServer)) {
    const stalled = g.unanswered + g.answeredAfterResend;
    if (stalled < MIN) continue;
    out.push(finding({
      code: 'QUERY_STALLS',
      severity: 'warning',
      subject: { kind: 'nameserver', address: server },
      message:
        `${stalled} of ${g.queries} queries to ${server} (${percentOf(stalled, g.queries, 2)}) waited the ${r.timeoutS} s timeout: ` +
        `${g.answeredAfterResend} answered only after the client sent them again, ${g.unanswered} never answered${g.late > 0 ? ` (${g.late} of those late, after the client gave up)` : ''}`,
      evidence: { stalled, unanswered: g.unanswered, answeredAfterResend: g.answeredAfterResend, queries: g.queries, late: g.late, timeoutS: r.timeoutS },
      remedy: UNANSWERED_WATCHED,
    }));
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
        message: `endpoint ${e} left ${g.unanswered} of the ${g.queries} real queries DNATed to it unanswered (${percentOf(g.unanswered, g.queries, 2)}) while ${others.map(([o]) => o).join(', ')} left ${otherLost} of ${otherSent} (p ${formatP(p)}): that endpoint, not the path to the Service`,
        evidence: { endpoint: e, lost: g.unanswered, sent: g.queries, otherLost, otherSent, p: Number(p.toPrecision(3)), cleanEndpoints: others.filter(([, o]) => o.unanswered === 0).map(([o]) => o).join(' ') },
        remedy: endpointLoss(e),
      }));
    }
  }
  const sig = r.total.raceSignature;
  if (sig >= MIN) {
    // Independent loss at rate q loses exactly one of a pair with chance 2q(1-q), at most 1/2.
    const q = lossUpperBound(r.loneLost, r.lone);
    const p = r.lone >= MIN_LONE ? binomialGreater(Math.min(sig, r.pairs), r.pairs, q >= 0.5 ? 0.5 : 2 * q * (1 - q)) : null;
    const dnated = r.raceSignatureDnated;
    const decisive = p !== null && p < P && !missed && dnated >= MIN;
    const clients = Object.entries(r.byClient).filter(([, g]) => g.raceSignature > 0).sort((a, b) => b[1].raceSignature - a[1].raceSignature);
    const who = clients.slice(0, 3).map(([ip, g]) => `${r.pods[ip] ?? ip} (${g.raceSignature})`).join(', ');
    const servers = Object.entries(r.byServer).filter(([, g]) => g.raceSignature > 0).map(([s]) => s);
    const against = p === null ? '' : `independent loss at the rate of queries sent alone (${r.loneLost} of ${r.lone}: at most ${percentOf(q, 1, 1)}) ${p < P ? 'does not explain them' : 'may explain them'} (${formatP(p)})`;
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
      evidence: { signature: sig, dnated, pairs: r.pairs, loneLost: r.loneLost, lone: r.lone, p: p === null ? null : Number(p.toPrecision(3)), client: clients[0]?.[0] ?? '' },
      remedy: RACE,
    }));
  }
  return out;
}
