import { InvalidArgumentError } from './errors.js';
import { describe, expect, it } from 'vitest';
import {
  constantBackoff,
  exponentialBackoff,
  linearBackoff,
  type Backoff,
  type IBackoff,
} from './backoff.js';

function delays(factory: Backoff, n: number): number[] {
  const out: number[] = [];
  let b: IBackoff<unknown> | undefined;
  for (let attempt = 1; attempt <= n; attempt++) {
    b = (b ?? factory).next({ attempt, error: new Error('x') });
    out.push(b.duration);
  }
  return out;
}

describe('backoffs', () => {
  it('exponential without jitter doubles from initialMs up to maxMs', () => {
    expect(delays(exponentialBackoff({ jitter: 'none', initialMs: 100, maxMs: 1000 }), 6)).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it('exponential honours exponent', () => {
    expect(delays(exponentialBackoff({ jitter: 'none', initialMs: 10, exponent: 3 }), 4)).toEqual([
      10, 30, 90, 270,
    ]);
    expect(
      delays(
        exponentialBackoff({ jitter: 'full', initialMs: 10, exponent: 3, random: () => 0.5 }),
        3,
      ),
    ).toEqual([5, 15, 45]);
  });

  it('full and half jitter use the given random source', () => {
    expect(
      delays(exponentialBackoff({ jitter: 'full', initialMs: 100, random: () => 0.5 }), 3),
    ).toEqual([50, 100, 200]);
    expect(
      delays(exponentialBackoff({ jitter: 'half', initialMs: 100, random: () => 0 }), 3),
    ).toEqual([50, 100, 200]);
  });

  it('decorrelated jitter stays within [0, maxMs]', () => {
    for (const d of delays(exponentialBackoff({ initialMs: 100, maxMs: 2000 }), 20)) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });

  it('constant and linear', () => {
    expect(delays(constantBackoff(25), 3)).toEqual([25, 25, 25]);
    expect(delays(linearBackoff({ initialMs: 10, stepMs: 5, maxMs: 22 }), 4)).toEqual([
      10, 15, 20, 22,
    ]);
  });

  it('reject bad parameters', () => {
    expect(() => constantBackoff(-1)).toThrow(InvalidArgumentError);
    expect(() => constantBackoff('10' as never)).toThrow(/delay: .* received "10"/);
    expect(() => exponentialBackoff({ initialMs: -1 })).toThrow(InvalidArgumentError);
    expect(() => exponentialBackoff({ initialMs: 100, maxMs: 50 })).toThrow(
      /maxMs: expected a number of ms >= 100/,
    );
    expect(() => exponentialBackoff({ exponent: 0.5 })).toThrow(RangeError);
    expect(() => linearBackoff({ initialMs: 0, stepMs: -1 })).toThrow(InvalidArgumentError);
  });
});
