/** The worlds the confusion matrix runs doctor's decision in, each with what it holds (./simulate.ts). */
import type { World } from './simulate.js';

const none = { kind: 'none' } as const;
const loss = { kind: 'loss' } as const;
const cause = (...codes: World['truth'] extends infer T ? (T extends { codes: infer C } ? C : never) : never) => ({ kind: 'cause' as const, codes });

export const WORLDS: World[] = [
  // Nothing lost: no cause, whatever the node's counters do.
  { name: 'healthy ClusterFirst pod (ndots:5, 3 search domains)', truth: none },
  { name: 'healthy, no search list, musl', truth: none, search: 0, ndots: 1, libc: 'musl' },
  { name: 'healthy, libc unknown, 3 nameservers, no endpoints', truth: none, libc: 'unknown', nameservers: 3, endpoints: 0 },
  { name: 'healthy, NodeLocalDNS', truth: none, nodeLocal: true, endpoints: 0 },
  { name: 'healthy node, insert_failed 2/s from other pods', truth: none, view: 'node', background: { insertFailed: 2 } },
  { name: 'healthy node, insert_failed in bursts (0.5/s)', truth: none, view: 'node', background: { insertFailed: 0.5, bursty: true } },
  { name: 'healthy node, NIC allowance 1/s from other traffic', truth: none, view: 'node', background: { nic: 1 } },
  { name: 'healthy node, NIC allowance in bursts', truth: none, view: 'node', background: { nic: 0.3, bursty: true } },
  { name: 'healthy, CoreDNS SERVFAILs and rejects from other clients', truth: none, background: { corednsServfail: 3, corednsRejects: 0.5 } },
  // Loss no more than the background doctor allows (1% a datagram): no cause is right.
  { name: 'loss 0.5% per datagram (under the background)', truth: { kind: 'background' }, path: { rate: 0.005, where: 'all' } },
  { name: 'loss 1% per datagram (the background itself)', truth: { kind: 'background' }, path: { rate: 0.01, where: 'all' } },
  // Loss with no mechanism: the loss named, placed as far as the probes can, never a mechanism.
  { name: 'path loss 3%', truth: loss, path: { rate: 0.03, where: 'all' } },
  { name: 'path loss 5%', truth: loss, path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 8%', truth: loss, path: { rate: 0.08, where: 'all' } },
  { name: 'path loss 10%', truth: loss, path: { rate: 0.1, where: 'all' } },
  { name: 'path loss 5%, queries only', truth: loss, path: { rate: 0.05, where: 'all', dir: 'query' } },
  { name: 'path loss 5%, answers only', truth: loss, path: { rate: 0.05, where: 'all', dir: 'answer' } },
  { name: 'path loss 5% in bursts', truth: loss, path: { rate: 0.05, where: 'all', burst: true } },
  { name: 'path loss 5%, ndots:2 and 5 search domains', truth: loss, search: 5, ndots: 2, path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 5%, one search domain, 2 s timeout', truth: loss, search: 1, timeoutS: 2, path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 5%, no search list', truth: loss, search: 0, ndots: 1, path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 5%, musl', truth: loss, libc: 'musl', path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 5%, libc unknown, 3 nameservers', truth: loss, libc: 'unknown', nameservers: 3, path: { rate: 0.05, where: 'all' } },
  { name: 'path loss 5%, no endpoints known', truth: loss, endpoints: 0, path: { rate: 0.05, where: 'all' } },
  { name: 'DNATed path only, 5%', truth: loss, path: { rate: 0.05, where: 'dnat' } },
  { name: 'server loss 5%', truth: loss, server: 0.05 },
  { name: 'server loss 10%', truth: loss, server: 0.1 },
  { name: 'path loss 5%, busy insert_failed on the node', truth: loss, view: 'node', path: { rate: 0.05, where: 'all' }, background: { insertFailed: 2 } },
  // Causes: named.
  { name: 'the conntrack race (half the pairs)', truth: cause('CONNTRACK_RACE', 'INSERT_FAILED'), race: 0.5 },
  { name: 'the conntrack race, from the node, no endpoints', truth: cause('CONNTRACK_RACE', 'INSERT_FAILED'), race: 0.8, view: 'node', endpoints: 0 },
  { name: 'the conntrack race, busy insert_failed, NIC traffic', truth: cause('CONNTRACK_RACE', 'INSERT_FAILED'), race: 0.8, view: 'node', background: { insertFailed: 2, nic: 0.5 } },
  { name: 'the conntrack race, kernel without the clash fixes', truth: cause('CONNTRACK_RACE', 'INSERT_FAILED'), race: 0.8, fixes: false },
  { name: 'the conntrack race, musl', truth: cause('CONNTRACK_RACE', 'INSERT_FAILED'), race: 0.8, libc: 'musl' },
  { name: 'the race, from a pod, no endpoints known: race or a server, said as such', truth: { kind: 'ambiguous', codes: ['CONNTRACK_RACE', 'PARALLEL_QUERY_LOSS'] }, race: 0.8, endpoints: 0 },
  { name: 'a server dropping the second of two queries', truth: cause('PARALLEL_QUERY_LOSS'), parallelDrop: 0.8 },
  { name: 'NodeLocalDNS dropping the second of two queries', truth: cause('PARALLEL_QUERY_LOSS'), parallelDrop: 0.8, nodeLocal: true, endpoints: 0 },
  { name: 'AAAA never answered', truth: cause('TYPE_UNANSWERED'), type: { type: 'AAAA', rate: 1 } },
  { name: 'AAAA lost 30%', truth: cause('TYPE_UNANSWERED'), type: { type: 'AAAA', rate: 0.3 } },
  { name: 'one endpoint losing 30%', truth: cause('ENDPOINT_LOSS'), endpoint: { index: 1, rate: 0.3 } },
  { name: 'one endpoint black-holed', truth: cause('ENDPOINT_LOSS'), endpoint: { index: 0, rate: 1 } },
  { name: 'one endpoint of 3 losing 20%', truth: cause('ENDPOINT_LOSS'), endpoints: 3, endpoint: { index: 2, rate: 0.2 } },
  { name: 'a rate limit (30% of bursts lost)', truth: cause('RATE_LIMITED'), rateLimit: 0.3 },
  { name: 'answers late (30% after the timeout)', truth: cause('LATE_ANSWERS'), late: 0.3 },
  { name: 'TCP port 53 blocked', truth: cause('TCP_FALLBACK_BLOCKED'), tcpBlocked: true },
  { name: 'upstream failing (SERVFAIL to 50% of external names)', truth: cause('UPSTREAM_FAILURE', 'SERVER_FAILURES'), upstream: { servfail: 0.5 } },
  { name: 'upstream slow (2.5 s)', truth: cause('UPSTREAM_FAILURE'), upstream: { slowMs: 2500 } },
  { name: 'SERVFAIL to 20% of queries', truth: cause('SERVER_FAILURES'), servfail: 0.2 },
  { name: 'SERVFAIL to 5% of queries', truth: cause('SERVER_FAILURES'), servfail: 0.05 },
  // Harder than the default budget decides: their sensitivity is what it is, and they name no wrong cause.
  { name: 'a mild rate limit (8% of bursts lost)', truth: cause('RATE_LIMITED'), rateLimit: 0.08, minRight: 0.15 },
  { name: 'NIC allowance dropping 3%', truth: cause('NIC_ALLOWANCE_EXCEEDED'), view: 'node', nicLimit: 0.03, background: { nic: 0.2 } },
];
