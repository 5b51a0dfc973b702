/**
 * Every DNS query seen on the wire paired with its answer, by (client address and port, ID, question), in capture time.
 *
 * - A query is answered, unanswered (no answer within the timeout after its last send), or in flight when the capture
 *   ends. An answer that comes after its query was given up is `late`, not an answer.
 * - A resend is the same client asking the same question again after a wait without an answer: from the same port
 *   with the same ID (glibc, musl), or from a new port or ID (single-request-reopen, an application's retry); the
 *   earlier query is still matched if its answer comes.
 * - On `tcpdump -i any` a query is seen twice within a moment: on its way to the Service address and again after
 *   DNAT, on its way to the endpoint (answers likewise). Sightings within WINDOW_US are one query, attributed to the
 *   endpoint it was DNATed to.
 * - The race's signature: A and AAAA sent together from one port, one answered and the other not.
 *
 * Memory is bounded: queries leave the table when answered or given up; past MAX_PENDING the oldest are dropped and
 * counted.
 */
import type { Histogram } from '../stats/index.js';
import { formatHostPort, rcodeName } from '../dns/wire.js';
import { Group } from './groups.js';
import type { GroupStats } from './groups.js';
import { lastQuestionType, questionName, typeName } from './question.js';
import { SearchList } from './search.js';

export type { GroupStats } from './groups.js';
export { question, questionName, typeName } from './question.js';

/** Two sightings of one packet (before and after DNAT, or on two interfaces) are this close, microseconds. */
export const WINDOW_US = 50_000;
/** A query from a new port or with a new ID is a resend of an unanswered one only after this wait (glibc waits at least 1 s). */
const RESEND_MIN_US = 900_000;
/** A and AAAA of one lookup leave together: within this, microseconds. */
const PAIR_US = 10_000;
export const MAX_PENDING = 200_000;
const A = 1;
const AAAA = 28;

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

interface Query {
  key: string;
  client: string;
  qname: string;
  qtype: number;
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
  groups: [Group, Group, Group];
  /** Its keys in byQuestion and byLookup. */
  qKey: string;
  lKey: string;
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
}

/** The counts of all queries together, written at the top of the result as well as in `total`. */
const TOTALS = ['queries', 'answered', 'unanswered', 'resends', 'answeredAfterResend', 'late', 'truncated', 'truncatedNoTcp', 'truncatedTcpFailed', 'tcp', 'tcpUnanswered', 'searchQueries', 'raceSignature'] as const;

export interface MatchResult extends Pick<GroupStats, (typeof TOTALS)[number]> {
  messages: number;
  malformed: number;
  /** Answers to queries this capture never saw (sent before it began, or dropped from the table). */
  unmatchedAnswers: number;
  /** Queries still waiting when the capture ended, within their timeout: neither answered nor lost. */
  inFlightAtEnd: number;
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
  /** Queries sent alone that ended (answered or not), and of them unanswered: the loss a pair's two queries would each
   * see if losses were independent. */
  lone: number;
  loneLost: number;
  total: GroupStats;
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
  onStall?: (e: StallEvent) => void;
  /** Queries kept waiting at most (default MAX_PENDING). */
  maxPending?: number;
  /** Clients whose queries and answers are left out (counted in `excluded`): doctor's own addresses while it probes. */
  exclude?: ReadonlySet<string>;
}

export class Matcher {
  private readonly pending = new Map<string, Query>();
  /** The latest query of each client and question, for resends from a new port or with a new ID. */
  private readonly byQuestion = new Map<string, Query>();
  /** The latest A or AAAA of each client, port and name: its partner, if the other type follows at once. */
  private readonly byLookup = new Map<string, Query>();
  /** Queries given up lately, for late answers: key -> the query. */
  private readonly given = new Map<string, Query>();
  /** Truncated UDP answers lately, awaiting a TCP query: client|type|name -> the query (answered then). */
  private readonly truncatedAt = new Map<string, Query>();
  private readonly search: SearchList;
  /** Each client's latest TCP connection attempt (SYN) to a DNS port: a truncated answer's retry that may not get through. */
  private readonly connects = new Map<string, number>();
  private readonly total = new Group();
  private readonly clients = new Map<string, Group>();
  private readonly servers = new Map<string, Group>();
  private readonly endpoints = new Map<string, Group>();
  private nowUs = 0;
  private lastSweepUs = 0;
  private readonly r = { messages: 0, malformed: 0, unmatchedAnswers: 0, excluded: 0, evicted: 0, tcpAfterTruncated: 0, pairs: 0, lone: 0, loneLost: 0, raceDnated: 0 };

  /**
   * A resolver resends when its timeout ends: the resend arrives a moment after it (glibc: the same packet, from the same
   * port, with the same ID). A query is given up only this long after its timeout, so the resend is still its own.
   */
  private readonly graceUs: number;

  private readonly timeoutUs: number;
  private readonly slowUs: number;
  private readonly onStall: ((e: StallEvent) => void) | undefined;
  private readonly maxPending: number;
  private readonly exclude: ReadonlySet<string> | undefined;

  constructor(o: MatcherOptions) {
    this.timeoutUs = o.timeoutUs;
    this.slowUs = o.slowUs;
    this.onStall = o.onStall;
    this.maxPending = o.maxPending ?? MAX_PENDING;
    this.exclude = o.exclude !== undefined && o.exclude.size > 0 ? o.exclude : undefined;
    this.graceUs = Math.max(200_000, this.timeoutUs / 5);
    this.search = new SearchList(this.maxPending);
  }

  private group(map: Map<string, Group>, key: string): Group {
    let g = map.get(key);
    if (g === undefined) {
      g = new Group();
      map.set(key, g);
    }
    return g;
  }

  /**
   * The groups a query counts in as things happen to it: all, its client, its server. Its endpoint (the server when
   * not DNATed) is known for sure only once the query ends: it counts there then, in `settle`.
   */
  private each(q: Query, f: (g: Group) => void): void {
    for (const g of q.groups) f(g);
  }

  /** Its endpoint's group: where it was DNATed to, or the server it was sent to. */
  private endpointGroup(q: Query): Group {
    return this.group(this.endpoints, q.endpoint ?? q.server);
  }

  /** The query has ended (answered, given up, still waiting at the end, or evicted): its endpoint's count. */
  private settle(q: Query, f?: (g: Group) => void): Group {
    const g = this.endpointGroup(q);
    g.queries++;
    if (q.qtype === AAAA) g.aaaa++;
    g.resends += q.resends;
    if (q.raced) g.raceSignature++;
    if (q.tcp) g.tcp++;
    f?.(g);
    return g;
  }

  add(m: Message): void {
    this.r.messages++;
    if (m.tsUs > this.nowUs) this.nowUs = m.tsUs;
    if (this.nowUs - this.lastSweepUs >= 250_000) this.sweep(false);
    const name = questionName(m.msg);
    if (name === undefined) {
      this.r.malformed++;
      return;
    }
    const id = (m.msg[0]! << 8) | m.msg[1]!;
    const isQuery = (m.msg[2]! & 0x80) === 0;
    if (this.exclude !== undefined && this.exclude.has(isQuery ? m.src : m.dst)) {
      this.r.excluded++;
      return;
    }
    if (isQuery) this.query(m, id, name, lastQuestionType());
    else this.answer(m, id, name, lastQuestionType());
  }

  private query(m: Message, id: number, qname: string, qtype: number): void {
    const key = `${m.src}|${m.sport * 65536 + id}|${qtype}|${qname}`;
    const server = formatHostPort(m.dst, m.dport);
    const had = this.pending.get(key);
    if (had !== undefined) {
      if (m.tsUs - had.lastUs < WINDOW_US) {
        // The same packet again: after DNAT (a new destination), or on another interface.
        if (server !== had.server && had.endpoint === null) had.endpoint = server;
        return;
      }
      if (had.state === 'pending') {
        had.lastUs = m.tsUs;
        had.resends++;
        this.each(had, (g) => g.resends++);
        this.raceCheck(had);
        return;
      }
      this.pending.delete(key); // answered long ago: the same ID and question asked anew
    }
    const qKey = `${m.src}|${qtype}|${qname}`;
    const before = this.byQuestion.get(qKey);
    const tcp = m.transport === 'tcp';
    if (tcp) {
      const t = this.truncatedAt.get(qKey);
      if (t !== undefined && m.tsUs - t.answeredUs < this.timeoutUs) {
        this.truncatedAt.delete(qKey);
        this.r.tcpAfterTruncated++;
      }
    }
    this.search.asked(m.src, qname, m.tsUs);
    const lKey = qtype === A || qtype === AAAA ? `${m.src}|${m.sport}|${qname}` : '';
    const groups: [Group, Group, Group] = [this.total, this.group(this.clients, m.src), this.group(this.servers, server)];
    const query: Query = { key, client: m.src, qname, qtype, server, endpoint: null, tcp, firstUs: m.tsUs, lastUs: m.tsUs, answeredUs: 0, state: 'pending', partner: undefined, raced: false, resends: 0, groups, qKey, lKey };
    if (before !== undefined && before.state === 'pending' && before.key !== key && m.tsUs - before.lastUs >= RESEND_MIN_US) {
      // Asked again from a new port or with a new ID after a wait: a resend (single-request-reopen, an application's
      // retry), or another process of the same pod asking the same name. Counted as a resend; the earlier query is
      // still matched if its answer comes, and otherwise ends unanswered at its own timeout.
      query.resends++;
      this.each(query, (g) => g.resends++);
      this.raceCheck(before);
    }
    this.byQuestion.set(qKey, query);
    if (lKey !== '') {
      const other = this.byLookup.get(lKey);
      if (other !== undefined && other.qtype !== qtype && other.partner === undefined && m.tsUs - other.firstUs < PAIR_US) {
        other.partner = query;
        query.partner = other;
        this.r.pairs++;
      }
      this.byLookup.set(lKey, query);
    }
    this.pending.set(key, query);
    for (const g of groups) {
      g.queries++;
      if (qtype === AAAA) g.aaaa++;
      if (tcp) g.tcp++;
    }
    if (this.pending.size > this.maxPending) {
      const oldest = this.pending.values().next().value as Query;
      this.pending.delete(oldest.key);
      this.forget(oldest);
      if (oldest.state === 'pending') {
        this.r.evicted++;
        this.settle(oldest);
      }
    }
  }

  private answer(m: Message, id: number, qname: string, qtype: number): void {
    const key = `${m.dst}|${m.dport * 65536 + id}|${qtype}|${qname}`;
    const q = this.pending.get(key);
    if (q === undefined) {
      const gone = this.given.get(key);
      if (gone !== undefined && gone.answeredUs === 0) {
        gone.answeredUs = m.tsUs; // later sightings of it are the same answer
        this.each(gone, (g) => g.late++);
        this.endpointGroup(gone).late++;
      } else if (gone === undefined) this.r.unmatchedAnswers++;
      return;
    }
    if (q.state === 'answered') return; // the same answer again (before and after un-DNAT), or a duplicate
    q.state = 'answered';
    q.answeredUs = m.tsUs;
    if (q.partner === undefined) this.r.lone++;
    const rcode = m.msg[3]! & 0x0f;
    const tc = (m.msg[2]! & 0x02) !== 0;
    const waited = m.tsUs - q.firstUs;
    const resent = q.lastUs > q.firstUs;
    const rc = rcodeName(rcode);
    for (const g of q.groups) g.answer(rc, waited, resent, tc);
    const endpoint = this.settle(q);
    endpoint.answer(rc, waited, resent, tc);
    if (tc && m.transport === 'udp' && this.truncatedAt.size < this.maxPending) this.truncatedAt.set(q.qKey, q);
    if (rcode === 3) this.search.nxdomain(q.client, q.qname, m.tsUs, [...q.groups, endpoint]);
    if (resent) this.stall(q, waited, 'answered-after-resend');
    else if (waited >= this.slowUs) this.stall(q, waited, 'slow');
  }

  /** A client opened a TCP connection to a DNS port (its SYN). */
  connect(client: string, tsUs: number): void {
    if (this.connects.size < this.maxPending || this.connects.has(client)) this.connects.set(client, tsUs);
  }

  /** The race's signature: this query of an A/AAAA pair went unanswered while its partner was answered. */
  private raceCheck(q: Query): void {
    if (q.raced || q.partner === undefined || q.partner.state !== 'answered' || q.state === 'answered') return;
    q.raced = true;
    this.each(q, (g) => g.raceSignature++);
    // DNATed: this query seen after DNAT, or its partner, which left from the same port and so shares its conntrack
    // entry (the lost one of the pair may never have reached the endpoint's side).
    if (q.endpoint !== null || q.partner.endpoint !== null) this.r.raceDnated++;
  }

  private giveUp(q: Query, atUs: number): void {
    this.pending.delete(q.key);
    if (q.partner === undefined) {
      this.r.lone++;
      this.r.loneLost++;
    }
    const tcp = q.tcp ? 1 : 0;
    this.each(q, (g) => {
      g.unanswered++;
      g.tcpUnanswered += tcp;
    });
    this.settle(q, (g) => {
      g.unanswered++;
      g.tcpUnanswered += tcp;
    });
    this.stall(q, atUs - q.firstUs, 'unanswered', atUs);
    this.given.set(q.key, q);
    if (this.given.size > this.maxPending) this.given.delete(this.given.keys().next().value as string);
    this.forget(q);
  }

  private forget(q: Query): void {
    if (this.byQuestion.get(q.qKey) === q) this.byQuestion.delete(q.qKey);
    if (q.lKey !== '' && this.byLookup.get(q.lKey) === q) this.byLookup.delete(q.lKey);
  }

  private stall(q: Query, waitedUs: number, outcome: StallEvent['outcome'], atUs = this.nowUs): void {
    if (waitedUs < this.slowUs && outcome !== 'unanswered') return;
    this.onStall?.({ event: 'stall', tsUs: atUs, client: q.client, pod: null, server: q.server, endpoint: q.endpoint, name: q.qname, type: typeName(q.qtype), waitedMs: Math.round(waitedUs / 100) / 10, outcome });
  }

  /** Give up queries past their timeout; forget answered ones and late-answer records past their use. */
  private sweep(atEnd: boolean): void {
    this.lastSweepUs = this.nowUs;
    for (const q of this.pending.values()) {
      if (q.state === 'answered') {
        if (this.nowUs - q.answeredUs > WINDOW_US) {
          this.pending.delete(q.key);
          this.forget(q);
        }
      } else if (this.nowUs - q.lastUs > this.timeoutUs + this.graceUs) {
        this.raceCheck(q);
        this.giveUp(q, q.lastUs + this.timeoutUs + this.graceUs);
      }
    }
    for (const [k, q] of this.truncatedAt) {
      if (this.nowUs - q.answeredUs <= this.timeoutUs) continue;
      // No TCP query followed within the timeout: the client tried and its connection never carried the query, or it
      // never tried (it took the truncated answer, or gave up).
      this.truncatedAt.delete(k);
      const syn = this.connects.get(q.client);
      const tried = syn !== undefined && syn >= q.answeredUs;
      const count = (g: Group): void => {
        if (tried) g.truncatedTcpFailed++;
        else g.truncatedNoTcp++;
      };
      this.each(q, count);
      count(this.endpointGroup(q));
    }
    if (!atEnd) {
      for (const [k, q] of this.given) if (this.nowUs - q.lastUs > 4 * this.timeoutUs) this.given.delete(k);
      this.search.sweep(this.nowUs);
      for (const [k, t] of this.connects) if (this.nowUs - t > 2 * this.timeoutUs) this.connects.delete(k);
      for (const [k, q] of this.byLookup) if (this.nowUs - q.firstUs > PAIR_US && q.state === 'answered') this.byLookup.delete(k);
    }
  }

  /** The summary. `endUs`: when the capture ended, if known (a live capture): queries past their timeout by then are lost. */
  result(endUs?: number): MatchResult {
    if (endUs !== undefined && endUs > this.nowUs) this.nowUs = endUs;
    this.sweep(true);
    let inFlight = 0;
    for (const q of this.pending.values()) {
      if (q.state !== 'pending') continue;
      inFlight++;
      this.settle(q);
    }
    const t = this.total;
    const total = t.toJSON();
    const groups = (m: Map<string, Group>): Record<string, GroupStats> => Object.fromEntries([...m].sort((a, b) => b[1].queries - a[1].queries).map(([k, g]) => [k, g.toJSON()]));
    return {
      messages: this.r.messages,
      malformed: this.r.malformed,
      ...(Object.fromEntries(TOTALS.map((k) => [k, total[k]])) as Pick<GroupStats, (typeof TOTALS)[number]>),
      unmatchedAnswers: this.r.unmatchedAnswers,
      inFlightAtEnd: inFlight,
      evicted: this.r.evicted,
      excluded: this.r.excluded,
      tcpAfterTruncated: this.r.tcpAfterTruncated,
      searchOverflow: this.search.overflow,
      raceSignatureDnated: this.r.raceDnated,
      pairs: this.r.pairs,
      lone: this.r.lone,
      loneLost: this.r.loneLost,
      total,
      byClient: groups(this.clients),
      byServer: groups(this.servers),
      byEndpoint: groups(this.endpoints),
      histogram: t.hist.toJSON(),
    };
  }
}
