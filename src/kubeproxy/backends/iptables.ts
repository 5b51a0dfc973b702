/**
 * iptables mode (iptables-save, legacy or nft backend): a KUBE-SVC (or
 * KUBE-SVL, KUBE-XLB) chain is a cascade of `-m statistic --mode random
 * --probability p` jumps to KUBE-SEP chains that DNAT to the endpoints;
 * endpoint i gets p_i * prod(1 - p_j) over the rules before it, and whatever
 * is left after the last rule falls through.
 */
import type { Finding } from '../../findings.js';
import type { Rule, RuleSet } from '../dump.js';
import { EPS, entryKind, hashOf, identityFromComment, ownedBy } from '../model.js';
import type { EndpointShare, Identity, PathReport, ServiceEntry, ServiceReport } from '../model.js';
import { MISSING_CHAIN, NO_ENDPOINTS, NO_LOCAL_ENDPOINTS } from '../../remedies.js';
import { finding } from '../../findings.js';
import { percent } from '../../stats/index.js';

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

export class IptablesAnalyser {
  readonly nat: Map<string, Rule[]>;
  readonly filter: Map<string, Rule[]>;
  readonly declared: Set<string>;
  readonly findings: Finding[] = [];
  private readonly referenced = new Set<string>();
  private readonly reportedUnreachable = new Set<string>();
  private readonly reportedMissing = new Set<string>();
  private readonly reportedEmpty = new Set<string>();
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
    this.declared = new Set(rs.declared.get('nat'));
    for (const chain of this.nat.keys()) this.declared.add(chain);
    // Only endpoint chains can be orphans: the targets that matter are KUBE-SEP-*.
    for (const rules of this.nat.values()) for (const r of rules) if (r.target !== undefined && r.target.startsWith('KUBE-SEP-')) this.referenced.add(r.target);
  }

  private exists(chain: string): boolean {
    return this.declared.has(chain);
  }

  private missing(chain: string, from: Rule): void {
    if (this.reportedMissing.has(chain)) return;
    this.reportedMissing.add(chain);
    // The missing chain has no rules to name its Service: the chain that jumps to it does.
    const service = this.serviceOfChain(from.chain) ?? null;
    this.findings.push(finding({
      code: 'MISSING_CHAIN',
      severity: 'critical', subject: { kind: 'chain', name: chain, service },
      message: `${from.chain} jumps to ${chain}, which does not exist: connections taking that rule are not load-balanced (iptables-restore would have refused this rule set)`,
      evidence: { chain, from: from.chain, line: from.line, comment: from.comment ?? null, ...ownedBy(service) },
      remedy: MISSING_CHAIN,
    }));
  }

  /**
   * The DNAT destination of a KUBE-SEP chain; 'returns' for a chain that exists and DNATs nothing (empty, or no DNAT
   * rule): iptables returns from it to the next rule, which takes the traffic; undefined for a missing chain.
   */
  private sepDestination(sep: string, from: Rule): string | 'returns' | undefined {
    const rules = this.nat.get(sep);
    if (rules === undefined && !this.exists(sep)) {
      this.missing(sep, from);
      return undefined;
    }
    for (const r of rules ?? []) if (r.dnat !== undefined) return r.dnat;
    if (!this.reportedEmpty.has(sep)) {
      this.reportedEmpty.add(sep);
      const service = this.serviceOfChain(from.chain) ?? null;
      this.findings.push(finding({
        code: 'EMPTY_ENDPOINT_CHAIN',
        severity: 'warning', subject: { kind: 'chain', name: sep, service },
        message: `${from.chain} jumps to ${sep}, which DNATs nothing${(rules ?? []).length === 0 ? ' (declared, no rules)' : ''}: the jump returns, and the rules after it take the connections it would have had`,
        evidence: { chain: sep, from: from.chain, line: from.line, ...ownedBy(service) },
        remedy: 'the endpoint behind it gets no traffic and the others more: restart kube-proxy so it rewrites its chains',
      }));
    }
    return 'returns';
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
          const service = this.serviceOfChain(chain) ?? null;
          this.findings.push(finding({
            code: 'UNREACHABLE_RULE',
            severity: 'warning', subject: { kind: 'chain', name: chain, service },
            message: `${after} rule${after === 1 ? '' : 's'} in ${chain} after an unconditional jump can never match`,
            evidence: { chain, firstUnreachableLine: r.line, rules: after, ...ownedBy(service) },
            remedy: 'the endpoints behind them get no traffic from this node; restart kube-proxy to rewrite the chain',
          }));
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
        // A chain that DNATs nothing returns: its share goes on to the next rules, as if the rule were not there.
        if (dest === 'returns') continue;
        const share = remaining * p;
        if (dest !== undefined) endpoints.push({ address: dest, share, probability: r.probability ?? null, chain: t });
        else dropped += share; // a jump into a missing chain: DNAT never happens
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
      const service = this.serviceOfChain(chain) ?? null;
      this.findings.push(finding({
        code: 'FALLTHROUGH',
        severity: 'warning', subject: { kind: 'chain', name: chain, service },
        message: `the last rule of ${chain} still has a probability (${lastSep.probabilityText ?? lastSep.probability}): ${percent(remaining, 2)} of new connections match no endpoint and leave the chain un-DNATed`,
        evidence: { chain, line: lastSep.line, fallthrough: Number(remaining.toFixed(6)), lastProbability: lastSep.probabilityText ?? null, ...ownedBy(service) },
        remedy: 'kube-proxy writes the last endpoint rule without a probability; this chain was edited or truncated: restart kube-proxy',
      }));
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
      this.findings.push(finding({
        code: 'NO_LOCAL_ENDPOINTS',
        severity: 'warning',
        message: `${s.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here matches no endpoint and is dropped`,
        subject: { kind: 'service', id: s.id },
        evidence: { service: s.id, chain: s.external.chain },
        remedy: NO_LOCAL_ENDPOINTS,
      }));
    }
    return reports;
  }

  private orphans(): void {
    for (const chain of this.declared) {
      if (!chain.startsWith('KUBE-SEP-') || this.referenced.has(chain)) continue;
      const ident = identityFromComment((this.nat.get(chain) ?? []).find((r) => r.comment)?.comment);
      this.findings.push(finding({
        code: 'ORPHAN_CHAIN',
        severity: 'warning', subject: { kind: 'chain', name: chain, service: ident?.id ?? null },
        message: `${chain}${ident ? ` (${ident.id})` : ''} exists but nothing jumps to it: a stale endpoint chain`,
        evidence: { chain, dnat: (this.nat.get(chain) ?? []).find((r) => r.dnat)?.dnat ?? null, ...ownedBy(ident?.id ?? null) },
        remedy: 'harmless for traffic, but kube-proxy normally deletes these: a failed or partial sync; check kube-proxy logs',
      }));
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
          this.findings.push(finding({
            code: 'NO_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has no endpoints: connections to it are rejected`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, rule: r.target ?? null, destination: r.dest ?? null, port: r.dport ?? null },
            remedy: NO_ENDPOINTS,
          }));
          if (!reports.some((s) => s.id === ident.id)) {
            reports.push({ ...ident, protocol: r.proto ?? null, mode: 'iptables', clusterIP: r.dest ?? null, port: r.dport ?? null, entries: [{ kind: 'clusterIP', address: r.dest ?? null, port: r.dport ?? null }], endpoints: [], externalEndpoints: null, cluster: null, external: null, sessionAffinitySeconds: null });
          }
        } else if (c.endsWith('has no local endpoints') && !seen.has(key)) {
          seen.add(key);
          this.findings.push(finding({
            code: 'NO_LOCAL_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here is dropped`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, destination: r.dest ?? null, port: r.dport ?? null },
            remedy: NO_LOCAL_ENDPOINTS,
          }));
        }
      }
    }
  }
}

