/** What the matcher takes in and gives out (./match.ts). */
import type { Histogram } from '../stats/index.js';
import type { GroupStats } from './groups.js';
import type { Tally } from './client-table.js';
import type { ClientState, NameState } from './clients.js';

/** The address of a server or endpoint key (`host:port`, `[v6]:port`, as `query` writes them). */
export const hostOfKey = (key: string): string => key.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');

export interface Message {
  tsUs: number;
  transport: 'udp' | 'tcp';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  msg: Buffer;
}

/** A stall as it happens: a query unanswered, or answered only after a resend. */
export interface StallEvent {
  event: 'stall';
  tsUs: number;
  client: string;
  /** The client's pod (namespace/name), where --pods names it. */
  pod: string | null;
  server: string;
  endpoint: string | null;
  name: string;
  type: string;
  /** How long the client waited: to the answer, or to the moment it was given up. */
  waitedMs: number;
  outcome: 'unanswered' | 'answered-after-resend' | 'slow';
  /** The client's source port, and when it first sent the query (µs): what kernel evidence is joined by. */
  clientPort: number;
  firstSentUs: number;
}

/** The counts of all queries together, written at the top of the result as well as in `total`. */
export const TOTALS = ['queries', 'answered', 'unanswered', 'resends', 'answeredAfterResend', 'late', 'truncated', 'truncatedNoTcp', 'truncatedTcpFailed', 'tcp', 'tcpUnanswered', 'searchQueries', 'raceSignature'] as const;

export interface MatchResult extends Pick<GroupStats, (typeof TOTALS)[number]> {
  messages: number;
  malformed: number;
  /** Answers to queries this capture never saw (sent before it began, or dropped from the table). */
  unmatchedAnswers: number;
  /** Queries still waiting when the capture ended, within their timeout: neither answered nor lost. */
  inFlightAtEnd: number;
  /** How long they had waited, ms (null when none was). */
  inFlightWaitsMs: { min: number; median: number; max: number; longerThanAnyAnswer: number } | null;
  /** Queries dropped from a full table. */
  evicted: number;
  /** Messages of the clients left out (MatcherOptions.exclude). */
  excluded: number;
  /** Queries over TCP that followed a truncated UDP answer to the same client and question. */
  tcpAfterTruncated: number;
  /** NXDOMAIN answers not weighed as search-list names: the table of them was full. */
  searchOverflow: number;
  /** Of the raceSignature queries, the queries seen DNATed (to a Service address, then to an endpoint): the path the race needs. */
  raceSignatureDnated: number;
  /** A and AAAA sent together from one port: lookups as glibc and musl make them. */
  pairs: number;
  /**
   * Queries sent alone that ended (answered or not), and of them those whose first send went unanswered (resent, or
   * never answered): the first-send loss a pair's two queries would each see if losses were independent, like with
   * like with the race's signature, which is one of a pair's first sends lost.
   */
  lone: number;
  loneFirstLost: number;
  total: GroupStats;
  /** Clients seen; of them those in byClient (the most troubled first, at most MAX_CLIENTS_SHOWN), and of those the ones with latency percentiles. */
  clients: { seen: number; shown: number; withPercentiles: number };
  byClient: Record<string, GroupStats>;
  byServer: Record<string, GroupStats>;
  byEndpoint: Record<string, GroupStats>;
  histogram: ReturnType<Histogram['toJSON']>;
}

export interface MatcherOptions {
  /** How long a query waits for its answer before it is unanswered: the resolver's timeout. */
  timeoutUs: number;
  /** Stall events for answers at least this slow. */
  slowUs: number;
  /** A stall event for every query answered only after a resend, however fast (watch --kernel joins each). */
  everyResend?: boolean;
  onStall?: (e: StallEvent) => void;
  /** Queries kept waiting at most (default MAX_PENDING). */
  maxPending?: number;
  /** Clients whose queries and answers are left out (counted in `excluded`): doctor's own addresses while it probes. */
  exclude?: ReadonlySet<string>;
}


/** One query as the matcher follows it. */
export interface Query {
  client: ClientState<Query>;
  qname: string;
  qtype: number;
  /** port * 65536 + ID: with the type and name, what identifies it on the wire. */
  wire: number;
  sport: number;
  /** Where it was first seen going: the Service address, or the server itself. */
  server: string;
  /** Where it was DNATed to, when a second sighting showed it. */
  endpoint: string | null;
  tcp: boolean;
  firstUs: number;
  lastUs: number;
  answeredUs: number;
  state: 'pending' | 'answered';
  partner: Query | undefined;
  raced: boolean;
  /** Times it was sent again after a wait. */
  resends: number;
  /** The groups it counts in as things happen: all, its client, its server. */
  groups: [Tally, Tally, Tally];
  /** Its client's state of its name. */
  ns: NameState<Query>;
}
