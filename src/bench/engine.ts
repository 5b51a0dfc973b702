/**
 * The fast benchmark engine: many queries in flight over a few connected UDP
 * sockets, in the shape dnsperf and flamethrower use.
 *
 * - A fixed array of query slots; each in-flight query is found by its 16-bit
 *   message ID through a per-socket ID -> slot table. No Promise, closure or
 *   timer per packet.
 * - Each query type/name is encoded once; a slot copies the template into its
 *   own buffer (held until the send completes) and patches the ID in place.
 * - One 'message' handler per socket reads the header and compares the
 *   question bytes; nothing is decoded.
 * - One sweep timer expires queries; latency goes into a fixed-memory histogram.
 * - With --qps, queries are scheduled at t0 + k/qps and latency counts from the
 *   scheduled moment, so a slow server cannot hide behind a full pipeline
 *   (no coordinated omission).
 *
 * Accounting is exact: every query sent ends as exactly one of answered (by
 * rcode), timed out, or an error. Replies count only when ID and question
 * match a query in flight (RFC 5452; the connected socket already drops
 * datagrams from any other address or port).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { RecordType } from 'dns-packet';
import { UserError } from '../errors.js';
import { Counters, Histogram } from '../stats/index.js';
import { makeTemplate, patchId, rcodeName, sameQuestion } from '../dns/wire.js';
import type { QueryTemplate } from '../dns/wire.js';
import { socketError } from './errors.js';

export interface QuerySpec {
  name: string;
  type: RecordType;
}

export interface SlowEvent {
  /** ISO time the reply arrived. */
  time: string;
  name: string;
  type: string;
  server: string;
  sourcePort: number;
  rcode: string;
  latencyMs: number;
}

export interface Progress {
  sent: number;
  answered: number;
  timeouts: number;
  errors: number;
  inFlight: number;
  elapsedMs: number;
}

export interface EngineOptions {
  server: string;
  port: number;
  queries: QuerySpec[];
  concurrency: number;
  total?: number;
  durationMs?: number;
  qps?: number;
  timeoutMs: number;
  slowMs: number;
  /** Retry truncated (TC) replies over TCP. */
  tcpRetry?: boolean;
  sockets?: number;
  signal?: AbortSignal;
  onSlow?: (e: SlowEvent) => void;
  onProgress?: (p: Progress) => void;
  progressEveryMs?: number;
}

export interface QueryStats {
  sent: number;
  answered: number;
  timeouts: number;
  /** Answered, but slower than the slow threshold. Timeouts are not in it. */
  slow: number;
  errors: Record<string, number>;
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

export interface EngineResult extends QueryStats {
  histogram: Histogram;
  durationMs: number;
  /** True when stopped by the signal (Ctrl-C). */
  interrupted: boolean;
}

const ID_SPACE = 0x8000; // IDs below 0x8000: see Responder's wrong-id fault
const FREE = -1;

export async function runEngine(o: EngineOptions): Promise<EngineResult> {
  if (o.queries.length === 0) throw new UserError('no queries to send');
  const c = Math.max(1, Math.floor(o.concurrency));
  const nSockets = Math.max(1, Math.min(o.sockets ?? Math.ceil(c / 256), c));
  if (c > nSockets * (ID_SPACE / 2)) throw new UserError(`-c ${c} is more than ${nSockets} sockets can carry`);
  const templates: QueryTemplate[] = o.queries.map((q) => makeTemplate(q.name, q.type));
  const maxLen = Math.max(...templates.map((t) => t.bytes.length));
  const family = net.isIPv6(o.server) ? 'udp6' : 'udp4';

  // ---- state, struct-of-arrays ----
  const slotId = new Int32Array(c).fill(FREE);
  const slotSock = new Int32Array(c);
  const slotQuery = new Int32Array(c);
  const slotStart = new Float64Array(c); // scheduled time (latency origin)
  const slotSent = new Float64Array(c); // actual send time (timeout origin)
  const slotTcp = new Uint8Array(c); // 1 while a TCP retry owns the slot
  const slotBuf: Buffer[] = Array.from({ length: c }, () => Buffer.alloc(maxLen));
  const freeStack = new Int32Array(c);
  let freeTop = 0;
  for (let i = c - 1; i >= 0; i--) freeStack[freeTop++] = i;
  const idToSlot = Array.from({ length: nSockets }, () => new Int32Array(ID_SPACE).fill(FREE));
  const quarantine = Array.from({ length: nSockets }, () => new Float64Array(ID_SPACE));
  const sockPort = new Int32Array(nSockets);

  const hist = new Histogram('us');
  const rcodes = new Counters();
  const errors = new Counters();
  const st = { sent: 0, answered: 0, timeouts: 0, slow: 0, late: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, truncated: 0, tcpRetries: 0 };
  let inFlight = 0;
  let started = 0; // queries taken from the budget
  let nextQuery = 0;
  let stopping = false;
  let interrupted = false;

  const sockets: dgram.Socket[] = [];
  const closeAll = (): void => {
    for (const s of sockets) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  };

  // ---- sockets ----
  for (let s = 0; s < nSockets; s++) {
    const sock = dgram.createSocket({ type: family });
    sockets.push(sock);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.connect(o.port, o.server, () => {
          sock.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      closeAll();
      throw socketError(err, `${o.server}:${o.port}`);
    }
    sockPort[s] = sock.address().port;
  }

  const t0 = performance.now();
  const deadline = o.durationMs !== undefined ? t0 + o.durationMs : Number.POSITIVE_INFINITY;
  const total = o.total ?? Number.POSITIVE_INFINITY;
  const qpsInterval = o.qps !== undefined && o.qps > 0 ? 1000 / o.qps : 0;

  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const budgetLeft = (now: number): boolean => !stopping && started < total && now < deadline;

  function release(slot: number): void {
    const sock = slotSock[slot]!;
    const id = slotId[slot]!;
    if (id !== FREE) idToSlot[sock]![id] = FREE;
    slotId[slot] = FREE;
    slotTcp[slot] = 0;
    freeStack[freeTop++] = slot;
    inFlight--;
  }

  function allocId(sock: number, now: number): number {
    const table = idToSlot[sock]!;
    const q = quarantine[sock]!;
    for (let tries = 0; tries < 32; tries++) {
      const id = (Math.random() * ID_SPACE) | 0;
      if (table[id] === FREE && q[id]! <= now) return id;
    }
    const startAt = (Math.random() * ID_SPACE) | 0;
    for (let k = 0; k < ID_SPACE; k++) {
      const id = (startAt + k) % ID_SPACE;
      if (table[id] === FREE && q[id]! <= now) return id;
    }
    return FREE;
  }

  const sendCallbacks = Array.from({ length: c }, (_, slot) => (err: Error | null) => {
    if (err) onSendError(slot, err);
  });

  function onSendError(slot: number, err: Error): void {
    if (slotId[slot] === FREE) return;
    errors.add((err as NodeJS.ErrnoException).code ?? 'send');
    release(slot);
    pump();
  }

  /** Start one query in a free slot. `scheduledAt` is the latency origin. */
  function launch(scheduledAt: number, now: number): boolean {
    if (freeTop === 0) return false;
    const slot = freeStack[--freeTop]!;
    const sock = slot % nSockets;
    const id = allocId(sock, now);
    if (id === FREE) {
      freeStack[freeTop++] = slot;
      return false;
    }
    const qi = nextQuery;
    nextQuery = (nextQuery + 1) % templates.length;
    const t = templates[qi]!;
    const buf = slotBuf[slot]!;
    t.bytes.copy(buf, 0, 0, t.bytes.length);
    patchId(buf, id);
    slotId[slot] = id;
    slotSock[slot] = sock;
    slotQuery[slot] = qi;
    slotStart[slot] = scheduledAt;
    slotSent[slot] = now;
    idToSlot[sock]![id] = slot;
    inFlight++;
    started++;
    st.sent++;
    sockets[sock]!.send(buf, 0, t.bytes.length, sendCallbacks[slot]);
    return true;
  }

  let pumpTimer: NodeJS.Timeout | undefined;
  /** Fill free slots with whatever the schedule allows now. */
  function pump(): void {
    const now = performance.now();
    if (qpsInterval === 0) {
      while (freeTop > 0 && budgetLeft(now)) if (!launch(now, now)) break;
    } else {
      while (freeTop > 0 && budgetLeft(now)) {
        const due = t0 + started * qpsInterval;
        if (due > now) {
          if (pumpTimer === undefined) {
            pumpTimer = setTimeout(() => {
              pumpTimer = undefined;
              pump();
            }, Math.max(1, due - now));
          }
          break;
        }
        if (!launch(due, now)) break;
      }
    }
    if (inFlight === 0 && !budgetLeft(now)) finish();
  }

  function complete(slot: number, rcode: number, now: number): void {
    const latency = now - slotStart[slot]!;
    hist.record(latency * 1000);
    rcodes.add(rcodeName(rcode));
    st.answered++;
    if (latency > o.slowMs) {
      st.slow++;
      if (o.onSlow) {
        const t = templates[slotQuery[slot]!]!;
        o.onSlow({
          time: new Date(Date.now()).toISOString(),
          name: t.name,
          type: t.type,
          server: `${o.server}:${o.port}`,
          sourcePort: sockPort[slotSock[slot]!]!,
          rcode: rcodeName(rcode),
          latencyMs: Number(latency.toFixed(3)),
        });
      }
    }
    release(slot);
  }

  function retryOverTcp(slot: number): void {
    slotTcp[slot] = 1;
    st.tcpRetries++;
    const t = templates[slotQuery[slot]!]!;
    const query = Buffer.alloc(2 + t.bytes.length);
    query.writeUInt16BE(t.bytes.length, 0);
    slotBuf[slot]!.copy(query, 2, 0, t.bytes.length);
    const id = slotId[slot]!;
    const conn = net.connect({ host: o.server, port: o.port });
    let acc = Buffer.alloc(0);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      conn.destroy();
      if (slotId[slot] !== id || slotTcp[slot] !== 1) return; // expired meanwhile
      fn();
      pump();
    };
    conn.on('connect', () => conn.write(query));
    conn.on('data', (chunk: Buffer) => {
      acc = Buffer.concat([acc, chunk]);
      if (acc.length < 2) return;
      const len = acc.readUInt16BE(0);
      if (acc.length < 2 + len) return;
      const msg = acc.subarray(2, 2 + len);
      settle(() => {
        if (msg.length < 12 || ((msg[0]! << 8) | msg[1]!) !== id || !sameQuestion(msg, t)) {
          st.wrongQuestion++;
          errors.add('tcp-bad-reply');
          release(slot);
          return;
        }
        complete(slot, msg[3]! & 0x0f, performance.now());
      });
    });
    conn.on('error', (err: NodeJS.ErrnoException) => settle(() => {
      errors.add(`tcp-${err.code ?? 'error'}`);
      release(slot);
    }));
    conn.on('close', () => settle(() => {
      errors.add('tcp-closed');
      release(slot);
    }));
  }

  // ---- receive ----
  sockets.forEach((sock, s) => {
    const table = idToSlot[s]!;
    const q = quarantine[s]!;
    sock.on('message', (msg: Buffer) => {
      if (msg.length < 12 || (msg[2]! & 0x80) === 0) {
        st.malformed++;
        return;
      }
      const id = (msg[0]! << 8) | msg[1]!;
      const slot = id < ID_SPACE ? table[id]! : FREE;
      const now = performance.now();
      if (slot === FREE || slotTcp[slot] === 1) {
        if (id < ID_SPACE && q[id]! > now) st.late++;
        else st.wrongId++;
        return;
      }
      if (!sameQuestion(msg, templates[slotQuery[slot]!]!)) {
        st.wrongQuestion++;
        return;
      }
      if ((msg[2]! & 0x02) !== 0) {
        st.truncated++;
        if (o.tcpRetry) {
          retryOverTcp(slot);
          return;
        }
      }
      complete(slot, msg[3]! & 0x0f, now);
      pump();
    });
    // ICMP port unreachable on a connected socket surfaces as ECONNREFUSED on
    // the next receive: charge it to the oldest query in flight on this socket.
    sock.on('error', (err: NodeJS.ErrnoException) => {
      let oldest = FREE;
      for (let i = s; i < c; i += nSockets) {
        if (slotId[i] !== FREE && slotTcp[i] === 0 && (oldest === FREE || slotSent[i]! < slotSent[oldest]!)) oldest = i;
      }
      errors.add(err.code ?? 'socket');
      if (oldest !== FREE) {
        release(oldest);
        pump();
      }
    });
  });

  // ---- one sweep timer for timeouts ----
  const sweepMs = Math.max(5, Math.min(100, o.timeoutMs / 20));
  const sweep = setInterval(() => {
    const now = performance.now();
    for (let i = 0; i < c; i++) {
      if (slotId[i] === FREE || now - slotSent[i]! < o.timeoutMs) continue;
      st.timeouts++;
      const s = slotSock[i]!;
      quarantine[s]![slotId[i]!] = now + 2 * o.timeoutMs;
      release(i);
    }
    pump();
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
    pump();
  };
  if (o.signal) {
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
  }
  let deadlineTimer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) deadlineTimer = setTimeout(() => pump(), Math.max(0, deadline - t0) + 1);

  pump();
  await done;
  const durationMs = performance.now() - t0;
  clearInterval(sweep);
  if (progressTimer) clearInterval(progressTimer);
  if (pumpTimer) clearTimeout(pumpTimer);
  if (deadlineTimer) clearTimeout(deadlineTimer);
  o.signal?.removeEventListener('abort', onAbort);
  closeAll();
  return {
    ...st,
    errors: errors.toJSON(),
    rcodes: rcodes.toJSON(),
    histogram: hist,
    durationMs,
    interrupted,
  };
}
