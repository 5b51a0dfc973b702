/**
 * What a run counts, shared by the engine and resolver mode: the stats every query ends in, replies by rcode, the
 * slow-answer events, the progress lines.
 */
import { rcodeName } from '../dns/wire.js';
import { Counters } from '../stats/index.js';

export interface SlowEvent {
  /** ISO time the reply arrived. */
  time: string;
  /** What was slow: one query, or (resolver mode) a whole lookup. */
  kind: 'query' | 'lookup';
  name: string;
  type: string;
  server: string;
  sourcePort: number;
  rcode: string;
  latencyMs: number;
}

/** The one place a slow-query (or slow-lookup) event is built. */
export function slowEvent(kind: SlowEvent['kind'], name: string, type: string, server: string, sourcePort: number, rcode: string, latencyMs: number): SlowEvent {
  return { time: new Date().toISOString(), kind, name, type, server, sourcePort, rcode, latencyMs: Number(latencyMs.toFixed(3)) };
}

export interface Progress {
  sent: number;
  answered: number;
  timeouts: number;
  errors: number;
  inFlight: number;
  elapsedMs: number;
}

export interface QueryStats {
  sent: number;
  answered: number;
  timeouts: number;
  /** Answered, but slower than the slow threshold. Timeouts are not in it. */
  slow: number;
  /** Queries that ended in an error, by code (ECONNREFUSED, tcp-ECONNRESET, ...). */
  errors: Record<string, number>;
  /** Socket errors no query in flight could own: not in `errors`, not in `sent`. */
  unattributedErrors: Record<string, number>;
  rcodes: Record<string, number>;
  /** Replies for a query that had already timed out. */
  late: number;
  /** Replies whose ID matched no query in flight. */
  wrongId: number;
  /** Replies whose ID matched but whose question did not. */
  wrongQuestion: number;
  /** Datagrams too short or not a response. */
  malformed: number;
  /** Replies with the TC bit. */
  truncated: number;
  tcpRetries: number;
}

/** QueryStats's counters: what adds across runs (merge sums these). */
export const QUERY_COUNTERS = ['sent', 'answered', 'timeouts', 'slow', 'late', 'wrongId', 'wrongQuestion', 'malformed', 'truncated', 'tcpRetries'] as const satisfies ReadonlyArray<keyof QueryStats>;

/** The compiler's check that QUERY_COUNTERS names every number QueryStats has: a counter added there and not here fails. */
type NumberKeys<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];
export const QUERY_COUNTERS_COMPLETE: Record<Exclude<NumberKeys<QueryStats>, (typeof QUERY_COUNTERS)[number]>, never> = {};

/**
 * Replies counted by their header's 4-bit RCODE, a number per reply (no name looked up per packet); the
 * result carries them by name, as dig prints them. The engine and resolver mode both count with it.
 */
export class RcodeCounts {
  private readonly counts = new Float64Array(16);

  add(rcode: number): void {
    this.counts[rcode & 15] = this.counts[rcode & 15]! + 1;
  }

  toJSON(): Record<string, number> {
    const c = new Counters();
    this.counts.forEach((n, rcode) => {
      if (n > 0) c.add(rcodeName(rcode), n);
    });
    return c.toJSON();
  }
}
