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

/** `1.2.3.4:53`, `[::1]:53`: an address and port as users write them. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** Types dns-packet encodes by name; any other type is written `UNKNOWN_<n>` for it. */
const NAMED: Record<string, number> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, NULL: 10, PTR: 12, HINFO: 13, MX: 15, TXT: 16, RP: 17, AFSDB: 18, SIG: 24, KEY: 25, AAAA: 28, LOC: 29,
  SRV: 33, NAPTR: 35, KX: 36, CERT: 37, DNAME: 39, OPT: 41, APL: 42, DS: 43, SSHFP: 44, IPSECKEY: 45, RRSIG: 46, NSEC: 47, DNSKEY: 48,
  DHCID: 49, NSEC3: 50, NSEC3PARAM: 51, TLSA: 52, HIP: 55, CDS: 59, CDNSKEY: 60, SPF: 99, TKEY: 249, TSIG: 250, IXFR: 251, AXFR: 252,
  ANY: 255, CAA: 257, TA: 32768, DLV: 32769,
};
const BY_NUMBER = new Map(Object.entries(NAMED).map(([k, v]) => [v, k]));
/** Types dns-packet has no name for, sent as UNKNOWN_<n> and shown by name. */
const EXTRA: Record<string, number> = { SVCB: 64, HTTPS: 65, URI: 256 };
const EXTRA_BY_NUMBER = new Map(Object.entries(EXTRA).map(([k, v]) => [v, k]));

/**
 * A record type from a name (`AAAA`), a number (`65`) or RFC 3597's `TYPE65`.
 * Returns the name dns-packet encodes: a known name, or `UNKNOWN_65`.
 */
export function parseType(s: string): RecordType | undefined {
  const up = s.trim().toUpperCase();
  if (NAMED[up] !== undefined && up !== 'OPT') return up as RecordType;
  if (EXTRA[up] !== undefined) return `UNKNOWN_${EXTRA[up]}` as RecordType;
  const m = /^(?:TYPE)?(\d{1,5})$/.exec(up);
  if (m === null) return undefined;
  const n = Number(m[1]);
  if (n < 1 || n > 65535) return undefined;
  const named = BY_NUMBER.get(n);
  return (named !== undefined && named !== 'OPT' ? named : `UNKNOWN_${n}`) as RecordType;
}

/** How a type is shown: its name, or `TYPE65` (RFC 3597) for one without. */
export function typeLabel(t: string): string {
  if (!t.startsWith('UNKNOWN_')) return t;
  const n = Number(t.slice(8));
  return EXTRA_BY_NUMBER.get(n) ?? `TYPE${n}`;
}

export interface QueryTemplate {
  name: string;
  type: RecordType;
  /** The type as shown to users (TYPE65 for a type without a name). */
  label: string;
  /** The encoded query with ID 0. */
  bytes: Buffer;
  /** Offset and length of the question section inside `bytes`. */
  qStart: number;
  qEnd: number;
}

/** Encode a recursive query once; the ID is patched per send. */
export function makeTemplate(name: string, type: RecordType): QueryTemplate {
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name: name.replace(/\.$/, ''), class: 'IN' }],
  };
  const bytes = dnsPacket.encode(packet);
  const qEnd = questionEnd(bytes, HEADER_LEN);
  if (qEnd < 0) throw new Error(`could not encode a query for ${name}`);
  return { name, type, label: typeLabel(type), bytes, qStart: HEADER_LEN, qEnd };
}

/**
 * One DNS message from a TCP stream (RFC 1035 4.2.2: a 2-byte length, then
 * the message), or undefined until all of it has arrived.
 */
export function readFramed(acc: Buffer): { message: Buffer; rest: Buffer } | undefined {
  if (acc.length < 2) return undefined;
  const len = acc.readUInt16BE(0);
  if (acc.length < 2 + len) return undefined;
  return { message: acc.subarray(2, 2 + len), rest: acc.subarray(2 + len) };
}

/** A message with its 2-byte length prefix, for TCP. */
export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  out.set(msg, 2);
  return out;
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

/*
 * The header, read in place (RFC 1035 4.1.1): bytes 0-1 ID; byte 2 QR, OPCODE,
 * AA, TC, RD; byte 3 RA, Z, RCODE; bytes 4-11 QDCOUNT, ANCOUNT, NSCOUNT,
 * ARCOUNT. Small functions the JIT inlines: the hot paths use them too.
 */
const QR = 0x80;
const TC = 0x02;
const RCODE = 0x0f;

/** Long enough for a header and marked as a response (QR). */
export function isResponse(msg: Uint8Array): boolean {
  return msg.length >= HEADER_LEN && ((msg[2] ?? 0) & QR) !== 0;
}
export function idOf(msg: Uint8Array): number {
  return ((msg[0] ?? 0) << 8) | (msg[1] ?? 0);
}
export function rcodeOf(msg: Uint8Array): number {
  return (msg[3] ?? 0) & RCODE;
}
export function isTruncated(msg: Uint8Array): boolean {
  return ((msg[2] ?? 0) & TC) !== 0;
}
export function answerCount(msg: Uint8Array): number {
  return ((msg[6] ?? 0) << 8) | (msg[7] ?? 0);
}

/**
 * A FORMERR reply to a query that could not be decoded: its header with QR set,
 * RCODE 1 and every count zero; undefined when it is not a query at all.
 */
export function formerrFor(query: Uint8Array): Buffer | undefined {
  if (query.length < HEADER_LEN || ((query[2] ?? 0) & QR) !== 0) return undefined;
  const out = Buffer.from(query.subarray(0, HEADER_LEN));
  out[2] = QR | ((out[2] ?? 0) & 0x79);
  out[3] = ((out[3] ?? 0) & 0xf0) | 1;
  out.fill(0, 4, HEADER_LEN);
  return out;
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
