import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { answerCount, formerrFor, frame, idOf, isResponse, isTruncated, makeTemplate, parseType, patchId, questionEnd, rcodeName, rcodeOf, readFramed, sameQuestion, typeLabel } from '../../src/dns/wire.js';

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

  it('reads the header fields in place', () => {
    const m = reply({ name: 'x.y', type: 'A', class: 'IN' }, 3, dnsPacket.TRUNCATED_RESPONSE);
    expect({ id: idOf(m), qr: isResponse(m), tc: isTruncated(m), rcode: rcodeOf(m), ancount: answerCount(m) }).toEqual({ id: 0x1234, qr: true, tc: true, rcode: 3, ancount: 0 });
    expect(rcodeName(rcodeOf(m))).toBe('NXDOMAIN');
    expect(rcodeName(14)).toBe('RCODE14');
    expect(isResponse(Buffer.alloc(11))).toBe(false);
  });

  it('a FORMERR reply keeps the query\'s ID and clears the counts; a response gets none', () => {
    const q = dnsPacket.encode({ type: 'query', id: 0xbeef, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'a.b', type: 'A', class: 'IN' }] });
    const f = formerrFor(q)!;
    expect({ id: idOf(f), qr: isResponse(f), rcode: rcodeOf(f), len: f.length }).toEqual({ id: 0xbeef, qr: true, rcode: 1, len: 12 });
    expect(formerrFor(f)).toBeUndefined();
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

describe('templates round-trip', () => {
  it('encode -> decode -> encode gives the same bytes, for named and numbered types', () => {
    for (const [name, type] of [['google.com', 'A'], ['_dns._udp.example.org', 'SRV'], ['example.org', parseType('65')!], ['example.org', parseType('TYPE999')!]] as const) {
      const t = makeTemplate(name, type);
      patchId(t.bytes, 0x4242);
      const decoded = dnsPacket.decode(t.bytes);
      expect(decoded.questions?.[0]).toMatchObject({ name, class: 'IN' });
      expect(Buffer.from(dnsPacket.encode(decoded)).equals(t.bytes)).toBe(true);
    }
    expect(typeLabel(parseType('65')!)).toBe('HTTPS');
    expect(typeLabel(parseType('TYPE999')!)).toBe('TYPE999');
    expect(parseType('0')).toBeUndefined();
    expect(parseType('65536')).toBeUndefined();
  });

  it('frames DNS over TCP and reads frames back across chunks', () => {
    const a = frame(Buffer.from([1, 2, 3]));
    const b = frame(Buffer.from([4]));
    const both = Buffer.concat([a, b]);
    expect(readFramed(both.subarray(0, 4))).toBeUndefined();
    const first = readFramed(both)!;
    expect([...first.message]).toEqual([1, 2, 3]);
    expect([...readFramed(first.rest)!.message]).toEqual([4]);
  });
});
