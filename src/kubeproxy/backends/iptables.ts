/**
 * iptables mode (iptables-save, legacy or nft backend): a KUBE-SVC (or
 * KUBE-SVL, KUBE-XLB) chain is a cascade of `-m statistic --mode random
 * --probability p` jumps to KUBE-SEP chains that DNAT to the endpoints;
 * endpoint i gets p_i * prod(1 - p_j) over the rules before it, and whatever
 * is left after the last rule falls through.
 */
import type { Finding } from '../../findings.js';
import type { RuleSet } from '../dump.js';
import { Names, RuleTable } from '../rule-table.js';
import { EPS, addEntry, entryKind, hashOf, identityFromComment, ownedBy } from '../model.js';
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

function sameShares(x: EndpointShare[] | undefined, y: EndpointShare[] | undefined): boolean {
  return x !== undefined && y !== undefined && x.length === y.length && x.every((e, i) => e.address === y[i]?.address && Math.abs(e.share - (y[i]?.share ?? 0)) < 1e-9);
}

export class IptablesAnalyser {
  /** nat and filter rules; a rule is an index into its table. */
  readonly nat: RuleTable;
  readonly filter: RuleTable;
  readonly findings: Finding[] = [];
  private readonly referenced = new Set<string>();
  private readonly reportedUnreachable = new Set<string>();
  private readonly reportedMissing = new Set<string>();
  private readonly reportedEmpty = new Set<string>();
  private readonly reportedFallthrough = new Set<string>();

  /** The Service a chain belongs to, by the `ns/name:port` comment on its rules. */
  serviceOfChain(chain: string): string | undefined {
    const nat = this.nat;
    for (const r of nat.rules(chain)) {
      const id = identityFromComment(nat.comment(r))?.id;
      if (id !== undefined) return id;
    }
    return undefined;
  }

  constructor(rs: RuleSet) {
    const empty = (name: string): RuleTable => {
      const t = new RuleTable(name, new Names());
      t.seal();
      return t;
    };
    this.nat = rs.tables.get('nat') ?? empty('nat');
    this.filter = rs.tables.get('filter') ?? empty('filter');
    // Only endpoint chains can be orphans: the targets that matter are KUBE-SEP-*.
    const nat = this.nat;
    for (let r = 0; r < nat.count; r++) {
      const t = nat.target(r);
      if (t !== undefined && t.startsWith('KUBE-SEP-')) this.referenced.add(t);
    }
  }

  private exists(chain: string): boolean {
    return this.nat.has(chain);
  }

  private missing(chain: string, from: number): void {
    if (this.reportedMissing.has(chain)) return;
    this.reportedMissing.add(chain);
    // The missing chain has no rules to name its Service: the chain that jumps to it does.
    const nat = this.nat;
    const fromChain = nat.chain(from);
    const service = this.serviceOfChain(fromChain) ?? null;
    this.findings.push(finding({
      code: 'MISSING_CHAIN',
      severity: 'critical', subject: { kind: 'chain', name: chain, service },
      message: `${fromChain} jumps to ${chain}, which does not exist: connections taking that rule are not load-balanced (iptables-restore would have refused this rule set)`,
      evidence: { chain, from: fromChain, line: nat.line(from), comment: nat.comment(from) ?? null, ...ownedBy(service) },
      remedy: MISSING_CHAIN,
    }));
  }

  /**
   * The DNAT destination of a KUBE-SEP chain; 'returns' for a chain that exists and DNATs nothing (empty, or no DNAT
   * rule): iptables returns from it to the next rule, which takes the traffic; undefined for a missing chain.
   */
  private sepDestination(sep: string, from: number): string | 'returns' | undefined {
    const nat = this.nat;
    if (!nat.has(sep)) {
      this.missing(sep, from);
      return undefined;
    }
    const rules = nat.rules(sep);
    for (const r of rules) {
      const dnat = nat.dnat(r);
      if (dnat !== undefined) return dnat;
    }
    if (!this.reportedEmpty.has(sep)) {
      this.reportedEmpty.add(sep);
      const fromChain = nat.chain(from);
      const service = this.serviceOfChain(fromChain) ?? null;
      this.findings.push(finding({
        code: 'EMPTY_ENDPOINT_CHAIN',
        severity: 'warning', subject: { kind: 'chain', name: sep, service },
        message: `${fromChain} jumps to ${sep}, which DNATs nothing${rules.length === 0 ? ' (declared, no rules)' : ''}: the jump returns, and the rules after it take the connections it would have had`,
        evidence: { chain: sep, from: fromChain, line: nat.line(from), ...ownedBy(service) },
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
    const nat = this.nat;
    const rules = nat.rules(chain);
    let lastSep = -1;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      const t = nat.target(r) ?? '';
      if (remaining <= EPS) {
        const after = rules.length - i;
        if (!this.reportedUnreachable.has(chain)) {
          this.reportedUnreachable.add(chain);
          const service = this.serviceOfChain(chain) ?? null;
          this.findings.push(finding({
            code: 'UNREACHABLE_RULE',
            severity: 'warning', subject: { kind: 'chain', name: chain, service },
            message: `${after} rule${after === 1 ? '' : 's'} in ${chain} after an unconditional jump can never match`,
            evidence: { chain, firstUnreachableLine: nat.line(r), rules: after, ...ownedBy(service) },
            remedy: 'the endpoints behind them get no traffic from this node; restart kube-proxy to rewrite the chain',
          }));
        }
        break;
      }
      const recent = nat.recent(r);
      if (recent?.mode === 'rcheck') {
        affinity = recent.seconds ?? affinity ?? 0;
        continue; // only returning clients match: not a share of new connections
      }
      if (t === 'KUBE-MARK-MASQ' || t === 'MARK' || t === '') continue;
      const probability = nat.probability(r);
      const p = probability ?? 1;
      const conditional = nat.conditional(r);
      if (/^KUBE-SEP-/.test(t)) {
        if (conditional) continue;
        lastSep = r;
        const dest = this.sepDestination(t, r);
        // A chain that DNATs nothing returns: its share goes on to the next rules, as if the rule were not there.
        if (dest === 'returns') continue;
        const share = remaining * p;
        if (dest !== undefined) endpoints.push({ address: dest, share, probability: probability ?? null, chain: t });
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
    const lastP = lastSep < 0 ? undefined : nat.probability(lastSep);
    if (lastP !== undefined && remaining > EPS && /^KUBE-(SVC|SVL|XLB)-/.test(chain) && !this.reportedFallthrough.has(chain)) {
      this.reportedFallthrough.add(chain);
      const service = this.serviceOfChain(chain) ?? null;
      const text = nat.probabilityText(lastSep);
      this.findings.push(finding({
        code: 'FALLTHROUGH',
        severity: 'warning', subject: { kind: 'chain', name: chain, service },
        message: `the last rule of ${chain} still has a probability (${text ?? lastP}): ${percent(remaining, 2)} of new connections match no endpoint and leave the chain un-DNATed`,
        evidence: { chain, line: nat.line(lastSep), fallthrough: Number(remaining.toFixed(6)), lastProbability: text ?? null, ...ownedBy(service) },
        remedy: 'kube-proxy writes the last endpoint rule without a probability; this chain was edited or truncated: restart kube-proxy',
      }));
    }
    // Cut to its length: grown by push, a list keeps room for 16 (a node's 100,000s of reports keep it).
    return { endpoints: endpoints.slice(), fallthrough: remaining, dropped, affinity };
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
    const nat = this.nat;
    for (const r of nat.rules('KUBE-SERVICES')) {
      const t = nat.target(r) ?? '';
      if (!/^KUBE-(SVC|SVL|EXT|FW|XLB)-/.test(t)) continue;
      const a = acc(hashOf(t));
      const comment = nat.comment(r);
      a.ident ??= identityFromComment(comment);
      a.protocol ??= nat.proto(r) ?? null;
      const kind = entryKind(comment, t);
      const dest = nat.dest(r) ?? null;
      const port = nat.dport(r) ?? null;
      addEntry(a.entries, { kind, address: dest, port });
      if (kind === 'clusterIP') {
        a.clusterChain = t;
        a.clusterIP = dest;
        a.port = port;
      } else a.externalChain ??= t;
    }
    for (const r of nat.rules('KUBE-NODEPORTS')) {
      const t = nat.target(r) ?? '';
      if (!/^KUBE-(SVC|SVL|EXT|FW|XLB)-/.test(t) || nat.dest(r) === '127.0.0.0/8') continue;
      const a = acc(hashOf(t));
      a.ident ??= identityFromComment(nat.comment(r));
      a.protocol ??= nat.proto(r) ?? null;
      addEntry(a.entries, { kind: 'nodePort', address: null, port: nat.dport(r) ?? null });
      a.externalChain ??= t;
    }
    // Chains that exist without a KUBE-SERVICES entry: identity from their own comments.
    for (const chain of nat.chains()) {
      if (!/^KUBE-SVC-/.test(chain)) continue;
      const a = accs.get(hashOf(chain));
      if (!a) continue;
      if (a.ident === undefined) for (const r of nat.rules(chain)) a.ident ??= identityFromComment(nat.comment(r));
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
        // Only a Local policy writes the short-circuit rules (pod and node-local traffic to KUBE-SVC)
        // or jumps to KUBE-SVL; KUBE-XLB is the pre-1.24 Local chain.
        const local =
          extChain.startsWith('KUBE-XLB-') ||
          nat.rules(extChain).some((r) => (nat.target(r) ?? '').startsWith('KUBE-SVL-') || ((nat.target(r) ?? '').startsWith('KUBE-SVC-') && nat.conditional(r)));
        external = { chain: extChain, policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: res.dropped };
      }
      const ident = a.ident ?? { id: a.hash, namespace: null, name: null, portName: null };
      reports.push({
        id: ident.id,
        namespace: ident.namespace,
        name: ident.name,
        portName: ident.portName,
        protocol: a.protocol,
        mode: 'iptables',
        clusterIP: a.clusterIP,
        port: a.port,
        entries: a.entries.slice(),
        endpoints: cluster?.endpoints ?? [],
        externalEndpoints: external && !sameShares(external.endpoints, cluster?.endpoints) ? external.endpoints : null,
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
    const nat = this.nat;
    for (const chain of nat.declared()) {
      if (!chain.startsWith('KUBE-SEP-') || this.referenced.has(chain)) continue;
      const rules = nat.rules(chain);
      const withComment = rules.find((r) => nat.comment(r) !== undefined);
      const withDnat = rules.find((r) => nat.dnat(r) !== undefined);
      const ident = identityFromComment(withComment === undefined ? undefined : nat.comment(withComment));
      this.findings.push(finding({
        code: 'ORPHAN_CHAIN',
        severity: 'warning', subject: { kind: 'chain', name: chain, service: ident?.id ?? null },
        message: `${chain}${ident ? ` (${ident.id})` : ''} exists but nothing jumps to it: a stale endpoint chain`,
        evidence: { chain, dnat: withDnat === undefined ? null : (nat.dnat(withDnat) ?? null), ...ownedBy(ident?.id ?? null) },
        remedy: 'harmless for traffic, but kube-proxy normally deletes these: a failed or partial sync; check kube-proxy logs',
      }));
    }
  }

  /** filter-table REJECT/DROP rules kube-proxy writes for services without (local) endpoints. */
  private filterFindings(reports: ServiceReport[]): void {
    const seen = new Set<string>();
    const reported = new Set(reports.map((s) => s.id));
    const filter = this.filter;
    for (const chain of filter.chains()) {
      for (const r of filter.rules(chain)) {
        const c = filter.comment(r) ?? '';
        const ident = identityFromComment(c);
        if (!ident) continue;
        const key = `${ident.id}|${c.endsWith('has no local endpoints') ? 'local' : 'none'}`;
        const dest = filter.dest(r) ?? null;
        const port = filter.dport(r) ?? null;
        if (c.endsWith('has no endpoints') && !seen.has(key)) {
          seen.add(key);
          this.findings.push(finding({
            code: 'NO_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has no endpoints: connections to it are rejected`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, rule: filter.target(r) ?? null, destination: dest, port },
            remedy: NO_ENDPOINTS,
          }));
          if (!reported.has(ident.id)) {
            reported.add(ident.id);
            reports.push({ ...ident, protocol: filter.proto(r) ?? null, mode: 'iptables', clusterIP: dest, port, entries: [{ kind: 'clusterIP', address: dest, port }], endpoints: [], externalEndpoints: null, cluster: null, external: null, sessionAffinitySeconds: null });
          }
        } else if (c.endsWith('has no local endpoints') && !seen.has(key)) {
          seen.add(key);
          this.findings.push(finding({
            code: 'NO_LOCAL_ENDPOINTS',
            severity: 'warning',
            message: `${ident.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here is dropped`,
            subject: { kind: 'service', id: ident.id },
            evidence: { service: ident.id, chain, destination: dest, port },
            remedy: NO_LOCAL_ENDPOINTS,
          }));
        }
      }
    }
  }
}

