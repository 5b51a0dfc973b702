/**
 * What the glibc and musl emulations share: options and result types, one UDP
 * socket with its transmissions (EmuSocket), DNS over TCP (vc.ts: sendVc), the
 * accounting of a reply, and each name's plan (candidates and encoded queries).
 *
 * Accounting per transmission: every datagram sent ends as answered, timed
 * out, an error, or (musl only) cancelled: a copy sent to another nameserver
 * or in an earlier round whose query was answered by another copy.
 */
import net from 'node:net';
import type { RecordType } from 'dns-packet';
import { expandName } from '../../resolv/expand.js';
import type { Expansion } from '../../resolv/expand.js';
import type { ResolvConf } from '../../resolv/parse.js';
import { answerCount, formatHostPort, idOf, isResponse, isTruncated, makeTemplate, patchId, rcodeName, rcodeOf, sameQuestion } from '../../dns/wire.js';
import type { QueryTemplate } from '../../dns/wire.js';
import { Counters, Histogram } from '../../stats/index.js';
import type { PercentileSummary, HistogramSnapshot } from '../../stats/index.js';
import type { Progress, RcodeCounts, SlowEvent } from '../accounting.js';
import { openError } from '../open-errors.js';
import { openEndpoint } from '../udp.js';
import type { EndpointEvents, Peer, UdpEndpoint } from '../udp.js';
import { slowEvent } from '../accounting.js';

export interface Nameserver {
  host: string;
  port: number;
}

export interface ResolverEmulationOptions {
  conf: ResolvConf;
  nameservers: Nameserver[];
  names: string[];
  concurrency: number;
  total?: number;
  durationMs?: number;
  qps?: number;
  slowMs: number;
  /** Overrides the file's `options timeout:` (seconds, as glibc counts them). */
  timeoutSeconds?: number;
  /** Override the file's single-request options (glibc). */
  singleRequest?: boolean;
  singleRequestReopen?: boolean;
  /** Keep glibc's adaptive mode per slot across lookups. */
  longLived?: boolean;
  signal?: AbortSignal;
  onSlow?: (e: SlowEvent) => void;
  onProgress?: (p: Progress) => void;
  progressEveryMs?: number;
}

export type LookupOutcome = 'answer' | 'nxdomain' | 'nodata' | 'servfail' | 'timeout' | 'refused' | 'error';

export interface LookupStats {
  libc: 'glibc' | 'musl';
  lookups: number;
  outcomes: Record<string, number>;
  lookupLatencyMs: PercentileSummary;
  /** The resolver's timeout (options timeout:, or --timeout). */
  timeoutMs: number;
  /** Lookups slower than 1 s and 5 s. */
  stalls: { over1s: number; over5s: number };
  /** Lookups that took the resolver's timeout or longer: the retry signature. */
  overTimeout: number;
  /** Of those, lookups that then ended in an error (in `outcomes.error` too): a lookup failed at once is not one. */
  erroredAfterTimeout: number;
  /** How often glibc's adaptive switch fired. */
  modeSwitches: { singleRequest: number; singleRequestReopen: number };
  /** musl: copies of a query cut short because another copy was answered. */
  cancelled: number;
  histogram: HistogramSnapshot;
}


export interface Tx {
  id: number;
  t: QueryTemplate;
  sentAt: number;
  done: boolean;
  rcode: number;
  ancount: number;
  /** The reply had the TC bit: the libc asks again over TCP. */
  tc: boolean;
}

/** A name's candidates and their encoded queries: the same for every lookup of that name. */
export interface Plan {
  expansion: Expansion;
  /** templates[i] are candidate i's queries. */
  templates: QueryTemplate[][];
}

export interface Shared {
  plans: Map<string, Plan>;
  st: { sent: number; answered: number; timeouts: number; slow: number; late: number; wrongId: number; wrongQuestion: number; malformed: number; truncated: number; tcpRetries: number; cancelled: number };
  hist: Histogram;
  rcodes: RcodeCounts;
  errors: Counters;
  slowMs: number;
  onSlow: ((e: SlowEvent) => void) | undefined;
  /** glibc `options rotate`: the next lookup's first nameserver. */
  rotateOffset: number;
  /** Distinct UDP source ports the emulated libc used. */
  ports: PortSet;
  /** performance.now() of the last reply counted; -1 before the first. */
  lastAnswerAt: number;
}

export const PROBLEM_RCODES = new Set([2, 4, 5]); // SERVFAIL, NOTIMP, REFUSED

/** Count a matching reply for a transmission: latency, rcode, slow line. */
export function acceptReply(sh: Shared, tx: Tx, msg: Buffer, from: string | Peer, sourcePort: number, now: number): void {
  tx.done = true;
  tx.rcode = rcodeOf(msg);
  tx.ancount = answerCount(msg);
  tx.tc = isTruncated(msg);
  if (tx.tc) sh.st.truncated++;
  const latency = now - tx.sentAt;
  sh.hist.record(latency * 1000);
  sh.rcodes.add(tx.rcode);
  sh.st.answered++;
  sh.lastAnswerAt = now;
  if (latency > sh.slowMs) {
    sh.st.slow++;
    const server = typeof from === 'string' ? from : `${from.address}:${from.port}`; // made only for a slow line
    sh.onSlow?.(slowEvent('query', tx.t.name, tx.t.label, server, sourcePort, rcodeName(tx.rcode), latency));
  }
}

const families = new Map<string, 'udp4' | 'udp6'>();
/** A nameserver's socket family, worked out once per address (net.isIPv6 is a large regular expression). */
function familyOf(host: string): 'udp4' | 'udp6' {
  let f = families.get(host);
  if (f === undefined) {
    f = net.isIPv6(host) ? 'udp6' : 'udp4';
    if (families.size < 1024) families.set(host, f);
  }
  return f;
}

/** Distinct source ports, at most 65,536: a bitmap, not a Set (a socket per candidate name adds one each time). */
export class PortSet {
  private readonly seen = new Uint8Array(65_536);
  size = 0;

  add(port: number): void {
    if (this.seen[port] === 0) {
      this.seen[port] = 1;
      this.size++;
    }
  }
}

/** The timer of EmuSocket.waitFor. */
function waitTimerFired(s: EmuSocket): void {
  s.timerFired();
}

const READY = Promise.resolve(true);
const NOT_READY = Promise.resolve(false);

/** One UDP socket of the emulation, with its transmissions and the wait in progress. */
export class EmuSocket implements EndpointEvents<Tx> {
  port = 0;
  readonly txs: Tx[] = [];
  /** IDs of transmissions ended unanswered: a reply to one is late, not a wrong ID. Made at the first. */
  private expired: Set<number> | undefined;
  /** The wait in progress (waitFor): what it waits for, until when, how it ends, its timer. */
  private waitReady: (() => boolean) | undefined;
  private deadline = 0;
  private resolveWait: ((ready: boolean) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private io: UdpEndpoint<Tx> | undefined;
  /** The error code that failed the socket (ECONNREFUSED, ...), if any. */
  failure: string | undefined;

  private constructor(
    private readonly sh: Shared,
    readonly label: string,
  ) {}

  /** A socket as the libc opens it: at once through Node's UDP handle, else a promise of one. Failing to open throws one clear line. */
  static open(sh: Shared, ns: Nameserver | undefined, unconnectedFamily: 'udp4' | 'udp6' = 'udp4'): EmuSocket | Promise<EmuSocket> {
    const family = ns ? familyOf(ns.host) : unconnectedFamily;
    const s = new EmuSocket(sh, ns ? formatHostPort(ns.host, ns.port) : '*');
    // The socket is its endpoint's event handler (message, error, sendFailed): no closures per socket.
    let opening: UdpEndpoint<Tx> | Promise<UdpEndpoint<Tx>>;
    try {
      opening = openEndpoint(family, ns, s);
    } catch (err) {
      throw openError(err, s.label, ns !== undefined);
    }
    if (!(opening instanceof Promise)) return s.ready(opening);
    return opening.then(
      (io) => s.ready(io),
      (err: unknown) => {
        throw openError(err, s.label, ns !== undefined);
      },
    );
  }

  private ready(io: UdpEndpoint<Tx>): EmuSocket {
    this.io = io;
    this.port = io.port;
    this.sh.ports.add(io.port);
    return this;
  }

  send(t: QueryTemplate, id: number, to?: Nameserver): Tx {
    const buf = Buffer.from(t.bytes);
    patchId(buf, id);
    const tx: Tx = { id, t, sentAt: performance.now(), done: false, rcode: -1, ancount: 0, tc: false };
    this.txs.push(tx);
    this.sh.st.sent++;
    this.io?.send(buf, to, tx);
    return tx;
  }

  /** A pending socket error (EndpointEvents). */
  error(code: string): void {
    this.failure = code;
    this.poke();
  }

  /** A failed send (a pending ICMP error: ECONNREFUSED) fails the socket, as recvfrom would in send_dg (EndpointEvents). */
  sendFailed(tx: Tx, code: string): void {
    if (tx.done) return;
    tx.done = true;
    this.sh.errors.add(code);
    this.failure ??= code;
    this.poke();
  }

  /** A datagram (EndpointEvents). */
  message(msg: Buffer, from: Peer): void {
    const sh = this.sh;
    if (!isResponse(msg)) {
      sh.st.malformed++;
      return;
    }
    const id = idOf(msg);
    const now = performance.now();
    let matchedId = false;
    for (const tx of this.txs) {
      if (tx.id !== id || tx.done) continue;
      matchedId = true;
      if (!sameQuestion(msg, tx.t)) continue;
      acceptReply(sh, tx, msg, from, this.port, now);
      this.poke();
      return;
    }
    if (matchedId) sh.st.wrongQuestion++;
    else if (this.expired?.has(id)) sh.st.late++;
    else sh.st.wrongId++;
  }

  /**
   * Wait until `ready()` or the deadline; true when ready. One promise and one timer per wait, checked
   * again on every datagram or socket error (not a new promise per datagram). The wait's state lives on the
   * socket, and the timer calls a module-level function: no closures per wait but the promise's.
   */
  waitFor(ready: () => boolean, deadline: number): Promise<boolean> {
    if (ready()) return READY;
    if (this.failure !== undefined || deadline - performance.now() <= 0) return NOT_READY;
    this.waitReady = ready;
    this.deadline = deadline;
    const waiting = new Promise<boolean>((resolve) => {
      this.resolveWait = resolve;
    });
    this.timer = setTimeout(waitTimerFired, deadline - performance.now(), this);
    return waiting;
  }

  /** A datagram or a socket error: the wait may be over. */
  private poke(): void {
    if (this.resolveWait === undefined) return;
    if (this.waitReady?.()) this.settle(true);
    else if (this.failure !== undefined) this.settle(false);
  }

  /** The wait's timer fired: what a datagram asks, then the deadline. */
  timerFired(): void {
    this.poke();
    if (this.resolveWait === undefined) return;
    // A timer may fire up to a millisecond early: wait out the rest.
    const left = this.deadline - performance.now();
    if (left <= 0) this.settle(false);
    else this.timer = setTimeout(waitTimerFired, left, this);
  }

  private settle(v: boolean): void {
    clearTimeout(this.timer);
    const resolve = this.resolveWait;
    this.resolveWait = undefined;
    this.waitReady = undefined;
    this.timer = undefined;
    resolve?.(v);
  }

  /** End every unanswered transmission as a timeout (or `as`). */
  expire(as: 'timeout' | 'cancelled' | string = 'timeout'): void {
    for (const tx of this.txs) {
      if (tx.done) continue;
      tx.done = true;
      (this.expired ??= new Set()).add(tx.id);
      if (as === 'timeout') this.sh.st.timeouts++;
      else if (as === 'cancelled') this.sh.st.cancelled++;
      else this.sh.errors.add(as);
    }
  }

  close(): void {
    this.io?.close();
  }
}

export function randomId(): number {
  return (Math.random() * 0x10000) | 0;
}

export type CandidateResult = { kind: 'answer' | 'nxdomain' | 'nodata' | 'servfail' | 'refused' } | { kind: 'timeout' } | { kind: 'error'; code: string };

export function classify(txs: Tx[]): CandidateResult {
  const got = txs.filter((t) => t.rcode >= 0);
  if (got.length === 0) return { kind: 'timeout' };
  if (got.some((t) => t.rcode === 0 && t.ancount > 0)) return { kind: 'answer' };
  if (got.every((t) => t.rcode === 3)) return { kind: 'nxdomain' };
  if (got.some((t) => t.rcode === 2)) return { kind: 'servfail' };
  if (got.some((t) => t.rcode === 5 || t.rcode === 4)) return { kind: 'refused' };
  if (got.some((t) => t.rcode === 3)) return { kind: 'nxdomain' };
  return { kind: 'nodata' };
}


export function planFor(sh: Shared, conf: ResolvConf, name: string): Plan {
  let plan = sh.plans.get(name);
  if (plan === undefined) {
    const expansion = expandName(name, conf);
    // A candidate the libc cannot encode is never sent: no template for it.
    plan = { expansion, templates: expansion.candidates.map((c) => (c.sent ? c.types.map((t) => makeTemplate(c.fqdn, t as RecordType)) : [])) };
    sh.plans.set(name, plan);
  }
  return plan;
}

/** The resolver's per-try timeout in seconds: --timeout, else the file's `options timeout:`. */
export function timeoutSeconds(o: ResolverEmulationOptions): number {
  return o.timeoutSeconds ?? o.conf.options.timeout;
}

