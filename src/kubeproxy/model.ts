/**
 * The model every kube-proxy backend fills: per Service port, its entries
 * (cluster IP, external IPs, node ports), its endpoints with their share of
 * new connections on the cluster and the external path; plus the helpers the
 * backends share. Pure: no I/O.
 */
import type { Finding } from '../findings.js';

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
  /**
   * What the endpoints' shares mean: the rules' probabilities (iptables, nftables); under IPVS, what the scheduler
   * does with the weights. `known: false` where the split depends on load (least-connection schedulers): the share
   * shown is then weight / sum of weights, not a prediction.
   */
  shares?: { known: boolean; basis: string };
}

export interface ServiceEntry {
  kind: 'clusterIP' | 'externalIP' | 'loadBalancerIP' | 'nodePort' | 'virtualServer';
  address: string | null;
  port: number | null;
}

const seenOf = new WeakMap<ServiceEntry[], Set<string>>();
/** Add an entry once: a rule repeated in a dump names the same entry again, and would grow the list without end. */
export function addEntry(list: ServiceEntry[], e: ServiceEntry): void {
  let seen = seenOf.get(list);
  if (seen === undefined) {
    seen = new Set();
    seenOf.set(list, seen);
  }
  const key = `${e.kind} ${e.address ?? ''} ${e.port ?? ''}`;
  if (seen.has(key)) return;
  seen.add(key);
  list.push(e);
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

/** A finding's evidence names the Service it concerns where the rules tell (the `--service` filter reads the subject). */
export function ownedBy(service: string | null): { service?: string } {
  return service === null ? {} : { service };
}

export const EPS = 1e-9;
export const UNEVEN_RELATIVE = 0.001;

export interface Identity {
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

export function entryKind(comment: string | undefined, target: string): ServiceEntry['kind'] {
  if (comment?.endsWith('loadbalancer IP')) return 'loadBalancerIP';
  if (comment?.endsWith('external IP')) return 'externalIP';
  if (comment?.endsWith('cluster IP')) return 'clusterIP';
  return /^KUBE-(SVC|SVL)-/.test(target) ? 'clusterIP' : 'externalIP';
}

export const hashOf = (chain: string): string => chain.replace(/^KUBE-(SVC|SVL|EXT|FW|XLB|SEP)-/, '');

