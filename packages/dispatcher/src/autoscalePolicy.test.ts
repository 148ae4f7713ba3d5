import { describe, expect, it } from 'vitest';
import { gaePolicy, type AutoscaleInput } from './autoscalePolicy.js';

const input = (over: Partial<AutoscaleInput>): AutoscaleInput => ({
  now: 0,
  peakConcurrency: 0,
  outstanding: 0,
  waiting: 0,
  active: 0,
  maxConcurrentRequests: 10,
  minInstances: 0,
  maxInstances: 20,
  minIdleInstances: 1,
  maxIdleInstances: 1,
  scaleToZero: false,
  ...over,
});

describe('gaePolicy', () => {
  const policy = gaePolicy();
  it('requires ceil(peak / per-instance concurrency) plus idle headroom', () => {
    expect(policy.decide(input({ peakConcurrency: 25 }))).toMatchObject({
      required: 3,
      atLeast: 4,
      atMost: 4,
    });
    expect(policy.decide(input({ peakConcurrency: 25, maxIdleInstances: 3 }))).toMatchObject({
      atLeast: 4,
      atMost: 6,
    });
  });
  it('counts current outstanding requests even if the window missed them', () => {
    expect(policy.decide(input({ peakConcurrency: 0, outstanding: 11 })).required).toBe(2);
  });
  it('clamps to min and max instances', () => {
    expect(policy.decide(input({ peakConcurrency: 1000 }))).toMatchObject({
      atLeast: 20,
      atMost: 20,
    });
    expect(policy.decide(input({ minInstances: 3 }))).toMatchObject({ atLeast: 3, atMost: 3 });
  });
  it('keeps the idle instance without scaleToZero, drops it with', () => {
    expect(policy.decide(input({}))).toMatchObject({ atLeast: 1, atMost: 1 });
    expect(policy.decide(input({ scaleToZero: true }))).toMatchObject({ atLeast: 0, atMost: 0 });
    expect(policy.decide(input({ scaleToZero: true, minInstances: 2 }))).toMatchObject({
      atLeast: 2,
      atMost: 2,
    });
    expect(policy.decide(input({ scaleToZero: true, peakConcurrency: 1 }))).toMatchObject({
      atLeast: 2,
    });
  });
});
