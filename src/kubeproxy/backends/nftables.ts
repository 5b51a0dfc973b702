/**
 * nftables mode (kube-proxy's own `kube-proxy` table): the service-ips and
 * service-nodeports maps lead to service chains whose `numgen random mod N vmap
 * { k : goto endpoint-... }` gives each key 1/N; affinity sets carry their
 * timeout in their declaration.
 */
import type { Finding } from '../../findings.js';
import { serviceOf } from '../../findings.js';
import type { NftKubeProxy } from '../dump.js';
import { EPS, addEntry, identityFromComment, ownedBy } from '../model.js';
import type { EndpointShare, Identity, ServiceReport } from '../model.js';
import { MISSING_CHAIN, NO_ENDPOINTS, NO_LOCAL_ENDPOINTS } from '../../remedies.js';
import { finding } from '../../findings.js';
import { percent } from '../../stats/index.js';
import { detach } from '../texts.js';

export function nftAnalyse(kp: NftKubeProxy, findings: Finding[]): ServiceReport[] {
  const chainExists = (c: string): boolean => kp.chains.has(c);
  const endpointAddress = (chain: string): string | undefined => {
    for (const r of kp.chains.get(chain) ?? []) {
      const m = /dnat (?:ip6? )?to (\S+)/.exec(r);
      if (m?.[1] !== undefined) return detach(m[1]);
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
          // A copy: a slice of the rule line would keep the line alive in the report.
          const target = detach(m[3]);
          if (!chainExists(target)) {
            const service = nftServiceOfChain(chain) ?? null;
            findings.push(finding({ code: 'MISSING_CHAIN', severity: 'critical', subject: { kind: 'chain', name: target, service }, message: `${chain} sends ${percent(frac)} to ${target}, which does not exist`, evidence: { chain: target, from: chain, ...ownedBy(service) }, remedy: MISSING_CHAIN }));
            continue;
          }
          const addr = endpointAddress(target);
          if (addr !== undefined) endpoints.push({ address: addr, share: remaining * frac, probability: null, chain: target });
        }
        if (covered < 1 - EPS) {
          const service = nftServiceOfChain(chain) ?? null;
          findings.push(finding({
            code: 'FALLTHROUGH',
            severity: 'warning', subject: { kind: 'chain', name: chain, service },
            message: `${chain}: numgen mod ${mod} maps only ${percent(covered)} of its values: the rest match no endpoint`,
            evidence: { chain, mod, covered: Number(covered.toFixed(6)), ...ownedBy(service) },
            remedy: 'restart kube-proxy',
          }));
        }
        remaining *= 1 - Math.min(1, covered);
        break;
      }
      const go = /^(?:(.*) )?goto (\S+)$/.exec(r);
      if (go?.[2] !== undefined && depth < 4) {
        const conditional = go[1] !== undefined && /saddr|daddr|fib|dport|mark/.test(go[1]);
        if (conditional) continue;
        const target = detach(go[2]);
        if (!chainExists(target)) {
          const service = nftServiceOfChain(chain) ?? null;
          findings.push(finding({ code: 'MISSING_CHAIN', severity: 'critical', subject: { kind: 'chain', name: target, service }, message: `${chain} goes to ${target}, which does not exist`, evidence: { chain: target, from: chain, ...ownedBy(service) }, remedy: MISSING_CHAIN }));
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
    // Cut to its length: grown by push, a list keeps room for 16 (a node's 100,000s of reports keep it).
    return { endpoints: endpoints.slice(), fallthrough: remaining, affinity };
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
      const { id, namespace, name, portName } = idn.ident;
      rep = { id, namespace, name, portName, protocol: idn.protocol, mode: 'nftables', clusterIP: null, port: null, entries: [], endpoints: [], externalEndpoints: null, cluster: null, external: null, sessionAffinitySeconds: null };
      reports.set(idn.key, rep);
    }
    return rep;
  };
  // Elements one at a time; each chain name a copy, so a report never keeps its element's text alive.
  for (const el of kp.maps.lines('service-ips')) {
    const m = /^(\S+) \. (\S+) \. (\d+)(?: comment "[^"]*")? : (?:goto|jump) (\S+)$/.exec(el);
    if (!m || m[4] === undefined) continue;
    const chain = detach(m[4]);
    const rep = report(chain);
    if (!rep) continue;
    const isCluster = chain.startsWith('service-') || chain.startsWith('local-');
    addEntry(rep.entries, { kind: isCluster ? 'clusterIP' : 'externalIP', address: m[1] ?? null, port: Number(m[3]) });
    if (isCluster) {
      rep.clusterIP = m[1] ?? null;
      rep.port = Number(m[3]);
      const res = evalChain(chain);
      rep.cluster = { chain, policy: chain.startsWith('local-') ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
      if (res.affinity !== null) rep.sessionAffinitySeconds = res.affinity;
    } else if (!rep.external) {
      const res = evalChain(chain);
      const local = (kp.chains.get(chain) ?? []).some((r) => /^goto local-/.test(r) || /saddr .* goto service-/.test(r));
      rep.external = { chain, policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
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
  for (const el of kp.maps.lines('service-nodeports')) {
    const m = /^(\S+) \. (\d+)(?: comment "[^"]*")? : (?:goto|jump) (\S+)$/.exec(el);
    if (!m || m[3] === undefined) continue;
    const chain = detach(m[3]);
    const rep = report(chain);
    if (!rep) continue;
    addEntry(rep.entries, { kind: 'nodePort', address: null, port: Number(m[2]) });
    if (!rep.external) {
      const res = evalChain(chain);
      const local = (kp.chains.get(chain) ?? []).some((r) => /^goto local-/.test(r) || /saddr .* goto service-/.test(r));
      rep.external = { chain, policy: local ? 'Local' : 'Cluster', endpoints: res.endpoints, fallthrough: res.fallthrough, dropped: 0 };
    }
  }
  for (const rep of reports.values()) {
    rep.entries = rep.entries.slice();
    rep.endpoints = rep.cluster?.endpoints ?? [];
    const ext = rep.external?.endpoints;
    if (ext && (ext.length !== rep.endpoints.length || ext.some((e, i) => e.address !== rep.endpoints[i]?.address))) rep.externalEndpoints = ext;
  }
  // One finding per Service and code, whatever the elements (an IP and a node port of one Service each have one).
  const said = new Set<string>();
  for (const f of findings) if (f.code === 'NO_ENDPOINTS' || f.code === 'NO_LOCAL_ENDPOINTS') said.add(`${f.code}|${serviceOf(f) ?? ''}`);
  for (const mapName of ['no-endpoint-services', 'no-endpoint-nodeports']) {
    for (const el of kp.maps.lines(mapName)) {
      const m = /comment "([^"]*)" : (\S+(?: \S+)?)$/.exec(el);
      const ident = identityFromComment(m?.[1]);
      if (!ident) continue;
      const verdict = m?.[2] ?? '';
      const local = verdict === 'drop';
      const key = `${local ? 'NO_LOCAL_ENDPOINTS' : 'NO_ENDPOINTS'}|${ident.id}`;
      if (said.has(key)) continue;
      said.add(key);
      findings.push(
        local
          ? finding({
              code: 'NO_LOCAL_ENDPOINTS',
              severity: 'warning',
              message: `${ident.id} has externalTrafficPolicy: Local and no endpoint on this node: external traffic arriving here is dropped`,
              subject: { kind: 'service', id: ident.id },
              evidence: { service: ident.id, map: mapName, element: el },
              remedy: NO_LOCAL_ENDPOINTS,
            })
          : finding({
              code: 'NO_ENDPOINTS',
              severity: 'warning',
              message: `${ident.id} has no endpoints: connections to it are rejected`,
              subject: { kind: 'service', id: ident.id },
              evidence: { service: ident.id, map: mapName, element: el },
              remedy: NO_ENDPOINTS,
            }),
      );
    }
  }
  return [...reports.values()];
}


/** kube-proxy's nftables chain names carry the Service: service-HASH-ns/name/proto/port, endpoint-HASH-ns/name/port__ip/port. */
export function nftServiceOfChain(chain: string): string | undefined {
  const svc = /^(?:service|external)-[A-Z0-9]+-([^/]+)\/([^/]+)\/[a-z]+\/(\S*)$/.exec(chain);
  if (svc) return `${svc[1]}/${svc[2]}:${svc[3]}`;
  const ep = /^endpoint-[A-Z0-9]+-([^/]+)\/([^/]+)\/[a-z]*\/?([^_]*)__/.exec(chain);
  if (ep) return `${ep[1]}/${ep[2]}:${ep[3]}`;
  return undefined;
}

