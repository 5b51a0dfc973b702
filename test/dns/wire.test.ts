import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { makeTemplate, patchId, peekHeader, questionEnd, rcodeName, sameQuestion } from '../../src/dns/wire.js';

describe('query templates', () => {
  it('encode -> decode -> encode round-trips, and the ID patch is the only change', () => {
    const t = makeTemplate('Example.COM', 'AAAA');
    const decoded = dnsPacket.decode(t.bytes);
    expect(decoded.questions).toEqual([{ name: 'Example.COM', type: 'AAAA', class: 'IN' }]);
    expect(decoded.flags! & dnsPacket.RECURSION_DESIRED).toBeTruthy();
    expect(dnsPacket.encode(decoded)).toEqual(t.bytes);
    const buf = Buffer.from(t.bytes);
    patchId(buf, 0xbeef);
    expect(dnsPacket.decode(buf).id).toBe(0xbeef);
    expect(buf.subarray(2)).toEqual(t.bytes.subarray(2));
  });

  it('a trailing dot encodes the same name', () => {
    expect(makeTemplate('a.b.', 'A').bytes).toEqual(makeTemplate('a.b', 'A').bytes);
  });

  it('finds the end of the question', () => {
    const t = makeTemplate('a.bc', 'A');
    expect(t.qEnd).toBe(12 + (1 + 1 + 1 + 2 + 1) + 4);
    expect(questionEnd(Buffer.from([3, 0x61, 0x62]), 0)).toBe(-1);
  });
});

describe('reply reading without a decode', () => {
  const reply = (q: dnsPacket.Question, rcode: number, flags = 0) =>
    dnsPacket.encode({ type: 'response', id: 0x1234, flags: flags | rcode, questions: [q], answers: [] });

  it('peeks the header fields', () => {
    const h = peekHeader(reply({ name: 'x.y', type: 'A', class: 'IN' }, 3, dnsPacket.TRUNCATED_RESPONSE))!;
    expect(h).toMatchObject({ id: 0x1234, qr: true, tc: true, rcode: 3, qdcount: 1, ancount: 0 });
    expect(rcodeName(h.rcode)).toBe('NXDOMAIN');
    expect(rcodeName(14)).toBe('RCODE14');
    expect(peekHeader(Buffer.alloc(11))).toBeUndefined();
  });

  it('matches the question case-insensitively, type and class exactly', () => {
    const t = makeTemplate('google.com', 'A');
    expect(sameQuestion(reply({ name: 'GOOGLE.com', type: 'A', class: 'IN' }, 0), t)).toBe(true);
    expect(sameQuestion(reply({ name: 'google.org', type: 'A', class: 'IN' }, 0), t)).toBe(false);
    expect(sameQuestion(reply({ name: 'google.com', type: 'AAAA', class: 'IN' }, 0), t)).toBe(false);
    expect(sameQuestion(reply({ name: 'google.com', type: 'A', class: 'CH' }, 0), t)).toBe(false);
    expect(sameQuestion(Buffer.alloc(14), t)).toBe(false);
  });
});
