/**
 * Every remedy sentence that more than one finding or command gives, written once: the same cause gets the same
 * advice from dnsbench, conntrack, doctor and each kube-proxy backend.
 */

/** Lookups that lose their second query from one socket (the conntrack race's signature), for each libc. */
export const RACE_LIBC = {
  glibc: "options single-request-reopen in the pod's dnsConfig",
  musl: 'musl always sends A and AAAA at once (no single-request options): TCP, or a cache in the pod or on the node',
  unknown: "glibc: options single-request-reopen in the pod's dnsConfig; musl (no such option): TCP, or a cache in the pod or on the node",
} as const;

/** What takes DNS out of the race whatever the libc. */
export const RACE_ELSEWHERE = 'NodeLocalDNS (pods reach DNS on 169.254.20.10 without DNAT or conntrack); a kernel with the clash fixes (4.19, 5.0, 5.6: most of these races resolved)';

/** The race, when the libc is not the question (a counter, a benchmark). */
export const RACE = `${RACE_LIBC.unknown}; ${RACE_ELSEWHERE}`;

/** A send refused with EPERM. */
export const EPERM =
  'EPERM: a rule on this machine (iptables or nftables OUTPUT, a network policy agent) or conntrack dropped the packet as it left; on a node, insert_failed rising meanwhile is the conntrack race on its own traffic';

/** A send refused with ECONNREFUSED. */
export const ECONNREFUSED = 'ECONNREFUSED: nothing listens on that address and port (ICMP port unreachable)';

/** The advice for errors by their codes, in one line. */
export function errorRemedy(codes: Readonly<Record<string, number>>): string {
  const parts = [...(codes['ECONNREFUSED'] ? [ECONNREFUSED] : []), ...(codes['EPERM'] ? [EPERM] : [])];
  return parts.length > 0 ? parts.join('; ') : 'see the error codes';
}

/** A Service with no endpoints (every kube-proxy backend). */
export const NO_ENDPOINTS = 'check the Service selector and that its pods are Ready (kubectl get endpointslices -l kubernetes.io/service-name=NAME)';

/** externalTrafficPolicy: Local with no endpoint on this node (every kube-proxy backend). */
export const NO_LOCAL_ENDPOINTS =
  'the load balancer must send only to nodes that pass the healthCheckNodePort probe (the ingress-nginx case); or run an endpoint on every node (DaemonSet), or use externalTrafficPolicy: Cluster';

/** A jump to a chain that does not exist (every kube-proxy backend). */
export const MISSING_CHAIN = 'restart kube-proxy so it rewrites its rules; check its logs for iptables-restore or nft failures';

/** The conntrack table filling (drops, table full, pressure). */
export const TABLE_FULL = 'raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets), shorten net.netfilter.nf_conntrack_udp_timeout (UDP DNS entries live 30 s each), or take DNS out of conntrack with NodeLocalDNS';

/** A capture that missed packets (watch). */
export const CAPTURE_LOSS =
  'capture less (a narrower --interface, fewer ports) or on a less busy moment; tcpdump loses packets when its buffer fills';

/** Real queries unanswered (watch): where to look next. */
export const UNANSWERED_WATCHED =
  'k8sdiag doctor on this node names the hop that loses them; check `k8sdiag conntrack` for insert_failed and drops meanwhile';

/** Truncated answers not retried over TCP (watch). */
export const TRUNCATED_NOT_RETRIED =
  'a musl image (Alpine) before musl 1.2.4 never retries over TCP: update it, or keep answers under 512 bytes; otherwise check that TCP port 53 reaches the server';

/** DNS over TCP failing (doctor, watch). */
export const TCP_BLOCKED = 'allow TCP port 53 to the DNS pods wherever UDP 53 is allowed: NetworkPolicies (egress to kube-dns), security groups, host firewalls';

/** A server answering with failures (doctor, watch): REFUSED, or SERVFAIL. */
export const SERVER_REFUSED = 'REFUSED: the server will not serve this client or zone (its ACL, a policy plugin, a view)';
export const SERVER_SERVFAIL =
  "SERVFAIL: the server could not get an answer from upstream (CoreDNS: its forward plugin's upstreams, their reachability and latency; DNSSEC validation failures)";

/** The search list multiplying queries (watch). */
export const SEARCH_LIST_WASTE =
  'end external names with a dot (example.com.) in the pod\'s configuration, or lower ndots in the pod\'s dnsConfig (options: [{name: ndots, value: "1"}]); NodeLocalDNS makes the NXDOMAINs cheap';

/** One DNS endpoint losing queries (doctor's probes, watch's real traffic). */
export const endpointLoss = (endpoint: string): string => `look at the DNS pod behind ${endpoint}: its logs, CPU throttling, its node; delete it to have it rescheduled`;

export const NO_DNS_SEEN =
  "capture where the pods' DNS passes: on the node (not in a pod), --interface any, and --dns-port for DNS on other ports; or run longer";
