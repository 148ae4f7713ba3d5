import { describe, expect, it } from 'vitest';
import { parseResponseTime } from './responseTime.js';

describe('parseResponseTime', () => {
  it.each([
    ['0.25', 250],
    ['12.5ms', 12.5],
    ['12.5 ms', 12.5],
    ['1.5s', 1500],
    ['350us', 0.35],
    ['350µs', 0.35],
    ['1e-3', 1],
    [['2ms', '3ms'], 2],
  ])('%j → %d ms', (value, ms) => {
    expect(parseResponseTime(value)).toBeCloseTo(ms, 9);
  });

  it.each([undefined, '', 'fast', '-1', '1 hour', 'NaN'])('%j → NaN', value => {
    expect(parseResponseTime(value)).toBeNaN();
  });
});
