/**
 * Where each Service's new connections really go, computed from kube-proxy's
 * rules, and what is wrong with them. Pure: no I/O. Each backend reads its own
 * rules (./backends/iptables.ts, nftables.ts, ipvs.ts) into one model
 * (./model.ts); this module runs them and adds the findings that look across
 * a Service's endpoints whatever the backend.
 */
import type { Finding } from '../findings.js';
import type { ParsedDumps } from './dump.js';
import { IptablesAnalyser } from './backends/iptables.js';
import { ipvsAnalyse } from './backends/ipvs.js';
import { nftAnalyse } from './backends/nftables.js';
import { UNEVEN_RELATIVE } from './model.js';
import type { EndpointShare, ProxyMode, ServiceReport, SvcAnalysis } from './model.js';
import { finding } from '../findings.js';
import { percent } from '../stats/index.js';

export { identityFromComment, UNEVEN_RELATIVE } from './model.js';
export type { EndpointShare, PathReport, ProxyMode, ServiceEntry, ServiceReport, SvcAnalysis } from './model.js';

/** Findings that look across one service's endpoints: duplicates, uneven shares, Local subsets. */
function serviceFindings(s: ServiceReport, findings: Finding[]): void {
  const paths: Array<[string, EndpointShare[]]> = [['cluster', s.endpoints]];
  if (s.externalEndpoints) paths.push(['external', s.externalEndpoints]);
  for (const [path, eps] of paths) {
    const seen = new Map<string, number>();
    for (const e of eps) seen.set(e.address, (seen.get(e.address) ?? 0) + 1);
    for (const [addr, n] of seen) {
      if (n < 2) continue;
      findings.push(finding({
        code: 'DUPLICATE_ENDPOINT',
        severity: 'warning',
        message: `${s.id}: endpoint ${addr} appears ${n} times on the ${path} path and gets ${n} shares`,
        subject: { kind: 'service', id: s.id },
        evidence: { service: s.id, endpoint: addr, times: n, share: Number(eps.filter((e) => e.address === addr).reduce((a, e) => a + e.share, 0).toFixed(6)) },
        remedy: 'duplicate EndpointSlice entries or a stale chain: check the EndpointSlices, restart kube-proxy',
      }));
    }
    const path2 = path === 'cluster' ? s.cluster : s.external;
    const clean = path2 !== null && path2.fallthrough <= 1e-6 && path2.dropped <= 1e-6 && seen.size === eps.length;
    // Fall-through, missing chains and duplicates have their own findings: an equal split is only
    // asked of an otherwise sound chain.
    if (s.mode !== 'ipvs' && eps.length >= 2 && clean) {
      const n = eps.length;
      let worst = eps[0]!;
      let dev = 0;
      for (const e of eps) {
        const d = Math.abs(e.share * n - 1);
        if (d > dev) {
          dev = d;
          worst = e;
        }
      }
      if (dev > UNEVEN_RELATIVE) {
        const digits = eps.map((e) => (e.probability !== null ? (String(e.probability).split('.')[1] ?? '').length : 0)).reduce((a, b) => Math.max(a, b), 0);
        findings.push(finding({
          code: 'UNEVEN_SHARES',
          severity: 'warning',
          message: `${s.id}: ${n} endpoints should get ${percent(1 / n, 4)} each on the ${path} path; ${worst.address} gets ${percent(worst.share, 4)} (${percent(dev, 2)} off)`,
          subject: { kind: 'service', id: s.id },
          evidence: { service: s.id, endpoints: n, worst: worst.address, share: Number(worst.share.toFixed(8)), relativeDeviation: Number(dev.toFixed(6)), probabilityDigits: digits },
          remedy: digits > 0 && digits <= 5 ? 'probabilities written with 5 decimals (kube-proxy before 1.17) skew shares with hundreds of endpoints: upgrade kube-proxy' : 'the probabilities do not match an equal split: the chain was edited; restart kube-proxy',
        }));
      }
    }
  }
  if (s.cluster && s.external && s.external.policy === 'Local' && s.external.endpoints.length > 0) {
    const local = s.external.endpoints.length;
    findings.push(finding({
      code: 'LOCAL_POLICY',
      severity: 'info',
      message: `${s.id}: externalTrafficPolicy: Local: external traffic on this node goes only to its ${local} local endpoint${local === 1 ? '' : 's'} (of ${s.cluster.endpoints.length} for cluster traffic)`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, localEndpoints: local, clusterEndpoints: s.cluster.endpoints.length },
      remedy: '',
    }));
  }
  if (s.cluster?.policy === 'Local') {
    findings.push(finding({
      code: 'LOCAL_POLICY',
      severity: 'info',
      message: `${s.id}: internalTrafficPolicy: Local: pods on this node reach only its ${s.cluster.endpoints.length} local endpoint${s.cluster.endpoints.length === 1 ? '' : 's'}`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, localEndpoints: s.cluster.endpoints.length },
      remedy: s.cluster.endpoints.length === 0 ? 'no local endpoint: traffic from this node is dropped; run an endpoint on every node or use internalTrafficPolicy: Cluster' : '',
    }));
  }
  if (s.sessionAffinitySeconds !== null) {
    findings.push(finding({
      code: 'SESSION_AFFINITY',
      severity: 'info',
      message: `${s.id}: session affinity (ClientIP${s.sessionAffinitySeconds ? `, ${s.sessionAffinitySeconds} s` : ''}): returning clients go to their previous endpoint; the shares apply to new clients`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, seconds: s.sessionAffinitySeconds },
      remedy: '',
    }));
  }
}

export function analyseDumps(d: ParsedDumps): SvcAnalysis {
  const findings: Finding[] = [];
  const services: ServiceReport[] = [];
  const modes: ProxyMode[] = [];
  // Appended one at a time, never spread into push: a node has more Services than a call has room for arguments.
  // IPv4 and IPv6 rules apart: a dual-stack Service has chains of the same name in both.
  for (const rs of [d.iptables, d.iptables6]) {
    if (rs === null) continue;
    const a = new IptablesAnalyser(rs);
    const svc = a.analyse();
    for (const f of a.findings) findings.push(f);
    if ((svc.length > 0 || rs.tables.get('nat')?.hasRules('KUBE-SERVICES')) && !modes.includes('iptables')) modes.push('iptables');
    for (const s of svc) services.push(s);
  }
  for (const kp of d.nft) {
    modes.push('nftables');
    for (const s of nftAnalyse(kp, findings)) services.push(s);
  }
  if (d.ipvs) {
    modes.push('ipvs');
    for (const s of ipvsAnalyse(d.ipvs, findings)) services.push(s);
  }
  for (const s of services) serviceFindings(s, findings);
  // The order localeCompare gives, through one collator: a fresh comparison per call costs 10x more.
  const collator = new Intl.Collator();
  services.sort((x, y) => collator.compare(x.id, y.id));
  return { modes, services, findings };
}

