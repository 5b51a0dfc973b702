/** What the queries of one client, server or endpoint came to, and its summary in the result. */
import { Counters, Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import type { Tally } from './client-table.js';

/** What a group of queries (one client, server or endpoint) came to. */
export interface GroupStats {
  queries: number;
  answered: number;
  unanswered: number;
  /** Queries sent again after a wait without an answer. */
  resends: number;
  /** Queries answered only after they were sent again: the client waited its timeout (the 5 s stall). */
  answeredAfterResend: number;
  /** Answers that came after their query was given up. */
  late: number;
  truncated: number;
  /** Of the truncated UDP answers, those no TCP query of the same client and question followed within the timeout. */
  truncatedNoTcp: number;
  /** Of the truncated UDP answers, those after which the client opened a TCP connection to port 53 but no TCP query of
   * the question came through within the timeout: the retry was tried and failed (TCP blocked on the way). */
  truncatedTcpFailed: number;
  /** Queries over TCP, and of them unanswered. */
  tcp: number;
  tcpUnanswered: number;
  /** Queries answered NXDOMAIN whose name was a name the client asked next plus a search domain (./search.ts). */
  searchQueries: number;
  /** Queries that waited for one of A and AAAA sent together, while the other was answered. */
  raceSignature: number;
  aaaa: number;
  rcodes: Record<string, number>;
  /** Percentiles are null for a client without a histogram of its own (MatchResult.clients says which). */
  latencyMs: { [K in keyof ReturnType<Histogram['summaryIn']>]: K extends 'min' | 'mean' | 'max' ? number : number | null } | null;
}

/** Answers that were failures: SERVFAIL and REFUSED. */
export const failures = (rcodes: Readonly<Record<string, number>>): number => (rcodes['SERVFAIL'] ?? 0) + (rcodes['REFUSED'] ?? 0);

/** Queries per name a client asked: its queries over those that were not search-list names (./search.ts). */
export const queriesPerName = (queries: number, searchQueries: number): number => queries / (queries - searchQueries);

export class Group implements Tally {
  queries = 0;
  answered = 0;
  unanswered = 0;
  resends = 0;
  answeredAfterResend = 0;
  late = 0;
  truncated = 0;
  truncatedNoTcp = 0;
  truncatedTcpFailed = 0;
  tcp = 0;
  tcpUnanswered = 0;
  searchQueries = 0;
  raceSignature = 0;
  aaaa = 0;
  readonly rcodes = new Counters();
  /** The latency histogram (about 43 KB): the totals, every server and every endpoint have one; clients' are in ./client-table.ts. */
  readonly hist = new Histogram('us', LATENCY_MARKS_US);

  answer(rcode: string, waitedUs: number, resent: boolean, tc: boolean): void {
    this.answered++;
    if (resent) this.answeredAfterResend++;
    this.rcodes.add(rcode);
    this.hist.record(waitedUs);
    if (tc) this.truncated++;
  }

  toJSON(): GroupStats {
    return {
      queries: this.queries,
      answered: this.answered,
      unanswered: this.unanswered,
      resends: this.resends,
      answeredAfterResend: this.answeredAfterResend,
      late: this.late,
      truncated: this.truncated,
      truncatedNoTcp: this.truncatedNoTcp,
      truncatedTcpFailed: this.truncatedTcpFailed,
      tcp: this.tcp,
      tcpUnanswered: this.tcpUnanswered,
      searchQueries: this.searchQueries,
      raceSignature: this.raceSignature,
      aaaa: this.aaaa,
      rcodes: this.rcodes.toJSON(),
      latencyMs: this.hist.count > 0 ? this.hist.summaryIn(1000) : null,
    };
  }
}
