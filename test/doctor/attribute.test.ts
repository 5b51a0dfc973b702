/** doctor's attribution rules, on probe outcomes written out: each rule, and the nearer cause first. */
import { describe, expect, it } from 'vitest';
import { attribute } from '../../src/doctor/attribute.js';
import type { AttributionInput, ProbeSummary } from '../../src/doctor/attribute.js';
import { verdictOf } from '../../src/commands/doctor.js';

const probe = (kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], stalled: number, target = '10.96.0.10:53', extra: Partial<ProbeSummary> = {}): ProbeSummary => ({
  label: `${kind} ${mode ?? ''}`, kind, mode, target, sent: 100, answered: 100 - stalled, timeouts: stalled, errors: 0, units: kind === 'lookups' ? 8 : 100,
  stalled, over1s: stalled, over5s: 0, localDrops: 0, meanMs: 2, queriesPerUnit: kind === 'lookups' ? 2 : 1, singleRequestSwitches: 0, errorCodes: {}, ...extra,
});
const input = (probes: ProbeSummary[], o: Partial<AttributionInput> = {}): AttributionInput => ({ probes, service: null, libc: 'glibc', clashFixes: ['4.19', '5.0', '5.6', '5.10'], insertFailedDuringProbes: null, nodeLocalDNS: false, name: 'google.com', ndots: undefined, ...o });
const codes = (a: AttributionInput) => attribute(a).map((f) => f.code).sort();
const modes = (par: number, reopen: number, tcp: number) => [probe('lookups', 'parallel', par), probe('lookups', 'single-request-reopen', reopen), probe('lookups', 'tcp', tcp)];

describe('attribution', () => {
  it('nothing stalls: no finding, and the verdict says so', () => {
    const a = input([probe('raw', null, 0), ...modes(0, 0, 0)]);
    expect(codes(a)).toEqual([]);
    expect(verdictOf(attribute(a), null)).toEqual(['No cause of DNS stalls found: every probe was answered in time.']);
  });

  // A kernel of the 5.4 line: clashes of identical flows resolved (4.19, 5.0), the NAT clash (5.6) not.
  const k54 = { clashFixes: ['4.19', '5.0'] };
  const direct = (stalled: number, target: string) => probe('lookups', 'parallel-direct', stalled, target);
  const dns = { service: { id: 'kube-system/kube-dns:dns', clusterIP: '10.96.0.10', endpoints: ['10.244.0.2:53', '10.244.0.3:53'] } };

  it('stalls with A+AAAA from one socket only, on a kernel without the NAT clash fix: the race, with who is hit and the libc\'s remedies', () => {
    const f = attribute(input(modes(3, 0, 0), { libc: 'musl', ...k54 }));
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
    expect(f[0]!.message).toMatch(/long-lived process stalls once while short-lived ones .* stall every time/);
    expect(f[0]!.message).toMatch(/this image is musl/);
    expect(f[0]!.message).toMatch(/not probed past the DNAT \(give --endpoints\): a server that drops the second of two queries .* is not ruled out/);
    expect(f[0]!.evidence).toMatchObject({ directStalled: null, directLookups: 0 });
    expect(f[0]!.remedy).not.toMatch(/single-request-reopen/);
    expect(attribute(input(modes(3, 0, 0), { libc: 'glibc', ...k54 }))[0]!.remedy).toMatch(/single-request-reopen/);
  });

  it('the race signature, and the same lookups straight to the endpoints are clean: the race, on the DNAT path', () => {
    const f = attribute(input([...modes(8, 0, 0), direct(0, '10.244.0.2:53'), direct(0, '10.244.0.3:53')], dns));
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
    expect(f[0]!.message).toMatch(/nor when sent straight to the endpoints with no DNAT on the way \(10\.244\.0\.2:53 0\/8, 10\.244\.0\.3:53 0\/8\)/);
    // A 6.x kernel resolves the NAT clash itself: the message says where else the drop can be.
    expect(f[0]!.message).toMatch(/This kernel resolves that clash \(5\.6\): the NAT that drops them runs on another kernel/);
    expect(f[0]!.evidence).toMatchObject({ directStalled: 0, directLookups: 16 });
  });

  it('the race signature, but straight to an endpoint, with no NAT, they stall too: not the race on a kernel that resolves un-NATed clashes', () => {
    const f = attribute(input([...modes(8, 0, 0), direct(8, '10.244.0.2:53'), direct(0, '10.244.0.3:53')], { ...dns, ...k54 }));
    expect(f.map((x) => x.code)).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(f[0]!.message).toMatch(/sent straight to 10\.244\.0\.2:53 8\/8, with no DNAT on the way, stall too/);
    expect(f[0]!.evidence).toMatchObject({ directStalled: 8, directLookups: 16 });
    expect(verdictOf(f, null)[0]).toMatch(/^PARALLEL_QUERY_LOSS: something other than the conntrack race .* -> options single-request-reopen in the pod's dnsConfig avoids it$/);
    // Before 4.19 un-NATed clashes are dropped as well: the race is still the nearest cause.
    const old = attribute(input([...modes(8, 0, 0), direct(8, '10.244.0.2:53')], { ...dns, clashFixes: [] }));
    expect(old.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
    expect(old[0]!.message).toMatch(/which this kernel \(no 4\.19 clash fix\) also drops/);
  });

  it('where the probes are NATed (the node), insert_failed decides: unmoved rules the race out, risen names it', () => {
    const still = attribute(input(modes(8, 0, 0), { ...k54, insertFailedDuringProbes: 0 }));
    expect(still.map((f) => f.code)).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(still[0]!.message).toMatch(/which it is not: insert_failed did not move during the probes in this network namespace/);
    expect(still[0]!.evidence).toMatchObject({ insertFailedDuringProbes: 0 });
    // Risen: the race, even on a kernel with every clash fix and no endpoint probed.
    const risen = attribute(input(modes(8, 0, 0), { insertFailedDuringProbes: 5 }));
    expect(risen.map((f) => f.code)).toEqual(['CONNTRACK_RACE']);
    expect(risen[0]!.message).toMatch(/, and insert_failed rose by 5 during the probes here, where they are NATed: the conntrack insert race/);
    expect(risen[0]!.message).not.toMatch(/not ruled out|resolves that clash/);
  });

  it('the race signature against NodeLocalDNS: no DNAT on the way, so not the race on a 4.19+ kernel', () => {
    const nl = (p: ProbeSummary) => ({ ...p, target: '169.254.20.10:53' });
    const f = attribute(input(modes(8, 0, 0).map(nl), { ...k54, nodeLocalDNS: true }));
    expect(f.map((x) => x.code)).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(f[0]!.message).toMatch(/which it is not: the nameserver is NodeLocalDNS \(169\.254\.20\.10:53\), reached with no DNAT on the way/);
    expect(f[0]!.remedy).toMatch(/node-local-dns pod/);
    // Before 4.19 an un-NATed clash is dropped too: the race stays the nearest cause.
    expect(codes(input(modes(8, 0, 0).map(nl), { clashFixes: [], nodeLocalDNS: true }))).toEqual(['CONNTRACK_RACE']);
  });

  it('direct lookups that got no answer at all (refused) are no evidence either way', () => {
    const refused = probe('lookups', 'parallel-direct', 0, '10.244.0.2:53', { answered: 0, errors: 8, errorCodes: { ECONNREFUSED: 8 } });
    const f = attribute(input([...modes(8, 0, 0), refused], { ...dns, ...k54 }));
    // The refusals are a finding of their own.
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE', 'PROBE_ERRORS']);
    expect(f[1]!.remedy).toMatch(/^ECONNREFUSED: nothing listens/);
    expect(f[0]!.message).toMatch(/not probed past the DNAT/);
    expect(f[0]!.evidence).toMatchObject({ directStalled: null, directLookups: 0 });
  });

  it('the race signature with no endpoint to probe, on a kernel that resolves the NAT clash: not the race, and what to probe next', () => {
    const f = attribute(input(modes(8, 0, 0)));
    expect(f.map((x) => x.code)).toEqual(['PARALLEL_QUERY_LOSS']);
    expect(f[0]!.message).toMatch(/this kernel resolves \(clash fixes 4\.19, 5\.0, 5\.6, 5\.10\), so it is not the likely cause/);
    expect(f[0]!.message).toMatch(/a pod in its own VM.*give --endpoints/);
    expect(f[0]!.evidence).toMatchObject({ directStalled: null, directLookups: 0 });
  });

  it('stalls in every mode with no endpoint probed: the server, saying the path is not ruled out', () => {
    const f = attribute(input(modes(3, 2, 2)));
    expect(f.map((x) => x.code)).toEqual(['SERVER_LOSS']);
    expect(f[0]!.message).toMatch(/the path between is not ruled out/);
  });

  it('one endpoint losing while the other is clean: that endpoint, and not the server nor the race', () => {
    const a = input([...modes(3, 2, 2), probe('endpoint', null, 30, '10.244.0.3:53'), probe('endpoint', null, 0, '10.244.0.2:53')], { service: { id: 'kube-system/kube-dns:dns', clusterIP: '10.96.0.10', endpoints: ['10.244.0.2:53', '10.244.0.3:53'] } });
    const f = attribute(a);
    expect(f.map((x) => x.code)).toEqual(['ENDPOINT_LOSS']);
    expect(f[0]!.subject).toEqual({ kind: 'endpoint', address: '10.244.0.3:53', service: 'kube-system/kube-dns:dns' });
  });

  it('the Service IP losing while every endpoint answers directly: the DNAT/conntrack path', () => {
    expect(codes(input([probe('raw', null, 12), ...modes(0, 0, 0), probe('endpoint', null, 0, 'a:53'), probe('endpoint', null, 0, 'b:53')]))).toEqual(['DNAT_PATH_LOSS']);
  });

  it('UDP stalling in both UDP modes, TCP clean: the UDP path, not the race, and what is not ruled out', () => {
    const f = attribute(input(modes(3, 2, 0)));
    expect(f.map((x) => x.code)).toEqual(['UDP_PATH_LOSS']);
    expect(f[0]!.message).toMatch(/or the server's own UDP side \(its endpoints were not probed apart: give --endpoints\)$/);
    const both = attribute(input([...modes(3, 2, 0), probe('endpoint', null, 9, 'a:53'), probe('endpoint', null, 7, 'b:53')]));
    expect(both.map((x) => x.code)).toEqual(['UDP_PATH_LOSS']);
    expect(both[0]!.message).toMatch(/every endpoint loses UDP queries when probed directly too: the servers' UDP side, or the network up to them, not the DNAT$/);
    // single-request-reopen stalling alone, the A+AAAA probe not run: said as n/a, not a crash.
    const noPar = attribute(input([probe('lookups', 'single-request-reopen', 2), probe('lookups', 'tcp', 0)]));
    expect(noPar[0]!.message).toMatch(/^lookups stall over UDP \(n\/a A\+AAAA from one socket, 2\/8 with single-request-reopen\)/);
  });

  it('stalls that fit no pattern, or with a mode not probed, are said as such: never "every probe was answered in time"', () => {
    // A+AAAA from one socket and TCP stall, single-request-reopen does not: no rule names this.
    const odd = attribute(input(modes(3, 0, 2)));
    expect(odd.map((f) => f.code)).toEqual(['STALLS_UNEXPLAINED']);
    expect(odd[0]!.message).toMatch(/^stalls were measured \(lookups parallel: 3\/8; lookups tcp: 2\/8\) but fit none of the patterns/);
    expect(verdictOf(odd, null)[0]).toMatch(/^STALLS_UNEXPLAINED: /);
    // The budget ran out before the TCP lookups: the race cannot be told from the server.
    const short = attribute(input([probe('lookups', 'parallel', 8), probe('lookups', 'single-request-reopen', 8)]));
    expect(short.map((f) => f.code)).toEqual(['STALLS_UNEXPLAINED']);
    expect(short[0]!.message).toMatch(/; not probed: lookups tcp$/);
    expect(short[0]!.remedy).toMatch(/larger --budget/);
  });

  it('queries that failed at once (EPERM: dropped as they left this machine) are a finding, never "answered in time"', () => {
    const eperm = probe('lookups', 'parallel', 0, '10.96.0.10:53', { answered: 0, errors: 16, errorCodes: { EPERM: 16 } });
    const f = attribute(input([eperm, probe('lookups', 'single-request-reopen', 0), probe('lookups', 'tcp', 0)]));
    expect(f.map((x) => x.code)).toEqual(['PROBE_ERRORS']);
    expect(f[0]!.message).toBe('queries failed at once with an error instead of an answer or a timeout: lookups parallel: EPERM 16');
    expect(f[0]!.remedy).toMatch(/^EPERM: a rule on this machine .* or conntrack dropped the packet as it left/);
    expect(verdictOf(f, null)[0]).toMatch(/^PROBE_ERRORS: /);
  });

  it('local receive-buffer drops are named first, as the probe\'s own', () => {
    const a = input([probe('raw', null, 5, '10.96.0.10:53', { localDrops: 5 }), ...modes(0, 0, 0)]);
    expect(codes(a)).toEqual(['LOCAL_DROPS']);
    expect(verdictOf(attribute(a), null)[0]).toMatch(/^LOCAL_DROPS/);
  });

  it('could not run: the verdict says why', () => {
    expect(verdictOf([], 'no route')).toEqual(['Could not probe DNS: no route']);
  });
});
