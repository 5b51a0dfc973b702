/**
 * DNS wire helpers for hot paths: a query encoded once as a template whose
 * 16-bit ID is patched in place, and replies read from the header and the
 * question bytes without a full decode (RFC 1035 section 4.1).
 */
import * as dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';

export const HEADER_LEN = 12;

export const RCODE_NAMES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
] as const;

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** Types a user may ask for by name; dns-packet knows them all. */
export const QUERY_TYPES: readonly RecordType[] = [
  'A', 'AAAA', 'CNAME', 'MX', 'NS', 'PTR', 'SOA', 'SRV', 'TXT', 'CAA', 'DS', 'DNSKEY', 'HINFO', 'NAPTR', 'SSHFP', 'TLSA', 'URI',
];

export function parseType(s: string): RecordType | undefined {
  const up = s.toUpperCase();
  return (QUERY_TYPES as readonly string[]).includes(up) ? (up as RecordType) : undefined;
}

export interface QueryTemplate {
  name: string;
  type: RecordType;
  /** The encoded query with ID 0. */
  bytes: Buffer;
  /** Offset and length of the question section inside `bytes`. */
  qStart: number;
  qEnd: number;
}

/** Encode a recursive query once; the ID is patched per send. */
export function makeTemplate(name: string, type: RecordType, opts: { edns?: boolean } = {}): QueryTemplate {
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name: name.replace(/\.$/, ''), class: 'IN' }],
  };
  if (opts.edns) packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as dnsPacket.Answer];
  const bytes = dnsPacket.encode(packet);
  const qEnd = questionEnd(bytes, HEADER_LEN);
  if (qEnd < 0) throw new Error(`could not encode a query for ${name}`);
  return { name, type, bytes, qStart: HEADER_LEN, qEnd };
}

export function patchId(buf: Buffer, id: number): void {
  buf[0] = (id >>> 8) & 0xff;
  buf[1] = id & 0xff;
}

/** Offset just past the first question, or -1 if the bytes are malformed. */
export function questionEnd(msg: Uint8Array, start: number): number {
  let i = start;
  for (let hops = 0; hops < 128; hops++) {
    if (i >= msg.length) return -1;
    const len = msg[i] ?? 0;
    if (len === 0) {
      i += 1;
      break;
    }
    if ((len & 0xc0) !== 0) {
      // a compression pointer in a question is legal but unusual: 2 bytes
      i += 2;
      break;
    }
    i += 1 + len;
    if (hops === 127) return -1;
  }
  i += 4; // QTYPE, QCLASS
  return i <= msg.length ? i : -1;
}

/** Header fields read without decoding the message. */
export interface ReplyHeader {
  id: number;
  qr: boolean;
  opcode: number;
  tc: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
}

/** Returns undefined for a message shorter than a DNS header. */
export function peekHeader(msg: Uint8Array): ReplyHeader | undefined {
  if (msg.length < HEADER_LEN) return undefined;
  const b2 = msg[2] ?? 0;
  const b3 = msg[3] ?? 0;
  return {
    id: ((msg[0] ?? 0) << 8) | (msg[1] ?? 0),
    qr: (b2 & 0x80) !== 0,
    opcode: (b2 >>> 3) & 0x0f,
    tc: (b2 & 0x02) !== 0,
    rcode: b3 & 0x0f,
    qdcount: ((msg[4] ?? 0) << 8) | (msg[5] ?? 0),
    ancount: ((msg[6] ?? 0) << 8) | (msg[7] ?? 0),
  };
}

function lower(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
}

/**
 * Does the reply carry the template's question (name case-insensitively,
 * type and class exactly)? RFC 5452 section 9.1.
 */
export function sameQuestion(reply: Uint8Array, t: QueryTemplate): boolean {
  const len = t.qEnd - t.qStart;
  if (reply.length < HEADER_LEN + len) return false;
  if ((((reply[4] ?? 0) << 8) | (reply[5] ?? 0)) !== 1) return false;
  const q = t.bytes;
  const nameLen = len - 4;
  for (let i = 0; i < len; i++) {
    const a = reply[HEADER_LEN + i] ?? 0;
    const b = q[t.qStart + i] ?? 0;
    if (i < nameLen ? lower(a) !== lower(b) : a !== b) return false;
  }
  return true;
}
