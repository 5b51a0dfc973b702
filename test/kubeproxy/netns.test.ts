/**
 * svc against the real kernel: rules loaded with iptables-restore / nft -f into
 * a network namespace, read back live; and many UDP flows sent through such a
 * namespace's DNAT cascade to `k8sdiag serve`-style backends, comparing the
 * observed split with the computed shares.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN, fixture, readFixture } from '../helpers/run.js';
import { canUseNetns, createNetns } from '../helpers/netns.js';
import type { Netns } from '../helpers/netns.js';

const usable = await canUseNetns();
const hasNft = usable && (await execa('nft', ['--version'], { reject: false })).exitCode === 0;
if (usable && !hasNft && process.env.CI) throw new Error('nft is not installed: .ci/run installs nftables');
const list: Netns[] = [];
afterEach(async () => {
  while (list.length) await list.pop()!.remove();
});
async function ns(prefix: string): Promise<Netns> {
  const n = await createNetns(prefix);
  list.push(n);
  return n;
}

describe.skipIf(!usable)('svc --live in a network namespace', () => {
  it('iptables mode: rules loaded with iptables-restore, read back with iptables-save', async () => {
    const n = await ns('svc');
    const load = await n.exec('iptables-restore', [], { input: readFixture('svc/cluster-shapes.rules') });
    expect(load.exitCode, load.stderr).toBe(0);
    const r = await n.exec(process.execPath, [BIN, 'svc', '--live', '--json']);
    const doc = JSON.parse(r.stdout);
    expect(r.exitCode, r.stderr).toBe(1); // default/web has no local endpoint
    expect(doc.modes).toEqual(['iptables']);
    // Both backends are tried where their tools exist; the one holding kube-proxy's rules is read.
    expect(doc.sources.some((x: string) => /^iptables-(nft-|legacy-)?save/.test(x))).toBe(true);
    const dns = doc.services.find((s: { id: string }) => s.id === 'kube-system/kube-dns:dns');
    expect(dns.endpoints.map((e: { share: number }) => Number(e.share.toFixed(6)))).toEqual([0.333333, 0.333333, 0.333333]);
    expect(doc.findings.map((f: { code: string }) => f.code)).toContain('NO_LOCAL_ENDPOINTS');
  });

  it('--service picks one Service port', async () => {
    const n = await ns('svc');
    await n.exec('iptables-restore', [], { input: readFixture('svc/cluster-shapes.rules') });
    const r = await n.exec(process.execPath, [BIN, 'svc', '--live', '--json', '--service', 'ingress-nginx/ingress-nginx-controller:http']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.services).toHaveLength(1);
    expect(doc.services[0].externalEndpoints.map((e: { address: string }) => e.address)).toEqual(['10.244.2.8:80']);
  });

  it.skipIf(!hasNft)('nftables mode: the kube-proxy table loaded with nft -f, read back with nft list ruleset', async () => {
    const n = await ns('nft');
    const load = await n.exec('nft', ['-f', fixture('svc/kube-proxy-nftables-overall.nft')]);
    expect(load.exitCode, load.stderr).toBe(0);
    const r = await n.exec(process.execPath, [BIN, 'svc', '--live', '--json']);
    const doc = JSON.parse(r.stdout);
    expect(doc.modes).toEqual(['nftables']);
    expect(doc.services.map((s: { id: string }) => s.id)).toContain('ns4/svc4:p80');
  });
});

// Three backends on loopback ports, a service IP on lo, and a kube-proxy style cascade
// with unequal probabilities (0.2, then 0.5: shares 0.2 / 0.4 / 0.4).
const RULES = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-STATTEST00000001 - [0:0]
:KUBE-SEP-STAT1 - [0:0]
:KUBE-SEP-STAT2 - [0:0]
:KUBE-SEP-STAT3 - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -m comment --comment "demo/stat:dns cluster IP" -m udp -p udp -d 198.18.0.10 --dport 53 -j KUBE-SVC-STATTEST00000001
-A KUBE-SVC-STATTEST00000001 -m comment --comment "demo/stat:dns -> 127.0.0.1:5301" -m statistic --mode random --probability 0.2000000000 -j KUBE-SEP-STAT1
-A KUBE-SVC-STATTEST00000001 -m comment --comment "demo/stat:dns -> 127.0.0.1:5302" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-STAT2
-A KUBE-SVC-STATTEST00000001 -m comment --comment "demo/stat:dns -> 127.0.0.1:5303" -j KUBE-SEP-STAT3
-A KUBE-SEP-STAT1 -m comment --comment demo/stat:dns -m udp -p udp -j DNAT --to-destination 127.0.0.1:5301
-A KUBE-SEP-STAT2 -m comment --comment demo/stat:dns -m udp -p udp -j DNAT --to-destination 127.0.0.1:5302
-A KUBE-SEP-STAT3 -m comment --comment demo/stat:dns -m udp -p udp -j DNAT --to-destination 127.0.0.1:5303
COMMIT
`;

// Each flow is a new socket (a new conntrack entry, a new random draw); the
// answer says which backend it reached. Bounded: FLOWS flows, 2 s per reply.
const FLOWS = 3000;
const SPLIT = `
const { Responder } = await import(${JSON.stringify(new URL('../../dist/dns/responder.js', import.meta.url).href)});
const dgram = await import('node:dgram');
const backends = [];
for (const [i, port] of [5301, 5302, 5303].entries()) {
  const r = new Responder({ port, tcp: false, a: ['192.0.2.' + (i + 1)] });
  await r.start();
  backends.push(r);
}
const dnsPacket = (await import('dns-packet')).default ?? (await import('dns-packet'));
const counts = { '192.0.2.1': 0, '192.0.2.2': 0, '192.0.2.3': 0, none: 0 };
const q = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'x.test', type: 'A', class: 'IN' }] });
let inflight = 0, sent = 0;
await new Promise((done) => {
  const next = () => {
    while (inflight < 50 && sent < ${FLOWS}) {
      sent++; inflight++;
      const s = dgram.createSocket('udp4');
      const t = setTimeout(() => { counts.none++; s.close(); inflight--; next(); }, 2000);
      s.on('message', (m) => { clearTimeout(t); const a = dnsPacket.decode(m).answers?.[0]?.data; counts[a] = (counts[a] ?? 0) + 1; s.close(); inflight--; next(); });
      s.send(q, 53, '198.18.0.10');
    }
    if (inflight === 0 && sent >= ${FLOWS}) done();
  };
  next();
});
for (const b of backends) await b.stop();
console.log(JSON.stringify(counts));
`;

describe.skipIf(!usable)('computed shares against the kernel\'s real split', () => {
  it(`${FLOWS} UDP flows through the DNAT cascade land as svc computes (within 5 sigma)`, async () => {
    const n = await ns('stat');
    expect((await n.exec('ip', ['addr', 'add', '198.18.0.10/32', 'dev', 'lo'])).exitCode).toBe(0);
    const load = await n.exec('iptables-restore', [], { input: RULES });
    expect(load.exitCode, load.stderr).toBe(0);
    const svc = await n.exec(process.execPath, [BIN, 'svc', '--live', '--json', '--service', 'demo/stat:dns']);
    const computed = JSON.parse(svc.stdout).services[0].endpoints as Array<{ address: string; share: number }>;
    expect(computed.map((e) => Number(e.share.toFixed(6)))).toEqual([0.2, 0.4, 0.4]);
    const run = await n.exec(process.execPath, ['--input-type=module', '-e', SPLIT], { timeout: 120_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    const counts = JSON.parse(run.stdout) as Record<string, number>;
    expect(counts.none).toBe(0);
    const observed = [counts['192.0.2.1'] ?? 0, counts['192.0.2.2'] ?? 0, counts['192.0.2.3'] ?? 0];
    computed.forEach((e, i) => {
      const expected = e.share * FLOWS;
      const sigma = Math.sqrt(FLOWS * e.share * (1 - e.share));
      expect(Math.abs(observed[i]! - expected), `${e.address}: observed ${observed[i]}, expected ${expected.toFixed(0)}`).toBeLessThan(5 * sigma);
    });
  }, 120_000);
});
