import { describe, expect, it } from 'vitest';
import { policyContext } from './policyContext.js';
import { constantBackoff } from './backoff.js';
import { retry } from './retry.js';

describe('policyContext', () => {
  it('fills the defaults: a never-aborting signal, attempt 0, no deadline, no endpoint', () => {
    const ctx = policyContext();
    expect(ctx.signal.aborted).toBe(false);
    expect(ctx.attempt).toBe(0);
    expect(ctx.deadline).toBe(Infinity);
    expect(ctx.endpoint).toBeUndefined();
  });

  it('drives a retry schedule outside execute', () => {
    const controller = new AbortController();
    const policy = retry({ maxRetries: 2, backoff: constantBackoff(10) });
    const schedule = policy.schedule(policyContext({ signal: controller.signal, deadline: 1e12 }));
    expect(schedule.next(new Error('a'))).toBeGreaterThanOrEqual(0);
    expect(schedule.next(new Error('b'))).toBeGreaterThanOrEqual(0);
    expect(schedule.next(new Error('c'))).toBeLessThan(0);
  });
});
