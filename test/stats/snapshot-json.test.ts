/**
 * merge's fast reading of histogram buckets, against JSON.parse itself: the same values for every text JSON.parse
 * reads (the packed lists written back as pairs), and a throw for every text it refuses.
 */
import { describe, expect, it } from 'vitest';
import { Histogram, PackedBuckets, mulberry32 } from '../../src/stats/index.js';
import { parseWithPackedBuckets } from '../../src/stats/snapshot-json.js';

/** The parse with every PackedBuckets written out as its pairs: comparable with JSON.parse's result. */
function unpacked(text: string, transient: boolean): unknown {
  return JSON.parse(JSON.stringify(parseWithPackedBuckets(text, transient))) as unknown;
}
/** Both read `text` to the same values (compared as JSON writes them: -0 is 0), or both throw. */
function same(text: string): void {
  const label = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  let want: unknown;
  try {
    want = JSON.parse(JSON.stringify(JSON.parse(text)));
  } catch {
    expect(() => parseWithPackedBuckets(text), label).toThrow();
    return;
  }
  expect(unpacked(text, false), label).toEqual(want);
  expect(unpacked(text, true), label).toEqual(want); // views of one buffer: each list where the one before ends
}

function doc(seed: number): Record<string, unknown> {
  const r = mulberry32(seed);
  const h = new Histogram('us', [1_000_000, 5_000_000]);
  const l = new Histogram('us', [1_000_000, 5_000_000, 2_000_000]);
  for (let i = 0; i < 2000; i++) h.record(Math.floor(2 ** (r() * 34)));
  for (let i = 0; i < 300; i++) l.record(Math.floor(r() * 6_000_000));
  return { schema: 'k8sdiag.dnsbench/1', host: `node-${seed}`, sent: 2000, histogram: h.toJSON(), resolver: { histogram: l.toJSON(), outcomes: { answer: 300 } }, table: { buckets: 65536 }, findings: [{ code: 'X', message: 'a "buckets":[[1,2]] in a string' }] };
}

describe('parseWithPackedBuckets', () => {
  it('reads real snapshots, compact and pretty-printed, as JSON.parse does, with the lists packed', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const d = doc(seed);
      for (const text of [JSON.stringify(d), JSON.stringify(d, null, 2), JSON.stringify(d, null, '\t')]) {
        same(text);
        const parsed = parseWithPackedBuckets(text) as { histogram: { buckets: unknown }; resolver: { histogram: { buckets: unknown } }; table: { buckets: unknown } };
        expect(parsed.histogram.buckets).toBeInstanceOf(PackedBuckets);
        expect(parsed.resolver.histogram.buckets).toBeInstanceOf(PackedBuckets);
        expect(parsed.table.buckets).toBe(65536);
        expect(Histogram.isSnapshot(parsed.histogram)).toBe(true);
      }
    }
  });

  it('every other shape of a buckets list gives what JSON.parse gives, or throws where it throws', () => {
    const lists = [
      '[]', '[ ]', '[[0,0]]', '[[1,2],[3,4]]', '[[01,2]]', '[[1,02]]', '[[1.5,2]]', '[[1e3,2]]', '[[1E3,2]]', '[[-1,2]]', '[[1,2,3]]', '[[1],[2,3]]',
      '[[1,[2]],[3,4]]', '[[1,2],]', '[[1,2]', '[1,2]', '[["1",2]]', '[[1,2]] ,"x":1', '[[1234567890123456,1]]', '[[123456789012345,1]]',
      '[[9007199254740993,1]]', '[[123456789012345678,1]]', '[[99999999999999999999,1]]', '[ [ 1 , 2 ] , [ 3 , 4 ] ]', '[[1,2],[3,4]]]', '[[true,2]]', '[[null,null]]', '[[1,2]',
    ];
    for (const list of lists) {
      same(`{"histogram":{"buckets":${list}},"n":1}`);
      same(`{"a":{"buckets" :\n ${list}}}`);
    }
    same('{"buckets":[[1,2]],"buckets":[[3,4]]}'); // JSON.parse keeps the last
    same('{"buckets":"\\u0000buckets:000000000000:0"}'); // a string like the mark stays a string
    same('{"s":"\\"buckets\\":[[1,2]]","buckets":[[5,6]]}');
    same('{"buckets":[[1,2]]} trailing');
  });

  it('random damage inside and around the lists: the same values as JSON.parse, or a throw where it throws', () => {
    const r = mulberry32(9);
    const base = JSON.stringify(doc(3));
    const start = base.indexOf('"buckets"');
    for (let k = 0; k < 1000; k++) {
      const chars = base.split('');
      for (let j = 0; j < 1 + Math.floor(r() * 3); j++) {
        const at = start + Math.floor(r() * 400);
        chars[at] = '0123456789[],. e-"'[Math.floor(r() * 18)]!;
      }
      same(chars.join(''));
    }
  });
});
