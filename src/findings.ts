/**
 * The one catalogue of findings. Every code any command can report is here,
 * with the command that reports it, the severities it may take and the rule
 * that picks one, what it is about (its subject) and the shape of its
 * evidence. Renderers, the `--service` filter, the docs' lists (checked by a
 * test) and `doctor` read this module instead of free strings.
 */

export type Severity = 'info' | 'warning' | 'critical';

/** What a finding is about. */
export type Subject =
  /** A DNS server a benchmark or lookup went to (host:port). */
  | { kind: 'nameserver'; address: string }
  /** This machine itself (its receive buffers, its socket errors). */
  | { kind: 'machine' }
  /** A resolv.conf (where it came from). */
  | { kind: 'resolv-conf'; file: string }
  /** A host name as a resolver expands it. */
  | { kind: 'name'; name: string }
  /** A conntrack counter (insert_failed, drop, ...). */
  | { kind: 'counter'; name: string }
  /** The conntrack table (its size, its "table full" log lines). */
  | { kind: 'conntrack-table' }
  /** A Service port, `namespace/name:port` as kube-proxy names it. */
  | { kind: 'service'; id: string }
  /** A kube-proxy chain, with the Service it belongs to where the rules tell. */
  | { kind: 'chain'; name: string; service: string | null }
  /** One endpoint of a Service (host:port), probed directly or seen as where queries were DNATed to. */
  | { kind: 'endpoint'; address: string; service: string | null }
  /** A client seen sending queries (watch): its address, and its pod (namespace/name) where --pods names it. */
  | { kind: 'client'; address: string; pod: string | null };

export type Command = 'dnsbench' | 'resolv' | 'conntrack' | 'svc' | 'doctor' | 'watch' | 'drops';

type Num = number;
type OptNum = number | null;

/** The evidence each code carries: the numbers or lines it rests on. */
export interface EvidenceByCode {
  // dnsbench
  TIMEOUTS: { timeouts: Num; sent: Num; timeoutMs: Num; late: Num; localDrops: Num; sourcePorts: Num };
  LOCAL_DROPS: { ownSocketDrops: OptNum; namespaceRcvbufErrors: OptNum; namespaceInErrors: OptNum; recvBufferBytes: OptNum; concurrency: OptNum; sourcePorts: OptNum };
  SLOW: { slow: Num; slowMs: Num; maxMs: Num };
  LOOKUP_STALLS: { overTimeout: Num; over1s: Num; over5s: Num; lookups: Num; resolverTimeoutS: Num; singleRequestSwitches: Num; localDrops: Num };
  ERRORS: Record<string, number>;
  BOGUS_REPLIES: { wrongId: Num; wrongQuestion: Num; malformed: Num };
  NO_ANSWERS: { answered: Num; NXDOMAIN: Num; SERVFAIL: Num; lookups: OptNum };
  SERVFAIL: { SERVFAIL: Num };
  TRUNCATED: { truncated: Num; tcpRetries: Num };
  SOCKET_ERRORS: Record<string, number>;
  // resolv
  NDOTS_AMPLIFICATION:
    | { name: string; dots: Num; ndots: Num; searchDomains: Num; names: Num; queries: Num; expectedNxdomain: Num; queriesToAnswer: Num; answersAt: string | null }
    | { ndots: Num; searchDomains: Num; queriesPerExternalLookup: Num };
  SEARCH_LIMIT: { paths: Num; chars: Num; limitPaths: Num; limitChars: Num };
  TOO_MANY_NAMESERVERS: { used: string; ignored: string };
  NODELOCALDNS: { nameserver: string };
  NO_NODELOCALDNS: { nameservers: string };
  MUSL_IGNORES_OPTION: { options: string };
  SINGLE_REQUEST: { option: string };
  LOOKUPS_DISABLED: { option: string; libc: string };
  // conntrack
  INSERT_FAILED: { insert_failed: Num; clash_resolve?: Num; worstCpu?: Num } & WatchEvidence<'insert_failed'>;
  DROP: { drop: Num } & WatchEvidence<'drop'>;
  EARLY_DROP: { early_drop: Num } & WatchEvidence<'early_drop'>;
  TABLE_PRESSURE: { count: Num; max: Num; usage: Num; nf_conntrack_udp_timeout?: Num };
  TABLE_FULL: { lines: Num; suppressed: Num; lastSecondsAgo: OptNum; lastDate: string | null; last: string | null };
  CLASH_RESOLVE: { clash_resolve: Num } & WatchEvidence<'clash_resolve'>;
  // svc
  MISSING_CHAIN: { chain: string; from: string; line?: Num; comment?: string | null; service?: string };
  EMPTY_ENDPOINT_CHAIN: { chain: string; from: string; line: Num; service?: string };
  UNREACHABLE_RULE: { chain: string; firstUnreachableLine: Num; rules: Num; service?: string };
  FALLTHROUGH:
    | { chain: string; line: Num; fallthrough: Num; lastProbability: string | null; service?: string }
    | { chain: string; mod: Num; covered: Num; service?: string };
  ORPHAN_CHAIN: { chain: string; dnat: string | null; service?: string };
  NO_ENDPOINTS: { service: string; chain?: string; rule?: string | null; destination?: string | null; port?: OptNum; map?: string; element?: string; reals?: Num; line?: Num };
  NO_LOCAL_ENDPOINTS: { service: string; chain?: string; destination?: string | null; port?: OptNum; map?: string; element?: string };
  TERMINATING_ENDPOINTS: { service: string; draining: string };
  DUPLICATE_ENDPOINT: { service: string; endpoint: string; times: Num; share: Num };
  UNEVEN_SHARES: { service: string; endpoints: Num; worst: string; share: Num; relativeDeviation: Num; probabilityDigits: Num };
  LOCAL_POLICY: { service: string; localEndpoints: Num; clusterEndpoints?: Num };
  SESSION_AFFINITY: { service: string; seconds: OptNum };
  // doctor
  CONNTRACK_RACE: RaceEvidence & { singleRequestSwitches: Num };
  PARALLEL_QUERY_LOSS: RaceEvidence;
  NAMESERVER_UNREACHABLE: { sent: Num; timeouts: Num; errors: Num; codes: string };
  NIC_ALLOWANCE_EXCEEDED: { counters: string; linklocal: Num; losingProbes: Num };
  COREDNS_OVERLOADED: { pages: Num; maxConcurrentRejects: Num; panics: Num; requests: Num };
  COREDNS_UPSTREAM: { pages: Num; forwarded: Num; forwardServfail: Num; forwardMeanMs: Num };
  RATE_LIMITED: { fastLost: Num; fastSent: Num; fastRate: Num; slowLost: Num; slowSent: Num; slowRate: Num };
  UPSTREAM_FAILURE: { externalFailed: Num; externalLookups: Num; servfail: Num; stalled: Num; inClusterFailed: Num; inClusterLookups: Num };
  TYPE_UNANSWERED: { type: string; lost: Num; sent: Num; otherType: string; otherLost: Num; otherSent: Num };
  SERVER_LOSS: { parallelStalled: Num; reopenStalled: Num; tcpStalled: Num; endpointsProbed: Num; endpointsLosing: Num };
  ENDPOINT_LOSS: { endpoint: string; lost: Num; sent: Num; otherLost: Num; otherSent: Num; p: Num; cleanEndpoints: string };
  DNAT_PATH_LOSS: { lost: Num; sent: Num; endpointsLost: Num; endpointsSent: Num; endpointsProbed: Num };
  UDP_PATH_LOSS: { parallelStalled: Num; reopenStalled: Num; tcpStalled: Num };
  LATE_ANSWERS: { late: Num; timeouts: Num; sent: Num };
  TCP_FALLBACK_BLOCKED: { tcpFailed: Num; tcpLookups: Num; udpFailed: Num; udpLookups: Num };
  SERVER_FAILURES: { servfail: Num; refused: Num; answered: Num; share: Num };
  INCONCLUSIVE: { candidates: string; tellApart: string };
  NDOTS_COST: { queriesPerLookup: Num; queriesWithTrailingDot: Num; medianMs: Num; medianMsWithTrailingDot: Num; searchNames: Num; msPerSearchName: Num; extraMsPerLookup: Num; failedThroughSearch: Num; failedWithTrailingDot: Num };
  STALLS_UNEXPLAINED: { stalledProbes: Num; stalled: Num; notProbed: string };
  PROBE_ERRORS: { probes: Num; errors: Num; codes: string };
  // watch
  CAPTURE_LOSS: { kernelDrops: OptNum; ifDrops: OptNum; tcpGaps: Num; damaged: string };
  QUERY_STALLS: { stalled: Num; unanswered: Num; answeredAfterResend: Num; queries: Num; late: Num; timeoutS: Num };
  NO_DNS_SEEN: { packets: Num; spanS: Num };
  KERNEL_DROPS: { reason: string; location: string; count: Num; endpoints: string; seconds: Num };
  STALLS_DROPPED_ON_NODE: { reason: string; location: string; count: Num; stalls: Num; endpoints: string };
  STALLS_BEYOND_NODE: { beyond: Num; stalls: Num; endpoints: string; unrepliedFlows: Num };
  CONNTRACK_UNREPLIED_ENDPOINT: { endpoint: string; unreplied: Num; flows: Num; otherUnreplied: Num; otherFlows: Num; p: Num; seconds: Num };
  CONNTRACK_UNREPLIED: { unreplied: Num; flows: Num; endpoints: string; p: Num; seconds: Num };
  WAITING_AT_END: { waiting: Num; longerThanAnyAnswer: Num; answered: Num; longestAnswerMs: OptNum; waitedMinMs: Num; waitedMaxMs: Num; p: Num };
  WATCHED_ENDPOINT_LOSS: { endpoint: string; lost: Num; sent: Num; otherLost: Num; otherSent: Num; p: Num; cleanEndpoints: string };
  RACE_SIGNATURE: { signature: Num; dnated: Num; pairs: Num; loneFirstLost: Num; lone: Num; p: OptNum; client: string };
  WATCHED_SERVER_FAILURES: { servfail: Num; refused: Num; answered: Num; share: Num; p: Num; otherFailed: OptNum; otherAnswered: OptNum };
  TRUNCATED_NOT_RETRIED: { truncated: Num; notRetried: Num; tcpAfterTruncated: Num; clients: string };
  TCP_FALLBACK_FAILING: { retriesFailed: Num; tcpLost: Num; tcpQueries: Num; udpLost: Num; udpQueries: Num; p: OptNum };
  SEARCH_LIST_WASTE: { searchQueries: Num; queries: Num; share: Num; queriesPerName: Num };
}

/** The race signature's numbers: lookups in the two UDP modes, straight to the endpoints, and insert_failed where NATed. */
export interface RaceEvidence {
  parallelStalled: Num;
  parallelLookups: Num;
  reopenStalled: Num;
  reopenLookups: Num;
  directStalled: OptNum;
  directLookups: Num;
  insertFailedDuringProbes: OptNum;
  insertFailedBaseline: OptNum;
  libc: string;
  kernelClashFixes: string;
}

/** conntrack's rates during --watch (or between two pasted snapshots), named after the counter. */
export type WatchEvidence<K extends string> = Partial<Record<`${K}PerSecond`, number | null> & Record<`${K}Delta`, number> & { watchSeconds: number | null }>;

export type FindingCode = keyof EvidenceByCode;

export interface CatalogueEntry {
  command: Command;
  /** The severities the code may take. */
  severities: readonly Severity[];
  /** How the severity is chosen. */
  rule: string;
  subject: Subject['kind'];
  /** One line for README and `doctor`: what the code means. */
  means: string;
}

export const CATALOGUE: { readonly [C in FindingCode]: CatalogueEntry } = {
  TIMEOUTS: { command: 'dnsbench', severities: ['warning'], rule: 'any query without a reply within --timeout', subject: 'nameserver', means: 'queries got no reply; the evidence says how many of them this machine dropped itself' },
  LOCAL_DROPS: { command: 'dnsbench', severities: ['warning'], rule: 'replies dropped by a full receive buffer on this machine (doctor: at least 3 during its probes)', subject: 'machine', means: 'the tool\'s own receive buffers overflowed: not the network\'s fault' },
  SLOW: { command: 'dnsbench', severities: ['warning'], rule: 'any answer slower than --slow', subject: 'nameserver', means: 'answers slower than --slow' },
  LOOKUP_STALLS: { command: 'dnsbench', severities: ['warning'], rule: 'any lookup that took the resolver timeout or longer', subject: 'nameserver', means: 'lookups waited a resolver timeout: a lost A or AAAA' },
  ERRORS: { command: 'dnsbench', severities: ['warning'], rule: 'any query that ended in an error', subject: 'nameserver', means: 'queries ended in a socket error (refused, reset, ...)' },
  BOGUS_REPLIES: { command: 'dnsbench', severities: ['warning'], rule: 'any reply with an unknown ID, the wrong question, or malformed', subject: 'nameserver', means: 'replies that match no query were ignored' },
  NO_ANSWERS: { command: 'dnsbench', severities: ['warning'], rule: 'every answer NXDOMAIN or SERVFAIL, or no lookup found an address', subject: 'nameserver', means: 'the name does not resolve there' },
  SERVFAIL: { command: 'dnsbench', severities: ['info'], rule: 'any SERVFAIL answer', subject: 'nameserver', means: 'the server could not resolve some queries' },
  TRUNCATED: { command: 'dnsbench', severities: ['info'], rule: 'any reply with TC set', subject: 'nameserver', means: 'truncated replies, and whether they were retried over TCP' },
  SOCKET_ERRORS: { command: 'dnsbench', severities: ['info'], rule: 'socket errors with no query in flight', subject: 'machine', means: 'socket errors no query could own' },
  NDOTS_AMPLIFICATION: { command: 'resolv', severities: ['warning'], rule: 'a name (or any external name) with fewer dots than ndots and a search list', subject: 'name', means: 'the search list multiplies queries before the answer' },
  SEARCH_LIMIT: { command: 'resolv', severities: ['warning', 'critical'], rule: 'critical over kubelet\'s expanded limit (32 / 2048), warning over the legacy one (6 / 256)', subject: 'resolv-conf', means: 'the search list is over kubelet\'s limits' },
  TOO_MANY_NAMESERVERS: { command: 'resolv', severities: ['warning'], rule: 'more than 3 nameserver lines', subject: 'resolv-conf', means: 'nameservers beyond the third are ignored' },
  NODELOCALDNS: { command: 'resolv', severities: ['info'], rule: 'a nameserver is 169.254.20.10', subject: 'resolv-conf', means: 'NodeLocalDNS is in use' },
  NO_NODELOCALDNS: { command: 'resolv', severities: ['info'], rule: 'a nameserver in a private (Service) range and no NodeLocalDNS', subject: 'resolv-conf', means: 'queries go through DNAT and conntrack' },
  MUSL_IGNORES_OPTION: { command: 'resolv', severities: ['info'], rule: 'musl and a single-request option', subject: 'resolv-conf', means: 'musl ignores single-request options' },
  SINGLE_REQUEST: { command: 'resolv', severities: ['info'], rule: 'glibc with single-request or single-request-reopen', subject: 'resolv-conf', means: 'the conntrack race workaround is on' },
  LOOKUPS_DISABLED: { command: 'resolv', severities: ['critical'], rule: 'options attempts:0 (glibc, musl) or timeout:0 (musl)', subject: 'resolv-conf', means: 'an option that stops every lookup' },
  INSERT_FAILED: { command: 'conntrack', severities: ['info', 'warning', 'critical'], rule: 'critical when rising during the watch, else warning; in doctor, critical when it rose during the probes beyond its own background (at least 3, and the exact test of two rates against the same counter over the interval before them p < 0.001) while the probes lost beyond chance, else a note (info)', subject: 'counter', means: 'packets lost the conntrack insert race' },
  DROP: { command: 'conntrack', severities: ['info', 'warning', 'critical'], rule: 'critical when rising during the watch, else warning; in doctor, critical when it rose during the probes beyond its own background (at least 3, and the exact test of two rates against the same counter over the interval before them p < 0.001) while the probes lost beyond chance, else a note (info)', subject: 'counter', means: 'packets dropped: no conntrack entry could be made' },
  EARLY_DROP: { command: 'conntrack', severities: ['info', 'warning', 'critical'], rule: 'critical when rising during the watch, else warning; in doctor, critical when it rose during the probes beyond its own background (at least 3, and the exact test of two rates against the same counter over the interval before them p < 0.001) while the probes lost beyond chance, else a note (info)', subject: 'counter', means: 'entries evicted from a full table' },
  TABLE_PRESSURE: { command: 'conntrack', severities: ['warning', 'critical'], rule: 'warning from 80% full, critical from 95%', subject: 'conntrack-table', means: 'the table is nearly full' },
  TABLE_FULL: { command: 'conntrack', severities: ['warning', 'critical'], rule: 'critical when a line is new during the watch or dated within the hour; warning when older or its age is unknown', subject: 'conntrack-table', means: 'the kernel logged "table full, dropping packet"' },
  CLASH_RESOLVE: { command: 'conntrack', severities: ['info'], rule: 'any clash_resolve', subject: 'counter', means: 'races the kernel resolved (5.10+)' },
  MISSING_CHAIN: { command: 'svc', severities: ['critical'], rule: 'a jump to a chain that does not exist', subject: 'chain', means: 'a rule jumps to a missing chain' },
  EMPTY_ENDPOINT_CHAIN: { command: 'svc', severities: ['warning'], rule: 'a jump to an endpoint chain that exists and DNATs nothing', subject: 'chain', means: 'an endpoint chain returns: its share goes to the rules after it' },
  UNREACHABLE_RULE: { command: 'svc', severities: ['warning'], rule: 'rules after an unconditional jump', subject: 'chain', means: 'rules that can never match' },
  FALLTHROUGH: { command: 'svc', severities: ['warning'], rule: 'a share of new connections matches no endpoint', subject: 'chain', means: 'connections leave the chain un-DNATed' },
  ORPHAN_CHAIN: { command: 'svc', severities: ['warning'], rule: 'an endpoint chain nothing jumps to', subject: 'chain', means: 'a stale endpoint chain' },
  NO_ENDPOINTS: { command: 'svc', severities: ['warning'], rule: 'a Service with no endpoint', subject: 'service', means: 'traffic to the Service is rejected' },
  NO_LOCAL_ENDPOINTS: { command: 'svc', severities: ['warning'], rule: 'a Local policy and no endpoint on this node', subject: 'service', means: 'external traffic arriving here is dropped' },
  TERMINATING_ENDPOINTS: { command: 'svc', severities: ['info'], rule: 'IPVS real servers with weight 0', subject: 'service', means: 'endpoints draining' },
  DUPLICATE_ENDPOINT: { command: 'svc', severities: ['warning'], rule: 'an endpoint listed twice', subject: 'service', means: 'an endpoint gets a double share' },
  UNEVEN_SHARES: { command: 'svc', severities: ['warning'], rule: 'shares differ beyond rounding', subject: 'service', means: 'endpoints do not share new connections evenly' },
  LOCAL_POLICY: { command: 'svc', severities: ['info'], rule: 'externalTrafficPolicy or internalTrafficPolicy Local', subject: 'service', means: 'traffic stays on this node\'s endpoints' },
  SESSION_AFFINITY: { command: 'svc', severities: ['info'], rule: 'sessionAffinity ClientIP', subject: 'service', means: 'a client sticks to one endpoint for the timeout' },
  NAMESERVER_UNREACHABLE: { command: 'doctor', severities: ['warning', 'critical'], rule: 'at least 3 queries sent to the nameserver, over UDP and TCP, and not one answered, not even late; with several nameservers, each on its own raw queries while another answers (critical for the first, which every lookup tries first, warning for the others)', subject: 'nameserver', means: 'the nameserver answers nothing' },
  NIC_ALLOWANCE_EXCEEDED: { command: 'doctor', severities: ['info', 'critical'], rule: 'an allowance counter of the node\'s network interface (ENA: linklocal, pps, conntrack, bw_in, bw_out) rose during the probes beyond the node\'s own background (at least 3, and the exact test of two rates against the same counter over the interval before them p < 0.001) while the probes lost beyond chance (binomial test p < 0.001); then loss that hits every probe alike (SERVER_LOSS, UDP_PATH_LOSS, STALLS_UNEXPLAINED) stands aside for it, and no pattern between probes does; a rise within the background, or with the probes clean, is a note (info)', subject: 'machine', means: 'the cloud network interface shaped or dropped packets' },
  COREDNS_OVERLOADED: { command: 'doctor', severities: ['info', 'critical'], rule: 'CoreDNS\'s /metrics: forward\'s max_concurrent rejects rose during the probes beyond the page\'s own background (at least 3, and the exact test of two rates against the interval before them p < 0.001), or any panic, while the probes lost beyond chance or got REFUSED; a rise within the background, or with the probes clean, is a note (info)', subject: 'nameserver', means: 'CoreDNS itself is overloaded' },
  COREDNS_UPSTREAM: { command: 'doctor', severities: ['info', 'warning', 'critical'], rule: 'CoreDNS\'s /metrics: SERVFAIL from the upstreams beyond the page\'s own background (at least 3, and the exact test of two rates against the interval before them p < 0.001), or at least 3 forwarded requests at 500 ms or more on average, during the probes, while the probes lost beyond chance, got SERVFAIL or waited over 1 s; critical with UPSTREAM_FAILURE or SERVFAIL to half of the forwarded; else a note (info)', subject: 'nameserver', means: 'CoreDNS\'s upstream resolvers fail or are slow' },
  RATE_LIMITED: { command: 'doctor', severities: ['critical'], rule: 'raw A queries at full speed lost more often than the same at 20 queries/s: at least 3, and Fisher\'s exact test p < 0.001; and seen again in a second round of its own (p < 0.01) where the budget allows one, or, with no second round, p < 0.0001', subject: 'nameserver', means: 'loss grows with the query rate: a rate limit or an overloaded server' },
  UPSTREAM_FAILURE: { command: 'doctor', severities: ['critical'], rule: 'lookups of the external name with a trailing dot stall, SERVFAIL or take over 1 s more often than those of kubernetes.default.svc in the cluster domain, both absolute (an A and an AAAA each, so chance loss hits both alike): at least 3, and Fisher\'s exact test p < 0.001', subject: 'nameserver', means: 'external names fail while the cluster\'s own are answered: the upstream resolvers' },
  TYPE_UNANSWERED: { command: 'doctor', severities: ['critical'], rule: 'raw queries of one type (AAAA or A) lost more often than those of the other, sent side by side: at least 3, and Fisher\'s exact test p < 0.001 over its two comparisons (Bonferroni); and seen again in a second round of its own (p < 0.01) where the budget allows one, or, with no second round, p < 0.0001', subject: 'nameserver', means: 'queries of one record type go unanswered' },
  ENDPOINT_LOSS: { command: 'doctor', severities: ['critical'], rule: 'an endpoint probed directly loses more queries than the other endpoints together, all probed side by side: at least 3, and Fisher\'s exact test p < 0.001 over as many comparisons as endpoints (Bonferroni); and seen again in a second round of its own (p < 0.01) where the budget allows one, or, with no second round, p < 0.0001', subject: 'endpoint', means: 'one DNS endpoint loses queries' },
  CONNTRACK_RACE: { command: 'doctor', severities: ['critical'], rule: 'the race signature (lookups with A+AAAA from one socket stall more than with single-request-reopen: at least 3, Fisher\'s exact test p < 0.001; TCP not losing beyond chance) and the evidence points at conntrack: the lookups straight to the endpoints are clean (p < 0.001), or stall too on a kernel without the 4.19 fix, or insert_failed rose beyond its background where the probes are NATed (at least 3, and the exact test of two rates against the interval before the probes p < 0.001)', subject: 'nameserver', means: 'the conntrack insert race' },
  PARALLEL_QUERY_LOSS: { command: 'doctor', severities: ['critical'], rule: 'the race signature, and the evidence rules conntrack out: the nameserver is NodeLocalDNS (untracked), or the lookups straight to the endpoints show the signature too (at least 3, p < 0.001) on a kernel with the 4.19 fix, or insert_failed did not move where the probes are NATed', subject: 'nameserver', means: 'something other than the conntrack race drops the second of two queries sent at once from one port' },
  LATE_ANSWERS: { command: 'doctor', severities: ['warning'], rule: 'at least 3 answers that came after their query timed out, and at least a quarter of the timeouts answered late (loss never answers late; answers later than a probe listens are not seen)', subject: 'nameserver', means: 'answers come after the client\'s timeout: a slow server, not loss' },
  SERVER_LOSS: { command: 'doctor', severities: ['critical'], rule: 'lookups with single-request-reopen and over TCP each lose beyond the background of the datagrams each unit carries (1% a datagram lost: a raw query 2, a lookup 2 per query it sends until its answer, 4 for an absolute name, 16 through a three-domain search list) (at least 3, binomial test p < 0.001), and every endpoint probed does too (or none was probed)', subject: 'nameserver', means: 'the DNS server or its upstream loses queries' },
  DNAT_PATH_LOSS: { command: 'doctor', severities: ['critical'], rule: 'queries to a nameserver that is the Service IP lost more often than to its endpoints probed directly, side by side: at least 3, Fisher\'s exact test p < 0.001, and no endpoint losing beyond its background; each nameserver its own subject', subject: 'nameserver', means: 'the DNAT/conntrack path loses queries' },
  UDP_PATH_LOSS: { command: 'doctor', severities: ['warning'], rule: 'UDP lookups lose beyond the background of the datagrams each unit carries (1% a datagram lost: a raw query 2, a lookup 2 per query it sends until its answer, 4 for an absolute name, 16 through a three-domain search list), pooled (Poisson binomial), and more than the same lookups over TCP (Fisher\'s exact test): at least 3, p < 0.001 each, and no nearer cause applies', subject: 'nameserver', means: 'the UDP path loses packets' },
  TCP_FALLBACK_BLOCKED: { command: 'doctor', severities: ['warning'], rule: 'lookups over TCP fail (time out or fail at once) more often than the same over UDP: at least 3, Fisher\'s exact test p < 0.001, UDP not losing beyond its background', subject: 'nameserver', means: 'DNS over TCP fails: truncated answers cannot be retried' },
  SERVER_FAILURES: { command: 'doctor', severities: ['warning', 'critical'], rule: 'SERVFAIL or REFUSED answers to the raw queries (to the nameservers and to each endpoint) beyond 1% of the answers (at least 3, binomial test p < 0.001); critical from half of them', subject: 'nameserver', means: 'the server answers with failures' },
  INCONCLUSIVE: { command: 'doctor', severities: ['info', 'warning'], rule: 'a pattern some rule reads (p < 0.05) that the probes the budget allowed did not make decisive (p < 0.001, at least 3); a warning when nothing else names a cause, a note (info) beside a cause or loss that is named', subject: 'nameserver', means: 'a pattern shows but the evidence does not decide between two causes' },
  NDOTS_COST: { command: 'doctor', severities: ['info', 'warning'], rule: 'the name goes through the search list (resolv\'s NDOTS_AMPLIFICATION), measured against its trailing-dot form (queries and median time), both answered; a warning where it costs the workload measurably: the median lookup 50 ms or more longer than with a trailing dot, or lookups through the search list failing or stalling more often than with it (at least 3, Fisher\'s exact test p < 0.001); else a note (info)', subject: 'name', means: 'what the search list costs per lookup, measured' },
  STALLS_UNEXPLAINED: { command: 'doctor', severities: ['warning'], rule: 'every UDP probe together lost beyond the background of the datagrams each unit carries (1% a datagram lost: a raw query 2, a lookup 2 per query it sends until its answer, 4 for an absolute name, 16 through a three-domain search list) (at least 3, Poisson binomial test p < 0.001), or one probe alone beyond its own, and no rule that names a loss or a mechanism applies: loss said as loss, with the patterns still short of decisive', subject: 'nameserver', means: 'queries lost beyond chance, with no mechanism the probes show' },
  PROBE_ERRORS: { command: 'doctor', severities: ['warning'], rule: 'any probe query or lookup ended in an error (EPERM, ECONNREFUSED, ...)', subject: 'nameserver', means: 'queries failed at once instead of being answered or timing out' },
  CAPTURE_LOSS: { command: 'watch', severities: ['warning'], rule: 'tcpdump reports packets dropped by the kernel or the interface, a DNS-over-TCP stream has a gap (a segment never seen), or the capture is damaged', subject: 'machine', means: 'the capture missed packets: an unanswered query may have had an answer it did not see' },
  QUERY_STALLS: { command: 'watch', severities: ['warning'], rule: 'at least 3 real queries to a server waited the timeout: never answered, or answered only after the client sent them again; or a server that answered none of its queries, sent at least 3 times in all', subject: 'nameserver', means: 'the pods\' own queries stalled: each one a lookup that waited its resolver timeout' },
  CONNTRACK_UNREPLIED_ENDPOINT: { command: 'drops', severities: ['critical'], rule: 'at least 3 DNS flows to one endpoint never replied within the timeout in conntrack\'s events, beyond chance against the other endpoints (Fisher, p < 0.001)', subject: 'endpoint', means: 'this node sent the queries and that endpoint never answered them: the endpoint, or the path to it, not the Service' },
  CONNTRACK_UNREPLIED: { command: 'drops', severities: ['warning'], rule: 'at least 3 DNS flows never replied within the timeout in conntrack\'s events, beyond a 1% background (binomial, p < 0.001), not placed on one endpoint', subject: 'machine', means: 'queries left this node\'s conntrack and no answer came back: lost past this node or by the servers' },
  STALLS_DROPPED_ON_NODE: { command: 'watch', severities: ['critical'], rule: 'watch --kernel: at least 3 stalled queries (unanswered, or answered only after a resend) matched, by client address, port and time, to DNS packets the kernel dropped with one reason at one kernel function', subject: 'machine', means: 'this node\'s kernel dropped the queries users waited for: where and why, and toward which endpoint' },
  STALLS_BEYOND_NODE: { command: 'watch', severities: ['warning'], rule: 'watch --kernel with the kernel\'s drops traced: at least 3 stalled queries with no drop of theirs on this node', subject: 'machine', means: 'the stalled queries left this node whole: they were lost on the way to the endpoints or by them' },
  KERNEL_DROPS: { command: 'drops', severities: ['warning'], rule: 'at least 3 DNS packets freed by the kernel with one drop reason at one kernel function (skb:kfree_skb) while drops ran', subject: 'machine', means: 'this node\'s kernel dropped DNS packets: where and why, by its own drop reasons' },
  NO_DNS_SEEN: { command: 'watch', severities: ['warning'], rule: 'a live capture in which no DNS message was seen at all (a capture file with none is an input error, exit 2)', subject: 'machine', means: 'watch judged nothing: the capture point sees no DNS' },
  WAITING_AT_END: { command: 'watch', severities: ['warning'], rule: 'at least 3 queries still unanswered when the capture ended (within the timeout) that had waited longer than any answer took, beyond chance: binomial p < 0.001 with each at most 1 in (answers + 1)', subject: 'machine', means: 'queries at the end of the capture were not coming back: an outage the timeout had not yet shown' },
  WATCHED_ENDPOINT_LOSS: { command: 'watch', severities: ['critical'], rule: 'one endpoint leaves more of the real queries DNATed to it unanswered than the other endpoints together: at least 3, and Fisher\'s exact test p < 0.001', subject: 'endpoint', means: 'one DNS endpoint loses the real pods\' queries' },
  WATCHED_SERVER_FAILURES: { command: 'watch', severities: ['warning', 'critical'], rule: 'SERVFAIL or REFUSED answers to the real queries of an endpoint (or a server asked directly) beyond 1% of its answers: at least 3, binomial test p < 0.001; critical from half of them', subject: 'endpoint', means: 'a DNS server answers the pods with failures' },
  TRUNCATED_NOT_RETRIED: { command: 'watch', severities: ['warning'], rule: 'at least 3 truncated UDP answers that no TCP query of the same client and question followed within the timeout', subject: 'client', means: 'clients took truncated answers without retrying over TCP (musl before 1.2.4 does not), or could not' },
  TCP_FALLBACK_FAILING: { command: 'watch', severities: ['warning'], rule: 'at least 3 truncated answers after which the client opened a TCP connection to port 53 and no query came through it, or at least 3 real queries over TCP unanswered more often than those over UDP (Fisher\'s exact test p < 0.001)', subject: 'nameserver', means: 'DNS over TCP fails: truncated answers cannot be retried' },
  SEARCH_LIST_WASTE: { command: 'watch', severities: ['warning'], rule: 'a client whose NXDOMAIN queries for search-list names are at least half its queries, at least 20 of them', subject: 'client', means: 'the search list (ndots) multiplies the pod\'s queries: most of them are names that do not exist' },
  RACE_SIGNATURE: { command: 'watch', severities: ['warning', 'critical'], rule: 'at least 3 lookups whose A and AAAA left together from one port with one answered and the other not; critical when at least 3 of them were seen DNATed, the capture missed nothing, and independent loss at the rate of queries sent alone does not explain them (binomial p < 0.001), else warning', subject: 'nameserver', means: 'the real pods show the conntrack race\'s signature: one of a parallel A/AAAA pair lost' },
};

/** One finding: its code's evidence shape, a subject, and what to do. */
export type Finding<C extends FindingCode = FindingCode> = C extends FindingCode
  ? {
      /** Stable machine-readable code, from the catalogue. */
      code: C;
      severity: Severity;
      /** What it is about. */
      subject: Subject;
      /** One sentence for a human. */
      message: string;
      /** The numbers or lines the finding rests on. */
      evidence: EvidenceByCode[C];
      /** What to do about it; empty for pure information. */
      remedy: string;
    }
  : never;

/**
 * Build a finding: every finding is made here, from its code's catalogue entry, whose severities it must keep (a bug
 * otherwise, caught by the tests that reach it) and whose evidence shape it must have (the compiler checks).
 */
export function finding<C extends FindingCode>(f: { code: C; severity: Severity; subject: Subject; message: string; evidence: EvidenceByCode[C]; remedy?: string }): Finding<C> {
  if (!CATALOGUE[f.code].severities.includes(f.severity)) throw new Error(`finding ${f.code} cannot be ${f.severity}`);
  return { code: f.code, severity: f.severity, subject: f.subject, message: f.message, evidence: f.evidence, remedy: f.remedy ?? '' } as Finding<C>;
}

/** What a run knows of the replies this machine dropped itself, and of what it had in flight (null: not known). */
export interface LocalDropsSeen {
  ownSockets: number | null;
  rcvbufErrors: number | null;
  inErrors: number | null;
  recvBufferBytes: number | null;
  concurrency: number | null;
  sourcePorts: number | null;
}

/** LOCAL_DROPS, built one way for dnsbench and doctor: `when` says during what, `first` what to try before the buffers. */
export function localDropsFinding(drops: number, seen: LocalDropsSeen, where: string, when: string, first: string): Finding<'LOCAL_DROPS'> {
  return finding({
    code: 'LOCAL_DROPS',
    severity: 'warning',
    subject: { kind: 'machine' },
    message: `${drops} replies were dropped by this machine ${where} ${when}: its receive buffers were full`,
    evidence: {
      ownSocketDrops: seen.ownSockets,
      namespaceRcvbufErrors: seen.rcvbufErrors,
      namespaceInErrors: seen.inErrors,
      recvBufferBytes: seen.recvBufferBytes,
      concurrency: seen.concurrency,
      sourcePorts: seen.sourcePorts,
    },
    remedy: `${first}, or a larger receive buffer limit: sysctl -w net.core.rmem_max=8388608`,
  });
}

/** The Service a finding concerns, where it has one. */
export function serviceOf(f: Finding): string | undefined {
  if (f.subject.kind === 'service') return f.subject.id;
  if (f.subject.kind === 'chain') return f.subject.service ?? undefined;
  return undefined;
}

/** Worst first: critical 0, warning 1, info 2. The one order every list of findings is sorted by. */
export const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { critical: 0, warning: 1, info: 2 };

/** Order by severity (critical first). Every command passes its findings here: a severity its code may not take is a bug. */
export function sortFindings<F extends Finding>(findings: F[]): F[] {
  for (const f of findings) {
    if (!CATALOGUE[f.code].severities.includes(f.severity)) throw new Error(`finding ${f.code} cannot be ${f.severity}`);
  }
  return [...findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}

/** grep-style exit code: 1 when any finding is a warning or critical, else 0. */
export function exitCodeFor(findings: readonly { severity: Severity }[]): 0 | 1 {
  return findings.some((f) => f.severity !== 'info') ? 1 : 0;
}
