/**
 * Every rule at its threshold: the smallest count that names the cause, found with exact references written apart
 * from the code (BigInt hypergeometric and binomial tails), is named; one fewer is not. The bar is the catalogue's:
 * at least 3, and p < 0.001.
 */
import { describe, expect, it } from 'vitest';
import { attribute } from '../../src/doctor/rules.js';
import type { AttributionInput } from '../../src/doctor/rules.js';
import type { ProbeSummary } from '../../src/doctor/probes.js';
import type { FindingCode } from '../../src/findings.js';

function choose(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}
/** P(X >= a) of the hypergeometric, below 1/1000 or not, decided on exact integers. */
function fisherBelow(a: number, n: number, b: number, m: number, num = 1n, den = 1000n): boolean {
  const k = a + b;
  let tail = 0n;
  for (let x = a; x <= Math.min(k, n); x++) tail += choose(n, x) * choose(m, k - x);
  return tail * den < num * choose(n + m, k);
}
/** P(X >= k) of Bin(n, p0num/p0den) below 1/1000, on exact integers. */
function binomialBelow(k: number, n: number, p0num: bigint, p0den: bigint): boolean {
  let tail = 0n;
  for (let x = k; x <= n; x++) tail += choose(n, x) * p0num ** BigInt(x) * (p0den - p0num) ** BigInt(n - x);
  return tail * 1000n < p0den ** BigInt(n);
}
/** The smallest count at least 3 that the reference calls significant. */
function threshold(significant: (k: number) => boolean, max: number): number {
  for (let k = 3; k <= max; k++) if (significant(k)) return k;
  throw new Error('no threshold');
}

const probe = (kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], stalled: number, extra: Partial<ProbeSummary> = {}): ProbeSummary => {
  const units = extra.units ?? (kind === 'lookups' ? 8 : 100);
  return {
    label: `${kind} ${mode ?? extra.qtype ?? ''}`, kind, mode, qtype: null, target: '10.96.0.10:53', sent: units, answered: units - stalled, timeouts: stalled, errors: 0, errorCodes: {}, rcodes: {}, late: 0,
    units, stalled, failed: 0, over1s: stalled, over5s: 0, localDrops: 0, meanMs: 2, medianMs: 2, queriesPerUnit: kind === 'lookups' ? 2 : 1, datagramsPerUnit: kind === 'lookups' ? 4 : 2, singleRequestSwitches: 0, servfailed: 0, rate: 1000, paced: false, rounds: 1, byRound: [{ units, stalled }], ...extra,
  };
};
const input = (probes: ProbeSummary[]): AttributionInput => ({ probes, service: null, libc: 'glibc', clashFixes: [], insertFailed: null, conntrack: null, nodeLocalDNS: false, name: 'google.com', ndots: undefined, nic: null, coredns: null, final: true });
const named = (code: FindingCode, probes: ProbeSummary[]) => attribute(input(probes)).findings.some((f) => f.code === code);
const raw = (t: 'A' | 'AAAA', n: number, extra: Partial<ProbeSummary> = {}) => probe('raw', null, n, { qtype: t, ...extra });
const modes = (par: number, reopen: number, tcp: number) => [probe('lookups', 'parallel', par), probe('lookups', 'single-request-reopen', reopen), probe('lookups', 'tcp', tcp)];

const cases: Array<{ code: FindingCode; at: number; build: (k: number) => ProbeSummary[] }> = [
  // Two comparisons (AAAA against A and A against AAAA), on one round (no second to repeat it in): each at 1/20000.
  { code: 'TYPE_UNANSWERED', at: threshold((k) => fisherBelow(k, 100, 0, 100, 1n, 20000n), 100), build: (k) => [raw('A', 0), raw('AAAA', k)] },
  {
    code: 'ENDPOINT_LOSS',
    // Two endpoints, each against the other: two comparisons, on one round: each at 1/20000.
    at: threshold((k) => fisherBelow(k, 100, 0, 100, 1n, 20000n), 100),
    build: (k) => [probe('endpoint', null, k, { target: 'a:53' }), probe('endpoint', null, 0, { target: 'b:53' })],
  },
  {
    code: 'DNAT_PATH_LOSS',
    at: threshold((k) => fisherBelow(k, 200, 0, 200), 200),
    build: (k) => [raw('A', Math.ceil(k / 2)), raw('AAAA', Math.floor(k / 2)), probe('endpoint', null, 0, { target: 'a:53' }), probe('endpoint', null, 0, { target: 'b:53' })],
  },
  {
    code: 'RATE_LIMITED',
    // One round: p < 1/10000.
    at: threshold((k) => fisherBelow(k, 100, 0, 40, 1n, 10000n), 100),
    build: (k) => [raw('A', k), raw('A', 0, { units: 40, sent: 40, answered: 40, paced: true, rate: 20, label: 'paced' })],
  },
  {
    code: 'UPSTREAM_FAILURE',
    // Like with like: 8 lookups of the external name with a trailing dot against 8 of the in-cluster name.
    at: threshold((k) => fisherBelow(k, 8, 0, 8), 8),
    build: (k) => [probe('lookups', 'trailing-dot', 0, { servfailed: k }), probe('lookups', 'in-cluster', 0)],
  },
  {
    code: 'TCP_FALLBACK_BLOCKED',
    at: threshold((k) => fisherBelow(k, 8, 0, 8), 8),
    build: (k) => [probe('lookups', 'parallel', 0), probe('lookups', 'single-request-reopen', 0), probe('lookups', 'tcp', 0, { failed: k, answered: 8 - k })],
  },
  {
    code: 'SERVER_FAILURES',
    // One answer is one datagram back: the background is 1 - 0.99^1 = 1/100 per answer.
    at: threshold((k) => binomialBelow(k, 200, 1n, 100n), 200),
    build: (k) => [raw('A', 0, { rcodes: { NOERROR: 100 - Math.min(k, 100), SERVFAIL: Math.min(k, 100) } }), raw('AAAA', 0, { rcodes: { NOERROR: 100 - Math.max(0, k - 100), SERVFAIL: Math.max(0, k - 100) } })],
  },
  {
    code: 'SERVER_LOSS',
    // Per lookup, two queries each way: 1 - 0.99^4 = 1 - 96059601/100000000.
    at: threshold((k) => binomialBelow(k, 8, 100000000n - 96059601n, 100000000n), 8),
    build: (k) => modes(k, k, k),
  },
  {
    code: 'SERVER_LOSS',
    // Lookups through a three-domain search list: 8 queries, 16 datagrams each, 1 - 0.99^16 of them stall by chance.
    at: threshold((k) => binomialBelow(k, 8, 100n ** 16n - 99n ** 16n, 100n ** 16n), 8),
    build: (k) => modes(k, k, k).map((p) => ({ ...p, queriesPerUnit: 8, datagramsPerUnit: 16 })),
  },
  {
    code: 'CONNTRACK_RACE',
    at: threshold((k) => fisherBelow(k, 8, 0, 8), 8),
    build: (k) => [...modes(k, 0, 0), probe('lookups', 'parallel-direct', 0, { target: 'a:53', units: 16 })],
  },
];

describe('each rule at its threshold', () => {
  for (const c of cases) {
    it(`${c.code}: named at ${c.at}, not at ${c.at - 1} (${c.build(c.at)[0]!.datagramsPerUnit} datagrams a unit)`, () => {
      expect(named(c.code, c.build(c.at - 1))).toBe(false);
      expect(named(c.code, c.build(c.at))).toBe(true);
    });
  }
});
