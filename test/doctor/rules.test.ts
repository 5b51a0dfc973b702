/**
 * doctor's rules on probe outcomes written out. Each threshold is tested just below (not named) and at it (named),
 * with the p-values worked out apart from the code (exact fractions: Fisher's C(8,k)/C(16,k) for k/8 against 0/8,
 * the binomial tail at 1 - 0.99^4 per lookup), and the race verdict across evidence levels and kernels.
 */
import { describe, expect, it } from 'vitest';
import { RULES, VERDICT_ORDER, attribute } from '../../src/doctor/rules.js';
import type { AttributionInput } from '../../src/doctor/rules.js';
import { readInsertFailed } from '../../src/doctor/race.js';
import type { ProbeSummary } from '../../src/doctor/probes.js';
import { ALPHA, MIN_COUNT } from '../../src/doctor/evidence.js';
import { CATALOGUE, exitCodeFor } from '../../src/findings.js';
import type { FindingCode } from '../../src/findings.js';
import { verdictOf } from '../../src/commands/doctor.js';

const probe = (kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], stalled: number, target = '10.96.0.10:53', extra: Partial<ProbeSummary> = {}): ProbeSummary => {
  const units = extra.units ?? (kind === 'lookups' ? 8 : 100);
  return {
    label: `${kind} ${mode ?? extra.qtype ?? ''}`, kind, mode, qtype: null, target, sent: units, answered: units - stalled, timeouts: stalled, errors: 0, errorCodes: {}, rcodes: { NOERROR: units - stalled }, late: 0,
    units, stalled, failed: 0, over1s: stalled, over5s: 0, localDrops: 0, meanMs: 2, medianMs: 2, queriesPerUnit: kind === 'lookups' ? 2 : 1, datagramsPerUnit: kind === 'lookups' ? 4 : 2, singleRequestSwitches: 0,
    servfailed: 0, rate: 100, paced: false, rounds: 1, byRound: [{ units: extra.units ?? (kind === 'lookups' ? 8 : 100), stalled }], ...extra,
  };
};
const input = (probes: ProbeSummary[], o: Partial<AttributionInput> = {}): AttributionInput => ({
  probes, service: null, libc: 'glibc', clashFixes: ['4.19', '5.0', '5.6', '5.10'], insertFailed: null, conntrack: null, nodeLocalDNS: false, name: 'google.com', ndots: undefined, nic: null, coredns: null, final: true, ...o,
});
const codes = (a: AttributionInput) => attribute(a).findings.map((f) => f.code).sort();
const modes = (par: number, reopen: number, tcp: number, units = 8) => [probe('lookups', 'parallel', par, undefined, { units }), probe('lookups', 'single-request-reopen', reopen, undefined, { units }), probe('lookups', 'tcp', tcp, undefined, { units })];
const direct = (stalled: number, target: string, units = 8) => probe('lookups', 'parallel-direct', stalled, target, { units });
const endpoint = (stalled: number, target: string) => probe('endpoint', null, stalled, target);
const rawT = (t: 'A' | 'AAAA', stalled: number, extra: Partial<ProbeSummary> = {}) => probe('raw', null, stalled, undefined, { qtype: t, ...extra });
const k54 = { clashFixes: ['4.19', '5.0'] };
const none = { clashFixes: [] as string[] };
const dns = { service: { id: 'kube-system/kube-dns:dns', clusterIP: '10.96.0.10', endpoints: ['10.244.0.2:53', '10.244.0.3:53'] } };
const cleanDirect = [direct(0, '10.244.0.2:53'), direct(0, '10.244.0.3:53')];

describe('the thresholds', () => {
  it('are the ones the catalogue states', () => {
    expect(ALPHA).toBe(0.001);
    expect(MIN_COUNT).toBe(3);
    for (const code of ['RATE_LIMITED', 'UPSTREAM_FAILURE', 'TYPE_UNANSWERED', 'ENDPOINT_LOSS', 'CONNTRACK_RACE', 'SERVER_LOSS', 'DNAT_PATH_LOSS', 'TCP_FALLBACK_BLOCKED', 'SERVER_FAILURES'] as const) {
      expect(CATALOGUE[code].rule, code).toMatch(/at least 3/);
      expect(CATALOGUE[code].rule, code).toMatch(/p < 0\.001/);
    }
  });

  it('no cause, but probes the budget left out: the verdict says so instead of "every probe was answered"', () => {
    expect(verdictOf([], null, [rawT('A', 0)], 2)).toEqual(['No cause of DNS stalls found in the 1 probes that ran; 2 the budget left out (a larger --budget runs them).']);
    expect(verdictOf([], null, [rawT('A', 2), rawT('AAAA', 1)])).toEqual(['No cause of DNS stalls found: 3 of 200 queries and lookups went unanswered in time, no more than chance loss explains.']);
  });

  it('nothing stalls: no finding, and the verdict says so', () => {
    const a = input([rawT('A', 0), rawT('AAAA', 0), ...modes(0, 0, 0)]);
    expect(codes(a)).toEqual([]);
    expect(verdictOf(attribute(a).findings, null)).toEqual(['No cause of DNS stalls found: every probe was answered in time.']);
  });

  it('the race signature: 6/8 against 0/8 (p = 0.0035) is suggestive: more probes first, then inconclusive; 7/8 (p = 0.0007) decides', () => {
    const six = input([...modes(6, 0, 0), ...cleanDirect], { ...dns, final: false });
    expect(attribute(six).more).toEqual(expect.arrayContaining(['lookup-modes', 'direct']));
    // The pattern is suggestive; the loss itself is not chance (6 lookups of 32 where 1.3 are expected): the loss is
    // said, and the pattern beside it as a note that names the candidates.
    const last = attribute({ ...six, final: true }).findings;
    expect(last.map((f) => [f.code, f.severity])).toEqual([['INCONCLUSIVE', 'info'], ['STALLS_UNEXPLAINED', 'warning']]);
    expect(last[0]!.message).toMatch(/6\/8 vs 0\/8, p = 0\.0035/);
    expect(last[1]!.message).toMatch(/patterns short of decisive: the race signature/);
    // Where the loss alone is within chance (3/8 through the search list, no other probe), the pattern is the warning.
    const weak = attribute(input([probe('lookups', 'parallel', 3, undefined, { datagramsPerUnit: 16 }), probe('lookups', 'single-request-reopen', 0, undefined, { datagramsPerUnit: 16 })])).findings;
    expect(weak.map((f) => [f.code, f.severity])).toEqual([]);
    expect(codes(input([...modes(7, 0, 0), ...cleanDirect], dns))).toEqual(['CONNTRACK_RACE']);
  });

  it('after more rounds, "31/64 vs 0/64" decides where 6/8 did not', () => {
    const f = attribute(input([...modes(31, 0, 0, 64), direct(0, '10.244.0.2:53', 32), direct(0, '10.244.0.3:53', 32)], dns)).findings;
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
    expect(f[0]!.message).toMatch(/31\/64 vs 0\/64, p < 1e-6/);
  });

  it('a minimum count: 2 stalls are never a cause, however lopsided', () => {
    expect(codes(input([...modes(2, 0, 0, 2), ...cleanDirect], dns))).not.toContain('CONNTRACK_RACE');
    expect(codes(input([rawT('A', 0), rawT('AAAA', 0), endpoint(2, 'a:53'), endpoint(0, 'b:53')]))).not.toContain('ENDPOINT_LOSS');
  });

  it('ENDPOINT_LOSS, two endpoints each tested against the other: decisive at 11/100 against 0/100 (p = 0.00036, 0.00073 over 2 comparisons), named when a second round of its own shows it again; with no second round, only from 14/100 (0.000075 over 2, under 1e-4)', () => {
    const below = input([endpoint(10, '10.244.0.3:53'), endpoint(0, '10.244.0.2:53')], { ...dns, final: false });
    expect(attribute(below).more).toEqual(expect.arrayContaining(['endpoints']));
    expect(codes({ ...below, final: true })).not.toContain('ENDPOINT_LOSS');
    // Decisive on its first round: a second round is asked for before it is named.
    const first = input([endpoint(11, '10.244.0.3:53'), endpoint(0, '10.244.0.2:53')], { ...dns, final: false });
    expect(codes(first)).not.toContain('ENDPOINT_LOSS');
    expect(attribute(first).more).toEqual(expect.arrayContaining(['endpoints']));
    const twice = (n: number, more: number, target: string) => ({ ...endpoint(n + more, target), units: 400, sent: 400, byRound: [{ units: 100, stalled: n }, { units: 300, stalled: more }] });
    const f = attribute(input([twice(11, 12, '10.244.0.3:53'), twice(0, 0, '10.244.0.2:53')], dns)).findings;
    expect(f.filter((x) => x.code === 'ENDPOINT_LOSS').map((x) => x.subject)).toEqual([{ kind: 'endpoint', address: '10.244.0.3:53', service: 'kube-system/kube-dns:dns' }]);
    expect(f.find((x) => x.code === 'ENDPOINT_LOSS')!.message).toMatch(/23\/400 vs 0\/400, p < 1e-6 over 2 comparisons, and again in a round of its own/);
    // Seen once and not again: not named.
    expect(codes(input([twice(11, 1, '10.244.0.3:53'), twice(0, 0, '10.244.0.2:53')], dns))).not.toContain('ENDPOINT_LOSS');
    // No second round (the budget spent): named only far beyond the bar.
    expect(codes(input([endpoint(13, '10.244.0.3:53'), endpoint(0, '10.244.0.2:53')], dns))).not.toContain('ENDPOINT_LOSS');
    const once = attribute(input([endpoint(14, '10.244.0.3:53'), endpoint(0, '10.244.0.2:53')], dns)).findings.find((x) => x.code === 'ENDPOINT_LOSS')!;
    expect(once.message).toMatch(/14\/100 vs 0\/100, p = 7\.5e-5 over 2 comparisons; not repeated, the budget allowed one round, but far beyond chance/);
  });

  it('SERVER_LOSS: 3/8 in each mode (p = 0.0030 against the background) is not named, 4/8 (p = 0.00015) is', () => {
    expect(codes(input(modes(3, 3, 3)))).not.toContain('SERVER_LOSS');
    const f = attribute(input(modes(4, 4, 4))).findings;
    expect(f.map((x) => x.code)).toEqual(['SERVER_LOSS']);
    expect(f[0]!.message).toMatch(/the path between is not ruled out/);
  });

  it('STALLS_UNEXPLAINED needs losses beyond the background too: 2 stalls of 8 in one mode are chance', () => {
    expect(codes(input(modes(2, 0, 2)))).toEqual([]);
    const odd = attribute(input(modes(0, 0, 5))).findings;
    expect(odd.map((f) => f.code)).toEqual(['STALLS_UNEXPLAINED']);
    expect(odd[0]!.remedy).not.toMatch(/rerun to see whether the pattern holds/);
  });
});

describe('the race, or not, consistent across evidence and kernels', () => {
  const sig = modes(8, 0, 0);
  it('with no endpoint probed and insert_failed not readable: inconclusive on every kernel, naming both candidates and what tells them apart', () => {
    for (const k of [none, k54, {}]) {
      const f = attribute(input(sig, k)).findings;
      expect(f.map((x) => x.code)).toEqual(['INCONCLUSIVE']);
      expect(f[0]!.message).toMatch(/the conntrack race, or a server or hop that drops the second of two queries .*give --endpoints.*run doctor on the node/);
    }
  });

  it('more evidence never weakens the verdict: the same signature with the endpoints clean names the race, on every kernel', () => {
    for (const k of [none, k54, {}]) {
      const f = attribute(input([...sig, ...cleanDirect], { ...dns, ...k })).findings;
      expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
      expect(f[0]!.severity).toBe('critical');
    }
    const new56 = attribute(input([...sig, ...cleanDirect], dns)).findings[0]!;
    expect(new56.message).toMatch(/This kernel resolves that clash \(5\.6\): the NAT that drops them runs on another kernel/);
  });

  it('straight to an endpoint they stall too: not the race on a 4.19+ kernel; the race before 4.19', () => {
    const stalls = [...sig, direct(8, '10.244.0.2:53'), direct(8, '10.244.0.3:53')];
    expect(codes(input(stalls, { ...dns, ...k54 }))).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(codes(input(stalls, { ...dns }))).toEqual(['PARALLEL_QUERY_LOSS']);
    const old = attribute(input(stalls, { ...dns, ...none })).findings;
    expect(old.map((f) => f.code)).toEqual(['CONNTRACK_RACE']);
    expect(old[0]!.message).toMatch(/which this kernel \(no 4\.19 clash fix\) drops too/);
  });

  it('NodeLocalDNS is reached untracked: never the race, whatever the kernel', () => {
    for (const k of [none, k54]) {
      const f = attribute(input(sig, { ...k, nodeLocalDNS: true })).findings;
      expect(f.map((x) => x.code)).toEqual(['PARALLEL_QUERY_LOSS']);
      expect(f[0]!.remedy).toMatch(/node-local-dns pod/);
    }
  });

  it('insert_failed corroborates or contradicts; it never overrides the direct evidence', () => {
    const rose = { during: 8, seconds: 5, baseline: 0, baselineSeconds: 10 };
    expect(codes(input(sig, { insertFailed: rose }))).toEqual(['CONNTRACK_RACE']);
    expect(codes(input(sig, { insertFailed: { during: 0, seconds: 5, baseline: 3, baselineSeconds: 5 } }))).toEqual(['PARALLEL_QUERY_LOSS']);
    // Risen, but the un-NATed lookups lose the same way on a 4.19+ kernel: not the race, and the rise is said.
    const f = attribute(input([...sig, direct(8, '10.244.0.2:53')], { ...dns, insertFailed: rose })).findings;
    expect(f.map((x) => x.code)).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(f[0]!.message).toMatch(/insert_failed rose by 8 .* from other traffic or a race beside this loss/);
  });

  it('insert_failed against its own background: a busy node\'s rise is no evidence', () => {
    // The two intervals compared as two Poisson rates: of the events of both, the probes' share is binomial with their
    // share of the time. 5 in 5 s against 5 in the 5 s before: P(X >= 5 | 10, 1/2) = 0.62.
    expect(readInsertFailed({ during: 5, seconds: 5, baseline: 5, baselineSeconds: 5 }).verdict).toBe('unclear');
    // 8 against a quiet 10 s: (5/15)^8 = 1.5e-4.
    expect(readInsertFailed({ during: 8, seconds: 5, baseline: 0, baselineSeconds: 10 }).verdict).toBe('rose');
    // 8 against a quiet 5 s is not: (1/2)^8 = 0.0039, a quiet 5 s says little of the rate.
    expect(readInsertFailed({ during: 8, seconds: 5, baseline: 0, baselineSeconds: 5 }).verdict).toBe('unclear');
    // 30 in 30 s against 12 in 10 s (taken as an exact rate, 42 would be expected; the rates' test sees no rise).
    expect(readInsertFailed({ during: 60, seconds: 30, baseline: 12, baselineSeconds: 10 }).verdict).toBe('unclear');
    // 2 is under the minimum count, however quiet the baseline.
    expect(readInsertFailed({ during: 2, seconds: 5, baseline: 0, baselineSeconds: 500 }).verdict).toBe('unclear');
    expect(readInsertFailed(null).verdict).toBe('unknown');
  });

  it('from the node, sends failing (EPERM) with A+AAAA from one socket only while insert_failed rises: the race', () => {
    const eperm = probe('lookups', 'parallel', 0, '10.96.0.10:53', { answered: 0, errors: 8, failed: 8, errorCodes: { EPERM: 8 } });
    const rest = [probe('lookups', 'single-request-reopen', 0), probe('lookups', 'tcp', 0)];
    const f = attribute(input([eperm, ...rest], { insertFailed: { during: 8, seconds: 4, baseline: 0, baselineSeconds: 10 } })).findings;
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE', 'PROBE_ERRORS']);
    expect(f[0]!.message).toMatch(/fail at once .*8\/8 lookups: EPERM 8/);
    // Without the counter's rise the errors are only errors.
    expect(codes(input([eperm, ...rest]))).toEqual(['PROBE_ERRORS']);
  });
});

describe('the causes beyond the race', () => {
  it('loss at full speed and none at 20/s: a rate limit, with both rates; 5/100 against 0/40 (p = 0.15) is not', () => {
    const fast = rawT('A', 40, { rate: 3900 });
    const paced = rawT('A', 0, { units: 40, sent: 40, answered: 40, rate: 20, paced: true });
    const f = attribute(input([fast, rawT('AAAA', 38, { rate: 3900 }), paced, ...modes(0, 0, 0)])).findings;
    expect(f.map((x) => x.code)).toEqual(['RATE_LIMITED']);
    expect(f[0]!.message).toMatch(/^queries sent in bursts of 20 at once \(3900 queries\/s on average, timeouts included\) are lost \(40\/100\) and not at a steady 20\/s \(0\/40;/);
    expect(codes(input([rawT('A', 5), paced]))).toEqual([]);
  });

  it('external names failing while the in-cluster name is answered: the upstream, not the server nor the race', () => {
    const servfail = (mode: ProbeSummary['mode']) => probe('lookups', mode, 0, undefined, { servfailed: 8 });
    const inCluster = probe('lookups', 'in-cluster', 0);
    // Like with like: the external name with a trailing dot against the in-cluster name, both absolute.
    const f = attribute(input([rawT('A', 0), rawT('AAAA', 0), servfail('parallel'), servfail('single-request-reopen'), servfail('tcp'), servfail('trailing-dot'), inCluster])).findings;
    expect(f.map((x) => x.code)).toEqual(['UPSTREAM_FAILURE']);
    expect(f[0]!.evidence).toMatchObject({ externalFailed: 8, servfail: 8, inClusterFailed: 0 });
    // A slow upstream decides from latency: every external lookup over 1 s, the in-cluster name in 1.5 ms.
    const slow = probe('lookups', 'trailing-dot', 0, undefined, { over1s: 8, medianMs: 2500 });
    expect(codes(input([slow, probe('lookups', 'in-cluster', 0, undefined, { medianMs: 1.5 })]))).toEqual(['UPSTREAM_FAILURE']);
    // Lookups through the search list stalling more than the in-cluster name are no evidence: they carry more datagrams.
    expect(codes(input([probe('lookups', 'parallel', 6, undefined, { datagramsPerUnit: 16 }), probe('lookups', 'trailing-dot', 1), probe('lookups', 'in-cluster', 1)]))).not.toContain('UPSTREAM_FAILURE');
    // The race hits the in-cluster name the same way: not the upstream.
    expect(codes(input([...modes(8, 0, 0), probe('lookups', 'in-cluster', 8), ...cleanDirect], dns))).toEqual(['CONNTRACK_RACE']);
  });

  it('AAAA unanswered while A is answered: that, by type, not the race nor the server', () => {
    const f = attribute(input([rawT('A', 0), rawT('AAAA', 100), ...modes(8, 8, 8)])).findings;
    expect(f.map((x) => x.code)).toEqual(['TYPE_UNANSWERED']);
    expect(f[0]!.evidence).toMatchObject({ type: 'AAAA', lost: 100, otherLost: 0 });
  });

  it('TCP failing where UDP works: the fallback is blocked, a warning', () => {
    const tcp = probe('lookups', 'tcp', 0, undefined, { failed: 8, errors: 8, errorCodes: { ECONNREFUSED: 8 }, answered: 0 });
    const f = attribute(input([probe('lookups', 'parallel', 0), probe('lookups', 'single-request-reopen', 0), tcp])).findings;
    expect(f.map((x) => x.code)).toEqual(['TCP_FALLBACK_BLOCKED', 'PROBE_ERRORS']);
    expect(f[0]!.severity).toBe('warning');
    // Stalling (a DROP rule) rather than refused: the same.
    expect(codes(input(modes(0, 0, 8)))).toEqual(['TCP_FALLBACK_BLOCKED']);
  });

  it('SERVFAIL to half the answers: a critical finding with the share; 1 of 100 is not', () => {
    const half = rawT('A', 0, { rcodes: { NOERROR: 50, SERVFAIL: 50 } });
    const f = attribute(input([half, rawT('AAAA', 0), ...modes(0, 0, 0)])).findings;
    expect(f.map((x) => x.code)).toEqual(['SERVER_FAILURES']);
    expect(f[0]!).toMatchObject({ severity: 'warning', evidence: { servfail: 50, answered: 200, share: 0.25 } });
    const all = attribute(input([rawT('A', 0, { rcodes: { SERVFAIL: 100 } }), rawT('AAAA', 0, { rcodes: { REFUSED: 100 } })])).findings;
    expect(all[0]).toMatchObject({ code: 'SERVER_FAILURES', severity: 'critical' });
    expect(codes(input([rawT('A', 0, { rcodes: { NOERROR: 99, SERVFAIL: 1 } })]))).toEqual([]);
  });

  it('answers after the timeout: a slow server, not loss', () => {
    const late = rawT('A', 100, { late: 100, answered: 0 });
    const f = attribute(input([late, rawT('AAAA', 100, { late: 100, answered: 0 })])).findings;
    expect(f.map((x) => x.code)).toContain('LATE_ANSWERS');
    expect(f.map((x) => x.code)).not.toContain('SERVER_LOSS');
  });

  it('nothing answered at all: the nameserver, critical (exit 1), not "could not run"', () => {
    const dead = [rawT('A', 100, { answered: 0 }), rawT('AAAA', 100, { answered: 0 }), ...modes(8, 8, 8).map((p) => ({ ...p, answered: 0 }))];
    const f = attribute(input(dead)).findings;
    expect(f[0]).toMatchObject({ code: 'NAMESERVER_UNREACHABLE', severity: 'critical' });
    expect(verdictOf(f, null)[0]).toMatch(/^NAMESERVER_UNREACHABLE: /);
  });

  it('the search list\'s cost is its queries and median time, never the stalls', () => {
    const ndots = { code: 'NDOTS_AMPLIFICATION', severity: 'warning', subject: { kind: 'name', name: 'google.com' }, message: '', evidence: { ndots: 5, searchDomains: 3, queriesPerExternalLookup: 8 }, remedy: 'lower ndots' } as const;
    const par = probe('lookups', 'parallel', 1, undefined, { queriesPerUnit: 8, meanMs: 7508, medianMs: 3.1 });
    const dot = probe('lookups', 'trailing-dot', 0, undefined, { queriesPerUnit: 2, medianMs: 1.0 });
    const f = attribute(input([par, dot, probe('lookups', 'single-request-reopen', 0), probe('lookups', 'tcp', 0)], { ndots })).findings;
    expect(f.map((x) => x.code)).toEqual(['NDOTS_COST']);
    expect(f[0]!.message).toMatch(/costs 8\.0 queries and 3\.1 ms \(median\)/);
    expect(f[0]!.message).not.toMatch(/7508/);
    // 8 queries against 2: three search-list names, (3.1 - 1.0) / 3 = 0.7 ms each.
    expect(f[0]!.evidence).toMatchObject({ searchNames: 3, msPerSearchName: 0.7 });
  });
});

describe('one decision table', () => {
  it('holds every doctor code of the catalogue once, and the verdict follows its order', () => {
    const doctorCodes = (Object.keys(CATALOGUE) as FindingCode[]).filter((c) => CATALOGUE[c].command === 'doctor');
    const inTable = RULES.filter((r) => r.from === 'doctor').flatMap((r) => r.codes);
    // LOCAL_DROPS is dnsbench's code, which doctor names too, for its own probes' receive buffers; insert_failed, drop
    // and early_drop are conntrack's codes, which doctor names from its own counters against their background.
    const borrowed: FindingCode[] = ['LOCAL_DROPS', 'INSERT_FAILED', 'DROP', 'EARLY_DROP'];
    expect([...inTable].sort()).toEqual([...doctorCodes, ...borrowed].sort());
    expect(new Set(VERDICT_ORDER).size).toBe(VERDICT_ORDER.length);
    for (const r of RULES) for (const c of r.codes) if (!borrowed.includes(c)) expect(CATALOGUE[c].command, c).toBe(r.from);
  });
});

describe('LOCAL_DROPS from doctor', () => {
  it('is built as dnsbench builds it, with what doctor does not know said as unknown, not as 0', () => {
    const f = attribute(input([...modes(0, 0, 0), rawT('A', 0, { localDrops: 7 })])).findings.find((x) => x.code === 'LOCAL_DROPS')!;
    expect(f.evidence).toEqual({ ownSocketDrops: 7, namespaceRcvbufErrors: null, namespaceInErrors: null, recvBufferBytes: null, concurrency: null, sourcePorts: null });
    expect(f.message).toBe('7 replies were dropped by this machine on its own sockets during the probes (the losses below may be partly local): its receive buffers were full');
    expect(f.remedy).toMatch(/sysctl -w net\.core\.rmem_max=8388608$/);
  });
});

describe("conntrack's counters in doctor's verdict", () => {
  const counter = (name: string, during: number, seconds: number, baseline: number, baselineSeconds: number) => ({ name, during, seconds, baseline, baselineSeconds });
  it('1 insert_failed in the 10 s before and 3 in 30 s of probes: a note, no cause; the verdict healthy and exit 0', () => {
    const a = input([rawT('A', 0), rawT('AAAA', 0), ...modes(0, 0, 0)], { conntrack: [counter('insert_failed', 3, 30, 1, 10)] });
    const f = attribute(a).findings;
    expect(f.map((x) => [x.code, x.severity])).toEqual([['INSERT_FAILED', 'info']]);
    expect(f[0]!.message).toMatch(/not beyond what this namespace shows without the probes/);
    expect(verdictOf(f, null)[0]).toMatch(/^No cause of DNS stalls found/);
    expect(exitCodeFor(f)).toBe(0);
  });
  it('beyond its background but the probes clean: a note about other traffic, exit 0', () => {
    const f = attribute(input([rawT('A', 0), rawT('AAAA', 0), ...modes(0, 0, 0)], { conntrack: [counter('drop', 40, 10, 0, 10)] })).findings;
    expect(f.map((x) => [x.code, x.severity])).toEqual([['DROP', 'info']]);
    expect(f[0]!.message).toMatch(/while doctor's probes lost nothing beyond chance/);
    expect(exitCodeFor(f)).toBe(0);
  });
  it('beyond its background while the probes lose: a cause, exit 1', () => {
    const f = attribute(input([rawT('A', 12), rawT('AAAA', 10), ...modes(0, 0, 0)], { conntrack: [counter('drop', 40, 10, 0, 10)] })).findings;
    expect(f.find((x) => x.code === 'DROP')!.severity).toBe('critical');
    expect(exitCodeFor(f)).toBe(1);
  });
});

describe('each nameserver its own subject; a node counter never hides a pattern', () => {
  it('first nameserver 0/200 lost, the second answering nothing: that one unreachable (a warning), no DNAT path loss', () => {
    const to = (t: string, qt: 'A' | 'AAAA', n: number) => rawT(qt, n, { target: t, answered: 100 - n });
    const f = attribute(input([to('10.96.0.10:53', 'A', 0), to('10.96.0.10:53', 'AAAA', 0), to('10.96.0.11:53', 'A', 100), to('10.96.0.11:53', 'AAAA', 100), endpoint(0, '10.244.0.2:53'), endpoint(0, '10.244.0.3:53'), ...modes(0, 0, 0)], dns)).findings;
    expect(f.filter((x) => x.severity !== 'info').map((x) => [x.code, x.subject.kind === 'nameserver' ? x.subject.address : ''])).toEqual([['NAMESERVER_UNREACHABLE', '10.96.0.11:53']]);
    expect(f[0]!.severity).toBe('warning');
  });
  it('DNAT_PATH_LOSS names the Service IP that loses, not the first nameserver', () => {
    const to = (t: string, qt: 'A' | 'AAAA', n: number) => rawT(qt, n, { target: t });
    const svc = { service: { id: 'kube-system/kube-dns:dns', clusterIP: '10.96.0.11', endpoints: ['10.244.0.2:53', '10.244.0.3:53'] } };
    const f = attribute(input([to('10.96.0.10:53', 'A', 0), to('10.96.0.10:53', 'AAAA', 0), to('10.96.0.11:53', 'A', 10), to('10.96.0.11:53', 'AAAA', 9), endpoint(0, '10.244.0.2:53'), endpoint(0, '10.244.0.3:53'), ...modes(0, 0, 0)], svc)).findings;
    const d = f.filter((x) => x.code === 'DNAT_PATH_LOSS');
    expect(d.map((x) => x.subject)).toEqual([{ kind: 'nameserver', address: '10.96.0.11:53' }]);
  });
  it('the NIC allowance rising beyond its background beside a decisive race (8/8 vs 0/8, direct lookups clean): both said, the race named', () => {
    const nic = [{ iface: 'ens5', counter: 'bw_in_allowance_exceeded', name: 'ens5 bw_in_allowance_exceeded', during: 12, seconds: 10, baseline: 0, baselineSeconds: 10 }];
    const f = attribute(input([...modes(8, 0, 0), ...cleanDirect], { ...dns, nic })).findings;
    expect(f.filter((x) => x.severity !== 'info').map((x) => x.code).sort()).toEqual(['CONNTRACK_RACE', 'NIC_ALLOWANCE_EXCEEDED']);
  });
});

describe('the subject when no probe names the nameserver', () => {
  it('is the first nameserver probed, never "the nameserver"', () => {
    const failedAtOnce = probe('lookups', 'single-request-reopen', 0, '', { answered: 0, errors: 8, failed: 8, errorCodes: { ENETUNREACH: 8 }, sent: 8 });
    const f = attribute(input([{ ...failedAtOnce, label: 'x' }], { nameservers: ['10.96.0.10:53'] })).findings;
    expect(f.map((x) => x.subject)).toContainEqual({ kind: 'nameserver', address: '10.96.0.10:53' });
    expect(verdictOf(f, null)[0]).toMatch(/^NAMESERVER_UNREACHABLE: the nameserver answers nothing \(10\.96\.0\.10:53\)/);
  });
});
