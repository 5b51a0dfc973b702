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
import { ENDPOINTS, scene } from '../helpers/lab.js';
import type { Scene } from '../helpers/lab.js';

const usable = await canUseNetns();


type Doc = { context: { view: string }; findings: Array<{ code: string; severity: string; message: string; subject: Record<string, unknown>; evidence: Record<string, unknown> }>; verdict: string[]; probes: unknown[]; path: { found: string | null; endpoints: Array<{ address: string }> } };

/** doctor from the pod (rules not readable: the endpoints given) or from the node (rules read). */
async function doctor(s: Scene, from: 'pod' | 'node' = 'pod', budget = 20): Promise<{ code: number; doc: Doc }> {
  const args = [BIN, 'doctor', '--json', '--budget', String(budget), ...(from === 'pod' ? ['--endpoints', ...ENDPOINTS] : [])];
  const r = await (from === 'pod' ? s.pod : s.node).exec(process.execPath, args, { timeout: 90_000 });
  if (r.exitCode === 2 || r.stdout.trim() === '') throw new Error(`doctor: exit ${r.exitCode}: ${r.stderr}`);
  return { code: r.exitCode, doc: JSON.parse(r.stdout) as Doc };
}
const codes = (d: { findings: Array<{ code: string; severity: string }> }) => d.findings.filter((f) => f.severity !== 'info').map((f) => f.code).sort();
/** What names loss with no mechanism, or says nothing of one: every other code is a mechanism. */
const LOSS_NAMES = ['SERVER_LOSS', 'UDP_PATH_LOSS', 'DNAT_PATH_LOSS', 'STALLS_UNEXPLAINED', 'INCONCLUSIVE', 'NDOTS_COST'];

const CLUSTER_FIRST = 'nameserver 198.18.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n';
const NO_SEARCH = 'nameserver 198.18.0.10\noptions ndots:1 timeout:1 attempts:2\n';

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
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultA: ['drop@every=3'], faultB: ['drop@every=3'] }));
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('SERVER_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
    expect(codes(doc)).not.toContain('ENDPOINT_LOSS');
  });

  it('from the node, one endpoint dropping 1 query in 3: that endpoint, by address', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultB: ['drop@every=3'] }), 'node');
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

  // Loss with no mechanism, uniform on the path (every packet the node forwards, either way, UDP and TCP, to the
  // Service and to the endpoints directly), from a ClusterFirst pod whose lookups go through three search domains:
  // never a mechanism; from 8% on, the loss itself named.
  for (const [loss, named] of [[0.01, false], [0.03, false], [0.08, true]] as const) {
    it(`${loss * 100}% of packets dropped at random on the path, from a ClusterFirst pod: no mechanism named in 4 runs${named ? ', the loss named in each' : ''}`, async () => {
      const s = await scene({ resolv: CLUSTER_FIRST, randomLoss: loss });
      const runs = [...(await Promise.all([doctor(s, 'pod', 10), doctor(s, 'pod', 10)])), ...(await Promise.all([doctor(s, 'pod', 10), doctor(s, 'pod', 10)]))];
      const all = runs.map(({ doc }) => codes(doc));
      for (const c of all) {
        expect(c.filter((x) => !LOSS_NAMES.includes(x)), JSON.stringify(all)).toEqual([]);
        if (named) expect(c.some((x) => ['SERVER_LOSS', 'UDP_PATH_LOSS', 'DNAT_PATH_LOSS', 'STALLS_UNEXPLAINED'].includes(x)), JSON.stringify(all)).toBe(true);
      }
    }, 180_000);
  }

  it('one endpoint black-holed (UDP and TCP), the endpoints given: that endpoint, in every run', async () => {
    const s = await scene({ resolv: CLUSTER_FIRST, blackholeB: true });
    const runs = await Promise.all([doctor(s, 'pod', 10), doctor(s, 'pod', 10)]);
    for (const { code, doc } of runs) {
      expect(code).toBe(1);
      const loss = doc.findings.filter((f) => f.code === 'ENDPOINT_LOSS');
      expect(loss.map((f) => f.subject.address), JSON.stringify(doc.verdict)).toEqual(['198.18.3.2:53']);
      expect(codes(doc).filter((x) => x !== 'ENDPOINT_LOSS' && x !== 'NDOTS_COST')).toEqual([]);
    }
  }, 180_000);

  it('every endpoint rate-limited, from a ClusterFirst pod: a rate limit, never the upstream', async () => {
    const { code, doc } = await doctor(await scene({ resolv: CLUSTER_FIRST, rateLimit: 100 }), 'pod', 10);
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toContain('RATE_LIMITED');
    expect(codes(doc)).not.toContain('UPSTREAM_FAILURE');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
  }, 120_000);

  it('the race stand-in names the race in every run', async () => {
    const s = await scene({ resolv: NO_SEARCH, race: true, faultA: ['delay:40@type=A'], faultB: ['delay:40@type=A'] });
    for (let i = 0; i < 3; i++) {
      const { doc } = await doctor(s, 'pod', 6);
      expect(codes(doc), JSON.stringify(doc.probes)).toContain('CONNTRACK_RACE');
    }
  }, 180_000);

  it('TCP to port 53 dropped (a NetworkPolicy for UDP only): the fallback blocked, a warning, not "healthy"', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, blockTcp: true }), 'pod', 6);
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toEqual(['TCP_FALLBACK_BLOCKED']);
    expect(doc.findings.find((f) => f.code === 'TCP_FALLBACK_BLOCKED')!.severity).toBe('warning');
  }, 120_000);

  it('both endpoints never answering AAAA: that, by type, not the race nor the server', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultA: ['drop@type=AAAA'], faultB: ['drop@type=AAAA'] }), 'pod', 6);
    expect(code).toBe(1);
    expect(codes(doc), JSON.stringify(doc.probes)).toEqual(['TYPE_UNANSWERED']);
    expect(doc.findings[0]!.evidence).toMatchObject({ type: 'AAAA', otherLost: 0 });
  }, 120_000);

  it('SERVFAIL to half of the queries: said with its share, exit 1', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultA: ['servfail@every=2'], faultB: ['servfail@every=2'] }), 'pod', 6);
    expect(code).toBe(1);
    expect(codes(doc)).toContain('SERVER_FAILURES');
    const f = doc.findings.find((x) => x.code === 'SERVER_FAILURES')!;
    expect(f.evidence.share as number).toBeGreaterThan(0.4);
    expect(f.evidence.share as number).toBeLessThan(0.6);
  }, 120_000);

  it('the upstream failing (SERVFAIL for external names) while the cluster\'s own names answer: the upstream, by the in-cluster probe', async () => {
    const { code, doc } = await doctor(await scene({ resolv: CLUSTER_FIRST, faultA: ['servfail@name=google.com'], faultB: ['servfail@name=google.com'] }), 'pod', 8);
    expect(code).toBe(1);
    expect(doc.verdict[0], JSON.stringify(doc.probes)).toMatch(/^UPSTREAM_FAILURE: /);
    expect(codes(doc)).not.toContain('SERVER_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
  }, 120_000);

  it('endpoints that take 100 queries a second: a rate limit, with the rates, not the race nor the server', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, rateLimit: 100 }), 'pod', 8);
    expect(code).toBe(1);
    expect(doc.verdict[0], JSON.stringify(doc.probes)).toMatch(/^RATE_LIMITED: /);
    const f = doc.findings.find((x) => x.code === 'RATE_LIMITED')!;
    expect(f.evidence).toMatchObject({ slowLost: 0 });
    expect(f.evidence.fastRate as number).toBeGreaterThan(f.evidence.slowRate as number);
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
    expect(codes(doc)).not.toContain('SERVER_LOSS');
  }, 120_000);

  it('both endpoints answering after 1.5 s, past the 1 s timeout: late answers, a slow server, not loss', async () => {
    const { code, doc } = await doctor(await scene({ resolv: NO_SEARCH, faultA: ['delay:1500'], faultB: ['delay:1500'] }), 'pod', 6);
    expect(code).toBe(1);
    expect(doc.verdict[0], JSON.stringify(doc.probes)).toMatch(/^LATE_ANSWERS: /);
    expect(codes(doc)).not.toContain('SERVER_LOSS');
    expect(codes(doc)).not.toContain('CONNTRACK_RACE');
  }, 120_000);

  it('a healthy ClusterFirst pod (ndots:5, three search domains): exit 0, the search list\'s cost measured as a note', async () => {
    const { code, doc } = await doctor(await scene({ resolv: CLUSTER_FIRST }));
    expect(codes(doc), JSON.stringify(doc.findings)).toEqual([]);
    expect(code).toBe(0);
    expect(doc.verdict[0]).toMatch(/^No cause of DNS stalls found/);
    const f = doc.findings.find((x) => x.code === 'NDOTS_COST')!;
    expect(f.severity).toBe('info');
    expect(f.evidence).toMatchObject({ queriesPerLookup: 8, queriesWithTrailingDot: 2 });
    expect(f.evidence.extraMsPerLookup as number).toBeLessThan(50);
  }, 120_000);

  it('the search list costing 50 ms or more a lookup (every cluster.local name answered 25 ms late, three search-list names one after another): a warning', async () => {
    const { code, doc } = await doctor(await scene({ resolv: CLUSTER_FIRST, faultA: ['delay:25@name=cluster.local'], faultB: ['delay:25@name=cluster.local'] }), 'pod', 8);
    expect(code).toBe(1);
    const f = doc.findings.find((x) => x.code === 'NDOTS_COST')!;
    expect(f.severity, JSON.stringify(f)).toBe('warning');
    expect(f.evidence.extraMsPerLookup as number).toBeGreaterThanOrEqual(50);
  }, 120_000);
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
