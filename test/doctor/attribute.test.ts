/** doctor's attribution rules, on probe outcomes written out: each rule, and the nearer cause first. */
import { describe, expect, it } from 'vitest';
import { attribute } from '../../src/doctor/attribute.js';
import type { AttributionInput, ProbeSummary } from '../../src/doctor/attribute.js';
import { verdictOf } from '../../src/commands/doctor.js';

const probe = (kind: ProbeSummary['kind'], mode: ProbeSummary['mode'], stalled: number, target = '10.96.0.10:53', extra: Partial<ProbeSummary> = {}): ProbeSummary => ({
  label: `${kind} ${mode ?? ''}`, kind, mode, target, sent: 100, answered: 100 - stalled, timeouts: stalled, errors: 0, units: kind === 'lookups' ? 8 : 100,
  stalled, over1s: stalled, over5s: 0, localDrops: 0, meanMs: 2, queriesPerUnit: kind === 'lookups' ? 2 : 1, singleRequestSwitches: 0, ...extra,
});
const input = (probes: ProbeSummary[], o: Partial<AttributionInput> = {}): AttributionInput => ({ probes, service: null, libc: 'glibc', clashFixes: ['4.19', '5.0', '5.6', '5.10'], name: 'google.com', ndots: undefined, ...o });
const codes = (a: AttributionInput) => attribute(a).map((f) => f.code).sort();
const modes = (par: number, reopen: number, tcp: number) => [probe('lookups', 'parallel', par), probe('lookups', 'single-request-reopen', reopen), probe('lookups', 'tcp', tcp)];

describe('attribution', () => {
  it('nothing stalls: no finding, and the verdict says so', () => {
    const a = input([probe('raw', null, 0), ...modes(0, 0, 0)]);
    expect(codes(a)).toEqual([]);
    expect(verdictOf(attribute(a), null)).toEqual(['No cause of DNS stalls found: every probe was answered in time.']);
  });

  it('stalls with A+AAAA from one socket only: the race, with who is hit and the libc\'s remedies', () => {
    const f = attribute(input(modes(3, 0, 0), { libc: 'musl' }));
    expect(f.map((x) => x.code)).toEqual(['CONNTRACK_RACE']);
    expect(f[0]!.message).toMatch(/long-lived process stalls once while short-lived ones .* stall every time/);
    expect(f[0]!.message).toMatch(/this image is musl/);
    expect(f[0]!.remedy).not.toMatch(/single-request-reopen/);
    expect(attribute(input(modes(3, 0, 0), { libc: 'glibc' }))[0]!.remedy).toMatch(/single-request-reopen/);
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

  it('UDP stalling in both UDP modes, TCP clean: the UDP path, not the race', () => {
    expect(codes(input(modes(3, 2, 0)))).toEqual(['UDP_PATH_LOSS']);
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
