/**
 * A small authoritative DNS responder with fault injection, on UDP and TCP.
 * It answers every A/AAAA query with fixed addresses (other types: NOERROR,
 * no data), and on request misbehaves: delays, drops, SERVFAIL, REFUSED,
 * NXDOMAIN for suffixes, wrong IDs, wrong questions, truncation.
 *
 * Used by `k8sdiag serve`, the tests and the demo.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { Counters, mulberry32 } from '../stats/index.js';
import { formerrFor, frame, readFramed, typeLabel } from './wire.js';
import { readSocketDrops } from '../host/drops.js';
import type { FaultRule } from './faults.js';

export { parseFault } from './faults.js';
export type { FaultKind, FaultRule } from './faults.js';

export interface ResponderOptions {
  host?: string;
  /** 0 for an ephemeral port. */
  port?: number;
  tcp?: boolean;
  a?: string[];
  aaaa?: string[];
  ttl?: number;
  faults?: FaultRule[];
  /** When set, only names under these suffixes exist; everything else is NXDOMAIN. */
  zones?: string[];
  seed?: number;
  /** Keep every query in `seen` (tests); bounded by `maxSeen`. */
  record?: boolean;
  maxSeen?: number;
  /** Delayed replies held at once, at most (default 10,000); a delayed query past it is dropped, counted as delay-overflow. */
  maxDelayed?: number;
  onQuery?: (q: SeenQuery) => void;
}

export interface SeenQuery {
  /** ms since the responder started. */
  t: number;
  proto: 'udp' | 'tcp';
  address: string;
  port: number;
  id: number;
  name: string;
  type: string;
  /** What was done: answer, or the fault's kind. */
  action: string;
}

/** Bytes of answers a TCP client may leave unread before its connection is dropped. */
const TCP_BUFFERED = 1 << 20;

function underSuffix(name: string, suffix: string): boolean {
  return name === suffix || name.endsWith(`.${suffix}`);
}

export interface ResponderStats {
  queries: number;
  malformed: number;
  /** Queries the kernel dropped because the UDP receive buffer was full (/proc/net/udp), or null where unreadable. */
  drops: number | null;
  /** The UDP receive buffer the kernel granted, bytes. */
  recvBufferBytes: number | null;
  /** Count of each action taken: answer, nxdomain, drop, delay, ... */
  actions: Record<string, number>;
  /** The most answer bytes held at once for one TCP client that did not read them (bounded: the client is dropped past 1 MiB). */
  tcpHeldMaxBytes: number;
}

export class Responder {
  private readonly opts: Required<Omit<ResponderOptions, 'onQuery' | 'zones'>> & Pick<ResponderOptions, 'onQuery' | 'zones'>;
  private udp: dgram.Socket | undefined;
  private tcpServer: net.Server | undefined;
  private readonly tcpSockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Matching queries per fault rule, over UDP and over TCP. */
  private readonly ruleCounts: { udp: number[]; tcp: number[] };
  private readonly ruleFired: number[];
  private readonly random: () => number;
  private started = 0;
  private readonly actionCounts = new Counters();
  private queryCount = 0;
  private malformedCount = 0;
  readonly seen: SeenQuery[] = [];
  udpPort = 0;
  tcpPort = 0;

  constructor(opts: ResponderOptions = {}) {
    this.opts = {
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      tcp: opts.tcp ?? true,
      a: opts.a ?? ['192.0.2.1'],
      aaaa: opts.aaaa ?? ['2001:db8::1'],
      ttl: opts.ttl ?? 30,
      faults: opts.faults ?? [],
      seed: opts.seed ?? 1,
      record: opts.record ?? false,
      maxSeen: opts.maxSeen ?? 1_000_000,
      maxDelayed: opts.maxDelayed ?? 10_000,
      onQuery: opts.onQuery,
      zones: opts.zones?.map((z) => z.toLowerCase().replace(/\.$/, '')),
    };
    this.ruleCounts = { udp: this.opts.faults.map(() => 0), tcp: this.opts.faults.map(() => 0) };
    this.ruleFired = this.opts.faults.map(() => 0);
    this.random = mulberry32(this.opts.seed);
  }

  get stats(): ResponderStats {
    return { queries: this.queryCount, malformed: this.malformedCount, drops: this.readDrops(), recvBufferBytes: this.recvBufferBytes, actions: this.actionCounts.toJSON(), tcpHeldMaxBytes: this.tcpHeldMax };
  }

  private recvBufferBytes: number | null = null;
  private tcpHeldMax = 0;
  private lastDrops: number | null = null;
  /** Last answered ID per client address:port, for the wrong-id fault. */
  private readonly lastIdTo = new Map<string, number>();

  private readDrops(): number | null {
    if (this.udp === undefined) return this.lastDrops;
    const family = net.isIPv6(this.opts.host) ? 'udp6' : 'udp4';
    this.lastDrops = readSocketDrops(new Set([this.udpPort]), 0, family);
    return this.lastDrops;
  }

  async start(): Promise<{ udpPort: number; tcpPort: number }> {
    // UDP and TCP share one port number. With port 0 the kernel picks a free UDP
    // port, and its TCP twin may be taken (by any socket's ephemeral port): then
    // try another pick, a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.listen();
        break;
      } catch (err) {
        await this.stop();
        const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (!busy || this.opts.port !== 0 || attempt >= 8) throw err;
      }
    }
    this.started = performance.now();
    return { udpPort: this.udpPort, tcpPort: this.tcpPort };
  }

  private async listen(): Promise<void> {
    const family = net.isIPv6(this.opts.host) ? 'udp6' : 'udp4';
    // Bursts of thousands of queries (dnsbench -c 1000) must not overflow the
    // default receive buffer (about 200 KiB, some 100 datagrams): ask for 8 MiB;
    // the kernel caps it at net.core.rmem_max, and `drops` counts what is lost.
    const udp = dgram.createSocket({ type: family, reuseAddr: false, recvBufferSize: 8 << 20, sendBufferSize: 4 << 20 });
    this.udp = udp;
    udp.on('message', (msg, rinfo) => this.handle(msg, 'udp', rinfo.address, rinfo.port, (out) => udp.send(out, rinfo.port, rinfo.address)));
    udp.on('error', () => {
      /* ICMP errors for replies to clients that went away: nothing to do */
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(this.opts.port, this.opts.host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udpPort = udp.address().port;
    try {
      this.recvBufferBytes = udp.getRecvBufferSize();
    } catch {
      this.recvBufferBytes = null;
    }
    if (this.opts.tcp) {
      const server = net.createServer((sock) => this.onTcp(sock));
      this.tcpServer = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.udpPort, this.opts.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address();
      this.tcpPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
    }
  }


  async stop(): Promise<void> {
    if (this.udp !== undefined) this.readDrops();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.tcpSockets) s.destroy();
    await Promise.all([
      new Promise<void>((resolve) => (this.udp ? this.udp.close(() => resolve()) : resolve())),
      new Promise<void>((resolve) => (this.tcpServer ? this.tcpServer.close(() => resolve()) : resolve())),
    ]);
    this.udp = undefined;
    this.tcpServer = undefined;
  }

  private onTcp(sock: net.Socket): void {
    this.tcpSockets.add(sock);
    sock.on('close', () => this.tcpSockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setTimeout(30_000, () => sock.destroy());
    let pending: Buffer = Buffer.alloc(0);
    // A client that does not read its answers: once an answer is left waiting, no further query is taken (those
    // read stay in `pending`, one read's worth at most) until the answers drain; past TCP_BUFFERED, it is dropped.
    let waiting = false;
    const answer = (out: Buffer): void => {
      if (sock.destroyed) return;
      if (!sock.write(frame(out)) && !waiting) {
        waiting = true;
        sock.pause();
        sock.once('drain', () => {
          waiting = false;
          sock.resume();
          take();
        });
      }
      if (sock.writableLength > this.tcpHeldMax) this.tcpHeldMax = sock.writableLength;
      if (sock.writableLength > TCP_BUFFERED) sock.destroy();
    };
    const take = (): void => {
      for (let f = readFramed(pending); f !== undefined && !waiting && !sock.destroyed; f = readFramed(pending)) {
        pending = f.rest;
        this.handle(f.message, 'tcp', sock.remoteAddress ?? '', sock.remotePort ?? 0, answer);
      }
    };
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      take();
    });
  }

  /** Which fault, if any, applies to this query (the first rule that fires). */
  private pick(name: string, type: string, proto: 'udp' | 'tcp'): FaultRule | undefined {
    let chosen: FaultRule | undefined;
    const counts = this.ruleCounts[proto];
    this.opts.faults.forEach((rule, i) => {
      if (rule.type !== undefined && rule.type !== type) return;
      if (rule.name !== undefined && !underSuffix(name.replace(/\.$/, ''), rule.name)) return;
      if (rule.kind === 'truncate' && proto === 'tcp') return; // TCP carries the full answer
      if (rule.kind === 'nxdomain' && rule.suffix !== undefined && !underSuffix(name, rule.suffix)) return;
      const n = (counts[i] = (counts[i] ?? 0) + 1);
      let fires = true;
      if (rule.every !== undefined) fires = n % rule.every === 0;
      else if (rule.fraction !== undefined) fires = this.random() < rule.fraction;
      if (fires && rule.count !== undefined && (this.ruleFired[i] ?? 0) >= rule.count) fires = false;
      if (fires && chosen === undefined) {
        chosen = rule;
        this.ruleFired[i] = (this.ruleFired[i] ?? 0) + 1;
      }
    });
    return chosen;
  }

  private handle(msg: Buffer, proto: 'udp' | 'tcp', address: string, port: number, send: (b: Buffer) => void): void {
    this.queryCount++;
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      this.malformedCount++;
      const formerr = formerrFor(msg);
      if (formerr !== undefined) send(formerr);
      return;
    }
    const q = query.questions?.[0];
    if (query.type !== 'query' || q === undefined) {
      this.malformedCount++;
      return;
    }
    const name = q.name.toLowerCase();
    const fault = this.pick(name, q.type, proto);
    let action = fault?.kind ?? 'answer';
    let rcode = 0; // NOERROR
    if (fault?.kind === 'servfail') rcode = 2;
    else if (fault?.kind === 'refused') rcode = 5;
    else if (fault?.kind === 'nxdomain') rcode = 3;
    else if (this.opts.zones && !this.opts.zones.some((z) => underSuffix(name, z))) {
      rcode = 3;
      if (fault === undefined) action = 'nxdomain';
    }

    // Each held reply is a timer and a buffer: a flood of delayed queries would hold memory without end.
    if (fault?.kind === 'delay' && this.timers.size >= this.opts.maxDelayed) action = 'delay-overflow';
    const entry: SeenQuery = { t: performance.now() - this.started, proto, address, port, id: query.id ?? 0, name: q.name, type: typeLabel(q.type), action };
    this.actionCounts.add(action);
    if (this.opts.record && this.seen.length < this.opts.maxSeen) this.seen.push(entry);
    this.opts.onQuery?.(entry);
    if (fault?.kind === 'drop') return;

    const truncated = fault?.kind === 'truncate' && proto === 'udp';
    const answers: dnsPacket.Answer[] = [];
    if (rcode === 0 && !truncated) {
      if (q.type === 'A') for (const a of this.opts.a) answers.push({ type: 'A', name: q.name, ttl: this.opts.ttl, class: 'IN', data: a });
      if (q.type === 'AAAA') for (const a of this.opts.aaaa) answers.push({ type: 'AAAA', name: q.name, ttl: this.opts.ttl, class: 'IN', data: a });
    }
    let flags = dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | dnsPacket.RECURSION_AVAILABLE | rcode;
    if (truncated) flags |= dnsPacket.TRUNCATED_RESPONSE;
    const questions = fault?.kind === 'wrong-question' ? [{ ...q, name: `wrong-question.${q.name}` }] : [q];
    let id = query.id ?? 0;
    const client = `${address}|${port}`;
    if (fault?.kind === 'wrong-id') {
      // An ID this client is not waiting for: the one it was last answered
      // with (a client that reuses IDs first-in-first-out, as dnsbench does,
      // gives it out again last); for a client's first query, the ID with the
      // top bit flipped.
      const last = this.lastIdTo.get(client);
      id = last !== undefined && last !== id ? last : id ^ 0x8000;
    }
    // Remember the ID once a reply that ends the client's query has gone out.
    const ends = fault?.kind !== 'wrong-id' && fault?.kind !== 'wrong-question' && fault?.kind !== 'truncate';
    const sendAndNote = (out: Buffer): void => {
      send(out);
      if (!ends || proto !== 'udp') return;
      if (this.lastIdTo.size >= 100_000) this.lastIdTo.clear();
      this.lastIdTo.set(client, id);
    };
    const reply = dnsPacket.encode({ type: 'response', id, flags, questions, answers });
    if (fault?.kind === 'delay' && fault.ms !== undefined && fault.ms > 0) {
      if (action === 'delay-overflow') return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        send(reply); // not noted: the client may have given up on it (a late reply)
      }, fault.ms);
      this.timers.add(t);
      return;
    }
    sendAndNote(reply);
  }
}
