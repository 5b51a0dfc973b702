/**
 * From a captured frame to a DNS message and its addresses: the link layer (Ethernet with VLAN tags, Linux cooked v1
 * and v2 as `tcpdump -i any` writes them, raw IP, BSD loopback), IPv4 and IPv6 (extension headers skipped), UDP and
 * TCP, and the overlays clusters use, taken off: VXLAN (4789, and 8472 as Linux and flannel use it), Geneve (6081),
 * IP-in-IP and IPv6-in-IP; raw IPv4 and IPv6 (228, 229) and NFLOG (239) link types; IP fragments put back together in a
 * bounded table. Every offset is checked against the frame; what cannot be read is a reason, not a throw.
 */

export interface Segment {
  transport: 'udp' | 'tcp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** The UDP payload, or the TCP segment's data. */
  payload: Buffer;
  /** TCP only: the sequence number of the data's first byte, and SYN/FIN/RST. */
  seq: number;
  flags: number;
}

/** Why a frame was not read as DNS: counted by reason. */
export type SkipReason = 'link-type' | 'not-ip' | 'short' | 'ip-fragment' | 'not-udp-tcp' | 'not-dns-port' | 'overlay-depth';

/** IP fragments held for reassembly at most: sets, how long one waits for the rest, its bytes. */
const MAX_FRAGMENT_SETS = 1024;
const FRAGMENT_WAIT_US = 30_000_000;
const MAX_REASSEMBLED = 65_535;

interface FragmentSet {
  firstUs: number;
  parts: Array<{ offset: number; data: Buffer }>;
  bytes: number;
  /** The payload's length, once the last fragment is seen. */
  total: number | undefined;
  proto: number;
  src: string;
  dst: string;
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = [0x8100, 0x88a8, 0x9100];
const ETH_PPPOE_SESSION = 0x8864;
const VXLAN_PORTS = new Set([4789, 8472]);
const GENEVE_PORT = 6081;
export const TCP_SYN = 0x02;
export const TCP_FIN = 0x01;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/**
 * IPv4 addresses already written, by their 32 bits: one string per address, so the matcher's tables find a client by a
 * hash computed once, and a capture makes a string per address, not per packet. Bounded.
 */
const V4 = new Map<number, string>();
const V4_MAX = 1 << 12;

function ipv4(b: Buffer, p: number): string {
  const n = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  let s = V4.get(n);
  if (s === undefined) {
    if (V4.size >= V4_MAX) V4.clear();
    s = `${b[p]}.${b[p + 1]}.${b[p + 2]}.${b[p + 3]}`;
    V4.set(n, s);
  }
  return s;
}

function ipv6(b: Buffer, p: number): string {
  const groups: string[] = [];
  for (let k = 0; k < 8; k++) groups.push(b.readUInt16BE(p + 2 * k).toString(16));
  // The longest run of zero groups (two or more) as ::, as RFC 5952 writes it.
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== '0') {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && groups[e] === '0') e++;
    if (e - k > bestLen) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export class PacketDecoder {
  /** Fragments awaiting the rest of their packet, oldest first. */
  private readonly fragments = new Map<string, FragmentSet>();
  private nowUs = 0;
  /** Fragment sets given up: never completed in time, past the table's bounds, or still open at the end. */
  fragmentsLost = 0;

  constructor(private readonly dnsPorts: ReadonlySet<number>) {}

  /** The capture ended: fragments still waiting will never be whole. */
  end(): void {
    this.fragmentsLost += this.fragments.size;
    this.fragments.clear();
  }

  /** The DNS segment in a frame of `linkType`, or why there is none. */
  decode(linkType: number, frame: Buffer, tsUs = 0): Segment | SkipReason {
    this.nowUs = tsUs;
    switch (linkType) {
      case 228: // raw IPv4
      case 229: // raw IPv6
        return this.ip(frame, 0, 0);
      case 239:
        return this.nflog(frame);
      case 1:
        return this.ethernet(frame, 0, 0);
      case 113: // Linux cooked v1: protocol at 14, 16 bytes
        return frame.length < 16 ? 'short' : this.byEtherType(frame.readUInt16BE(14), frame, 16, 0);
      case 276: // Linux cooked v2: protocol at 0, 20 bytes
        return frame.length < 20 ? 'short' : this.byEtherType(frame.readUInt16BE(0), frame, 20, 0);
      case 101:
      case 12:
      case 14:
        return this.ip(frame, 0, 0);
      case 0: {
        // BSD loopback: the address family in the capturing host's order
        if (frame.length < 4) return 'short';
        const af = frame.readUInt32LE(0) > 0xffff ? frame.readUInt32BE(0) : frame.readUInt32LE(0);
        return af === 2 || af === 10 || af === 24 || af === 28 || af === 30 ? this.ip(frame, 4, 0) : 'not-ip';
      }
      default:
        return 'link-type';
    }
  }

  /**
   * NFLOG (what `tcpdump -i nflog` writes): a 4-byte header, then TLVs whose length and type are in the capturing
   * host's byte order, each padded to 4 bytes; the packet is the NFULA_PAYLOAD (9) one.
   */
  private nflog(b: Buffer): Segment | SkipReason {
    if (b.length < 4) return 'short';
    let p = 4;
    let le: boolean | undefined;
    while (p + 4 <= b.length) {
      if (le === undefined) {
        const l = b.readUInt16LE(p);
        le = l >= 4 && p + l <= b.length;
      }
      const len = le ? b.readUInt16LE(p) : b.readUInt16BE(p);
      const type = (le ? b.readUInt16LE(p + 2) : b.readUInt16BE(p + 2)) & 0x7fff;
      if (len < 4 || p + len > b.length) return 'short';
      if (type === 9) return this.ip(b.subarray(0, p + len), p + 4, 0);
      p += (len + 3) & ~3;
    }
    return 'not-ip';
  }

  /**
   * One fragment of an IP packet: held until its packet is whole, then that packet's UDP or TCP. Bounded: at most
   * MAX_FRAGMENT_SETS packets waiting, each for FRAGMENT_WAIT_US and MAX_REASSEMBLED bytes; past them, given up and counted.
   */
  private fragment(key: string, offset: number, more: boolean, data: Buffer, proto: number, src: string, dst: string, depth: number): Segment | SkipReason {
    for (const [k, f] of this.fragments) {
      if (this.nowUs - f.firstUs <= FRAGMENT_WAIT_US && this.fragments.size < MAX_FRAGMENT_SETS) break;
      this.fragments.delete(k);
      this.fragmentsLost++;
    }
    let set = this.fragments.get(key);
    if (set === undefined) {
      set = { firstUs: this.nowUs, parts: [], bytes: 0, total: undefined, proto, src, dst };
      this.fragments.set(key, set);
    }
    if (set.parts.some((x) => x.offset === offset)) return 'ip-fragment'; // the same fragment again
    set.parts.push({ offset, data: Buffer.from(data) });
    set.bytes += data.length;
    if (!more) set.total = offset + data.length;
    if (set.bytes > MAX_REASSEMBLED || (set.total !== undefined && set.total > MAX_REASSEMBLED)) {
      this.fragments.delete(key);
      this.fragmentsLost++;
      return 'ip-fragment';
    }
    if (set.total === undefined) return 'ip-fragment';
    set.parts.sort((x, y) => x.offset - y.offset);
    let covered = 0;
    for (const part of set.parts) {
      if (part.offset > covered) return 'ip-fragment'; // a hole: more to come
      covered = Math.max(covered, part.offset + part.data.length);
    }
    if (covered < set.total) return 'ip-fragment';
    this.fragments.delete(key);
    const whole = Buffer.alloc(set.total);
    for (const part of set.parts) part.data.copy(whole, part.offset, 0, Math.min(part.data.length, set.total - part.offset));
    if (proto === 17) return this.udp(whole, 0, whole.length, src, dst, depth);
    if (proto === 6) return this.tcp(whole, 0, whole.length, src, dst);
    return 'not-udp-tcp';
  }

  private ethernet(b: Buffer, p: number, depth: number): Segment | SkipReason {
    if (b.length < p + 14) return 'short';
    let type = b.readUInt16BE(p + 12);
    p += 14;
    while (ETH_VLAN.includes(type)) {
      if (b.length < p + 4) return 'short';
      type = b.readUInt16BE(p + 2);
      p += 4;
    }
    return this.byEtherType(type, b, p, depth);
  }

  private byEtherType(type: number, b: Buffer, p: number, depth: number): Segment | SkipReason {
    if (type === ETH_IPV4 || type === ETH_IPV6) return this.ip(b, p, depth);
    if (type === ETH_PPPOE_SESSION) {
      // PPPoE session: 6 bytes of header, then PPP's protocol (0x0021 IPv4, 0x0057 IPv6).
      if (b.length < p + 8) return 'short';
      const ppp = b.readUInt16BE(p + 6);
      return ppp === 0x0021 || ppp === 0x0057 ? this.ip(b, p + 8, depth) : 'not-ip';
    }
    return 'not-ip';
  }

  private ip(b: Buffer, p: number, depth: number): Segment | SkipReason {
    if (b.length < p + 1) return 'short';
    const version = b[p]! >> 4;
    let src: string;
    let dst: string;
    let proto: number;
    let end: number;
    if (version === 4) {
      if (b.length < p + 20) return 'short';
      const ihl = (b[p]! & 0x0f) * 4;
      const total = b.readUInt16BE(p + 2);
      if (ihl < 20 || b.length < p + ihl) return 'short';
      const frag = b.readUInt16BE(p + 6);
      proto = b[p + 9]!;
      src = ipv4(b, p + 12);
      dst = ipv4(b, p + 16);
      // A frame may carry padding past the IP packet (Ethernet's minimum), or be cut by the snap length.
      end = Math.min(b.length, total >= ihl ? p + total : b.length);
      if ((frag & 0x1fff) !== 0 || (frag & 0x2000) !== 0) {
        return this.fragment(`4|${src}|${dst}|${b.readUInt16BE(p + 4)}|${proto}`, (frag & 0x1fff) * 8, (frag & 0x2000) !== 0, b.subarray(p + ihl, end), proto, src, dst, depth);
      }
      p += ihl;
    } else if (version === 6) {
      if (b.length < p + 40) return 'short';
      const payloadLen = b.readUInt16BE(p + 4);
      proto = b[p + 6]!;
      src = ipv6(b, p + 8);
      dst = ipv6(b, p + 24);
      end = Math.min(b.length, p + 40 + payloadLen);
      p += 40;
      // Extension headers: hop-by-hop, routing, destination options; a fragment header is a fragment.
      for (let k = 0; k < 8 && (proto === 0 || proto === 43 || proto === 60 || proto === 44); k++) {
        if (end < p + 8) return 'short';
        if (proto === 44) {
          const fo = b.readUInt16BE(p + 2);
          return this.fragment(`6|${src}|${dst}|${b.readUInt32BE(p + 4)}`, fo & 0xfff8, (fo & 1) !== 0, b.subarray(p + 8, end), b[p]!, src, dst, depth);
        }
        const next = b[p]!;
        p += (b[p + 1]! + 1) * 8;
        proto = next;
      }
    } else return 'not-ip';
    if (proto === 4 || proto === 41) return depth >= 2 ? 'overlay-depth' : this.ip(b.subarray(0, end), p, depth + 1);
    if (proto === 17) return this.udp(b, p, end, src, dst, depth);
    if (proto === 6) return this.tcp(b, p, end, src, dst);
    return 'not-udp-tcp';
  }

  private udp(b: Buffer, p: number, end: number, src: string, dst: string, depth: number): Segment | SkipReason {
    if (end < p + 8) return 'short';
    const sport = b.readUInt16BE(p);
    const dport = b.readUInt16BE(p + 2);
    const len = b.readUInt16BE(p + 4);
    const stop = len >= 8 ? Math.min(end, p + len) : end;
    if (this.dnsPorts.has(sport) || this.dnsPorts.has(dport)) {
      return { transport: 'udp', src, dst, sport, dport, payload: b.subarray(p + 8, stop), seq: 0, flags: 0 };
    }
    if (VXLAN_PORTS.has(dport) || dport === GENEVE_PORT) {
      if (depth >= 2) return 'overlay-depth';
      const inner = b.subarray(0, stop);
      if (dport === GENEVE_PORT) {
        if (stop < p + 16) return 'short';
        const optLen = (b[p + 8]! & 0x3f) * 4;
        const protocol = b.readUInt16BE(p + 10);
        const at = p + 16 + optLen;
        return protocol === 0x6558 ? this.ethernet(inner, at, depth + 1) : this.byEtherType(protocol, inner, at, depth + 1);
      }
      return this.ethernet(inner, p + 16, depth + 1);
    }
    return 'not-dns-port';
  }

  private tcp(b: Buffer, p: number, end: number, src: string, dst: string): Segment | SkipReason {
    if (end < p + 20) return 'short';
    const sport = b.readUInt16BE(p);
    const dport = b.readUInt16BE(p + 2);
    if (!this.dnsPorts.has(sport) && !this.dnsPorts.has(dport)) return 'not-dns-port';
    const off = (b[p + 12]! >> 4) * 4;
    if (off < 20 || end < p + off) return 'short';
    return { transport: 'tcp', src, dst, sport, dport, payload: b.subarray(p + off, end), seq: b.readUInt32BE(p + 4), flags: b[p + 13]! };
  }
}
