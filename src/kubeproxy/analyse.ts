/**
 * Where each Service's new connections really go, computed from kube-proxy's
 * rules, and what is wrong with them. Pure: no I/O.
 *
 * iptables mode: a KUBE-SVC (or KUBE-SVL, KUBE-XLB) chain is a cascade of
 * `-m statistic --mode random --probability p` jumps to KUBE-SEP chains that
 * DNAT to the endpoints; endpoint i gets p_i * prod(1 - p_j) over the rules
 * before it, and whatever is left after the last rule falls through.
 * nftables mode: `numgen random mod N vmap { k : goto endpoint-... }` gives
 * each key 1/N. IPVS: weight / sum of weights.
 */
import type { Finding } from '../findings.js';
import { serviceOf } from '../findings.js';
import type { IpvsService, NftKubeProxy, ParsedDumps, Rule, RuleSet } from './rules.js';

export type ProxyMode = 'iptables' | 'nftables' | 'ipvs';

export interface EndpointShare {
  address: string;
  share: number;
  /** The rule's probability as written (iptables), or null where the rule had none. */
  probability: number | null;
  chain: string | null;
  /** IPVS weight. */
  weight?: number;
}

export interface PathReport {
  chain: string;
  policy: 'Cluster' | 'Local';
  endpoints: EndpointShare[];
  /** Share of new connections that match no endpoint rule. */
  fallthrough: number;
  /** Share dropped or rejected on purpose (no local endpoints). */
  dropped: number;
}

export interface ServiceEntry {
  kind: 'clusterIP' | 'externalIP' | 'loadBalancerIP' | 'nodePort' | 'virtualServer';
  address: string | null;
  port: number | null;
}

export interface ServiceReport {
  /** `namespace/name:port` where the rules name it; the chain hash otherwise. */
  id: string;
  namespace: string | null;
  name: string | null;
  portName: string | null;
  protocol: string | null;
  mode: ProxyMode;
  clusterIP: string | null;
  port: number | null;
  entries: ServiceEntry[];
  /** Shares of new connections on the cluster path (cluster IP). */
  endpoints: EndpointShare[];
  /** Shares on the external path (NodePort, external and LB IPs) where they differ. */
  externalEndpoints: EndpointShare[] | null;
  cluster: PathReport | null;
  external: PathReport | null;
  sessionAffinitySeconds: number | null;
}

export interface SvcAnalysis {
  modes: ProxyMode[];
  services: ServiceReport[];
  findings: Finding[];
}

const EPS = 1e-9;
export const UNEVEN_RELATIVE = 0.001;

interface Identity {
  id: string;
  namespace: string | null;
  name: string | null;
  portName: string | null;
}

/** `ns/name:port` (kube-proxy's ServicePortName) from a comment, if any. */
export function identityFromComment(comment: string | undefined): Identity | undefined {
  if (comment === undefined) return undefined;
  const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(?::([^\s]*))?(\s|$)/.exec(comment);
  if (!m || m[1] === undefined || m[3] === undefined) return undefined;
  const port = m[5] ?? '';
  return { id: `${m[1]}/${m[3]}:${port}`, namespace: m[1], name: m[3], portName: port };
}

function entryKind(comment: string | undefined, target: string): ServiceEntry['kind'] {
  if (comment?.endsWith('loadbalancer IP')) return 'loadBalancerIP';
  if (comment?.endsWith('external IP')) return 'externalIP';
  if (comment?.endsWith('cluster IP')) return 'clusterIP';
  return /^KUBE-(SVC|SVL)-/.test(target) ? 'clusterIP' : 'externalIP';
}

const hashOf = (chain: string): string => chain.replace(/^KUBE-(SVC|SVL|EXT|FW|XLB|SEP)-/, '');

interface Acc {
  hash: string;
  ident: Identity | undefined;
  protocol: string | null;
  clusterIP: string | null;
  port: number | null;
  entries: ServiceEntry[];
  clusterChain: string | undefined;
  externalChain: string | undefined;
}

class IptablesAnalyser {
  readonly nat: Map<string, Rule[]>;
  readonly filter: Map<string, Rule[]>;
  readonly declared: Set<string>;
  readonly findings: Finding[] = [];
  private readonly referenced = new Set<string>();
  private readonly reportedUnreachable = new Set<string>();
  private readonly reportedMissing = new Set<string>();
  private readonly reportedFallthrough = new Set<string>();

  /** The Service a chain belongs to, by the `ns/name:port` comment on its rules. */
  serviceOfChain(chain: string): string | undefined {
    for (const r of this.nat.get(chain) ?? []) {
      const id = identityFromComment(r.comment)?.id;
      if (id !== undefined) return id;
    }
    return undefined;
  }

  constructor(rs: RuleSet) {
    this.nat = rs.chains.get('nat') ?? new Map();
    this.filter = rs.chains.get('filter') ?? new Map();
    this.declared = new Set([...(rs.declared.get('nat') ?? []), ...this.nat.keys()]);
    for (const rules of this.nat.values()) for (const r of rules) if (r.target !== undefined) this.referenced.add(r.target);
  }

  private exists(chain: string): boolean {
    return this.declared.has(chain);
  }

  private missing(chain: string, from: Rule): void {
    if (this.reportedMissing.has(chain)) return;
    this.reportedMissing.add(chain);
    this.findings.push({
      code: 'MISSING_CHAIN',
      severity: 'critical', subject: { kind: 'chain', name: chain, service: null },
      message: `${from.chain} jumps to ${chain}, which does not exist: connections taking that rule are not load-balanced (iptables-restore would have refused this rule set)`,
      evidence: { chain, from: from.chain, line: from.line, comment: from.comment ?? null },
      remedy: 'restart kube-proxy so it rewrites its chains; check its logs for iptables-restore failures',
    });
  }

  /** The DNAT destination of a KUBE-SEP chain. */
  private sepDestination(sep: string, from: Rule): string | undefined {
    if (!this.exists(sep)) {
      this.missing(sep, from);
      return undefined;
    }
    return (this.nat.get(sep) ?? []).find((r) => r.dnat !== undefined)?.dnat;
  }

  /** Shares of new connections entering `chain`, following jumps to SVC/SVL from EXT/FW/XLB. */
  evalPath(chain: string, depth = 0): { endpoints: EndpointShare[]; fallthrough: number; dropped: number; affinity: number | null } {
    const endpoints: EndpointShare[] = [];
    let remaining = 1;
    let dropped = 0;
    let affinity: number | null = null;
    const rules = this.nat.get(chain) ?? [];
    let lastSep: Rule | undefined;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const t = r.target ?? '';
      if (remaining <= EPS) {
        const after = rules.length - i;
        if (!this.reportedUnreachable.has(chain)) {
          this.reportedUnreachable.add(chain);
          this.findings.push({
            code: 'UNREACHABLE_RULE',
            severity: 'warning', subject: { kind: 'chain', name: chain, service: null },
            message: `${after} rule${after === 1 ? '' : 's'} in ${chain} after an unconditional jump can never match`,
            evidence: { chain, firstUnreachableLine: r.line, rules: after },
            remedy: 'the endpoints behind them get no traffic from this node; restart kube-proxy to rewrite the chain',
          });
        }
        break;
      }
      if (r.recent?.mode === 'rcheck') {
        affinity = r.recent.seconds ?? affinity ?? 0;
        continue; // only returning clients match: not a share of new connections
      }
      if (t === 'KUBE-MARK-MASQ' || t === 'MARK' || t === '') continue;
      const p = r.probability ?? 1;
      const conditional = r.conditional;
      if (/^KUBE-SEP-/.test(t)) {
        if (conditional) continue;
        lastSep = r;
        const dest = this.sepDestination(t, r);
        const share = remaining * p;
        if (dest !== undefined) endpoints.push({ address: dest, share, probability: r.probability ?? null, chain: t });
        else dropped += share; // a jump into nothing: DNAT never happens
        remaining *= 1 - p;
        continue;
      }
      if (/^KUBE-(SVC|SVL|EXT|FW|XLB)-/.test(t) && depth < 4) {
        if (conditional) continue; // pod traffic, LOCAL traffic, LB source ranges: special cases
        if (!this.exists(t)) {
          this.missing(t, r);
          continue;
        }
        const sub = this.evalPath(t, depth + 1);
        const scale = remaining * p;
        for (const e of sub.endpoints) endpoints.push({ ...e, share: e.share * scale });
        dropped += sub.dropped * scale;
        if (sub.affinity !== null) affinity = sub.affinity;
        // What falls through the sub-chain comes back here and goes on.
        remaining = remaining * (1 - p) + sub.fallthrough * scale;
        continue;
      }
      if (t === 'KUBE-MARK-DROP' || t === 'DROP' || t === 'REJECT') {
        if (conditional) continue;
        dropped += remaining * p;
        remaining *= 1 - p;
        continue;
      }
      if (t === 'RETURN' && !conditional) break;
    }
    if (lastSep && lastSep.probability !== undefined && remaining > EPS && /^KUBE-(SVC|SVL|XLB)-/.test(chain) && !this.reportedFallthrough.has(chain)) {
      this.reportedFallthrough.add(chain);
      this.findings.push({
        code: 'FALLTHROUGH',
        severity: 'warning', subject: { kind: 'chain', name: chain, service: null },
        message: `the last rule of ${chain} still has a probability (${lastSep.probabilityText ?? lastSep.probability}): ${(remaining * 100).toFixed(2)}% of new connections match no endpoint and leave the chain un-DNATed`,
        evidence: { chain, line: lastSep.line, fallthrough: Number(remaining.toFixed(6)), lastProbability: lastSep.probabilityText ?? null },
        remedy: 'kube-proxy writes the last endpoint rule without a probability; this chain was edited or truncated: restart kube-proxy',
      });
    }
    return { endpoints, fallthrough: remaining, dropped, affinity };
  }

  analyse(): ServiceReport[] {
    const accs = new Map<string, Acc>();
    const acc = (hash: string): Acc => {
      let a = accs.get(hash);
      if (!a) {
        a = { hash, ident: undefined, protocol: null, clusterIP: null, port: null, entries: [], clusterChain: undefined, externalChain: undefined };
        accs.set(hash, a);
      }
      return a;
    };
    for (const r of this.nat.get('KUBE-SERVICES') ?? []) {
      const t = r.target ?? '';
      if (!/^KUBE-(SVC|SVL|EXT|FW|XLB)-/.test(t)) continue;
      const a = acc(hashOf(t));
      a.ident ??= identityFromComment(r.comment);
      a.protocol ??= r.proto ?? null;
      const kind = entryKind(r.comment, t);
      a.entries.push({ kind, address: r.dest ?? null, port: r.dport ?? null });
      if (kind === 'clusterIP') {
        a.clusterChain = t;
        a.clusterIP = r.dest ?? null;
        a.port = r.dport ?? null;
      } else a.externalChain ??= t;
    }
    for (const r of this.nat.get('KUBE-NODEPORTS') ?? []) {
      const t = r.target ?? '';
      if (!/^KUBE-(SVC|SVL|EXT|FW|XLB)-/.test(t) || r.dest === '127.0.0.0/8') continue;
      const a = acc(hashOf(t));
      a.ident ??= identityFromComment(r.comment);
      a.protocol ??= r.proto ?? null;
      a.entries.push({ kind: 'nodePort', address: null, port: r.dport ?? null });
      a.externalChain ??= t;
    }
    // Chains that exist without a KUBE-SERVICES entry: identity from their own comments.
    for (const [chain, rules] of this.nat) {
      if (!/^KUBE-SVC-/.test(chain)) continue;
      const a = accs.get(hashOf(chain));
      if (!a) continue;
      if (a.ident === undefined) for (const r of rules) a.ident ??= identityFromComment(r.comment);
      a.clusterChain ??= chain;
    }

    const reports: ServiceReport[] = [];
    for (const a of accs.values()) {
      const svcChain = `KUBE-SVC-${a.hash}`;
      let cluster: PathReport | null = null;
      let affinity: number | null = null;
      if (a.clusterChain) {
        const res = this.evalPath(a.clusterChain);
        affinity = res.affinity;
        cluster = { chain: a.clusterChain, policy: a.clusterChain.startsWith('KUBE-SVL-') ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: res.dropped };
      } else if (this.exists(svcChain)) {
        const res = this.evalPath(svcChain);
        cluster = { chain: svcChain, policy: 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: res.dropped };
      }
      let external: PathReport | null = null;
      // Through KUBE-FW only the allowed source ranges reach KUBE-EXT: report the EXT path itself.
      const extChain = a.externalChain?.startsWith('KUBE-FW-') && this.exists(`KUBE-EXT-${a.hash}`) ? `KUBE-EXT-${a.hash}` : a.externalChain;
      if (extChain) {
        a.externalChain = extChain;
        const res = this.evalPath(extChain);
        if (res.affinity !== null) affinity = res.affinity;
        const extRules = this.nat.get(extChain) ?? [];
        // Only a Local policy writes the short-circuit rules (pod and node-local traffic to KUBE-SVC)
        // or jumps to KUBE-SVL; KUBE-XLB is the pre-1.24 Local chain.
        const local =
          extChain.startsWith('KUBE-XLB-') ||
          extRules.some((r) => (r.target ?? '').startsWith('KUBE-SVL-') || ((r.target ?? '').startsWith('KUBE-SVC-') && r.conditional));
        external = { chain: extChain, policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: res.dropped };
      }
      const ident = a.ident ?? { id: a.hash, namespace: null, name: null, portName: null };
      const same = (x: EndpointShare[] | undefined, y: EndpointShare[] | undefined): boolean =>
        x !== undefined && y !== undefined && x.length === y.length && x.every((e, i) => e.address === y[i]?.address && Math.abs(e.share - (y[i]?.share ?? 0)) < 1e-9);
      reports.push({
        ...ident,
        protocol: a.protocol,
        mode: 'iptables',
        clusterIP: a.clusterIP,
        port: a.port,
        entries: a.entries,
        endpoints: cluster?.endpoints ?? [],
        externalEndpoints: external && !same(external.endpoints, cluster?.endpoints) ? external.endpoints : null,
        cluster,
        external,
        sessionAffinitySeconds: affinity,
      });
    }
    this.orphans();
    this.filterFindings(reports);
    // Without comments (iptables-nft, or >1000 endpoints) the filter rules cannot be tied to a
    // Service: the nat chains alone still show a Local external path with nowhere to go.
    for (const s of reports) {
      if (s.external?.policy !== 'Local' || s.external.endpoints.length > 0) continue;
      if (this.findings.some((f) => f.code === 'NO_LOCAL_ENDPOINTS' && f.evidence.service === s.id)) continue;
      this.findings.push({
        code: 'NO_LOCAL_ENDPOINTS',
        severity: 'warning',
        message: `${s.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here matches no endpoint and is dropped`,
        subject: { kind: 'service', id: s.id },
        evidence: { service: s.id, chain: s.external.chain },
        remedy: 'the load balancer must send only to nodes that pass the healthCheckNodePort probe (the ingress-nginx case); or run an endpoint on every node, or use externalTrafficPolicy: Cluster',
      });
    }
    return reports;
  }

  private orphans(): void {
    for (const chain of this.declared) {
      if (!/^KUBE-SEP-/.test(chain) || this.referenced.has(chain)) continue;
      const ident = identityFromComment((this.nat.get(chain) ?? []).find((r) => r.comment)?.comment);
      this.findings.push({
        code: 'ORPHAN_CHAIN',
        severity: 'warning', subject: { kind: 'chain', name: chain, service: null },
        message: `${chain}${ident ? ` (${ident.id})` : ''} exists but nothing jumps to it: a stale endpoint chain`,
        evidence: { chain, dnat: (this.nat.get(chain) ?? []).find((r) => r.dnat)?.dnat ?? null },
        remedy: 'harmless for traffic, but kube-proxy normally deletes these: a failed or partial sync; check kube-proxy logs',
      });
    }
  }

  /** filter-table REJECT/DROP rules kube-proxy writes for services without (local) endpoints. */
  private filterFindings(reports: ServiceReport[]): void {
    const seen = new Set<string>();
    for (const [chain, rules] of this.filter) {
      for (const r of rules) {
        const c = r.comment ?? '';
        const ident = identityFromComment(c);
        if (!ident) continue;
        const key = `${ident.id}|${c.endsWith('has no local endpoints') ? 'local' : 'none'}`;
        if (c.endsWith('has no endpoints') && !seen.has(key)) {
          seen.add(key);
          this.findings.push({
            code: 'NO_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has no endpoints: connections to it are rejected`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, rule: r.target ?? null, destination: r.dest ?? null, port: r.dport ?? null },
            remedy: 'check the Service selector and that its pods are Ready (kubectl get endpointslices -l kubernetes.io/service-name=NAME)',
          });
          if (!reports.some((s) => s.id === ident.id)) {
            reports.push({ ...ident, protocol: r.proto ?? null, mode: 'iptables', clusterIP: r.dest ?? null, port: r.dport ?? null, entries: [{ kind: 'clusterIP', address: r.dest ?? null, port: r.dport ?? null }], endpoints: [], externalEndpoints: null, cluster: null, external: null, sessionAffinitySeconds: null });
          }
        } else if (c.endsWith('has no local endpoints') && !seen.has(key)) {
          seen.add(key);
          this.findings.push({
            code: 'NO_LOCAL_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here is dropped`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, destination: r.dest ?? null, port: r.dport ?? null },
            remedy: 'the load balancer must send only to nodes that pass the healthCheckNodePort probe (the ingress-nginx case); or run an endpoint on every node (DaemonSet), or use externalTrafficPolicy: Cluster',
          });
        }
      }
    }
  }
}

function nftAnalyse(kp: NftKubeProxy, findings: Finding[]): ServiceReport[] {
  const chainExists = (c: string): boolean => kp.chains.has(c);
  const endpointAddress = (chain: string): string | undefined => {
    for (const r of kp.chains.get(chain) ?? []) {
      const m = /dnat (?:ip6? )?to (\S+)/.exec(r);
      if (m?.[1] !== undefined) return m[1];
    }
    const tail = /__(.+)\/(\d+)$/.exec(chain);
    return tail ? `${tail[1]}:${tail[2]}` : undefined;
  };
  const evalChain = (chain: string, depth = 0): { endpoints: EndpointShare[]; fallthrough: number; affinity: number | null } => {
    const endpoints: EndpointShare[] = [];
    let remaining = 1;
    let affinity: number | null = null;
    for (const r of kp.chains.get(chain) ?? []) {
      if (remaining <= EPS) break;
      const aff = /@(affinity-\S+)/.exec(r);
      if (aff?.[1] !== undefined) {
        // The set's declared timeout is the Service's sessionAffinityConfig timeoutSeconds.
        affinity = kp.setTimeouts.get(aff[1]) ?? affinity ?? 0;
        continue;
      }
      const ng = /numgen random mod (\d+) vmap \{ (.*) \}/.exec(r);
      if (ng?.[1] !== undefined && ng[2] !== undefined) {
        const mod = Number(ng[1]);
        let covered = 0;
        for (const el of ng[2].split(',')) {
          const m = /^\s*(\d+)(?:-(\d+))?\s*:\s*(?:goto|jump) (\S+)/.exec(el);
          if (!m || m[1] === undefined || m[3] === undefined) continue;
          const lo = Number(m[1]);
          const hi = m[2] !== undefined ? Number(m[2]) : lo;
          const frac = (hi - lo + 1) / mod;
          covered += frac;
          const target = m[3];
          if (!chainExists(target)) {
            findings.push({ code: 'MISSING_CHAIN', severity: 'critical', subject: { kind: 'chain', name: target, service: null }, message: `${chain} sends ${(frac * 100).toFixed(1)}% to ${target}, which does not exist`, evidence: { chain: target, from: chain }, remedy: 'restart kube-proxy' });
            continue;
          }
          const addr = endpointAddress(target);
          if (addr !== undefined) endpoints.push({ address: addr, share: remaining * frac, probability: null, chain: target });
        }
        if (covered < 1 - EPS) {
          findings.push({
            code: 'FALLTHROUGH',
            severity: 'warning', subject: { kind: 'chain', name: chain, service: null },
            message: `${chain}: numgen mod ${mod} maps only ${(covered * 100).toFixed(1)}% of its values: the rest match no endpoint`,
            evidence: { chain, mod, covered: Number(covered.toFixed(6)) },
            remedy: 'restart kube-proxy',
          });
        }
        remaining *= 1 - Math.min(1, covered);
        break;
      }
      const go = /^(?:(.*) )?goto (\S+)$/.exec(r);
      if (go?.[2] !== undefined && depth < 4) {
        const conditional = go[1] !== undefined && /saddr|daddr|fib|dport|mark/.test(go[1]);
        if (conditional) continue;
        const target = go[2];
        if (!chainExists(target)) {
          findings.push({ code: 'MISSING_CHAIN', severity: 'critical', subject: { kind: 'chain', name: target, service: null }, message: `${chain} goes to ${target}, which does not exist`, evidence: { chain: target, from: chain }, remedy: 'restart kube-proxy' });
          continue;
        }
        if (target.startsWith('endpoint-')) {
          const addr = endpointAddress(target);
          if (addr !== undefined) endpoints.push({ address: addr, share: remaining, probability: null, chain: target });
        } else {
          const sub = evalChain(target, depth + 1);
          for (const e of sub.endpoints) endpoints.push({ ...e, share: e.share * remaining });
          if (sub.affinity !== null) affinity = sub.affinity;
          remaining *= sub.fallthrough;
          continue;
        }
        remaining = 0;
      }
    }
    return { endpoints, fallthrough: remaining, affinity };
  };

  const reports = new Map<string, ServiceReport>();
  const identOf = (chain: string): { key: string; ident: Identity; protocol: string | null } | undefined => {
    const m = /^(?:service|local|external|firewall)-([A-Z0-9]+)-([^/]+)\/([^/]+)\/([^/]+)\/(.*)$/.exec(chain);
    if (!m || m[2] === undefined || m[3] === undefined || m[5] === undefined) return undefined;
    return { key: m[1] ?? chain, ident: { id: `${m[2]}/${m[3]}:${m[5]}`, namespace: m[2], name: m[3], portName: m[5] }, protocol: m[4] ?? null };
  };
  const report = (chain: string): ServiceReport | undefined => {
    const idn = identOf(chain);
    if (!idn) return undefined;
    let rep = reports.get(idn.key);
    if (!rep) {
      rep = { ...idn.ident, protocol: idn.protocol, mode: 'nftables', clusterIP: null, port: null, entries: [], endpoints: [], externalEndpoints: null, cluster: null, external: null, sessionAffinitySeconds: null };
      reports.set(idn.key, rep);
    }
    return rep;
  };
  for (const el of kp.maps.get('service-ips') ?? []) {
    const m = /^(\S+) \. (\S+) \. (\d+)(?: comment "[^"]*")? : (?:goto|jump) (\S+)$/.exec(el);
    if (!m || m[4] === undefined) continue;
    const rep = report(m[4]);
    if (!rep) continue;
    const isCluster = m[4].startsWith('service-') || m[4].startsWith('local-');
    rep.entries.push({ kind: isCluster ? 'clusterIP' : 'externalIP', address: m[1] ?? null, port: Number(m[3]) });
    if (isCluster) {
      rep.clusterIP = m[1] ?? null;
      rep.port = Number(m[3]);
      const res = evalChain(m[4]);
      rep.cluster = { chain: m[4], policy: m[4].startsWith('local-') ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
      if (res.affinity !== null) rep.sessionAffinitySeconds = res.affinity;
    } else if (!rep.external) {
      const res = evalChain(m[4]);
      const local = (kp.chains.get(m[4]) ?? []).some((r) => /^goto local-/.test(r) || /saddr .* goto service-/.test(r));
      rep.external = { chain: m[4], policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
    }
  }
  // Without the service-ips map (a partial dump) the Service chains that exist are still read.
  if (!kp.maps.has('service-ips')) {
    for (const chain of kp.chains.keys()) {
      if (!/^(service|local)-/.test(chain)) continue;
      const rep = report(chain);
      if (!rep || rep.cluster) continue;
      const res = evalChain(chain);
      rep.cluster = { chain, policy: chain.startsWith('local-') ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
      if (res.affinity !== null) rep.sessionAffinitySeconds = res.affinity;
    }
  }
  for (const el of kp.maps.get('service-nodeports') ?? []) {
    const m = /^(\S+) \. (\d+)(?: comment "[^"]*")? : (?:goto|jump) (\S+)$/.exec(el);
    if (!m || m[3] === undefined) continue;
    const rep = report(m[3]);
    if (!rep) continue;
    rep.entries.push({ kind: 'nodePort', address: null, port: Number(m[2]) });
    if (!rep.external) {
      const res = evalChain(m[3]);
      const local = (kp.chains.get(m[3]) ?? []).some((r) => /^goto local-/.test(r) || /saddr .* goto service-/.test(r));
      rep.external = { chain: m[3], policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
    }
  }
  for (const rep of reports.values()) {
    rep.endpoints = rep.cluster?.endpoints ?? [];
    const ext = rep.external?.endpoints;
    if (ext && (ext.length !== rep.endpoints.length || ext.some((e, i) => e.address !== rep.endpoints[i]?.address))) rep.externalEndpoints = ext;
  }
  for (const mapName of ['no-endpoint-services', 'no-endpoint-nodeports']) {
    for (const el of kp.maps.get(mapName) ?? []) {
      const m = /comment "([^"]*)" : (\S+(?: \S+)?)$/.exec(el);
      const ident = identityFromComment(m?.[1]);
      if (!ident) continue;
      const verdict = m?.[2] ?? '';
      const local = verdict === 'drop';
      if (findings.some((f) => serviceOf(f) === ident.id && f.code === (local ? 'NO_LOCAL_ENDPOINTS' : 'NO_ENDPOINTS'))) continue;
      findings.push(
        local
          ? {
              code: 'NO_LOCAL_ENDPOINTS',
              severity: 'warning',
              message: `${ident.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here is dropped`,
              subject: { kind: 'service', id: ident.id },
              evidence: { service: ident.id, map: mapName, element: el },
              remedy: 'the load balancer must send only to nodes that pass the healthCheckNodePort probe; or use externalTrafficPolicy: Cluster',
            }
          : {
              code: 'NO_ENDPOINTS',
              severity: 'warning',
              message: `${ident.id} has no endpoints: connections to it are rejected`,
              subject: { kind: 'service', id: ident.id },
              evidence: { service: ident.id, map: mapName, element: el },
              remedy: 'check the Service selector and that its pods are Ready',
            },
      );
    }
  }
  return [...reports.values()];
}

function ipvsAnalyse(services: IpvsService[], findings: Finding[]): ServiceReport[] {
  const out: ServiceReport[] = [];
  for (const s of services) {
    const total = s.reals.reduce((n, r) => n + r.weight, 0);
    const endpoints: EndpointShare[] = s.reals.map((r) => ({
      address: r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`,
      share: total > 0 ? r.weight / total : 0,
      probability: null,
      chain: null,
      weight: r.weight,
    }));
    const id = `${s.proto.toUpperCase()} ${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}`;
    if (s.reals.length === 0 || total === 0) {
      findings.push({
        code: 'NO_ENDPOINTS',
        severity: 'warning',
        message: `${id} has ${s.reals.length === 0 ? 'no real servers' : 'only real servers of weight 0 (all draining)'}: new connections have nowhere to go`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, reals: s.reals.length, line: s.line },
        remedy: 'check the Service\'s endpoints (kubectl get endpointslices)',
      });
    }
    const draining = s.reals.filter((r) => r.weight === 0);
    if (draining.length > 0 && total > 0) {
      findings.push({
        code: 'TERMINATING_ENDPOINTS',
        severity: 'info',
        message: `${id}: ${draining.length} real server${draining.length === 1 ? '' : 's'} with weight 0 (terminating endpoints being drained: no new connections, ${draining.reduce((n, r) => n + r.active, 0)} active kept)`,
        subject: { kind: 'service', id: id },
        evidence: { service: id, draining: draining.map((r) => `${r.address}:${r.port}`).join(' ') },
        remedy: '',
      });
    }
    out.push({
      id,
      namespace: null,
      name: null,
      portName: null,
      protocol: s.proto,
      mode: 'ipvs',
      clusterIP: s.address,
      port: s.port,
      entries: [{ kind: 'virtualServer', address: s.address, port: s.port }],
      endpoints,
      externalEndpoints: null,
      cluster: { chain: `${s.scheduler}`, policy: 'Cluster', endpoints, fallthrough: total > 0 ? 0 : 1, dropped: 0 },
      external: null,
      sessionAffinitySeconds: s.persistentSeconds ?? null,
    });
  }
  return out;
}

/** Findings that look across one service's endpoints: duplicates, uneven shares, Local subsets. */
function serviceFindings(s: ServiceReport, findings: Finding[]): void {
  const paths: Array<[string, EndpointShare[]]> = [['cluster', s.endpoints]];
  if (s.externalEndpoints) paths.push(['external', s.externalEndpoints]);
  for (const [path, eps] of paths) {
    const seen = new Map<string, number>();
    for (const e of eps) seen.set(e.address, (seen.get(e.address) ?? 0) + 1);
    for (const [addr, n] of seen) {
      if (n < 2) continue;
      findings.push({
        code: 'DUPLICATE_ENDPOINT',
        severity: 'warning',
        message: `${s.id}: endpoint ${addr} appears ${n} times on the ${path} path and gets ${n} shares`,
        subject: { kind: 'service', id: s.id },
        evidence: { service: s.id, endpoint: addr, times: n, share: Number(eps.filter((e) => e.address === addr).reduce((a, e) => a + e.share, 0).toFixed(6)) },
        remedy: 'duplicate EndpointSlice entries or a stale chain: check the EndpointSlices, restart kube-proxy',
      });
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
        findings.push({
          code: 'UNEVEN_SHARES',
          severity: 'warning',
          message: `${s.id}: ${n} endpoints should get ${(100 / n).toFixed(4)}% each on the ${path} path; ${worst.address} gets ${(worst.share * 100).toFixed(4)}% (${(dev * 100).toFixed(2)}% off)`,
          subject: { kind: 'service', id: s.id },
          evidence: { service: s.id, endpoints: n, worst: worst.address, share: Number(worst.share.toFixed(8)), relativeDeviation: Number(dev.toFixed(6)), probabilityDigits: digits },
          remedy: digits > 0 && digits <= 5 ? 'probabilities written with 5 decimals (kube-proxy before 1.17) skew shares with hundreds of endpoints: upgrade kube-proxy' : 'the probabilities do not match an equal split: the chain was edited; restart kube-proxy',
        });
      }
    }
  }
  if (s.cluster && s.external && s.external.policy === 'Local' && s.external.endpoints.length > 0) {
    const local = s.external.endpoints.length;
    findings.push({
      code: 'LOCAL_POLICY',
      severity: 'info',
      message: `${s.id}: externalTrafficPolicy: Local: external traffic on this node goes only to its ${local} local endpoint${local === 1 ? '' : 's'} (of ${s.cluster.endpoints.length} for cluster traffic)`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, localEndpoints: local, clusterEndpoints: s.cluster.endpoints.length },
      remedy: '',
    });
  }
  if (s.cluster?.policy === 'Local') {
    findings.push({
      code: 'LOCAL_POLICY',
      severity: 'info',
      message: `${s.id}: internalTrafficPolicy: Local: pods on this node reach only its ${s.cluster.endpoints.length} local endpoint${s.cluster.endpoints.length === 1 ? '' : 's'}`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, localEndpoints: s.cluster.endpoints.length },
      remedy: s.cluster.endpoints.length === 0 ? 'no local endpoint: traffic from this node is dropped; run an endpoint on every node or use internalTrafficPolicy: Cluster' : '',
    });
  }
  if (s.sessionAffinitySeconds !== null) {
    findings.push({
      code: 'SESSION_AFFINITY',
      severity: 'info',
      message: `${s.id}: session affinity (ClientIP${s.sessionAffinitySeconds ? `, ${s.sessionAffinitySeconds} s` : ''}): returning clients go to their previous endpoint; the shares apply to new clients`,
      subject: { kind: 'service', id: s.id },
      evidence: { service: s.id, seconds: s.sessionAffinitySeconds },
      remedy: '',
    });
  }
}

/** kube-proxy's nftables chain names carry the Service: service-HASH-ns/name/proto/port, endpoint-HASH-ns/name/port__ip/port. */
function nftServiceOfChain(chain: string): string | undefined {
  const svc = /^(?:service|external)-[A-Z0-9]+-([^/]+)\/([^/]+)\/[a-z]+\/(\S*)$/.exec(chain);
  if (svc) return `${svc[1]}/${svc[2]}:${svc[3]}`;
  const ep = /^endpoint-[A-Z0-9]+-([^/]+)\/([^/]+)\/[a-z]*\/?([^_]*)__/.exec(chain);
  if (ep) return `${ep[1]}/${ep[2]}:${ep[3]}`;
  return undefined;
}

export function analyseDumps(d: ParsedDumps): SvcAnalysis {
  const findings: Finding[] = [];
  const services: ServiceReport[] = [];
  const modes: ProxyMode[] = [];
  // IPv4 and IPv6 rules apart: a dual-stack Service has chains of the same name in both.
  const owners: Array<(chain: string) => string | undefined> = [nftServiceOfChain];
  for (const rs of [d.iptables, d.iptables6]) {
    if (rs === null) continue;
    const a = new IptablesAnalyser(rs);
    const svc = a.analyse();
    findings.push(...a.findings);
    owners.push((chain) => a.serviceOfChain(chain));
    if ((svc.length > 0 || rs.chains.get('nat')?.has('KUBE-SERVICES')) && !modes.includes('iptables')) modes.push('iptables');
    services.push(...svc);
  }
  for (const kp of d.nft) {
    modes.push('nftables');
    services.push(...nftAnalyse(kp, findings));
  }
  if (d.ipvs) {
    modes.push('ipvs');
    services.push(...ipvsAnalyse(d.ipvs, findings));
  }
  for (const s of services) serviceFindings(s, findings);
  // Every finding about a chain says which Service it concerns, where the rules tell.
  // MISSING_CHAIN asks the chain that jumps (the missing one has no rules to tell).
  for (const f of findings) {
    if (f.subject.kind !== 'chain' || f.subject.service !== null) continue;
    const chains = f.code === 'MISSING_CHAIN' ? [f.evidence.from, f.evidence.chain] : [f.subject.name];
    const id = chains.flatMap((c) => owners.map((o) => o(c))).find((x) => x !== undefined);
    if (id === undefined) continue;
    f.subject = { ...f.subject, service: id };
    f.evidence = { ...f.evidence, service: id };
  }
  services.sort((x, y) => x.id.localeCompare(y.id));
  return { modes, services, findings };
}
