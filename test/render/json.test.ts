/**
 * --json is written piece by piece (src/render/json.ts) and must be byte for
 * byte what JSON.stringify(value, null, 2) gives, whatever the value holds.
 * The reference here is JSON.stringify itself.
 */
import { describe, expect, it } from 'vitest';
import { writeJson } from '../../src/render/json.js';
import type { JsonSink } from '../../src/render/json.js';

/** A sink that asks for 'drain' after every `every` writes, as a slow pipe would. */
function sink(every = 0): JsonSink & { text: () => string; writes: number; drains: number } {
  const parts: string[] = [];
  let waiting: (() => void) | undefined;
  const s = {
    writes: 0,
    drains: 0,
    write(chunk: string): boolean {
      parts.push(chunk);
      s.writes++;
      return every === 0 || s.writes % every !== 0;
    },
    once(_event: 'drain', listener: () => void): unknown {
      waiting = listener;
      setImmediate(() => {
        s.drains++;
        waiting?.();
      });
      return s;
    },
    text: () => parts.join(''),
  };
  return s;
}

const service = (i: number) => ({
  id: `ns${i % 7}/svc${i}:http`,
  port: i,
  share: 1 / (i + 3),
  endpoints: Array.from({ length: i % 4 }, (_, k) => ({ address: `10.0.${i}.${k}:80`, chain: k ? null : 'KUBE-SEP-X' })),
  skip: undefined,
  label: 'quote " backslash \\ newline \n tab \t é ✓',
});

const cases: Array<[string, unknown]> = [
  ['a long top-level array of nested objects (streamed)', { schema: 'x/1', services: Array.from({ length: 1000 }, (_, i) => service(i)), n: 3 }],
  ['exactly 64 elements, and 63', { a: Array.from({ length: 64 }, (_, i) => i), b: Array.from({ length: 63 }, (_, i) => [i, { i }]) }],
  ['arrays with holes JSON prints as null', { xs: Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? () => i : NaN)) }],
  ['properties JSON leaves out, first and last', { gone: undefined, f: () => 1, kept: [], empty: {}, last: undefined }],
  ['nothing but left-out properties', { a: undefined, b: undefined }],
  ['an empty object', {}],
  ['a value with toJSON, inside and at the top', { when: new Date(0), nested: { toJSON: () => ({ x: 1 }) } }],
  ['a top-level array', Array.from({ length: 200 }, (_, i) => ({ i }))],
  ['a string', 'plain'],
  ['null', null],
  ['numbers JSON cannot hold', { inf: Infinity, nan: NaN, neg: -0, big: 1e21, small: 5e-7 }],
];

describe('writeJson', () => {
  it.each(cases)('%s: byte for byte JSON.stringify(value, null, 2) and a newline', async (_name, value) => {
    for (const every of [0, 1, 3]) {
      const out = sink(every);
      await writeJson(out, value);
      expect(out.text()).toBe(`${JSON.stringify(value, null, 2)}\n`);
    }
  });

  it('a large document goes out in many writes, and waits for drain when asked', async () => {
    const value = { services: Array.from({ length: 5000 }, (_, i) => service(i)) };
    const out = sink(2);
    await writeJson(out, value);
    expect(out.text()).toBe(`${JSON.stringify(value, null, 2)}\n`);
    expect(out.writes).toBeGreaterThan(10);
    expect(out.drains).toBeGreaterThan(5);
  });
});
