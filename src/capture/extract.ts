/**
 * Captured frames to DNS messages: each frame decoded (./packet.ts), UDP payloads taken whole, TCP streams put back
 * in order and cut at DNS's two-byte length prefixes (RFC 1035 4.2.2). Frames that are not DNS are counted by reason.
 * Bounded: at most MAX_STREAMS TCP streams at once, each holding at most one message's bytes.
 */
import { readFramed } from '../dns/wire.js';
import type { CapturedPacket } from './pcap.js';
import { PacketDecoder, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './packet.js';
import type { Segment, SkipReason } from './packet.js';
import type { Message } from './match.js';

const MAX_STREAMS = 10_000;
const MAX_MESSAGE = 65_535 + 2;

interface Stream {
  next: number;
  buf: Buffer;
}

export class DnsExtractor {
  private readonly decoder: PacketDecoder;
  private readonly streams = new Map<string, Stream>();
  private readonly dnsPorts: ReadonlySet<number>;
  readonly skipped: Record<SkipReason | 'tcp-gap' | 'tcp-streams-full', number> = {
    'link-type': 0, 'not-ip': 0, short: 0, 'ip-fragment': 0, 'not-udp-tcp': 0, 'not-dns-port': 0, 'overlay-depth': 0, 'tcp-gap': 0, 'tcp-streams-full': 0,
  };

  /** `onConnect`: a client's TCP connection attempt (SYN without ACK) to a DNS port, with or without a message after it. */
  constructor(dnsPorts: ReadonlySet<number>, private readonly onMessage: (m: Message) => void, private readonly onConnect?: (client: string, tsUs: number) => void) {
    this.decoder = new PacketDecoder(dnsPorts);
    this.dnsPorts = dnsPorts;
  }

  add(p: CapturedPacket): void {
    const s = this.decoder.decode(p.linkType, p.data);
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

  private tcp(tsUs: number, s: Segment): void {
    const key = `${s.src}|${s.sport}|${s.dst}|${s.dport}`;
    let st = this.streams.get(key);
    if ((s.flags & TCP_SYN) !== 0) {
      if ((s.flags & TCP_ACK) === 0 && this.dnsPorts.has(s.dport)) this.onConnect?.(s.src, tsUs);
      if (st === undefined && this.streams.size >= MAX_STREAMS) {
        this.skipped['tcp-streams-full']++;
        return;
      }
      st = { next: (s.seq + 1) >>> 0, buf: Buffer.alloc(0) };
      this.streams.set(key, st);
    }
    if (st !== undefined && s.payload.length > 0) {
      let data = s.payload;
      const ahead = (s.seq - st.next) | 0; // sequence numbers wrap: the signed distance
      if (ahead > 0) {
        // A segment missing before this one (lost to the capture): the stream cannot be read on.
        this.skipped['tcp-gap']++;
        this.streams.delete(key);
        return;
      }
      if (ahead < 0) data = -ahead >= data.length ? Buffer.alloc(0) : data.subarray(-ahead); // a retransmission
      if (data.length > 0) {
        st.next = (st.next + data.length) >>> 0;
        st.buf = st.buf.length === 0 ? Buffer.from(data) : Buffer.concat([st.buf, data]);
        for (let f = readFramed(st.buf); f !== undefined; f = readFramed(st.buf)) {
          this.onMessage({ tsUs, transport: 'tcp', src: s.src, sport: s.sport, dst: s.dst, dport: s.dport, msg: f.message });
          st.buf = f.rest;
        }
        if (st.buf.length > MAX_MESSAGE) this.streams.delete(key);
      }
    }
    if ((s.flags & (TCP_FIN | TCP_RST)) !== 0) this.streams.delete(key);
  }
}
