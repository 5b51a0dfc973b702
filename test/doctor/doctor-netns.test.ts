/**
 * doctor on a reproduced kube-proxy path whose fault the test knows.
 *
 * Four network namespaces per scenario: a pod (client), a node, and two DNS
 * endpoints, each joined to the node by a veth pair; the node forwards. The
 * node holds kube-proxy-shaped rules (KUBE-SERVICES from PREROUTING for pods
 * and OUTPUT for itself -> KUBE-SVC-<hash> with -m statistic -> KUBE-SEP-<hash>
 * DNAT) for the DNS Service's cluster IP 198.18.0.10; its endpoints,
 * 198.18.2.2:53 and 198.18.3.2:53, each run a `k8sdiag serve`.
 * From the pod the rules are not readable (doctor is given --endpoints); from
 * the node they are. Faults: serve's drop fault (server loss), on one endpoint
 * only (endpoint loss), and for the conntrack race, which 6.x kernels resolve,
 * a rule on the node that drops the second not-yet-replied packet of a DNATed
 * UDP flow (conntrack NEW and DNAT + connbytes 2:), as an older kernel's lost
 * insert did; real glibc's getaddrinfo is measured beside doctor there. The
 * same rule on every forwarded flow, the endpoints' too, stands in for a hop
 * that drops the second of two queries sent at once, which is not the race.
 */
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/run.js';
import { canUseNetns, createNetns, serveIn } from '../helpers/netns.js';
import { scene } from '../helpers/lab.js';
import { blocks } from '../helpers/docs.js';
import { NO_SEARCH, codes, doctor } from '../helpers/doctor-lab.js';
import type { Doc } from '../helpers/doctor-lab.js';

const usable = await canUseNetns();

describe.skipIf(!usable)('doctor on a reproduced kube-proxy path', () => {
  it('a clean path: healthy, exit 0, from the pod and from the node (where the Service is found in the rules)', async () => {
    const s = await scene({ resolv: NO_SEARCH });
    const { code, doc } = await doctor(s);
    expect(codes(doc), JSON.stringify(doc.verdict)).toEqual([]);
    expect(code).toBe(0);
    expect(doc.verdict[0]).toMatch(/No cause of DNS stalls found/);
    expect(doc.path.found).toBe('--endpoints');
    expect(doc.context.view).toBe('pod');
    const fromNode = await doctor(s, 'node');
    expect(fromNode.code).toBe(0);
    expect(fromNode.doc.context.view).toBe('node');
    expect(fromNode.doc.path.found).toBe('rules');
    expect(fromNode.doc.path.endpoints.map((e) => e.address).sort()).toEqual(['198.18.2.2:53', '198.18.3.2:53']);
  }, 120_000);

  // Once in about a dozen CI runs the TCP probe here reported no stalls (so UDP_PATH_LOSS, not SERVER_LOSS); locally
  // it stalls 6 lookups of 8 every time. The likely cause: doctor runs its probes at once, and `every=3` counted UDP
  // and TCP queries together, so how the probes interleaved decided whether any TCP query was the third. The
  // responder now counts each protocol apart (test/dns/responder.test.ts). Never reproduced here, so the message
  // still carries the probes and one retry stays until CI has run clean for a while.
  it('both endpoints dropping 1 query in 3: the server or its upstream, not the race', { timeout: 120_000, retry: 1 }, async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultA: ['drop@every=3'], faultB: ['drop@every=3'] }), 'pod', 12);
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('SERVER_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
    expect(codes(doc)).not.toContain('ENDPOINT_LOSS');
  });

  it('from the node, one endpoint dropping 1 query in 3: that endpoint, by address', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultB: ['drop@every=3'] }), 'node', 12);
    expect(code).toBe(1);
    expect(doc.path.found).toBe('rules');
    const loss = doc.findings.filter((f) => f.code === 'ENDPOINT_LOSS');
    expect(loss.map((f) => f.subject.address)).toEqual(['198.18.3.2:53']);
    expect(codes(doc)).not.toContain('SERVER_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
  }, 120_000);

  it('the conntrack race: stalls with A+AAAA from one socket only; real getaddrinfo stalls too', async () => {
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] });
    const t = performance.now();
    const g = await s.pod.exec('getent', ['ahosts', 'google.com'], { timeout: 30_000 });
    const realMs = performance.now() - t;
    expect(g.exitCode, g.stderr).toBe(0);
    expect(realMs, 'real glibc waits its timeout (1 s) once').toBeGreaterThanOrEqual(950);
    const { code, doc } = await doctor(s);
    expect(code).toBe(1);
    expect(codes(doc)).toContain('CONNTRACK_RACE');
    expect(codes(doc)).not.toContain('SERVER_LOSS');
    const race = doc.findings.find((f) => f.code === 'CONNTRACK_RACE')!;
    expect(race.evidence).toMatchObject({ reopenStalled: 0, directStalled: 0 });
    expect(race.evidence.directLookups as number).toBeGreaterThanOrEqual(16);
    expect(race.evidence.parallelStalled as number).toBeGreaterThan(0);
  }, 120_000);

  it('from the node, its own second packet dropped as it leaves: the send fails (EPERM), and doctor says so instead of "healthy"', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, nodeOutput: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] }), 'node');
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('PROBE_ERRORS');
    const f = doc.findings.find((x) => x.code === 'PROBE_ERRORS')!;
    expect(f.evidence.codes).toBe('EPERM');
    expect(f.message).toMatch(/lookups, A\+AAAA from one socket \(glibc default\): EPERM \d+/);
    expect(doc.verdict.join('\n')).not.toMatch(/every probe was answered in time/);
  }, 120_000);

  it('the race signature, but lookups straight to the endpoints (no DNAT) lose the same way: not the race', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, dropSecondEverywhere: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] }));
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('PARALLEL_QUERY_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
    const f = doc.findings.find((x) => x.code === 'PARALLEL_QUERY_LOSS')!;
    expect(f.evidence).toMatchObject({ reopenStalled: 0 });
    expect(f.evidence.directLookups as number).toBeGreaterThanOrEqual(16);
    expect(f.evidence.directStalled as number).toBeGreaterThan(0);
    expect(doc.verdict[0]).toMatch(/^PARALLEL_QUERY_LOSS: /);
  }, 120_000);


  it('the race stand-in names the race in every run: as README.md and docs/doctor.md print it, and on a shorter budget', async () => {
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] });
    const printed = ['README.md', 'docs/doctor.md'].map((f) => blocks(f).find((b) => b.lab !== undefined)!.steps[0]!);
    expect(printed[1]!.cmd).toBe(printed[0]!.cmd);
    const { cmd, exit, output } = printed[0]!;
    const r = await s.pod.exec('sh', ['-c', cmd.replace(/^k8sdiag /, `${process.execPath} ${BIN} `)], { timeout: 90_000 });
    expect(r.exitCode, r.stderr).toBe(exit);
    expect(r.stdout.split('\n')[0]).toBe(output[0]);
    const { doc } = await doctor(s, 'pod', 6);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('CONNTRACK_RACE');
  }, 180_000);
});

describe.skipIf(!usable)('doctor: whose namespace, without kube-proxy rules', () => {
  it("a pod's network interfaces' host side (a CNI veth) make it a node's (an eBPF kube-proxy replacement); without them, a pod's", async () => {
    const ns = await createNetns('dv');
    const server = await serveIn(ns.name, ['--host', '127.0.0.1', '--port', '5353', '--duration', '60']).catch(async (err: unknown) => {
      await ns.remove();
      throw err;
    });
    try {
      const view = async () => {
        const r = await ns.exec(process.execPath, [BIN, 'doctor', '--json', '--resolv', '-', '-p', '5353', '--budget', '3'], { input: 'nameserver 127.0.0.1\noptions ndots:1 timeout:1\n', timeout: 60_000 });
        return (JSON.parse(r.stdout) as Doc).context.view;
      };
      expect(await view()).toBe('pod');
      const veth = await ns.exec('ip', ['link', 'add', 'vethk8sdv0', 'type', 'veth', 'peer', 'name', 'k8sdvpeer0']);
      expect(veth.exitCode, veth.stderr).toBe(0);
      expect(await view()).toBe('node');
    } finally {
      server.kill('SIGTERM');
      await ns.remove();
    }
  }, 120_000);
});
