/**
 * Captured frames to DNS messages: each frame decoded (./packet.ts), UDP payloads taken whole, TCP streams put back
 * in order and cut at DNS's two-byte length prefixes (RFC 1035 4.2.2). Frames that are not DNS are counted by reason.
 * Bounded: at most MAX_STREAMS TCP streams at once, each holding at most one message's bytes and MAX_HELD segments out of
 * order. A stream whose start the capture missed is picked up at a segment that starts a DNS message; a segment the
 * capture lost is waited for within those bounds, then counted as a gap, and reading resumes at the next message.
 */
import { readFramed } from '../dns/wire.js';
import type { CapturedPacket } from './pcap.js';
import { PacketDecoder, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './packet.js';
import type { Segment, SkipReason } from './packet.js';
import type { Message } from './match.js';

const MAX_STREAMS = 10_000;
const MAX_MESSAGE = 65_535 + 2;
/** Segments held out of order per stream, and their bytes, before the missing one is taken as lost. */
const MAX_HELD = 64;
const MAX_HELD_BYTES = 256 * 1024;

interface Held {
  seq: number;
  data: Buffer;
  tsUs: number;
}

/** A connection's one direction: its addresses, as every message read from it carries them. */
type Ends = Pick<Segment, 'src' | 'sport' | 'dst' | 'dport'>;

interface Stream {
  ends: Ends;
  next: number;
  buf: Buffer;
  /** Segments ahead of `next`, in sequence order: reordered, or after a segment the capture lost. */
  held: Held[];
  heldBytes: number;
}

/**
 * Whether `b` starts like a DNS message over TCP: its length, a header (an opcode in use, Z clear, one question) and a
 * question name whose labels fit. How a stream already open when the capture began is picked up, and where reading
 * resumes after a gap (tshark does the same).
 */
export function plausibleDnsStart(b: Buffer): boolean {
  if (b.length < 2 + 12 + 1) return false;
  const len = b.readUInt16BE(0);
  if (len < 12 + 5) return false;
  const opcode = (b[4]! >> 3) & 0x0f;
  if (opcode !== 0 && opcode !== 4 && opcode !== 5) return false;
  if ((b[5]! & 0x40) !== 0 || b.readUInt16BE(6) !== 1) return false;
  // The question name: labels of 1-63 bytes up to the root, as far as this segment holds it.
  let p = 14;
  let total = 0;
  for (;;) {
    if (p >= b.length) return true;
    const l = b[p]!;
    if (l === 0) return p + 5 <= len + 2; // the name, then its type and class, inside the message
    if (l > 63) return false;
    total += l + 1;
    if (total > 255) return false;
    p += l + 1;
  }
}

const newStream = (s: Segment, next: number): Stream => ({ ends: { src: s.src, sport: s.sport, dst: s.dst, dport: s.dport }, next, buf: Buffer.alloc(0), held: [], heldBytes: 0 });

export class DnsExtractor {
  private readonly decoder: PacketDecoder;
  private readonly streams = new Map<string, Stream>();
  private readonly dnsPorts: ReadonlySet<number>;
  /** Frames not read as DNS, by reason; `ip-fragment` counts fragments held for their packet, `ip-fragment-lost` the packets never made whole. */
  readonly skipped: Record<SkipReason | 'tcp-gap' | 'tcp-streams-full' | 'tcp-no-start' | 'ip-fragment-lost', number> = {
    'link-type': 0, 'not-ip': 0, short: 0, 'ip-fragment': 0, 'not-udp-tcp': 0, 'not-dns-port': 0, 'overlay-depth': 0, 'tcp-gap': 0, 'tcp-streams-full': 0, 'tcp-no-start': 0, 'ip-fragment-lost': 0,
  };

  /** `onConnect`: a client's TCP connection attempt (SYN without ACK) to a DNS port, with or without a message after it. */
  constructor(dnsPorts: ReadonlySet<number>, private readonly onMessage: (m: Message) => void, private readonly onConnect?: (client: string, tsUs: number) => void) {
    this.decoder = new PacketDecoder(dnsPorts);
    this.dnsPorts = dnsPorts;
  }

  add(p: CapturedPacket): void {
    const s = this.decoder.decode(p.linkType, p.data, p.tsUs);
    if (typeof s === 'string') {
      this.skipped[s]++;
      return;
    }
    if (s.transport === 'udp') {
      if (s.payload.length > 0) this.onMessage({ tsUs: p.tsUs, transport: 'udp', src: s.src, sport: s.sport, dst: s.dst, dport: s.dport, msg: s.payload });
      return;
    }
    this.tcp(p.tsUs, s);
  }

  /** The capture ended: segments still held after a missing one are read from where a message starts. */
  end(): void {
    this.decoder.end();
    this.skipped['ip-fragment-lost'] = this.decoder.fragmentsLost;
    for (const st of this.streams.values()) if (st.held.length > 0) this.gap(st);
    this.streams.clear();
  }

  private tcp(tsUs: number, s: Segment): void {
    const key = `${s.src}|${s.sport}|${s.dst}|${s.dport}`;
    let st = this.streams.get(key);
    if ((s.flags & TCP_SYN) !== 0) {
      if ((s.flags & TCP_ACK) === 0 && this.dnsPorts.has(s.dport)) this.onConnect?.(s.src, tsUs);
      if (st === undefined && this.streams.size >= MAX_STREAMS) {
        this.skipped['tcp-streams-full']++;
        return;
      }
      st = newStream(s, (s.seq + 1) >>> 0);
      this.streams.set(key, st);
    }
    if (st === undefined && s.payload.length > 0) {
      // A connection open before the capture began (or after a rotation): picked up where a message starts.
      if (!plausibleDnsStart(s.payload)) this.skipped['tcp-no-start']++;
      else if (this.streams.size >= MAX_STREAMS) this.skipped['tcp-streams-full']++;
      else {
        st = newStream(s, s.seq);
        this.streams.set(key, st);
      }
    }
    if (st !== undefined && s.payload.length > 0) {
      const ahead = (s.seq - st.next) | 0; // sequence numbers wrap: the signed distance
      if (ahead > 0) this.hold(st, { seq: s.seq, data: s.payload, tsUs });
      else {
        this.take(st, s.payload, -ahead, tsUs);
        this.drain(st);
      }
      if (st.buf.length > MAX_MESSAGE) {
        st.buf = Buffer.alloc(0);
        this.streams.delete(key);
      }
    }
    if (st !== undefined && (s.flags & (TCP_FIN | TCP_RST)) !== 0) {
      if (st.held.length > 0) this.gap(st);
      this.streams.delete(key);
    }
  }

  /** Data at `next` (its first `skip` bytes already read: a retransmission), then every message it completes. */
  private take(st: Stream, data: Buffer, skip: number, tsUs: number): void {
    const fresh = skip >= data.length ? undefined : skip > 0 ? data.subarray(skip) : data;
    if (fresh === undefined) return;
    st.next = (st.next + fresh.length) >>> 0;
    st.buf = st.buf.length === 0 ? Buffer.from(fresh) : Buffer.concat([st.buf, fresh]);
    for (let f = readFramed(st.buf); f !== undefined; f = readFramed(st.buf)) {
      this.onMessage({ tsUs, transport: 'tcp', ...st.ends, msg: f.message });
      st.buf = f.rest;
    }
  }

  /** A segment ahead of the stream: kept in order, within bounds; past them the missing data is taken as lost. */
  private hold(st: Stream, h: Held): void {
    const at = st.held.findIndex((x) => ((h.seq - x.seq) | 0) <= 0);
    if (at >= 0 && st.held[at]!.seq === h.seq) return; // the same segment again
    st.held.splice(at < 0 ? st.held.length : at, 0, h);
    st.heldBytes += h.data.length;
    if (st.held.length > MAX_HELD || st.heldBytes > MAX_HELD_BYTES) this.gap(st);
  }

  /** Held segments that now follow on. */
  private drain(st: Stream): void {
    while (st.held.length > 0) {
      const h = st.held[0]!;
      const ahead = (h.seq - st.next) | 0;
      if (ahead > 0) return;
      st.held.shift();
      st.heldBytes -= h.data.length;
      this.take(st, h.data, -ahead, h.tsUs);
    }
  }

  /**
   * Data before the first held segment never came: counted, the partial message dropped, and reading resumes at the
   * first held segment that starts a message (the rest before it dropped too).
   */
  private gap(st: Stream): void {
    this.skipped['tcp-gap']++;
    st.buf = Buffer.alloc(0);
    while (st.held.length > 0 && !plausibleDnsStart(st.held[0]!.data)) st.heldBytes -= st.held.shift()!.data.length;
    if (st.held.length === 0) {
      st.heldBytes = 0;
      return;
    }
    st.next = st.held[0]!.seq;
    this.drain(st);
  }
}
