import { describe, expect, it } from 'vitest';
import { WINDOW_MS, WindowedRate } from './telemetry.js';

describe('the error rate', () => {
  it('is computed over the same window as p50 / p99, and forgets older requests', () => {
    let now = 0;
    const rate = new WindowedRate(() => now);
    expect(rate.rate()).toBe(0);
    for (let i = 0; i < 3; i++) rate.record(true);
    rate.record(false);
    expect(rate.rate()).toBe(0.75);
    now = WINDOW_MS / 2;
    for (let i = 0; i < 4; i++) rate.record(false);
    expect(rate.rate()).toBe(3 / 8);
    now = WINDOW_MS + 1; // the first slice is a window old: only the second half counts
    expect(rate.rate()).toBe(0);
    rate.record(true);
    expect(rate.rate()).toBe(1 / 5);
  });
});
