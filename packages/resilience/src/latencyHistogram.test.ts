import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from './latencyHistogram.js';
import { ManualClock } from './manualClock.js';

/** Nearest-rank percentile, the definition LatencyHistogram approximates. */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
const BOUND = LatencyHistogram.maxRelativeError + 1e-12;

describe('LatencyHistogram', () => {
  it('bounds the relative error of its percentiles to ~1.5% (property)', () => {
    // Log-uniform values over the whole supported range, 0.01 ms to 1 h.
    const value = fc
      .double({ min: Math.log(0.01), max: Math.log(3_600_000), noNaN: true })
      .map(Math.exp);
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 300 }), values => {
        const histogram = new LatencyHistogram({ clock: new ManualClock() });
        for (const v of values) histogram.record(v);
        const sorted = [...values].sort((a, b) => a - b);
        for (const q of QS) {
          const want = exact(sorted, q);
          const got = histogram.percentile(q);
          if (Math.abs(got - want) / want > BOUND) return false;
        }
        return histogram.percentile(1) === sorted[sorted.length - 1];
      }),
      { numRuns: 200 },
    );
    expect(LatencyHistogram.maxRelativeError).toBeLessThan(0.03);
  });

  it('is accurate on a large skewed sample', () => {
    let seed = 12345;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const histogram = new LatencyHistogram({ clock: new ManualClock() });
    const values: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const v = 5 + -Math.log(1 - rnd()) * 20 + (rnd() < 0.01 ? 2000 * rnd() : 0);
      values.push(v);
      histogram.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of QS) {
      expect(Math.abs(histogram.percentile(q) / exact(values, q) - 1)).toBeLessThanOrEqual(BOUND);
    }
    expect(histogram.count).toBe(50_000);
    expect(histogram.max).toBe(values[values.length - 1]);
    expect(histogram.min).toBe(values[0]);
    const sum = values.reduce((a, b) => a + b, 0);
    expect(histogram.sum).toBeCloseTo(sum, 3);
    expect(histogram.mean).toBeCloseTo(sum / values.length, 6);
  });

  it('keeps exact count, mean, max and clamps out-of-range values for percentiles', () => {
    const histogram = new LatencyHistogram({ clock: new ManualClock() });
    expect([histogram.count, histogram.mean, histogram.max, histogram.min]).toEqual([0, 0, 0, 0]);
    expect(histogram.percentile(0.5)).toBe(0);
    histogram.record(0);
    histogram.record(0.001);
    histogram.record(10);
    histogram.record(10_000_000);
    expect(histogram.count).toBe(4);
    expect(histogram.max).toBe(10_000_000);
    expect(histogram.min).toBe(0);
    expect(histogram.mean).toBeCloseTo((0.001 + 10 + 10_000_000) / 4, 9);
    expect(histogram.percentile(0)).toBe(0); // the exact min
    expect(histogram.percentile(0.5)).toBeCloseTo(0.01, 3); // 0.001 clamped to 0.01
    expect(histogram.percentile(0.75)).toBeCloseTo(10, 0);
    expect(histogram.percentile(1)).toBe(10_000_000);
    histogram.reset();
    expect(histogram.count).toBe(0);
    expect(histogram.percentile(0.99)).toBe(0);
    histogram.record(7);
    expect(histogram.percentile(0.5)).toBe(7);
  });

  it('drops slices older than the window', async () => {
    const clock = new ManualClock();
    const histogram = new LatencyHistogram({ windowMs: 60_000, slices: 6, clock });
    histogram.record(100);
    await clock.advance(30_000);
    histogram.record(200);
    histogram.record(300);
    await clock.advance(29_999); // t = 59_999: everything is younger than the window
    expect(histogram.count).toBe(3);
    expect(histogram.max).toBe(300);
    await clock.advance(1); // t = 60_000: the slice of t = 0 is a window old
    expect(histogram.count).toBe(2);
    expect(histogram.min).toBe(200);
    expect(histogram.percentile(0)).toBe(200);
    await clock.advance(30_000); // t = 90_000
    expect(histogram.count).toBe(0);
    expect(histogram.max).toBe(0);
    histogram.record(50);
    await clock.advance(1_000_000); // a jump of many windows
    histogram.record(60);
    expect(histogram.count).toBe(1);
    expect(histogram.percentile(0.5)).toBe(60);
  });

  it('keeps everything with an infinite window', async () => {
    const clock = new ManualClock();
    const histogram = new LatencyHistogram({ windowMs: Infinity, clock });
    expect(histogram.slices).toBe(1);
    histogram.record(1);
    await clock.advance(1e12);
    histogram.record(2);
    expect(histogram.count).toBe(2);
  });

  it('rejects bad input', () => {
    const histogram = new LatencyHistogram({ clock: new ManualClock() });
    expect(() => histogram.record(-1)).toThrow(RangeError);
    expect(() => histogram.record(Number.NaN)).toThrow(RangeError);
    expect(() => histogram.record(Infinity)).toThrow(RangeError);
    expect(() => histogram.record('5' as never)).toThrow(TypeError);
    expect(() => histogram.percentile(-0.01)).toThrow(RangeError);
    expect(() => histogram.percentile(1.01)).toThrow(RangeError);
    expect(() => histogram.percentile(Number.NaN)).toThrow(/q must be in \[0, 1\]/);
    expect(() => histogram.percentile(undefined as never)).toThrow(TypeError);
    expect(histogram.count).toBe(0);
    expect(() => new LatencyHistogram({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new LatencyHistogram({ windowMs: Number.NaN })).toThrow(RangeError);
    expect(() => new LatencyHistogram({ slices: 0 })).toThrow(RangeError);
    expect(() => new LatencyHistogram({ slices: 2.5 })).toThrow(RangeError);
    expect(() => new LatencyHistogram({ slices: 1001 })).toThrow(RangeError);
    expect(() => new LatencyHistogram({ clock: { now: 1 } as never })).toThrow(TypeError);
  });
});
