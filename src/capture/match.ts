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
import { formatHostPort, rcodeName } from '../dns/wire.js';
import { Group } from './groups.js';
import type { GroupStats } from './groups.js';
import { dropIfEmpty, idle, nameState, newClient, without } from './clients.js';
import { ClientTable } from './client-table.js';
import type { Tally } from './client-table.js';
import type { ClientState } from './clients.js';
import { lastQuestionType, questionName, typeName } from './question.js';
import { SearchList } from './search.js';

export type { GroupStats } from './groups.js';
export { TOTALS, hostOfKey } from './match-types.js';
export type { MatchResult, MatcherOptions, Message, StallEvent } from './match-types.js';
import { TOTALS } from './match-types.js';
import type { MatchResult, MatcherOptions, Message, Query, StallEvent } from './match-types.js';
export { question, questionName, typeName } from './question.js';

/** Two sightings of one packet (before and after DNAT, or on two interfaces) are this close, microseconds. */
export const WINDOW_US = 50_000;
/**
 * An answered query is kept this long for the answer's second sighting (after reverse DNAT, or on a second interface),
 * which on one node comes within microseconds; after it, another copy is an answer without its query (counted). Short,
 * so that at a busy capture's rate answered queries are let go young.
 */
const ANSWERED_HOLD_US = 10_000;
/** A query from a new port or with a new ID is a resend of an unanswered one only after this wait (glibc waits at least 1 s). */
const RESEND_MIN_US = 900_000;
/** A and AAAA of one lookup leave together: within this, microseconds. */
const PAIR_US = 10_000;
export const MAX_PENDING = 200_000;
/** A sweep comes after at most this many messages (or a quarter of the waiting queries, if more). */
const SWEEP_MESSAGES = 2048;
/** A query its client keeps resending without an answer is unanswered this many timeouts after its first send. */
const OUTAGE_TIMEOUTS = 4;
/** Clients in the result, by trouble, then search-list waste, then queries; every client counts in the totals. */
export const MAX_CLIENTS_SHOWN = 1000;
const A = 1;
const AAAA = 28;
const round1 = (x: number): number => Math.round(x * 10) / 10;

export class Matcher {
  /** Queries waiting or just answered, oldest first: swept, and evicted from the front past maxPending. */
  private readonly pending = new Set<Query>();
  /** Queries given up lately, oldest first, for late answers (found through their client's `given`). */
  private readonly given = new Set<Query>();
  /** Queries whose UDP answer was truncated, awaiting a TCP query (found through their name's `truncated`). */
  private readonly truncated = new Set<Query>();
  /** Clients with something waiting; every client's counts are in `table`. */
  private readonly clients = new Map<string, ClientState<Query>>();
  private readonly table = new ClientTable();
  /** Clients that may have nothing left waiting: let go at the next sweep, when nothing holds them. */
  private readonly idle: ClientState<Query>[] = [];
  private readonly search: SearchList;
  /** Each client's latest TCP connection attempt (SYN) to a DNS port: a truncated answer's retry that may not get through. */
  private readonly connects = new Map<string, number>();
  private readonly total = new Group();
  private readonly servers = new Map<string, Group>();
  private readonly endpoints = new Map<string, Group>();
  private nowUs = 0;
  private lastSweepUs = 0;
  /** Messages since the last sweep. */
  private sinceSweep = 0;
  private readonly r = { messages: 0, malformed: 0, unmatchedAnswers: 0, excluded: 0, evicted: 0, tcpAfterTruncated: 0, pairs: 0, lone: 0, loneFirstLost: 0, raceDnated: 0 };

  /**
   * A resolver resends when its timeout ends: the resend arrives a moment after it (glibc: the same packet, from the same
   * port, with the same ID). A query is given up only this long after its timeout, so the resend is still its own.
   */
  private readonly graceUs: number;

  private readonly timeoutUs: number;
  private readonly slowUs: number;
  private readonly everyResend: boolean;
  private readonly onStall: ((e: StallEvent) => void) | undefined;
  private readonly maxPending: number;
  private readonly exclude: ReadonlySet<string> | undefined;

  constructor(o: MatcherOptions) {
    this.timeoutUs = o.timeoutUs;
    this.slowUs = o.slowUs;
    this.everyResend = o.everyResend === true;
    this.onStall = o.onStall;
    this.maxPending = o.maxPending ?? MAX_PENDING;
    this.exclude = o.exclude !== undefined && o.exclude.size > 0 ? o.exclude : undefined;
    this.graceUs = Math.max(200_000, this.timeoutUs / 5);
    this.search = new SearchList(this.maxPending);
  }

  /** The server's key, the same string while the server is (most queries of a capture go to one or two). */
  private lastDst = '';
  private lastDport = -1;
  private lastServer = '';
  private serverKey(dst: string, dport: number): string {
    if (dst !== this.lastDst || dport !== this.lastDport) {
      this.lastDst = dst;
      this.lastDport = dport;
      this.lastServer = formatHostPort(dst, dport);
    }
    return this.lastServer;
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
  private each(q: Query, f: (g: Tally) => void): void {
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
    // Every 250 ms of capture time, and sooner when many messages came since: what a sweep lets go (answered queries,
    // idle clients) is then let go while young, never promoted to the old generation a busy capture's rate would fill.
    // A sweep walks every waiting query, so it waits for at least a quarter as many messages: constant work a message.
    if (this.nowUs - this.lastSweepUs >= 250_000 || ++this.sinceSweep >= Math.max(SWEEP_MESSAGES, this.pending.size >> 2)) this.sweep(false);
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
    let c = this.clients.get(m.src);
    if (c === undefined) {
      c = newClient<Query>(m.src, this.table.tally(m.src));
      this.clients.set(m.src, c);
    }
    const wire = m.sport * 65536 + id;
    const server = this.serverKey(m.dst, m.dport);
    const had = c.wire.get(wire, qtype, qname);
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
      // Answered long ago: the same ID and question asked anew.
      this.pending.delete(had);
      c.wire.delete(had);
    } else {
      const gone = c.given.get(wire, qtype, qname);
      if (gone !== undefined && gone.answeredUs === 0 && m.tsUs - gone.lastUs < this.timeoutUs + this.graceUs) {
        // Sent again after it was given up: still that query (a client that keeps asking through an outage), not a new one.
        if (m.tsUs - gone.lastUs >= WINDOW_US) {
          gone.lastUs = m.tsUs;
          gone.resends++;
          this.each(gone, (g) => g.resends++);
          this.endpointGroup(gone).resends++;
        }
        return;
      }
    }
    const ns = nameState(c, qname);
    const before = ns.latest.find((q) => q.qtype === qtype);
    const tcp = m.transport === 'tcp';
    if (tcp) {
      const t = ns.truncated.find((q) => q.qtype === qtype);
      if (t !== undefined && m.tsUs - t.answeredUs < this.timeoutUs) {
        without(ns.truncated, t);
        this.truncated.delete(t);
        this.r.tcpAfterTruncated++;
      }
    }
    this.search.asked(m.src, qname, m.tsUs);
    const groups: [Tally, Tally, Tally] = [this.total, c.group, this.group(this.servers, server)];
    const query: Query = { client: c, qname, qtype, wire, sport: m.sport, server, endpoint: null, tcp, firstUs: m.tsUs, lastUs: m.tsUs, answeredUs: 0, state: 'pending', partner: undefined, raced: false, resends: 0, groups, ns };
    if (before !== undefined && before.state === 'pending' && before.wire !== wire && m.tsUs - before.lastUs >= RESEND_MIN_US) {
      // Asked again from a new port or with a new ID after a wait: a resend (single-request-reopen, an application's
      // retry), or another process of the same pod asking the same name. Counted as a resend; the earlier query is
      // still matched if its answer comes, and otherwise ends unanswered at its own timeout.
      query.resends++;
      this.each(query, (g) => g.resends++);
      this.raceCheck(before);
    }
    if (before !== undefined) without(ns.latest, before);
    ns.latest.push(query);
    if (qtype === A || qtype === AAAA) {
      const other = ns.lookups.get(m.sport);
      // A pair only when this one left before the other's answer came back: queries one after another (single-request)
      // cannot race, however close.
      if (other !== undefined && other.qtype !== qtype && other.partner === undefined && other.state === 'pending' && m.tsUs - other.firstUs < PAIR_US) {
        other.partner = query;
        query.partner = other;
        this.r.pairs++;
      }
      ns.lookups.set(m.sport, query);
    }
    c.wire.set(query);
    this.pending.add(query);
    for (const g of groups) {
      g.queries++;
      if (qtype === AAAA) g.aaaa++;
      if (tcp) g.tcp++;
    }
    if (this.pending.size > this.maxPending) {
      const oldest = this.pending.values().next().value as Query;
      this.remove(oldest);
      if (oldest.state === 'pending') {
        this.r.evicted++;
        this.settle(oldest);
      }
    }
  }

  private answer(m: Message, id: number, qname: string, qtype: number): void {
    const c = this.clients.get(m.dst);
    const wire = m.dport * 65536 + id;
    const q = c?.wire.get(wire, qtype, qname);
    if (q === undefined) {
      const gone = c?.given.get(wire, qtype, qname);
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
    const rcode = m.msg[3]! & 0x0f;
    const tc = (m.msg[2]! & 0x02) !== 0;
    const waited = m.tsUs - q.firstUs;
    const resent = q.lastUs > q.firstUs;
    if (q.partner === undefined) {
      this.r.lone++;
      if (resent) this.r.loneFirstLost++; // answered only after a resend: its first send was lost
    }
    const rc = rcodeName(rcode);
    for (const g of q.groups) g.answer(rc, waited, resent, tc);
    const endpoint = this.settle(q);
    endpoint.answer(rc, waited, resent, tc);
    if (tc && m.transport === 'udp' && this.truncated.size < this.maxPending) {
      const ns = q.ns;
      const old = ns.truncated.find((x) => x.qtype === q.qtype);
      if (old !== undefined) {
        without(ns.truncated, old);
        this.truncated.delete(old);
      }
      ns.truncated.push(q);
      this.truncated.add(q);
    }
    if (rcode === 3) this.search.nxdomain(q.client.address, q.qname, m.tsUs, q.groups, endpoint);
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
    this.remove(q);
    if (q.partner === undefined) {
      this.r.lone++;
      this.r.loneFirstLost++;
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
    q.client.given.set(q);
    this.given.add(q);
    if (this.given.size > this.maxPending) this.ungive(this.given.values().next().value as Query);
  }

  private ungive(q: Query): void {
    this.given.delete(q);
    q.client.given.delete(q);
    if (idle(q.client)) this.idle.push(q.client);
  }

  /** The query leaves the tables of waiting queries: its wire key, and its name's latest and lookups. */
  private remove(q: Query): void {
    this.pending.delete(q);
    q.client.wire.delete(q);
    without(q.ns.latest, q);
    if (q.ns.lookups.get(q.sport) === q) q.ns.lookups.delete(q.sport);
    dropIfEmpty(q.client, q.qname, q.ns);
    if (idle(q.client)) this.idle.push(q.client);
  }

  private stall(q: Query, waitedUs: number, outcome: StallEvent['outcome'], atUs = this.nowUs): void {
    if (waitedUs < this.slowUs && outcome !== 'unanswered' && !(this.everyResend && outcome === 'answered-after-resend')) return;
    this.onStall?.({ event: 'stall', tsUs: atUs, client: q.client.address, pod: null, server: q.server, endpoint: q.endpoint, name: q.qname, type: typeName(q.qtype), waitedMs: Math.round(waitedUs / 100) / 10, outcome, clientPort: q.sport, firstSentUs: q.firstUs });
  }

  /** Give up queries past their timeout; forget answered ones and late-answer records past their use. */
  private sweep(atEnd: boolean): void {
    this.lastSweepUs = this.nowUs;
    this.sinceSweep = 0;
    for (const q of this.pending) {
      if (q.state === 'answered') {
        if (this.nowUs - q.answeredUs > ANSWERED_HOLD_US) this.remove(q);
      } else if (this.nowUs - q.lastUs > this.timeoutUs + this.graceUs) {
        this.raceCheck(q);
        this.giveUp(q, q.lastUs + this.timeoutUs + this.graceUs);
      } else if (this.nowUs - q.firstUs > OUTAGE_TIMEOUTS * this.timeoutUs) {
        // Sent again and again, never answered: an outage its resends would keep open. Unanswered now; the sends
        // that follow are still its own, never new queries.
        this.raceCheck(q);
        this.giveUp(q, this.nowUs);
      }
    }
    for (const q of this.truncated) {
      if (this.nowUs - q.answeredUs <= this.timeoutUs) continue;
      // No TCP query followed within the timeout: the client tried and its connection never carried the query, or it
      // never tried (it took the truncated answer, or gave up).
      this.truncated.delete(q);
      without(q.ns.truncated, q);
      dropIfEmpty(q.client, q.qname, q.ns);
      const syn = this.connects.get(q.client.address);
      const tried = syn !== undefined && syn >= q.answeredUs;
      const count = (g: Tally): void => {
        if (tried) g.truncatedTcpFailed++;
        else g.truncatedNoTcp++;
      };
      this.each(q, count);
      count(this.endpointGroup(q));
    }
    if (!atEnd) {
      for (const q of this.given) if (this.nowUs - q.lastUs > 4 * this.timeoutUs) this.ungive(q);
      // Clients with nothing left waiting: their matching state let go (their counts stay in the table). Between
      // messages, so nothing holds them.
      for (const c of this.idle) if (idle(c) && this.clients.get(c.address) === c) this.clients.delete(c.address);
      this.idle.length = 0;
      this.search.sweep(this.nowUs);
      for (const [k, t] of this.connects) if (this.nowUs - t > 2 * this.timeoutUs) this.connects.delete(k);
    }
  }

  /** The summary. `endUs`: when the capture ended, if known (a live capture): queries past their timeout by then are lost. */
  result(endUs?: number): MatchResult {
    if (endUs !== undefined && endUs > this.nowUs) this.nowUs = endUs;
    this.sweep(true);
    const waits: number[] = [];
    for (const q of this.pending) {
      if (q.state !== 'pending') continue;
      if (this.nowUs - q.firstUs >= this.timeoutUs) {
        // Unanswered for the whole timeout when the capture ended: lost, though its grace had not run out.
        this.raceCheck(q);
        this.giveUp(q, this.nowUs);
        continue;
      }
      waits.push((this.nowUs - q.firstUs) / 1000);
      this.settle(q);
    }
    waits.sort((a, b) => a - b);
    // Of those, the ones that had waited longer than any answer took: each 1 in (answers + 1) at most, if no more than slow.
    const t = this.total;
    const hist = t.hist;
    const longest = hist.count > 0 ? hist.max / 1000 : Infinity;
    const longer = waits.filter((w) => w > longest).length;
    const total = t.toJSON();
    const groups = (m: Iterable<[string, Group]>): Record<string, GroupStats> => Object.fromEntries([...m].sort((a, b) => b[1].queries - a[1].queries).map(([k, g]) => [k, g.toJSON()]));
    // The clients shown: those that stalled, lost one of a pair, took a truncated answer or wasted the most on the
    // search list first, then the busiest, then the first seen; the rest are in the totals.
    const tb = this.table;
    const shown = tb.top(MAX_CLIENTS_SHOWN, (v) => [v.unanswered + v.answeredAfterResend + v.raceSignature + v.truncatedNoTcp + v.truncatedTcpFailed, v.searchQueries, v.queries, -v.row]);
    const withHistogram = shown.filter((c) => tb.hasPercentiles(c.row)).length;
    return {
      messages: this.r.messages,
      malformed: this.r.malformed,
      ...(Object.fromEntries(TOTALS.map((k) => [k, total[k]])) as Pick<GroupStats, (typeof TOTALS)[number]>),
      unmatchedAnswers: this.r.unmatchedAnswers,
      inFlightAtEnd: waits.length,
      inFlightWaitsMs: waits.length === 0 ? null : { min: round1(waits[0]!), median: round1(waits[(waits.length - 1) >> 1]!), max: round1(waits[waits.length - 1]!), longerThanAnyAnswer: longer },
      evicted: this.r.evicted,
      excluded: this.r.excluded,
      tcpAfterTruncated: this.r.tcpAfterTruncated,
      searchOverflow: this.search.overflow,
      raceSignatureDnated: this.r.raceDnated,
      pairs: this.r.pairs,
      lone: this.r.lone,
      loneFirstLost: this.r.loneFirstLost,
      total,
      clients: { seen: tb.size, shown: shown.length, withPercentiles: withHistogram },
      byClient: Object.fromEntries(shown.map((c): [string, GroupStats] => [c.address, tb.stats(c.row)]).sort((a, b) => b[1].queries - a[1].queries)),
      byServer: groups(this.servers),
      byEndpoint: groups(this.endpoints),
      histogram: hist.toJSON(),
    };
  }
}
