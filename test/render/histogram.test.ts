/** The terminal histogram: each row holds exactly the values in [low, high). */
import { describe, expect, it } from 'vitest';
import { renderHistogram } from '../../src/render/histogram.js';
import { makeStyle } from '../../src/render/style.js';
import { Histogram, LATENCY_MARKS_US } from '../../src/stats/index.js';

const style = makeStyle(false);
const rowCount = (out: string, range: string): number => {
  const line = out.split('\n').find((l) => l.trimStart().startsWith(range));
  return line === undefined ? -1 : Number(/\|\s+(\d+)\s/.exec(line.slice(line.lastIndexOf('|')))?.[1] ?? -1);
};

describe('renderHistogram', () => {
  it('values just above and below each mark land in their own rows (5.01 s is in 5s-10s)', () => {
    const h = new Histogram('us', LATENCY_MARKS_US);
    for (const mark of [1e6, 2e6, 5e6, 1e7]) {
      h.record(mark - 1_000); // just below
      h.record(mark + 10_000); // just above
    }
    const out = renderHistogram(style, h.toJSON());
    expect(rowCount(out, '500ms-1s')).toBe(1);
    expect(rowCount(out, '1s-2s')).toBe(2);
    expect(rowCount(out, '2s-5s')).toBe(2);
    expect(rowCount(out, '5s-10s')).toBe(2);
    expect(rowCount(out, '10s-')).toBe(1);
    expect(out).toMatch(/5s-10s \|#+\s*\|\s+2 .*<- 5 s: resolver timeout \+ resend/);
  });

  it('an empty histogram is one line saying so', () => {
    expect(renderHistogram(style, new Histogram('us', LATENCY_MARKS_US).toJSON())).toBe('latency histogram (per query): no replies, nothing to show\n');
  });
});
