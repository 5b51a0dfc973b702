/** The first question read in place, against dns-packet's decoding of the same messages; damaged ones refused. */
import * as dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { lastQuestionType, questionName } from '../../src/capture/question.js';
import { mulberry32 } from '../../src/stats/index.js';

/** The record types' numbers (RFC 1035, 2782, 3596). */
const NUMBER = { A: 1, AAAA: 28, PTR: 12, SRV: 33, TXT: 16 } as const;

describe('questionName', () => {
  it('the name (lower case) and type of queries and answers, as dns-packet reads them', () => {
    const rand = mulberry32(8);
    const types: dnsPacket.RecordType[] = ['A', 'AAAA', 'PTR', 'SRV', 'TXT'];
    for (let k = 0; k < 300; k++) {
      const labels = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => Array.from({ length: 1 + Math.floor(rand() * 12) }, () => 'abcXYZ019-'[Math.floor(rand() * 10)]).join(''));
      const name = labels.join('.');
      const type = types[Math.floor(rand() * types.length)]!;
      const msg = dnsPacket.encode(k % 2 === 0
        ? { type: 'query', id: k, questions: [{ name, type, class: 'IN' }] }
        : { type: 'response', id: k, questions: [{ name, type, class: 'IN' }], answers: type === 'A' ? [{ name, type: 'A', ttl: 5, data: '192.0.2.1' }] : [] });
      const decoded = dnsPacket.decode(msg);
      expect(questionName(msg)).toBe(decoded.questions![0]!.name.toLowerCase());
      expect(lastQuestionType()).toBe(NUMBER[decoded.questions![0]!.type as keyof typeof NUMBER]);
    }
  });

  it('a message cut short, a pointer forward or into itself, no question: undefined, never a throw', () => {
    const msg = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'example.com', type: 'A', class: 'IN' }] });
    for (let n = 0; n < msg.length - 4; n++) expect(questionName(msg.subarray(0, n)), `cut at ${n}`).toBeUndefined();
    const loop = Buffer.from(msg);
    loop[12] = 0xc0;
    loop[13] = 12; // points at itself
    expect(questionName(loop)).toBeUndefined();
    const none = Buffer.from(msg);
    none[5] = 0; // QDCOUNT 0
    expect(questionName(none)).toBeUndefined();
  });
});
