/**
 * A counter against its own background: the exact test of two Poisson rates, checked against binomial tails worked
 * out by hand, and the burstiness of the background said where its steps show it.
 */
import { describe, expect, it } from 'vitest';
import { dispersion, readCounter } from '../../src/doctor/background.js';

const e = (during: number, seconds: number, baseline: number | null, baselineSeconds: number, baselineSteps?: number[]) => ({ name: 'insert_failed', during, seconds, baseline, baselineSeconds, ...(baselineSteps ? { baselineSteps } : {}) });

describe('readCounter', () => {
  it('of the events of both intervals, the probes\' share against their share of the time', () => {
    // 6 in 10 s against 0 in 10 s: (1/2)^6 = 0.0156, not beyond chance; 10 against 0: (1/2)^10 = 9.8e-4, beyond.
    expect(readCounter(e(6, 10, 0, 10))).toMatchObject({ verdict: 'unclear' });
    expect(readCounter(e(6, 10, 0, 10)).p).toBeCloseTo(1 / 64, 12);
    expect(readCounter(e(10, 10, 0, 10))).toMatchObject({ verdict: 'rose' });
    expect(readCounter(e(10, 10, 0, 10)).p).toBeCloseTo(1 / 1024, 12);
    // 3 in 30 s against 1 in 10 s: P(X >= 3 | 4, 3/4) = 4 (3/4)^3 (1/4) + (3/4)^4 = 0.738.
    expect(readCounter(e(3, 30, 1, 10)).p).toBeCloseTo(4 * 0.75 ** 3 * 0.25 + 0.75 ** 4, 12);
  });
  it('flat when it did not move; unknown, never a rise, with no baseline', () => {
    expect(readCounter(e(0, 10, 5, 10)).verdict).toBe('flat');
    expect(readCounter(e(50, 10, null, 0)).verdict).toBe('unknown');
  });
  it('a background in bursts is said: the test understates chance then', () => {
    const steady = [2, 3, 2, 1, 2, 3, 2, 2, 1, 2];
    const bursts = [0, 0, 0, 12, 0, 0, 0, 0, 9, 0];
    expect(dispersion(steady)!).toBeLessThan(1);
    expect(dispersion(bursts)!).toBeGreaterThan(3);
    expect(readCounter(e(40, 10, 20, 10, steady)).bursty).toBe(false);
    const r = readCounter(e(60, 10, 21, 10, bursts));
    expect(r.bursty).toBe(true);
    expect(r.said).toMatch(/the background came in bursts \(variance \d+\.\dx its mean, per second\), so the test of rates understates chance/);
  });
});
