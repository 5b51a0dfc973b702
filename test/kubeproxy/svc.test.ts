import { describe, expect, it } from 'vitest';
import { analyseDumps } from '../../src/kubeproxy/analyse.js';
import type { ServiceReport } from '../../src/kubeproxy/analyse.js';
import { parseDumps, tokenize } from '../../src/kubeproxy/rules.js';
import { InputError } from '../../src/errors.js';
import { readFixture } from '../helpers/run.js';

const analyse = (...files: string[]) => analyseDumps(parseDumps(files.map((f) => readFixture(`svc/${f}`)).join('\n')));
const byId = (services: ServiceReport[], id: string) => {
  const s = services.find((x) => x.id === id);
  if (!s) throw new Error(`no ${id} in ${services.map((x) => x.id).join(', ')}`);
  return s;
};
const shares = (s: ServiceReport) => s.endpoints.map((e) => [e.address, Number(e.share.toFixed(9))]);
const codes = (a: ReturnType<typeof analyseDumps>) => a.findings.map((f) => `${f.code}:${f.severity}:${String((f.evidence as Record<string, unknown>).service ?? (f.evidence as Record<string, unknown>).chain ?? '')}`).sort();

describe('iptables-save, as kube-proxy wrote it and as iptables-save prints it', () => {
  for (const file of ['kube-proxy-overall.rules', 'iptables-save-overall.txt']) {
    it(`${file}: kube-proxy's own test services, shares and findings`, () => {
      const a = analyse(file);
      expect(a.modes).toEqual(['iptables']);
      expect(a.services.map((s) => s.id)).toEqual(['ns1/svc1:p80', 'ns2/svc2:p80', 'ns3/svc3:p80', 'ns4/svc4:p80', 'ns5/svc5:p80', 'ns6/svc6:p80']);
      expect(shares(byId(a.services, 'ns4/svc4:p80'))).toEqual([['10.180.0.4:80', 0.5], ['10.180.0.5:80', 0.5]]);
      const svc2 = byId(a.services, 'ns2/svc2:p80');
      expect(svc2.entries).toEqual([
        { kind: 'clusterIP', address: '172.30.0.42', port: 80 },
        { kind: 'externalIP', address: '192.168.99.22', port: 80 },
        { kind: 'loadBalancerIP', address: '1.2.3.4', port: 80 },
        { kind: 'nodePort', address: null, port: 3001 },
      ]);
      expect(svc2.external).toMatchObject({ chain: 'KUBE-EXT-GNZBNJ2PO5MGZ6GT', policy: 'Local', endpoints: [] });
      expect(byId(a.services, 'ns5/svc5:p80').sessionAffinitySeconds).toBe(10800);
      expect(byId(a.services, 'ns5/svc5:p80').external?.chain).toBe('KUBE-EXT-NUKIZ6OKUXPJNT4C');
      expect(codes(a)).toEqual([
        'NO_ENDPOINTS:warning:ns6/svc6:p80',
        'NO_LOCAL_ENDPOINTS:warning:ns2/svc2:p80',
        'SESSION_AFFINITY:info:ns5/svc5:p80',
      ]);
    });
  }

  it('cascade shares: p_i x prod(1 - p_j), with iptables-save\'s %.11f of the kernel value', () => {
    const a = analyse('iptables-save-cluster-shapes.txt');
    const dns = byId(a.services, 'kube-system/kube-dns:dns');
    expect(dns.protocol).toBe('udp');
    expect(dns.endpoints.map((e) => e.probability)).toEqual([0.33333333349, 0.5, null]);
    expect(dns.endpoints[0]!.share).toBeCloseTo(0.33333333349, 12);
    expect(dns.endpoints[1]!.share).toBeCloseTo((1 - 0.33333333349) * 0.5, 12);
    expect(dns.endpoints[2]!.share).toBeCloseTo((1 - 0.33333333349) * 0.5, 12);
    expect(dns.cluster?.fallthrough).toBe(0);
  });

  it('externalTrafficPolicy Local: the external path has only the local endpoint', () => {
    const ing = byId(analyse('iptables-save-cluster-shapes.txt').services, 'ingress-nginx/ingress-nginx-controller:http');
    expect(ing.endpoints).toHaveLength(3);
    expect(ing.external?.policy).toBe('Local');
    expect(ing.externalEndpoints?.map((e) => [e.address, e.share])).toEqual([['10.244.2.8:80', 1]]);
  });

  it('internalTrafficPolicy Local: the cluster IP goes to KUBE-SVL', () => {
    const a = analyse('iptables-save-cluster-shapes.txt');
    expect(byId(a.services, 'default/node-cache:dns').cluster).toMatchObject({ chain: 'KUBE-SVL-HT6BIEUNVGLGPOGG', policy: 'Local' });
    expect(a.findings.find((f) => f.code === 'LOCAL_POLICY' && f.evidence.service === 'default/node-cache:dns')?.severity).toBe('info');
  });

  it('the kube-proxy order and the iptables-save order of matches give the same analysis', () => {
    const strip = (x: ReturnType<typeof analyseDumps>) => x.services.map((s) => ({ id: s.id, e: shares(s), x: s.externalEndpoints?.map((e) => e.address) ?? null }));
    expect(strip(analyse('cluster-shapes.rules'))).toEqual(strip(analyse('iptables-save-cluster-shapes.txt')));
  });

  it('pre-1.24 KUBE-XLB chains and no comments: identity by chain hash, jumps followed', () => {
    const a = analyse('old-xlb-no-comments.txt');
    const s = byId(a.services, 'DDDDDDDDDDDDDDDD');
    expect(s.endpoints.map((e) => e.address)).toEqual(['10.244.1.1:8443', '10.244.2.2:8443', '10.244.3.3:8443']);
    expect(s.external).toMatchObject({ chain: 'KUBE-XLB-DDDDDDDDDDDDDDDD', policy: 'Local' });
    expect(s.externalEndpoints?.map((e) => e.address)).toEqual(['10.244.2.2:8443']);
  });

  it('%0.5f probabilities (kube-proxy before 1.17) with 300 endpoints: UNEVEN_SHARES', () => {
    const a = analyse('old-precision-300-endpoints.rules');
    const f = a.findings.find((x) => x.code === 'UNEVEN_SHARES');
    expect(f?.evidence).toMatchObject({ service: 'default/big:http', endpoints: 300, probabilityDigits: 5 });
    expect(Number(f?.evidence.relativeDeviation)).toBeGreaterThan(0.001);
  });

  it('%0.10f probabilities with 300 endpoints: no UNEVEN_SHARES', () => {
    const lines = ['*nat', ':KUBE-SERVICES - [0:0]', '-A KUBE-SERVICES -m comment --comment "x/y:p cluster IP" -m tcp -p tcp -d 10.0.0.1 --dport 80 -j KUBE-SVC-Z'];
    for (let i = 0; i < 300; i++) {
      const p = i < 299 ? ` -m statistic --mode random --probability ${(1 / (300 - i)).toFixed(10)}` : '';
      lines.push(`-A KUBE-SVC-Z${p} -j KUBE-SEP-${i}`, `-A KUBE-SEP-${i} -m tcp -p tcp -j DNAT --to-destination 10.1.${i >> 8}.${i & 255}:80`);
    }
    const a = analyseDumps(parseDumps(`${lines.join('\n')}\nCOMMIT\n`));
    expect(a.findings.filter((f) => f.code === 'UNEVEN_SHARES')).toEqual([]);
    const total = a.services[0]!.endpoints.reduce((n, e) => n + e.share, 0);
    expect(total).toBeCloseTo(1, 12);
  });
});

describe('broken rule sets', () => {
  it('FALLTHROUGH: the last rule still has a probability', () => {
    const a = analyse('broken-fallthrough.txt');
    const f = a.findings.find((x) => x.code === 'FALLTHROUGH');
    expect(f?.evidence).toMatchObject({ chain: 'KUBE-SVC-AAAAAAAAAAAAAAAA', fallthrough: 0.25 });
    expect(a.findings.some((x) => x.code === 'UNEVEN_SHARES')).toBe(false);
  });

  it('UNREACHABLE_RULE, MISSING_CHAIN, ORPHAN_CHAIN, DUPLICATE_ENDPOINT', () => {
    const a = analyse('broken-unreachable-missing-orphan-duplicate.txt');
    expect(codes(a)).toEqual([
      'DUPLICATE_ENDPOINT:warning:demo/dup:dns',
      'MISSING_CHAIN:critical:demo/dup:dns',
      'ORPHAN_CHAIN:warning:demo/old:dns',
      'UNREACHABLE_RULE:warning:demo/unreach:http',
    ]);
    // One meaning per evidence key: `chain` is the missing chain, `from` the chain that jumps to it.
    expect(a.findings.find((f) => f.code === 'MISSING_CHAIN')?.evidence).toMatchObject({ chain: 'KUBE-SEP-GONE', service: 'demo/dup:dns' });
    expect(byId(a.services, 'demo/dup:dns').cluster?.dropped).toBeCloseTo(1 / 3, 9);
  });
});

describe('nftables mode and iptables-nft', () => {
  it('kube-proxy nftables mode: numgen vmap shares, external chains, no-endpoint maps', () => {
    const a = analyse('nft-kube-proxy-overall.txt');
    expect(a.modes).toEqual(['nftables']);
    expect(a.services.map((s) => s.id)).toEqual(['ns1/svc1:p80', 'ns2/svc2:p80', 'ns3/svc3:p80', 'ns4/svc4:p80', 'ns5/svc5:p80']);
    expect(shares(byId(a.services, 'ns4/svc4:p80'))).toEqual([['10.180.0.4:80', 0.5], ['10.180.0.5:80', 0.5]]);
    expect(byId(a.services, 'ns2/svc2:p80').external?.policy).toBe('Local');
    expect(byId(a.services, 'ns3/svc3:p80').entries).toContainEqual({ kind: 'nodePort', address: null, port: 3003 });
    expect(codes(a)).toEqual(['NO_ENDPOINTS:warning:ns6/svc6:p80', 'NO_LOCAL_ENDPOINTS:warning:ns2/svc2:p80', 'SESSION_AFFINITY:info:ns5/svc5:p80']);
  });

  it('iptables-nft: meta random & 2147483647 < N is a probability of N / 2^31; no comments, so hashes', () => {
    const a = analyse('nft-iptables-nft-cluster-shapes.txt');
    expect(a.modes).toEqual(['iptables']);
    const dns = byId(a.services, 'TCOU7JCQXEZGVUNU');
    expect(dns.endpoints.map((e) => e.probability)).toEqual([0.33333333349, 0.5, null]);
    expect(a.findings.find((f) => f.code === 'NO_LOCAL_ENDPOINTS')?.evidence.service).toBe('WZ3PNNUUVX6TWXRD');
  });
});

describe('ipvsadm -Ln', () => {
  it('weights give the shares; persistence is affinity', () => {
    const a = analyse('ipvsadm-Ln-opsnull251.txt');
    expect(a.modes).toEqual(['ipvs']);
    const api = byId(a.services, 'TCP 10.254.0.1:443');
    expect(api.sessionAffinitySeconds).toBe(10800);
    expect(shares(api)).toEqual([['172.16.16.81:6443', 0.5], ['172.16.16.82:6443', 0.5]]);
    expect(byId(a.services, 'TCP 10.253.102.0:32429').endpoints).toHaveLength(4);
  });

  it('weight 0 is a draining endpoint; no real servers is NO_ENDPOINTS; IPv6 virtual servers', () => {
    const a = analyse('ipvsadm-Ln-draining.txt');
    expect(shares(byId(a.services, 'UDP 10.96.0.10:53'))).toEqual([['10.244.1.2:53', 0.5], ['10.244.2.3:53', 0], ['10.244.3.4:53', 0.5]]);
    expect(byId(a.services, 'TCP [fd00:10:96::a]:53').endpoints[0]?.address).toBe('[fd00:10:244:1::2]:53');
    expect(codes(a)).toEqual([
      'NO_ENDPOINTS:warning:TCP 10.96.200.1:80',
      'TERMINATING_ENDPOINTS:info:TCP 10.96.0.10:53',
      'TERMINATING_ENDPOINTS:info:UDP 10.96.0.10:53',
    ]);
  });
});

describe('parsing', () => {
  it('tokenizes quoted comments with escapes', () => {
    expect(tokenize('-A X -m comment --comment "a \\"b\\" c" -j Y')).toEqual(['-A', 'X', '-m', 'comment', '--comment', 'a "b" c', '-j', 'Y']);
  });

  it('reads counters from iptables-save -c', () => {
    const d = parseDumps('*nat\n[12:3456] -A KUBE-SVC-X -j KUBE-SEP-Y\nCOMMIT\n');
    const nat = d.iptables?.tables.get('nat');
    const first = nat?.rules('KUBE-SVC-X')[0];
    expect(first).toBe(0);
    expect(nat?.rule(0).counters).toEqual({ packets: 12, bytes: 3456 });
  });

  it('rejects empty, binary and unrecognisable input', () => {
    expect(() => parseDumps('')).toThrow(InputError);
    expect(() => parseDumps('\u0000\u0001')).toThrow(/binary/);
    expect(() => parseDumps('hello\nworld\n')).toThrow(/nothing recognisable/);
  });
});

describe('live reading helpers', () => {
  it('keeps only kube-proxy\'s own nft table when iptables-save already gave the iptables rules', async () => {
    const { keepKubeProxyTable } = await import('../../src/host/kubeproxy.js');
    const ruleset = `${readFixture('svc/nft-iptables-nft-cluster-shapes.txt')}\n${readFixture('svc/nft-kube-proxy-overall.txt')}`;
    const kept = keepKubeProxyTable(ruleset);
    expect(kept).not.toMatch(/KUBE-SVC-/);
    expect(kept).toMatch(/^table ip kube-proxy \{/);
    expect(kept.trim().endsWith('}')).toBe(true);
    const a = analyseDumps(parseDumps(kept));
    expect(a.modes).toEqual(['nftables']);
    expect(a.services).toHaveLength(5);
  });

  it('keeps the same lines as a line-by-line reading, for whole and cut rulesets', async () => {
    const { keepKubeProxyTable } = await import('../../src/host/kubeproxy.js');
    // The reference: every line from a `table ip|ip6 kube-proxy {` at depth 0 to the line that closes it.
    const reference = (ruleset: string): string => {
      const out: string[] = [];
      let keep = false;
      let depth = 0;
      for (const line of ruleset.split('\n')) {
        const t = line.trim();
        if (depth === 0) keep = /^table (ip|ip6) kube-proxy \{$/.test(t);
        if (keep) out.push(line);
        depth += t.split('{').length - t.split('}').length;
        if (depth <= 0) {
          depth = 0;
          keep = false;
        }
      }
      return out.join('\n');
    };
    const ruleset = `${readFixture('svc/nft-iptables-nft-cluster-shapes.txt')}\n${readFixture('svc/nft-kube-proxy-overall.txt')}\n${readFixture('svc/nft-iptables-nft-dual-stack.txt')}`;
    for (const text of [ruleset, ruleset.slice(0, Math.floor(ruleset.length * 0.7)), `${readFixture('svc/nft-kube-proxy-overall.txt')}\n${readFixture('svc/nft-kube-proxy-overall.txt').replace('table ip kube-proxy', 'table ip6 kube-proxy')}`]) {
      expect(keepKubeProxyTable(text)).toBe(reference(text));
    }
  });
});
