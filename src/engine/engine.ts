/**
 * The fast benchmark engine: many queries in flight over a pool of connected UDP sockets, in the shape dnsperf and
 * flamethrower use.
 *
 * - A fixed array of query slots (slots.ts); a query is found by its 16-bit message ID through one ID -> slot
 *   table. IDs come first-in-first-out from all 65,536, and those of timed-out queries sit out twice the timeout
 *   (ids.ts); a reply for one of them meanwhile is `late`.
 * - Queries are spread round-robin over a pool of sockets, each its own source port. Through a Service IP conntrack
 *   pins each source port to one endpoint, so one socket would measure one endpoint; the pool (default 256) samples
 *   them as many clients do, and holds at most one conntrack entry per socket.
 * - Each query type/name is encoded once; a slot copies the template into its own buffer and patches the ID in
 *   place (packets.ts). A send error always belongs to the slot's query: a slot waits for its send to complete.
 * - One 'message' handler per socket reads the header and compares the question bytes; nothing is decoded.
 * - One sweep timer expires queries; latency goes into a fixed-memory histogram.
 * - With --qps, queries are scheduled at t0 + k/qps and latency counts from the scheduled moment, so a slow server
 *   cannot hide behind a full pipeline (no coordinated omission).
 *
 * Accounting is exact: every query sent ends as exactly one of answered (by rcode), timed out, or an error. Replies
 * count only when ID and question match a query in flight on that socket (RFC 5452; the connected socket already
 * drops datagrams from any other address or port). A socket error that no query in flight can own is counted apart
 * (`unattributedErrors`).
 *
 * Refusals: ICMP port unreachable on a connected socket becomes one pending ECONNREFUSED per socket (the kernel merges
 * several). It ends the oldest query in flight on that socket; queries sent on it before the refusal that then get no
 * reply end as refusals too, not as timeouts.
 */
import net from 'node:net';
import { UserError } from '../errors.js';
import { Counters, Histogram, LATENCY_MARKS_US } from '../stats/index.js';
import { formatHostPort, idOf, isResponse, isTruncated, patchId, rcodeName, rcodeOf, sameQuestion } from '../dns/wire.js';
import { readSocketDrops, readUdpSnmp, snmpDelta } from '../host/drops.js';
import type { LocalDrops } from '../host/drops.js';
import { RcodeCounts, slowEvent } from './accounting.js';
import type { Progress, QueryStats, SlowEvent } from './accounting.js';
import { ID_SPACE, IdPool, NO_ID } from './ids.js';
import { Packets } from './packets.js';
import { QueryList } from './queries.js';
import type { QuerySpec } from './queries.js';
import { FREE, IDLE, Slots, TCP, UDP } from './slots.js';
import { closeQuietly, grantedRecvBuffer, openConnected, recvBufferFor } from './sockets.js';
import { tcpExchange } from './tcp.js';
import { QUEUED, udpIo } from './udp.js';

export type { QuerySpec } from './queries.js';
export type { Progress, QueryStats, SlowEvent } from './accounting.js';

export interface EngineOptions {
  server: string;
  port: number;
  /** Cycled through in order: a list, or a QueryList (a --queries file of millions of lines, kept packed). */
  queries: readonly QuerySpec[] | QueryList;
  concurrency: number;
  total?: number;
  durationMs?: number;
  qps?: number;
  timeoutMs: number;
  slowMs: number;
  /** Retry truncated (TC) replies over TCP. */
  tcpRetry?: boolean;
  /** UDP sockets (source ports) to spread queries over; default min(256, total). */
  sockets?: number;
  /** Receive buffer to ask for per socket, bytes (default: room for its share of -c, 256 KiB to 16 MiB). */
  recvBufferBytes?: number;
  signal?: AbortSignal;
  onSlow?: (e: SlowEvent) => void;
  onProgress?: (p: Progress) => void;
  progressEveryMs?: number;
}

export interface EngineResult extends QueryStats {
  histogram: Histogram;
  durationMs: number;
  /** From the start to the last answer, ms; null with no answer. After it the run only waited for timeouts. */
  lastAnswerMs: number | null;
  /** True when stopped by the signal (Ctrl-C). */
  interrupted: boolean;
  /** UDP sockets used, each its own source port: at most this many conntrack entries (plus one per TCP retry). */
  sourcePorts: number;
  localDrops: LocalDrops;
}

const DEFAULT_SOCKETS = 256;
// launch(): what became of the query
const STARTED = 0;
const NOT_STARTED = 1; // no free slot or ID
const FAILED = 2; // the send was refused at once; the query ended as an error

export async function runEngine(o: EngineOptions): Promise<EngineResult> {
  const list = o.queries instanceof QueryList ? o.queries : QueryList.from(o.queries);
  if (list.count === 0) throw new UserError('no queries to send');
  const c = Math.max(1, Math.floor(o.concurrency));
  if (c > ID_SPACE / 4) throw new UserError(`-c ${c}: at most ${ID_SPACE / 4} queries can be in flight`);
  const budget = o.total ?? Number.POSITIVE_INFINITY;
  const nSockets = Math.max(1, Math.floor(o.sockets ?? Math.min(DEFAULT_SOCKETS, budget)));
  const packets = new Packets(list, c);
  const nTemplates = list.count;
  const family = net.isIPv6(o.server) ? 'udp6' : 'udp4';
  const target = formatHostPort(o.server, o.port);

  const slots = new Slots(c);
  const { state: slotState, id: slotId, sock: slotSock, query: slotQuery, start: slotStart, sent: slotSent, conn: slotConn, gen: slotGen } = slots;

  // IDs: a FIFO ring of free IDs, and the timed-out ones in quarantine for twice the timeout.
  const ids = new IdPool(2 * o.timeoutMs);
  const idSlot = new Int32Array(ID_SPACE).fill(FREE);

  const sockRefusedAt = new Float64Array(nSockets).fill(-1);
  const sockPort = new Int32Array(nSockets);
  let nextSock = 0;

  const hist = new Histogram('us', LATENCY_MARKS_US);
  const rcodes = new RcodeCounts();
  const errors = new Counters();
  const unattributed = new Counters();
  const st = { sent: 0, answered: 0, timeouts: 0, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0 };
  let inFlight = 0;
  let lastAnswerAt = -1;
  let started = 0; // queries taken from the budget
  let nextQuery = 0;
  let stopping = false;
  let interrupted = false;

  // ---- sockets ----
  const perSocket = Math.ceil(c / nSockets);
  const sockets = await openConnected(nSockets, o.server, o.port, o.recvBufferBytes ?? recvBufferFor(perSocket));
  sockets.forEach((s, i) => (sockPort[i] = s.address().port));
  const recvBufferBytes = grantedRecvBuffer(sockets[0]!);
  const snmpBefore = readUdpSnmp();

  const t0 = performance.now();
  const deadline = o.durationMs !== undefined ? t0 + o.durationMs : Number.POSITIVE_INFINITY;
  const qpsInterval = o.qps !== undefined && o.qps > 0 ? 1000 / o.qps : 0;

  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const budgetLeft = (now: number): boolean => !stopping && started < budget && now < deadline;

  /** End the slot's query. The ID goes back (or into quarantine); the slot, once its send completed. */
  function end(slot: number, quarantine: boolean, now: number): void {
    const id = slotId[slot]!;
    idSlot[id] = FREE;
    if (quarantine) ids.quarantine(id, now);
    else ids.give(id);
    slots.clear(slot);
    inFlight--;
  }

  /** A queued send finished. The slot is not reused before this. */
  function sendDone(slot: number, code: string | undefined): void {
    slots.sendPending[slot] = 0;
    if (slotState[slot] === IDLE) {
      // The query ended before its send completed (a timeout under a stalled send queue).
      if (code !== undefined) unattributed.add(code);
      slots.give(slot);
      pump(performance.now());
      return;
    }
    if (code !== undefined) {
      const now = performance.now();
      errors.add(code);
      end(slot, false, now);
      pump(now);
    }
  }

  /** Start one query in a free slot. `scheduledAt` is the latency origin. */
  function launch(scheduledAt: number, now: number): number {
    if (slots.free === 0) return NOT_STARTED;
    const id = ids.take();
    if (id === NO_ID) return NOT_STARTED;
    const slot = slots.take();
    const sock = nextSock;
    nextSock = nextSock + 1 === nSockets ? 0 : nextSock + 1;
    const qi = nextQuery;
    nextQuery = nextQuery + 1 === nTemplates ? 0 : nextQuery + 1;
    const t = packets.template(qi);
    const buf = packets.bufferFor(slot, qi);
    patchId(buf, id);
    slotId[slot] = id;
    slotSock[slot] = sock;
    slotQuery[slot] = qi;
    slotStart[slot] = scheduledAt;
    slotSent[slot] = now;
    slotState[slot] = UDP;
    idSlot[id] = slot;
    inFlight++;
    started++;
    st.sent++;
    const r = io.send(sock, slot, packets.perTemplate ? buf : buf.subarray(0, t.bytes.length));
    if (r === QUEUED) {
      slots.sendPending[slot] = 1;
      return STARTED;
    }
    if (typeof r !== 'string') return STARTED; // SENT
    // Refused at once (EPERM from a firewall, a pending ECONNREFUSED, ...): the query ends here as that error.
    errors.add(r);
    end(slot, false, now);
    return FAILED;
  }

  let pumpTimer: NodeJS.Timeout | undefined;
  let pumpLater: NodeJS.Immediate | undefined;
  const pumpAgain = (): void => {
    pumpLater = undefined;
    pump(performance.now());
  };
  /**
   * Fill free slots with whatever the schedule allows at `now`. After a send refused at once the
   * rest waits for the next turn of the event loop, so a firewall that refuses every send cannot
   * hold the loop (and the --duration deadline) in one call.
   */
  function pump(now: number): void {
    let r = STARTED;
    if (qpsInterval === 0) {
      while (slots.free > 0 && budgetLeft(now)) if ((r = launch(now, now)) !== STARTED) break;
    } else {
      while (slots.free > 0 && budgetLeft(now)) {
        const due = t0 + started * qpsInterval;
        if (due > now) {
          if (pumpTimer === undefined) {
            pumpTimer = setTimeout(() => {
              pumpTimer = undefined;
              pump(performance.now());
            }, Math.max(1, due - now));
          }
          break;
        }
        if ((r = launch(due, now)) !== STARTED) break;
      }
    }
    if (r === FAILED && pumpLater === undefined) pumpLater = setImmediate(pumpAgain);
    if (inFlight === 0 && !budgetLeft(now)) finish();
  }

  function complete(slot: number, rcode: number, now: number): void {
    lastAnswerAt = now;
    const latency = now - slotStart[slot]!;
    hist.record(latency * 1000);
    rcodes.add(rcode);
    st.answered++;
    if (latency > o.slowMs) {
      st.slow++;
      if (o.onSlow) {
        const t = packets.template(slotQuery[slot]!);
        const sourcePort = slotState[slot] === TCP ? (slotConn[slot]?.localPort ?? 0) : sockPort[slotSock[slot]!]!;
        o.onSlow(slowEvent('query', t.name, t.label, target, sourcePort, rcodeName(rcode), latency));
      }
    }
    end(slot, false, now);
  }

  /** The slot's query again over TCP: its own connection, destroyed when the slot ends, with a fresh timeout. */
  function retryOverTcp(slot: number): void {
    slotState[slot] = TCP;
    slotSent[slot] = performance.now();
    st.tcpRetries++;
    const gen = slotGen[slot]!;
    const t = packets.template(slotQuery[slot]!);
    const id = slotId[slot]!;
    const query = Buffer.alloc(2 + t.bytes.length);
    query.writeUInt16BE(t.bytes.length, 0);
    packets.sent(slot, slotQuery[slot]!).copy(query, 2, 0, t.bytes.length); // as sent, its ID patched in
    const mine = (): boolean => slotGen[slot] === gen && slotState[slot] === TCP;
    const fail = (code: string): void => {
      if (!mine()) return;
      errors.add(code);
      end(slot, false, performance.now());
      pump(performance.now());
    };
    slotConn[slot] = tcpExchange(o.server, o.port, query, (msg) => {
      if (!mine()) return;
      const now = performance.now();
      if (msg.length < 12 || idOf(msg) !== id || !sameQuestion(msg, t)) {
        st.wrongQuestion++;
        errors.add('tcp-bad-reply');
        end(slot, false, now);
      } else {
        complete(slot, rcodeOf(msg), now);
      }
      pump(performance.now());
    }, fail);
  }

  // ---- receive ----
  function onMessage(s: number, msg: Buffer): void {
    if (!isResponse(msg)) {
      st.malformed++;
      return;
    }
    const id = idOf(msg);
    const slot = idSlot[id]!;
    const now = performance.now();
    if (slot === FREE || slotSock[slot] !== s || slotState[slot] !== UDP) {
      if (slot === FREE && ids.quarantined(id, now)) st.late++;
      else st.wrongId++;
      return;
    }
    if (!sameQuestion(msg, packets.template(slotQuery[slot]!))) {
      st.wrongQuestion++;
      return;
    }
    if (isTruncated(msg)) {
      st.truncated++;
      if (o.tcpRetry) {
        retryOverTcp(slot);
        return;
      }
    }
    complete(slot, rcodeOf(msg), now);
    pump(now);
  }
  // A pending socket error (ICMP port unreachable: ECONNREFUSED) is charged
  // to the oldest UDP query in flight on this socket; with none, it is counted apart.
  function onSocketError(s: number, code: string): void {
    const now = performance.now();
    if (code === 'ECONNREFUSED') sockRefusedAt[s] = now;
    const oldest = slots.oldestOn(s);
    if (oldest === FREE) {
      unattributed.add(code);
      return;
    }
    errors.add(code);
    end(oldest, false, now);
    pump(now);
  }
  const io = udpIo(sockets, c, { message: onMessage, error: onSocketError, sendDone });

  // ---- one sweep timer for timeouts ----
  const sweepMs = Math.max(5, Math.min(100, o.timeoutMs / 20));
  const sweep = setInterval(() => {
    const now = performance.now();
    ids.release(now);
    for (let i = 0; i < c; i++) {
      if (slotState[i] === IDLE || now - slotSent[i]! < o.timeoutMs) continue;
      if (slotState[i] === UDP && sockRefusedAt[slotSock[i]!]! >= slotSent[i]!) {
        // Sent before a refusal on its socket and never answered: refused too.
        errors.add('ECONNREFUSED');
        end(i, false, now);
        continue;
      }
      st.timeouts++;
      end(i, true, now);
    }
    pump(performance.now());
  }, sweepMs);

  let progressTimer: NodeJS.Timeout | undefined;
  if (o.onProgress) {
    progressTimer = setInterval(() => {
      o.onProgress?.({ sent: st.sent, answered: st.answered, timeouts: st.timeouts, errors: errors.total, inFlight, elapsedMs: performance.now() - t0 });
    }, o.progressEveryMs ?? 500);
  }

  const onAbort = (): void => {
    stopping = true;
    interrupted = true;
    pump(performance.now());
  };
  if (o.signal) {
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
  }
  let deadlineTimer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) deadlineTimer = setTimeout(() => pump(performance.now()), Math.max(0, deadline - t0) + 1);

  try {
    pump(performance.now());
    await done;
  } finally {
    clearInterval(sweep);
    if (progressTimer) clearInterval(progressTimer);
    if (pumpTimer) clearTimeout(pumpTimer);
    if (deadlineTimer) clearTimeout(deadlineTimer);
    if (pumpLater) clearImmediate(pumpLater);
    o.signal?.removeEventListener('abort', onAbort);
    slots.closeConnections();
  }
  const durationMs = performance.now() - t0;
  const ownDrops = readSocketDrops(new Set(sockPort), o.port, family);
  const snmp = snmpDelta(snmpBefore, readUdpSnmp());
  for (const s of sockets) closeQuietly(s);
  return {
    ...st,
    errors: errors.toJSON(),
    unattributedErrors: unattributed.toJSON(),
    rcodes: rcodes.toJSON(),
    histogram: hist,
    durationMs,
    lastAnswerMs: lastAnswerAt >= 0 ? lastAnswerAt - t0 : null,
    interrupted,
    sourcePorts: new Set(sockPort).size,
    localDrops: { ownSockets: ownDrops, namespace: snmp, recvBufferBytes },
  };
}
