/** doctor's watch: the addresses it leaves out (against `ip -o addr`), and the verdict's real-traffic line per case. */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ownAddresses, realTrafficLine } from '../../src/doctor/watched.js';
import type { Watched } from '../../src/doctor/watched.js';
import { finding } from '../../src/findings.js';
import type { Finding } from '../../src/findings.js';

const haveIp = (await execa('ip', ['-V'], { reject: false })).exitCode === 0;

describe('ownAddresses', () => {
  it.skipIf(!haveIp)("is every address `ip -o addr` lists in this namespace", async () => {
    const r = await execa('ip', ['-o', 'addr']);
    const listed = new Set(r.stdout.split('\n').map((l) => /\binet6? ([^/ ]+)/.exec(l)?.[1]).filter((a): a is string => a !== undefined));
    expect([...ownAddresses()].sort()).toEqual([...listed].sort());
  });
});

const watched = (o: Partial<Watched>): Watched => ({
  mode: 'during', seconds: 12, excluded: [], queries: 0, answered: 0, unanswered: 0, answeredAfterResend: 0, raceSignature: 0, raceSignatureDnated: 0, pairs: 0, clients: 0,
  kernelDrops: 0, byEndpoint: {}, findings: [], ...o,
});

const endpointLoss: Finding = finding({
  code: 'ENDPOINT_LOSS', severity: 'critical', subject: { kind: 'endpoint', address: '10.0.0.7:53', service: null }, message: 'm',
  evidence: { endpoint: '10.0.0.7:53', lost: 30, sent: 100, otherLost: 0, otherSent: 100, p: 1e-9, cleanEndpoints: '10.0.0.8:53' },
});

describe('realTrafficLine', () => {
  it('no query seen: nothing to compare', () => {
    expect(realTrafficLine([endpointLoss], watched({}))).toMatch(/^Real traffic: no pod's DNS query was seen during the probes/);
  });
  it('a cause, and the pods\' queries all answered in time: it does not show it', () => {
    expect(realTrafficLine([endpointLoss], watched({ queries: 250, answered: 250, clients: 3 }))).toBe(
      "Real traffic does not show it: none of the 250 pods' queries seen during the probes (12 s, this namespace's own addresses left out) waited the timeout.",
    );
  });
  it("the same endpoint named by the pods' traffic: the same cause, with that endpoint's count", () => {
    const w = watched({
      queries: 90, answered: 80, unanswered: 10, clients: 2, byEndpoint: { '10.0.0.7:53': { queries: 45, unanswered: 10, answeredAfterResend: 0, raceSignature: 0 } },
      findings: [finding({ code: 'WATCHED_ENDPOINT_LOSS', severity: 'critical', subject: { kind: 'endpoint', address: '10.0.0.7:53', service: null }, message: 'm', evidence: { endpoint: '10.0.0.7:53', lost: 10, sent: 45, otherLost: 0, otherSent: 45, p: 1e-4, cleanEndpoints: '' } })],
    });
    expect(realTrafficLine([endpointLoss], w)).toMatch(/^Real traffic shows the same cause \(WATCHED_ENDPOINT_LOSS\): 10 of 90 queries from 2 clients waited the timeout \(11\.11%\) .*; 10\.0\.0\.7:53: 10 of 45 of the pods' queries waited\.$/);
  });
  it('no cause, a stall or two: agrees; packets tcpdump lost are said', () => {
    expect(realTrafficLine([], watched({ queries: 400, answered: 399, unanswered: 1, clients: 5, kernelDrops: 7 }))).toMatch(/^Real traffic agrees: 1 of 400 .*; tcpdump lost 7 packets, so some may have been answered\.$/);
  });
});

describe('realTrafficLine: agreement needs the watch finding past its own gate', () => {
  const race: Finding = finding({
    code: 'CONNTRACK_RACE', severity: 'critical', subject: { kind: 'nameserver', address: '10.96.0.10:53' }, message: 'm',
    evidence: { parallelStalled: 8, parallelLookups: 8, reopenStalled: 0, reopenLookups: 8, directStalled: 0, directLookups: 16, insertFailedDuringProbes: null, insertFailedBaseline: null, libc: 'glibc', kernelClashFixes: 'none', singleRequestSwitches: 8 },
  });
  const signature = (severity: 'warning' | 'critical', p: number, dnated: number): Finding => finding({
    code: 'RACE_SIGNATURE', severity, subject: { kind: 'nameserver', address: '10.96.0.10:53' }, message: 'm',
    evidence: { signature: 5, dnated, pairs: 40, loneFirstLost: 4, lone: 40, p, client: '10.244.1.5' },
  });
  const w = (f: Finding) => watched({ queries: 80, answered: 75, unanswered: 5, clients: 1, raceSignature: 5, pairs: 40, findings: [f] });

  it('a signature that chance explains (p = 0.93, nothing DNATed) is no agreement', () => {
    const line = realTrafficLine([race], w(signature('warning', 0.93, 0)));
    expect(line).not.toMatch(/shows the same cause/);
    expect(line).toMatch(/^Real traffic shows RACE_SIGNATURE short of its own test \(see its finding\), so it neither confirms nor rules out CONNTRACK_RACE: 5 of 80 queries/);
  });
  it('beyond chance but not DNATed: agrees with PARALLEL_QUERY_LOSS, not with the race', () => {
    const parallel: Finding = { ...race, code: 'PARALLEL_QUERY_LOSS' } as Finding;
    expect(realTrafficLine([race], w(signature('warning', 1e-5, 0)))).not.toMatch(/shows the same cause/);
    expect(realTrafficLine([parallel], w(signature('warning', 1e-5, 0)))).toMatch(/^Real traffic shows the same cause \(RACE_SIGNATURE\)/);
  });
  it('beyond chance and DNATed (critical): the same cause', () => {
    expect(realTrafficLine([race], w(signature('critical', 1e-5, 5)))).toMatch(/^Real traffic shows the same cause \(RACE_SIGNATURE\)/);
  });
});
