/** The packed query list: each packet byte for byte what dns-packet writes, and each name shown as it was given. */
import { describe, expect, it } from 'vitest';
import type { RecordType } from 'dns-packet';
import { parseQueriesFile } from '../../src/commands/dnsbench.js';
import { makeTemplate } from '../../src/dns/wire.js';
import { QueryList } from '../../src/engine/queries.js';
import { mulberry32 } from '../../src/stats/index.js';

describe('QueryList', () => {
  it('packs the packets dns-packet encodes, for plain, dotted, odd and long names of every type', () => {
    const rand = mulberry32(5);
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
    const label = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const names = ['google.com', 'google.com.', 'a', 'a.', 'kubernetes.default.svc.cluster.local', `${label(63)}.${label(63)}.${label(63)}.${label(61)}`, 'xn--bcher-kva.example', 'bücher.example', 'under_score.example'];
    for (let i = 0; i < 300; i++) names.push(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => label(1 + Math.floor(rand() * 20))).join('.') + (rand() < 0.3 ? '.' : ''));
    const types: RecordType[] = ['A', 'AAAA', 'TXT', 'SRV', 'PTR', 'UNKNOWN_65' as RecordType];
    const list = new QueryList(2); // grows as it fills
    const expected: Array<{ name: string; type: RecordType }> = [];
    for (const name of names) for (const type of types) {
      list.add(name, type);
      expected.push({ name, type });
    }
    expect(list.count).toBe(expected.length);
    let longest = 0;
    expected.forEach(({ name, type }, i) => {
      const ref = makeTemplate(name, type);
      const t = list.template(i);
      expect(Buffer.from(t.bytes).equals(Buffer.from(ref.bytes)), `${name} ${type}`).toBe(true);
      expect({ name: t.name, type: t.type, label: t.label, qStart: t.qStart, qEnd: t.qEnd }).toEqual({ name: ref.name, type: ref.type, label: ref.label, qStart: ref.qStart, qEnd: ref.qEnd });
      longest = Math.max(longest, ref.bytes.length);
    });
    expect(list.maxLength).toBe(longest);
  });

  it('a --queries file of 200,000 lines is read into one list, in order, with its types', () => {
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(i % 3 === 0 ? `n${i}.example.com AAAA` : i % 3 === 1 ? `  n${i}.example.com.\tTXT  ` : `n${i}.example.com`);
    const list = parseQueriesFile(`# a comment\n${lines.join('\r\n')}\n\n; another\n`, 'A');
    expect(list.count).toBe(200_000);
    for (const i of [0, 1, 2, 99_999, 199_999]) {
      expect(list.name(i)).toBe(i % 3 === 1 ? `n${i}.example.com.` : `n${i}.example.com`);
      expect(list.type(i)).toBe(i % 3 === 0 ? 'AAAA' : i % 3 === 1 ? 'TXT' : 'A');
    }
  });
});
