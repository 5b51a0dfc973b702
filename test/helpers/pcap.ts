/**
 * Captures written here frame by frame, for watch's tests: IPv4 and IPv6 packets carrying UDP or TCP, in the link
 * types tcpdump writes (Ethernet, raw IPv4/IPv6, NFLOG), IP fragments, and a classic pcap file of them. Written from
 * the RFCs and the link-type registry, not from watch's reader; tshark reads the same files as the independent check.
 */
import dnsPacket from 'dns-packet';

export type Addr = number[];
export interface Frame { us: number; data: Buffer }

function sum16(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length % 2 === 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An IPv4 header around `payload` (proto 17 UDP, 6 TCP); `frag`: the flags and offset field as sent. */
export function ipv4(src: Addr, dst: Addr, proto: number, payload: Buffer, opts: { id?: number; frag?: number; totalPayload?: number } = {}): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + payload.length, 2);
  ip.writeUInt16BE(opts.id ?? 1, 4);
  ip.writeUInt16BE(opts.frag ?? 0, 6);
  ip[8] = 64;
  ip[9] = proto;
  Buffer.from(src).copy(ip, 12);
  Buffer.from(dst).copy(ip, 16);
  ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
  return Buffer.concat([ip, payload]);
}

/** An IPv6 header around `payload`, with a fragment header when `frag` is given. */
export function ipv6(src: Addr, dst: Addr, proto: number, payload: Buffer, frag?: { id: number; offset: number; more: boolean }): Buffer {
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  const ext = frag === undefined ? Buffer.alloc(0) : Buffer.alloc(8);
  if (frag !== undefined) {
    ext[0] = proto;
    ext.writeUInt16BE((frag.offset & 0xfff8) | (frag.more ? 1 : 0), 2);
    ext.writeUInt32BE(frag.id, 4);
  }
  ip.writeUInt16BE(ext.length + payload.length, 4);
  ip[6] = frag === undefined ? proto : 44;
  ip[7] = 64;
  Buffer.from(src).copy(ip, 8);
  Buffer.from(dst).copy(ip, 24);
  return Buffer.concat([ip, ext, payload]);
}

export function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

export const SYN = 0x02;
export const ACK = 0x10;
export const PSH = 0x08;
export const FIN = 0x01;

export function tcp(sport: number, dport: number, seq: number, flags: number, payload: Buffer, ack = 0): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(seq >>> 0, 4);
  h.writeUInt32BE(ack >>> 0, 8);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  return Buffer.concat([h, payload]);
}

/** An Ethernet frame of an IP packet (IPv4 or IPv6 by its version). */
export function ethernet(ip: Buffer): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(ip[0]! >> 4 === 6 ? 0x86dd : 0x0800, 12);
  return Buffer.concat([eth, ip]);
}

/** An NFLOG frame (LINKTYPE_NFLOG, 239) as `tcpdump -i nflog` writes it: a header, then TLVs in host order, the packet in NFULA_PAYLOAD. */
export function nflog(ip: Buffer): Buffer {
  const head = Buffer.from([ip[0]! >> 4 === 6 ? 10 : 2, 0, 0, 5]);
  const tlv = (type: number, value: Buffer): Buffer => {
    const h = Buffer.alloc(4);
    h.writeUInt16LE(4 + value.length, 0);
    h.writeUInt16LE(type, 2);
    const pad = Buffer.alloc((4 - ((4 + value.length) % 4)) % 4);
    return Buffer.concat([h, value, pad]);
  };
  const prefix = tlv(10, Buffer.from('k8sdiag\0'));
  const hwProto = tlv(1, Buffer.from([ip[0]! >> 4 === 6 ? 0x86 : 0x08, ip[0]! >> 4 === 6 ? 0xdd : 0x00, 2, 0]));
  return Buffer.concat([head, hwProto, prefix, tlv(9, ip)]);
}

/** A classic pcap (microseconds, little-endian) of frames of one link type, in the order given. */
export function pcap(frames: Frame[], linkType = 1, snap = 262144): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(snap, 16);
  head.writeUInt32LE(linkType, 20);
  const recs = frames.map((f) => {
    const r = Buffer.alloc(16);
    const data = f.data.subarray(0, snap);
    r.writeUInt32LE(Math.floor(f.us / 1e6), 0);
    r.writeUInt32LE(f.us % 1e6, 4);
    r.writeUInt32LE(data.length, 8);
    r.writeUInt32LE(f.data.length, 12);
    return Buffer.concat([r, data]);
  });
  return Buffer.concat([head, ...recs]);
}

export function dnsQuery(id: number, name: string, type: 'A' | 'AAAA' | 'TXT' = 'A'): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
}

/** An answer; `txtBytes` makes it that much larger (a TXT record), for answers that fragment or span segments. */
export function dnsAnswer(id: number, name: string, type: 'A' | 'AAAA' | 'TXT' = 'A', txtBytes = 0): Buffer {
  const answers: dnsPacket.Answer[] = [];
  if (type === 'A') answers.push({ type: 'A', name, class: 'IN', ttl: 30, data: '192.0.2.1' });
  if (txtBytes > 0) {
    const chunks: string[] = [];
    for (let left = txtBytes; left > 0; left -= 200) chunks.push('x'.repeat(Math.min(200, left)));
    answers.push({ type: 'TXT', name, class: 'IN', ttl: 30, data: chunks });
  }
  return dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ type, name, class: 'IN' }], answers });
}

/** DNS over TCP: the two-byte length, then the message. */
export const framed = (msg: Buffer): Buffer => Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
